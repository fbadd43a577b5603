"""Validate the SPIR-V inside Vulkan modules with ``spirv-val`` (Debian ``spirv-tools``).

Each phone target's modules must pass ``spirv-val --target-env vulkanX.Y`` for the Vulkan
version its SPIR-V version implies (``Target.spirv_version``: 1.3 -> vulkan1.1, 1.6 -> vulkan1.3).
The modules are read out of the final ``.vmfb`` (:func:`pconv_mlir.targets.spirv_modules`), so
what is checked is what ships. ``python -m pconv_mlir.testing.spirv_check M.vmfb TARGET``.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pconv_mlir.targets import get_target, spirv_modules

__all__ = ["SpirvResult", "spirv_val_path", "target_env", "validate_vmfb"]

_TARGET_ENV = {"1.3": "vulkan1.1", "1.4": "vulkan1.1spv1.4", "1.5": "vulkan1.2", "1.6": "vulkan1.3"}


@dataclasses.dataclass
class SpirvResult:
    target_env: str
    modules: int
    errors: list[str]  # one line per failing module: "module i: first error line"

    @property
    def ok(self) -> bool:
        return self.modules > 0 and not self.errors


def spirv_val_path() -> str | None:
    return shutil.which("spirv-val")


def target_env(target) -> str:
    t = get_target(target)
    if t.backend != "vulkan-spirv":
        raise ValueError(f"{t.name} is not a Vulkan target")
    return _TARGET_ENV[t.spirv_version]


def validate_vmfb(vmfb: bytes, target) -> SpirvResult:
    """Run spirv-val on every SPIR-V module in ``vmfb`` (a module compiled for ``target``)."""
    tool = spirv_val_path()
    if tool is None:
        raise FileNotFoundError("spirv-val not found: install Debian's spirv-tools")
    env = target_env(target)
    errors = []
    found = spirv_modules(vmfb)
    with tempfile.TemporaryDirectory(prefix="pconv-spirv-") as tmp:
        for i, (pos, size) in enumerate(found):
            path = Path(tmp) / f"module{i}.spv"
            path.write_bytes(vmfb[pos:pos + size])
            res = subprocess.run([tool, "--target-env", env, str(path)], capture_output=True, text=True, timeout=120)
            if res.returncode != 0:
                first = (res.stderr.strip() or res.stdout.strip() or f"exit {res.returncode}").splitlines()[0]
                errors.append(f"module {i}: {first}")
    return SpirvResult(env, len(found), errors)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m pconv_mlir.testing.spirv_check MODULE.vmfb TARGET", file=sys.stderr)
        return 2
    result = validate_vmfb(Path(args[0]).read_bytes(), args[1])
    print(f"{args[0]}: {result.modules} SPIR-V modules, spirv-val --target-env {result.target_env}: "
          f"{'ok' if result.ok else f'{len(result.errors)} failed'}")
    for line in result.errors:
        print("  " + line)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
