"""Running a bundle (:mod:`pconv_mlir.android.bundler`): on a phone through adb, or on this
host under ``qemu-aarch64-static``.

Both push or use the same ``run.sh``/``bench.sh``; the emulated run sets
``PCONV_EXEC_PREFIX=qemu-aarch64-static``. Outputs are compared with the bundle's reference
outputs when it has them. Every step has a timeout; failures are one-line
:class:`PconvRuntimeError`.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pconv_mlir.android.bundler import REMOTE_DIR, load_bundle, run_tool, tail
from pconv_mlir.errors import PconvRuntimeError
from pconv_mlir.numerics import TOLERANCE, rel_err

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


def _collect(d: Path, meta: dict, stdout: str, tolerance: float) -> BundleResult:
    outs = []
    for n in meta["outputs"]:
        p = d / n
        if not p.is_file():
            raise PconvRuntimeError(f"run produced no {n}:\n{tail(stdout)}")
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
    tolerance: float = TOLERANCE,
    extra_flags: Sequence[str] = (),
) -> BundleResult:
    """Runs the bundle's run.sh under qemu-aarch64-static on this host."""
    d = Path(bundle_dir)
    meta = load_bundle(d)
    env = _emulated_env(device)
    for n in meta["outputs"]:
        (d / n).unlink(missing_ok=True)
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
) -> str:
    """Runs bench.sh under qemu (timings are of the emulator, not a phone)."""
    d = Path(bundle_dir)
    load_bundle(d)
    flags = _bench_flags(threads, repeats)
    r = run_tool(["sh", str(d / "bench.sh"), *flags], timeout, "emulated benchmark", env=_emulated_env(device))
    if r.returncode != 0:
        raise PconvRuntimeError(f"emulated benchmark failed (exit {r.returncode}):\n{tail(r.stderr + r.stdout)}")
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
                   timeout: float) -> tuple[Path, dict, list[str]]:
    """Checks the bundle and the phone, pushes the bundle; returns (folder, metadata, adb command)."""
    d = Path(bundle_dir)
    meta = load_bundle(d)
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
) -> BundleResult:
    """Pushes the bundle to the phone, runs run.sh there, pulls the outputs and
    compares them with the references (if any)."""
    d, meta, adb = _pushed_bundle(bundle_dir, serial, remote_dir, timeout)
    out = _adb_script(adb, remote_dir, device, "run.sh", "", timeout, "run")
    for n in meta["outputs"]:
        (d / n).unlink(missing_ok=True)
        p = run_tool(adb + ["pull", f"{remote_dir}/{n}", str(d / n)], timeout, f"adb pull {n}")
        if p.returncode != 0:
            raise PconvRuntimeError(f"adb pull {n} failed: {tail(p.stderr or p.stdout)}")
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
    _, _, adb = _pushed_bundle(bundle_dir, serial, remote_dir, timeout)
    flags = " ".join(shlex.quote(f) for f in _bench_flags(threads, repeats))
    out = _adb_script(adb, remote_dir, device, "bench.sh", flags, timeout, "benchmark")
    return "\n".join(l for l in out.splitlines() if not l.startswith("PCONV_RC="))
