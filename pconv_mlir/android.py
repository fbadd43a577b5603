"""Self-contained Android / aarch64 bundles of a compiled module.

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

Locally, ``run_emulated`` runs the same run.sh under ``qemu-aarch64-static``
(``PCONV_EXEC_PREFIX=qemu-aarch64-static``), with a timeout.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import PconvInputError, PconvRuntimeError

__all__ = [
    "IREE_RUNTIME_VERSION",
    "REMOTE_DIR",
    "cache_dir",
    "fetch_runtime_tools",
    "fetch_glibc",
    "bundle",
    "run_emulated",
    "bench_emulated",
    "run_adb",
    "bench_adb",
    "compare_outputs",
    "BundleResult",
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
QEMU = "qemu-aarch64-static"


def cache_dir() -> Path:
    d = Path(os.environ.get("PCONV_MLIR_CACHE") or Path.home() / ".cache" / "pconv-mlir")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _run(cmd: Sequence[str], timeout: float, what: str, **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, **kw
        )
    except FileNotFoundError:
        raise PconvRuntimeError(f"{what}: `{cmd[0]}` not found") from None
    except subprocess.TimeoutExpired:
        raise PconvRuntimeError(f"{what}: timed out after {timeout:.0f} s: {shlex.join(cmd)}") from None


def _tail(s: str, n: int = 8) -> str:
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
        r = _run(cmd, timeout, "downloading the aarch64 iree-base-runtime wheel")
        found = sorted(wheels.glob(pat))
        if r.returncode != 0 or not found:
            raise PconvRuntimeError(
                "cannot download the aarch64 iree-base-runtime wheel "
                f"({shlex.join(cmd)}):\n{_tail(r.stderr or r.stdout)}"
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
            r = _run(["apt-get", "download", pkg], timeout, f"apt-get download {pkg}", cwd=debs)
            if r.returncode != 0 or not list(debs.glob(f"{pkg}_*.deb")):
                raise PconvRuntimeError(
                    f"cannot download Debian package {pkg} (needed for the aarch64 glibc "
                    f"loader): {_tail(r.stderr or r.stdout, 3)}. Alternatively install "
                    f"{' '.join(CROSS_DEBS)} (files land in {SYSTEM_CROSS_LIB})."
                )
    for deb in sorted(debs.glob("*.deb")):
        r = _run(["dpkg-deb", "-x", str(deb), str(root)], timeout, f"dpkg-deb -x {deb.name}")
        if r.returncode != 0:
            raise PconvRuntimeError(f"cannot unpack {deb}: {_tail(r.stderr)}")
    missing = [l for l in GLIBC_LIBS if not (lib / l).exists()]
    if missing:
        raise PconvRuntimeError(f"aarch64 glibc libraries missing after unpacking: {missing}")
    return lib


def _module_signature(vmfb: bytes, function: str):
    """(inputs, outputs) TensorSpecs of ``function`` read from the module's
    reflection metadata (no device needed)."""
    import iree.runtime as rt

    from .runtime import parse_signature

    try:
        mod = rt.VmModule.copy_buffer(rt.VmInstance(), vmfb)
    except Exception as e:
        raise PconvRuntimeError(f"corrupt or truncated module: {str(e).splitlines()[0]}") from None
    f = mod.lookup_function(function)
    if f is None:
        names = [n for n in mod.function_names if not n.startswith("__")]
        raise PconvRuntimeError(f"module has no function {function!r} (functions: {', '.join(names)})")
    decl = (f.reflection or {}).get("iree.abi.declaration")
    if not decl:
        raise PconvRuntimeError(f"function {function!r} has no signature metadata")
    return parse_signature(decl)


def _copy_resolved(src: Path, dst: Path) -> None:
    shutil.copyfile(src.resolve(), dst)
    os.chmod(dst, 0o755)


_RUN_SH = """#!/bin/sh
# Runs {module} through the bundled aarch64 glibc loader.
#   ./run.sh [extra iree-run-module flags]
# Environment: PCONV_DEVICE (default {device}), PCONV_EXEC_PREFIX (e.g.
# qemu-aarch64-static for an emulated run on x86).
cd "$(dirname "$0")" || exit 1
DEVICE="${{PCONV_DEVICE:-{device}}}"
exec $PCONV_EXEC_PREFIX ./{loader} --library-path . ./iree-run-module \\
  --module={module} --device="$DEVICE" --function={function} \\
{io_flags}  "$@"
"""

_BENCH_SH = """#!/bin/sh
# Benchmarks {module} through the bundled aarch64 glibc loader.
#   ./bench.sh [extra iree-benchmark-module flags, e.g. --task_topology_group_count=4]
cd "$(dirname "$0")" || exit 1
DEVICE="${{PCONV_DEVICE:-{device}}}"
exec $PCONV_EXEC_PREFIX ./{loader} --library-path . ./iree-benchmark-module \\
  --module={module} --device="$DEVICE" --function={function} \\
{in_flags}  "$@"
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
    from .runtime import DEVICES

    if device not in DEVICES:
        raise PconvInputError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if isinstance(module, (bytes, bytearray)):
        vmfb = bytes(module)
    else:
        p = Path(module)
        if not p.is_file():
            raise PconvRuntimeError(f"module file not found: {p}")
        vmfb = p.read_bytes()
    in_specs, out_specs = _module_signature(vmfb, function)

    arrays = []
    for i, x in enumerate(inputs):
        if isinstance(x, (str, os.PathLike)):
            try:
                x = np.load(x, allow_pickle=False)
            except Exception as e:
                raise PconvInputError(f"cannot read input {i} from {x}: {e}") from None
        elif not isinstance(x, np.ndarray):
            from .runtime import _to_numpy

            x = _to_numpy(x, f"input {i}")
        arrays.append(np.ascontiguousarray(x))
    _check_against(arrays, in_specs, function)

    refs = []
    for i, r in enumerate(references or []):
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
    (out / "run.sh").write_text(_RUN_SH.format(io_flags=io_flags, **fmt))
    (out / "bench.sh").write_text(_BENCH_SH.format(in_flags=in_flags, **fmt))
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


def _check_against(arrays, specs, function):
    if len(arrays) != len(specs):
        raise PconvInputError(
            f"{function} expects {len(specs)} input(s) ({', '.join(map(str, specs))}), got {len(arrays)}"
        )
    for i, (a, s) in enumerate(zip(arrays, specs)):
        if s.dtype is not None and a.dtype != s.dtype:
            raise PconvInputError(f"input {i}: dtype {a.dtype} does not match {s.mlir_type}")
        if len(a.shape) != len(s.shape) or any(d is not None and d != n for d, n in zip(s.shape, a.shape)):
            raise PconvInputError(f"input {i}: shape {tuple(a.shape)} does not match {s.mlir_type}")


def load_bundle(bundle_dir: str | os.PathLike) -> dict:
    d = Path(bundle_dir)
    f = d / "bundle.json"
    if not f.is_file():
        raise PconvRuntimeError(f"{d}: not a pconv bundle (no bundle.json; make one with `pconv android bundle`)")
    try:
        return json.loads(f.read_text())
    except ValueError as e:
        raise PconvRuntimeError(f"{f}: unreadable: {e}") from None


@dataclass
class BundleResult:
    """Outcome of running a bundle."""

    outputs: list[np.ndarray]
    rel_errors: list[float] | None  # vs reference outputs, when the bundle has them
    stdout: str
    passed: bool | None  # None when there are no references

    def summary(self, tolerance: float) -> str:
        lines = []
        for i, o in enumerate(self.outputs):
            s = f"output{i}: shape {tuple(o.shape)} {o.dtype}"
            if self.rel_errors is not None:
                s += f", rel err vs reference {self.rel_errors[i]:.3g} (tolerance {tolerance:g})"
            lines.append(s)
        if self.passed is not None:
            lines.append("PASS" if self.passed else "FAIL")
        return "\n".join(lines)


def compare_outputs(outputs: Sequence[np.ndarray], refs: Sequence[np.ndarray]) -> list[float]:
    """rel err = max|a-b| / max|b| per output (inf on shape mismatch)."""
    errs = []
    for a, b in zip(outputs, refs):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            errs.append(float("inf"))
            continue
        denom = np.abs(b).max() if b.size else 0.0
        diff = np.abs(a - b).max() if b.size else 0.0
        errs.append(float(diff / denom) if denom > 0 else float(diff))
    return errs


def _collect(d: Path, meta: dict, stdout: str, tolerance: float) -> BundleResult:
    outs = []
    for n in meta["outputs"]:
        p = d / n
        if not p.is_file():
            raise PconvRuntimeError(f"run produced no {n}:\n{_tail(stdout)}")
        outs.append(np.load(p, allow_pickle=False))
    refs = [np.load(d / n, allow_pickle=False) for n in meta.get("references", [])]
    if refs:
        errs = compare_outputs(outs, refs)
        return BundleResult(outs, errs, stdout, all(e <= tolerance for e in errs))
    return BundleResult(outs, None, stdout, None)


def _qemu() -> str:
    q = shutil.which(QEMU)
    if not q:
        raise PconvRuntimeError(
            f"{QEMU} not found: install Debian's qemu-user-static to run aarch64 bundles on this host"
        )
    return q


def _emulated_env(device: str | None) -> dict:
    env = dict(os.environ)
    env["PCONV_EXEC_PREFIX"] = _qemu()
    if device:
        env["PCONV_DEVICE"] = device
    return env


def run_emulated(
    bundle_dir: str | os.PathLike,
    device: str | None = None,
    timeout: float = 300,
    tolerance: float = 1e-4,
    extra_flags: Sequence[str] = (),
) -> BundleResult:
    """Runs the bundle's run.sh under qemu-aarch64-static on this host."""
    d = Path(bundle_dir)
    meta = load_bundle(d)
    env = _emulated_env(device)
    for n in meta["outputs"]:
        (d / n).unlink(missing_ok=True)
    r = _run(["sh", str(d / "run.sh"), *extra_flags], timeout, "emulated run", env=env)
    if r.returncode != 0:
        raise PconvRuntimeError(
            f"emulated run failed (exit {r.returncode}):\n{_tail(r.stderr + r.stdout)}"
        )
    return _collect(d, meta, r.stdout, tolerance)


def bench_emulated(
    bundle_dir: str | os.PathLike,
    device: str | None = None,
    threads: int | None = None,
    repeats: int = 5,
    timeout: float = 600,
) -> str:
    """Runs bench.sh under qemu (timings are of the emulator, not a phone)."""
    d = Path(bundle_dir)
    load_bundle(d)
    flags = _bench_flags(threads, repeats)
    r = _run(["sh", str(d / "bench.sh"), *flags], timeout, "emulated benchmark", env=_emulated_env(device))
    if r.returncode != 0:
        raise PconvRuntimeError(f"emulated benchmark failed (exit {r.returncode}):\n{_tail(r.stderr + r.stdout)}")
    return r.stdout


def _bench_flags(threads: int | None, repeats: int) -> list[str]:
    flags = [f"--benchmark_repetitions={repeats}", "--benchmark_report_aggregates_only=true"]
    if threads is not None:
        flags.append(f"--task_topology_group_count={threads}")
    return flags


# ---------------------------------------------------------------------------
# adb (real device)
# ---------------------------------------------------------------------------


def _adb(serial: str | None) -> list[str]:
    adb = shutil.which("adb")
    if not adb:
        raise PconvRuntimeError(
            "adb not found: install Android platform-tools (Debian: apt-get install adb) "
            "and connect a phone with USB debugging enabled"
        )
    cmd = [adb]
    if serial:
        cmd += ["-s", serial]
    return cmd


def _check_device(adb: list[str], timeout: float) -> None:
    r = _run(adb + ["get-state"], timeout, "adb get-state")
    state = (r.stdout or "").strip()
    if r.returncode != 0 or state != "device":
        lines = [l for l in ((r.stderr or "") + "\n" + (r.stdout or "")).splitlines() if l.strip() and not l.startswith("*")]
        msg = (lines[-1] if lines else "") or state or "no device"
        raise PconvRuntimeError(
            f"no Android device reachable through adb ({msg}); connect a phone with USB "
            "debugging enabled (check `adb devices`), or use --emulate to run under qemu"
        )


def _push(adb: list[str], d: Path, remote: str, timeout: float) -> None:
    r = _run(adb + ["shell", f"rm -rf {shlex.quote(remote)} && mkdir -p {shlex.quote(remote)}"], timeout, "adb shell mkdir")
    if r.returncode != 0:
        raise PconvRuntimeError(f"adb shell failed: {_tail(r.stderr or r.stdout)}")
    r = _run(adb + ["push", f"{d}/.", remote], timeout, "adb push")
    if r.returncode != 0:
        raise PconvRuntimeError(f"adb push failed: {_tail(r.stderr or r.stdout)}")


def run_adb(
    bundle_dir: str | os.PathLike,
    device: str | None = None,
    serial: str | None = None,
    remote_dir: str = REMOTE_DIR,
    timeout: float = 600,
    tolerance: float = 1e-4,
) -> BundleResult:
    """Pushes the bundle to the phone, runs run.sh there, pulls the outputs and
    compares them with the references (if any)."""
    d = Path(bundle_dir)
    meta = load_bundle(d)
    adb = _adb(serial)
    _check_device(adb, 30)
    _push(adb, d, remote_dir, timeout)
    env = f"PCONV_DEVICE={shlex.quote(device)} " if device else ""
    r = _run(adb + ["shell", f"cd {shlex.quote(remote_dir)} && {env}sh ./run.sh; echo PCONV_RC=$?"], timeout, "adb shell run.sh")
    out = (r.stdout or "") + (r.stderr or "")
    rc_line = [l for l in out.splitlines() if l.startswith("PCONV_RC=")]
    rc = int(rc_line[-1].split("=", 1)[1]) if rc_line else r.returncode
    if rc != 0:
        raise PconvRuntimeError(f"run on the device failed (exit {rc}):\n{_tail(out)}")
    for n in meta["outputs"]:
        (d / n).unlink(missing_ok=True)
        p = _run(adb + ["pull", f"{remote_dir}/{n}", str(d / n)], timeout, f"adb pull {n}")
        if p.returncode != 0:
            raise PconvRuntimeError(f"adb pull {n} failed: {_tail(p.stderr or p.stdout)}")
    return _collect(d, meta, out, tolerance)


def bench_adb(
    bundle_dir: str | os.PathLike,
    device: str | None = None,
    threads: int | None = None,
    repeats: int = 10,
    serial: str | None = None,
    remote_dir: str = REMOTE_DIR,
    timeout: float = 600,
) -> str:
    """Pushes the bundle and runs bench.sh on the phone; returns the benchmark text."""
    d = Path(bundle_dir)
    load_bundle(d)
    adb = _adb(serial)
    _check_device(adb, 30)
    _push(adb, d, remote_dir, timeout)
    env = f"PCONV_DEVICE={shlex.quote(device)} " if device else ""
    flags = " ".join(shlex.quote(f) for f in _bench_flags(threads, repeats))
    r = _run(adb + ["shell", f"cd {shlex.quote(remote_dir)} && {env}sh ./bench.sh {flags}; echo PCONV_RC=$?"], timeout, "adb shell bench.sh")
    out = (r.stdout or "") + (r.stderr or "")
    rc_line = [l for l in out.splitlines() if l.startswith("PCONV_RC=")]
    rc = int(rc_line[-1].split("=", 1)[1]) if rc_line else r.returncode
    if rc != 0:
        raise PconvRuntimeError(f"benchmark on the device failed (exit {rc}):\n{_tail(out)}")
    return "\n".join(l for l in out.splitlines() if not l.startswith("PCONV_RC="))
