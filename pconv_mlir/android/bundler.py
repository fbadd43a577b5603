"""Writing self-contained Android / aarch64 bundles of a compiled module.

A bundle is a folder that runs a .vmfb on an aarch64 device with nothing
installed there:

    iree-run-module, iree-benchmark-module   aarch64 tools from the manylinux
                                             aarch64 iree-base-runtime wheel
                                             (same version as the compiler)
    ld-linux-aarch64.so.1, libc.so.6, ...    aarch64 glibc loader + libraries
                                             (Debian's *-arm64-cross packages)
    module.vmfb, input0.npy ...              the module and its inputs
    reference0.npy ...                       optional expected outputs
    run.sh, bench.sh                         run through the bundled loader:
        ./ld-linux-aarch64.so.1 --library-path . ./iree-run-module --module=...
    bundle.json                              metadata (function, device, files)

The tools are glibc programs, so on Android they run through the bundled loader
(Android's kernel runs them; bionic is not involved).  Consequences: CPU modules
(``local-task``/``local-sync``) run on a phone; the ``vulkan`` device needs the
phone's bionic ``libvulkan.so``, which a glibc process cannot load, so Vulkan on a
phone needs IREE tools built with the Android NDK (see docs/android.md).

The bundle is run by :mod:`pconv_mlir.android.runner` (on a phone through adb, or here
under ``qemu-aarch64-static``).

Downloads are cached in ``$PCONV_MLIR_CACHE`` (default ``~/.cache/pconv-mlir``):
``pip download`` of the aarch64 wheel and ``apt-get download`` of
libc6-arm64-cross, libgcc-s1-arm64-cross and libstdc++6-arm64-cross (``Architecture:
all`` packages, so no multiarch setup is needed; they are unpacked with
``dpkg-deb -x``, not installed).  If ``/usr/aarch64-linux-gnu/lib`` already holds
the libraries (those packages installed), it is used directly.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pconv_mlir.errors import PconvInputError, PconvRuntimeError, first_line
from pconv_mlir.runtime.buffers import to_numpy
from pconv_mlir.runtime.device import DEVICES
from pconv_mlir.runtime.module import function_signature, read_vmfb
from pconv_mlir.runtime.signature import check_arrays

__all__ = [
    "IREE_RUNTIME_VERSION",
    "REMOTE_DIR",
    "cache_dir",
    "fetch_runtime_tools",
    "fetch_glibc",
    "bundle",
    "load_bundle",
]

IREE_RUNTIME_VERSION = "3.13.0"
REMOTE_DIR = "/data/local/tmp/pconv-bundle"
TOOLS = ("iree-run-module", "iree-benchmark-module")
LOADER = "ld-linux-aarch64.so.1"
# Libraries the two tools need (readelf -d NEEDED, closed over libstdc++).
GLIBC_LIBS = (
    LOADER,
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
)
CROSS_DEBS = ("libc6-arm64-cross", "libgcc-s1-arm64-cross", "libstdc++6-arm64-cross")
SYSTEM_CROSS_LIB = Path("/usr/aarch64-linux-gnu/lib")


def cache_dir() -> Path:
    d = Path(os.environ.get("PCONV_MLIR_CACHE") or Path.home() / ".cache" / "pconv-mlir")
    d.mkdir(parents=True, exist_ok=True)
    return d


def run_tool(cmd: Sequence[str], timeout: float, what: str, **kw) -> subprocess.CompletedProcess:
    """Runs ``cmd`` capturing its output; a missing program or a timeout is a one-line
    PconvRuntimeError that says ``what`` was being done."""
    try:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, **kw
        )
    except FileNotFoundError:
        raise PconvRuntimeError(f"{what}: `{cmd[0]}` not found") from None
    except subprocess.TimeoutExpired:
        raise PconvRuntimeError(f"{what}: timed out after {timeout:.0f} s: {shlex.join(cmd)}") from None


def tail(s: str, n: int = 8) -> str:
    """The last ``n`` non-blank lines of a tool's output, for error messages."""
    lines = [l for l in (s or "").strip().splitlines() if l.strip()]
    return "\n".join(lines[-n:])


def fetch_runtime_tools(cache: Path | None = None, timeout: float = 600) -> Path:
    """Returns a directory holding the aarch64 iree-run-module and
    iree-benchmark-module (downloading the wheel into the cache if needed)."""
    cache = cache or cache_dir()
    tools = cache / f"iree-runtime-{IREE_RUNTIME_VERSION}-aarch64"
    if all((tools / t).is_file() for t in TOOLS):
        return tools
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    pat = f"iree_base_runtime-{IREE_RUNTIME_VERSION}-*aarch64*.whl"
    found = sorted(wheels.glob(pat))
    if not found:
        cmd = [
            sys.executable, "-m", "pip", "download", "--only-binary=:all:",
            "--platform", "manylinux_2_28_aarch64", "--python-version", "3.11",
            "--no-deps", f"iree-base-runtime=={IREE_RUNTIME_VERSION}", "-d", str(wheels),
        ]
        r = run_tool(cmd, timeout, "downloading the aarch64 iree-base-runtime wheel")
        found = sorted(wheels.glob(pat))
        if r.returncode != 0 or not found:
            raise PconvRuntimeError(
                "cannot download the aarch64 iree-base-runtime wheel "
                f"({shlex.join(cmd)}):\n{tail(r.stderr or r.stdout)}"
            )
    tmp = tools.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with zipfile.ZipFile(found[-1]) as z:
            for t in TOOLS:
                with z.open(f"iree/_runtime_libs/{t}") as src, open(tmp / t, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.chmod(tmp / t, 0o755)
    except (KeyError, zipfile.BadZipFile) as e:
        raise PconvRuntimeError(f"{found[-1]}: unexpected wheel contents: {e}") from None
    shutil.rmtree(tools, ignore_errors=True)
    tmp.rename(tools)
    return tools


def fetch_glibc(cache: Path | None = None, timeout: float = 300) -> Path:
    """Returns a directory holding the aarch64 glibc loader and the libraries
    in GLIBC_LIBS."""
    if all((SYSTEM_CROSS_LIB / l).exists() for l in GLIBC_LIBS):
        return SYSTEM_CROSS_LIB
    cache = cache or cache_dir()
    root = cache / "aarch64-glibc"
    lib = root / "usr" / "aarch64-linux-gnu" / "lib"
    if all((lib / l).exists() for l in GLIBC_LIBS):
        return lib
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    for pkg in CROSS_DEBS:
        if not list(debs.glob(f"{pkg}_*.deb")):
            r = run_tool(["apt-get", "download", pkg], timeout, f"apt-get download {pkg}", cwd=debs)
            if r.returncode != 0 or not list(debs.glob(f"{pkg}_*.deb")):
                raise PconvRuntimeError(
                    f"cannot download Debian package {pkg} (needed for the aarch64 glibc "
                    f"loader): {tail(r.stderr or r.stdout, 3)}. Alternatively install "
                    f"{' '.join(CROSS_DEBS)} (files land in {SYSTEM_CROSS_LIB})."
                )
    for deb in sorted(debs.glob("*.deb")):
        r = run_tool(["dpkg-deb", "-x", str(deb), str(root)], timeout, f"dpkg-deb -x {deb.name}")
        if r.returncode != 0:
            raise PconvRuntimeError(f"cannot unpack {deb}: {tail(r.stderr)}")
    missing = [l for l in GLIBC_LIBS if not (lib / l).exists()]
    if missing:
        raise PconvRuntimeError(f"aarch64 glibc libraries missing after unpacking: {missing}")
    return lib


def _module_signature(vmfb: bytes, function: str):
    """(inputs, outputs) TensorSpecs of ``function`` read from the module's
    reflection metadata (no device needed)."""
    import iree.runtime as rt

    try:
        mod = rt.VmModule.copy_buffer(rt.VmInstance(), vmfb)
    except Exception as e:
        raise PconvRuntimeError(f"corrupt or truncated module: {first_line(e)}") from None
    return function_signature(mod, function)


def _copy_resolved(src: Path, dst: Path) -> None:
    shutil.copyfile(src.resolve(), dst)
    os.chmod(dst, 0o755)


# run.sh and bench.sh: one of the two tools on the bundled module, through the bundled loader.
_SCRIPT = """#!/bin/sh
# {verb} {module} through the bundled aarch64 glibc loader.
#   ./{script} [extra {tool} flags{example}]
# Environment: PCONV_DEVICE (default {device}), PCONV_EXEC_PREFIX (e.g.
# qemu-aarch64-static for an emulated run on x86).
cd "$(dirname "$0")" || exit 1
DEVICE="${{PCONV_DEVICE:-{device}}}"
exec $PCONV_EXEC_PREFIX ./{loader} --library-path . ./{tool} \\
  --module={module} --device="$DEVICE" --function={function} \\
{flags}  "$@"
"""


def bundle(
    module: str | os.PathLike | bytes,
    inputs: Sequence[Any],
    out_dir: str | os.PathLike,
    device: str = "local-task",
    function: str = "main",
    references: Sequence[Any] | None = None,
    cache: Path | None = None,
) -> Path:
    """Writes a self-contained aarch64 bundle (see module docstring).

    ``inputs`` are numpy arrays / torch tensors or paths to .npy files;
    ``references`` (optional) are the expected outputs, compared by
    ``pconv android run``.  Inputs are checked against the module's signature.
    """
    if device not in DEVICES:
        raise PconvInputError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    vmfb, _ = read_vmfb(module)
    in_specs, out_specs = _module_signature(vmfb, function)

    arrays = []
    for i, x in enumerate(inputs):
        if isinstance(x, (str, os.PathLike)):
            try:
                x = np.load(x, allow_pickle=False)
            except Exception as e:
                raise PconvInputError(f"cannot read input {i} from {x}: {e}") from None
        elif not isinstance(x, np.ndarray):
            x = to_numpy(x, f"input {i}")
        arrays.append(np.ascontiguousarray(x))
    check_arrays(arrays, in_specs, function)

    refs = []
    for r in references or []:
        if isinstance(r, (str, os.PathLike)):
            r = np.load(r, allow_pickle=False)
        refs.append(np.asarray(r))
    if refs and len(refs) != len(out_specs):
        raise PconvInputError(f"{function} has {len(out_specs)} output(s), got {len(refs)} reference(s)")

    tools = fetch_runtime_tools(cache)
    libc = fetch_glibc(cache)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for t in TOOLS:
        _copy_resolved(tools / t, out / t)
    for l in GLIBC_LIBS:
        _copy_resolved(libc / l, out / l)
    (out / "module.vmfb").write_bytes(vmfb)
    in_names = []
    for i, a in enumerate(arrays):
        name = f"input{i}.npy"
        np.save(out / name, a)
        in_names.append(name)
    out_names = [f"output{i}.npy" for i in range(len(out_specs))]
    ref_names = []
    for i, r in enumerate(refs):
        name = f"reference{i}.npy"
        np.save(out / name, r)
        ref_names.append(name)

    in_flags = "".join(f"  --input=@{n} \\\n" for n in in_names)
    io_flags = in_flags + "".join(f"  --output=@{n} \\\n" for n in out_names)
    fmt = dict(module="module.vmfb", device=device, function=function, loader=LOADER)
    (out / "run.sh").write_text(_SCRIPT.format(verb="Runs", script="run.sh", tool="iree-run-module", example="",
                                               flags=io_flags, **fmt))
    (out / "bench.sh").write_text(_SCRIPT.format(verb="Benchmarks", script="bench.sh", tool="iree-benchmark-module",
                                                 example=", e.g. --task_topology_group_count=4", flags=in_flags, **fmt))
    os.chmod(out / "run.sh", 0o755)
    os.chmod(out / "bench.sh", 0o755)
    meta = dict(
        format="pconv-android-bundle/1",
        iree_runtime=IREE_RUNTIME_VERSION,
        module="module.vmfb",
        function=function,
        device=device,
        inputs=in_names,
        input_types=[s.mlir_type for s in in_specs],
        outputs=out_names,
        output_types=[s.mlir_type for s in out_specs],
        references=ref_names,
        remote_dir=REMOTE_DIR,
    )
    (out / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def load_bundle(bundle_dir: str | os.PathLike) -> dict:
    """The metadata (``bundle.json``) of the bundle in ``bundle_dir``."""
    d = Path(bundle_dir)
    f = d / "bundle.json"
    if not f.is_file():
        raise PconvRuntimeError(f"{d}: not a pconv bundle (no bundle.json; make one with `pconv android bundle`)")
    try:
        return json.loads(f.read_text())
    except ValueError as e:
        raise PconvRuntimeError(f"{f}: unreadable: {e}") from None
