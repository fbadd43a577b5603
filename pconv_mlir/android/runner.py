"""Running a bundle (:mod:`pconv_mlir.android.bundler`): on a phone through adb, or on this
host under ``qemu-aarch64-static``.

Both push or use the same ``run.sh``/``bench.sh``; the emulated run sets
``PCONV_EXEC_PREFIX=qemu-aarch64-static``. Outputs are compared with the bundle's reference
outputs when it has them. Every step has a timeout; failures are one-line
:class:`PconvRuntimeError`.
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pconv_mlir.android.bundler import (
    REMOTE_DIR,
    bundle_scripts,
    check_remote_dir,
    load_bundle,
    run_tool,
    tail,
)
from pconv_mlir.errors import PconvInputError, PconvRuntimeError
from pconv_mlir.numerics import TOLERANCE, rel_err
from pconv_mlir.runtime.device import DEVICES
from pconv_mlir.runtime.topology import check_affinity, topology_flags

__all__ = [
    "QEMU",
    "BundleResult",
    "compare_outputs",
    "run_emulated",
    "bench_emulated",
    "run_adb",
    "bench_adb",
]

QEMU = "qemu-aarch64-static"


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
    """:func:`~pconv_mlir.numerics.rel_err` of each output against its reference."""
    return [rel_err(a, b) for a, b in zip(outputs, refs)]


def _load_npy(p: Path) -> np.ndarray:
    try:
        return np.load(p, allow_pickle=False)
    except Exception as e:  # OSError, ValueError (not .npy, pickled objects), EOFError
        raise PconvRuntimeError(f"cannot read {p}: {e}") from None


def _checked_bundle(bundle_dir: str | os.PathLike) -> tuple[Path, dict]:
    """(folder, metadata) of a bundle whose bundle.json passes :func:`load_bundle` and whose
    run.sh and bench.sh are exactly what pconv writes for that bundle.json: the scripts run here
    (under qemu) or on the phone, so an edited one is refused rather than run."""
    d = Path(bundle_dir)
    meta = load_bundle(d)
    for name, text in bundle_scripts(meta).items():
        try:
            found = (d / name).read_text()
        except (OSError, UnicodeDecodeError):
            found = None
        if found != text:
            raise PconvInputError(f"{d / name}: not the script pconv writes for this bundle.json (edited, "
                                  "damaged or missing); re-create the bundle with `pconv android bundle`")
    return d, meta


def _check_run_options(device: str | None, timeout: float, tolerance: float = 0.0, threads: int | None = None,
                       repeats: int = 1, cpu_affinity=None) -> list[str]:
    """The options of a run or benchmark, before the bundle is looked at; returns the task
    topology flags for ``threads`` / ``cpu_affinity`` (the phone's CPU ids: checked for form only)."""
    if device is not None and device not in DEVICES:
        raise PconvInputError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise PconvInputError(f"timeout must be a finite number of seconds > 0, got {timeout}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise PconvInputError(f"tolerance must be a finite number >= 0, got {tolerance}")
    cpus = check_affinity(cpu_affinity, threads, local=False)
    if repeats < 1:
        raise PconvInputError(f"repeats must be >= 1, got {repeats}")
    if (threads is not None or cpus) and device not in (None, "local-task"):
        raise PconvInputError(f"threads and CPU affinity apply to the local-task device only, not {device!r}")
    return topology_flags(threads, cpus)


def _collect(d: Path, meta: dict, stdout: str, tolerance: float) -> BundleResult:
    outs = []
    for n in meta["outputs"]:
        p = d / n
        if not p.is_file():
            raise PconvRuntimeError(f"run produced no {n}:\n{tail(stdout)}")
        outs.append(_load_npy(p))
    refs = [_load_npy(d / n) for n in meta["references"]]
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
    tolerance: float = TOLERANCE,
    extra_flags: Sequence[str] = (),
    threads: int | None = None,
    cpu_affinity=None,
) -> BundleResult:
    """Runs the bundle's run.sh under qemu-aarch64-static on this host."""
    extra_flags = [*_check_run_options(device, timeout, tolerance, threads, cpu_affinity=cpu_affinity),
                   *extra_flags]
    d, meta = _checked_bundle(bundle_dir)
    _check_emulable(meta, device)
    env = _emulated_env(device)
    for n in meta["outputs"]:  # plain names (load_bundle), so this stays inside the bundle
        try:
            (d / n).unlink(missing_ok=True)
        except OSError as e:
            raise PconvRuntimeError(f"cannot remove the old {d / n}: {e.strerror or e}") from None
    r = run_tool(["sh", str(d / "run.sh"), *extra_flags], timeout, "emulated run", env=env)
    if r.returncode != 0:
        raise PconvRuntimeError(
            f"emulated run failed (exit {r.returncode}):\n{tail(r.stderr + r.stdout)}"
        )
    return _collect(d, meta, r.stdout, tolerance)


def bench_emulated(
    bundle_dir: str | os.PathLike,
    device: str | None = None,
    threads: int | None = None,
    repeats: int = 5,
    timeout: float = 600,
    cpu_affinity=None,
) -> str:
    """Runs bench.sh under qemu (timings are of the emulator, not a phone)."""
    topology = _check_run_options(device, timeout, threads=threads, repeats=repeats, cpu_affinity=cpu_affinity)
    d, meta = _checked_bundle(bundle_dir)
    _check_emulable(meta, device)
    flags = _bench_flags(topology, repeats)
    r = run_tool(["sh", str(d / "bench.sh"), *flags], timeout, "emulated benchmark", env=_emulated_env(device))
    if r.returncode != 0:
        raise PconvRuntimeError(f"emulated benchmark failed (exit {r.returncode}):\n{tail(r.stderr + r.stdout)}")
    return r.stdout


def _check_emulable(meta: dict, device: str | None) -> None:
    """What qemu-user on this host cannot run, said before anything runs."""
    if meta.get("tools") == "android":
        raise PconvRuntimeError("this bundle holds Android (bionic) tools, which need a phone's /system/bin/linker64: "
                                "run it on a phone (without --emulate)")
    if (device or meta["device"]) == "vulkan":
        raise PconvRuntimeError("a Vulkan bundle cannot run under qemu here: there is no aarch64 Vulkan driver. Time "
                                "Vulkan modules on this host with benchmarks/vulkan_bench.py (lavapipe), or on a "
                                "phone with a bundle made with --android-tools (docs/android.md)")


def _check_phone_vulkan(meta: dict, device: str | None) -> None:
    """A Vulkan run on a phone needs tools that can load Android's libvulkan.so."""
    if (device or meta["device"]) == "vulkan" and meta.get("tools") != "android":
        raise PconvRuntimeError(
            "this Vulkan bundle holds the glibc iree-run-module/iree-benchmark-module, which cannot load "
            "Android's libvulkan.so (a bionic library). Missing: IREE's runtime tools built with the Android NDK "
            "(docs/android.md, 'Vulkan on a phone'); re-bundle with `pconv android bundle ... --android-tools DIR`")


def _bench_flags(topology: list[str], repeats: int) -> list[str]:
    return [f"--benchmark_repetitions={repeats}", "--benchmark_report_aggregates_only=true", *topology]


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
    r = run_tool(adb + ["get-state"], timeout, "adb get-state")
    state = (r.stdout or "").strip()
    if r.returncode != 0 or state != "device":
        text = (r.stderr or "") + "\n" + (r.stdout or "")
        lines = [l for l in text.splitlines() if l.strip() and not l.startswith("*")]
        msg = (lines[-1] if lines else "") or state or "no device"
        raise PconvRuntimeError(
            f"no Android device reachable through adb ({msg}); connect a phone with USB "
            "debugging enabled (check `adb devices`), or use --emulate to run under qemu"
        )


def _push(adb: list[str], d: Path, remote: str, timeout: float) -> None:
    r = run_tool(adb + ["shell", f"rm -rf {shlex.quote(remote)} && mkdir -p {shlex.quote(remote)}"], timeout,
                 "adb shell mkdir")
    if r.returncode != 0:
        raise PconvRuntimeError(f"adb shell failed: {tail(r.stderr or r.stdout)}")
    r = run_tool(adb + ["push", f"{d}/.", remote], timeout, "adb push")
    if r.returncode != 0:
        raise PconvRuntimeError(f"adb push failed: {tail(r.stderr or r.stdout)}")


def _pushed_bundle(bundle_dir: str | os.PathLike, serial: str | None, remote_dir: str,
                   timeout: float, device: str | None = None) -> tuple[Path, dict, list[str]]:
    """Checks the bundle and the phone, pushes the bundle; returns (folder, metadata, adb command)."""
    check_remote_dir(remote_dir)  # it is deleted (rm -rf) on the phone before the push
    d, meta = _checked_bundle(bundle_dir)
    _check_phone_vulkan(meta, device)
    adb = _adb(serial)
    _check_device(adb, 30)
    _push(adb, d, remote_dir, timeout)
    return d, meta, adb


def _adb_script(adb: list[str], remote_dir: str, device: str | None, script: str, flags: str, timeout: float,
                what: str) -> str:
    """Runs ``sh ./script flags`` in the pushed bundle on the phone; returns its output. adb
    shell's own exit code is not the script's on old adb versions, so the script echoes it."""
    env = f"PCONV_DEVICE={shlex.quote(device)} " if device else ""
    r = run_tool(adb + ["shell", f"cd {shlex.quote(remote_dir)} && {env}sh ./{script} {flags}; echo PCONV_RC=$?"],
                 timeout, f"adb shell {script}")
    out = (r.stdout or "") + (r.stderr or "")
    rc_line = [l for l in out.splitlines() if l.startswith("PCONV_RC=")]
    rc = int(rc_line[-1].split("=", 1)[1]) if rc_line else r.returncode
    if rc != 0:
        raise PconvRuntimeError(f"{what} on the device failed (exit {rc}):\n{tail(out)}")
    return out


def run_adb(
    bundle_dir: str | os.PathLike,
    device: str | None = None,
    serial: str | None = None,
    remote_dir: str = REMOTE_DIR,
    timeout: float = 600,
    tolerance: float = TOLERANCE,
    threads: int | None = None,
    cpu_affinity=None,
) -> BundleResult:
    """Pushes the bundle to the phone, runs run.sh there, pulls the outputs and
    compares them with the references (if any)."""
    topology = _check_run_options(device, timeout, tolerance, threads, cpu_affinity=cpu_affinity)
    d, meta, adb = _pushed_bundle(bundle_dir, serial, remote_dir, timeout, device)
    out = _adb_script(adb, remote_dir, device, "run.sh", " ".join(shlex.quote(f) for f in topology), timeout, "run")
    for n in meta["outputs"]:
        _pull(adb, f"{remote_dir}/{n}", d / n, timeout)
    return _collect(d, meta, out, tolerance)


def _pull(adb: list[str], remote: str, local: Path, timeout: float) -> None:
    """adb pull into a temporary file next to ``local``, then rename it over ``local``: a failed
    pull leaves nothing half-written, and a symlink at ``local`` is replaced, not followed."""
    fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=f".{local.name}.", suffix=".tmp")
    os.close(fd)
    try:
        p = run_tool(adb + ["pull", remote, tmp], timeout, f"adb pull {local.name}")
        if p.returncode != 0:
            raise PconvRuntimeError(f"adb pull {local.name} failed: {tail(p.stderr or p.stdout)}")
        os.replace(tmp, local)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def bench_adb(
    bundle_dir: str | os.PathLike,
    device: str | None = None,
    threads: int | None = None,
    repeats: int = 10,
    serial: str | None = None,
    remote_dir: str = REMOTE_DIR,
    timeout: float = 600,
    cpu_affinity=None,
) -> str:
    """Pushes the bundle and runs bench.sh on the phone; returns the benchmark text."""
    topology = _check_run_options(device, timeout, threads=threads, repeats=repeats, cpu_affinity=cpu_affinity)
    _, _, adb = _pushed_bundle(bundle_dir, serial, remote_dir, timeout, device)
    flags = " ".join(shlex.quote(f) for f in _bench_flags(topology, repeats))
    out = _adb_script(adb, remote_dir, device, "bench.sh", flags, timeout, "benchmark")
    return "\n".join(l for l in out.splitlines() if not l.startswith("PCONV_RC="))
