"""What every peer runtime provides, and the timing loop they share.

A peer turns a PyTorch model into its own artifact once (``convert(model, x, workdir)``) and
gives back a :class:`Runner`: ``run(x, threads)`` returns the output as numpy (checked against
PyTorch before anything is timed) and ``time_ms(x, threads, min_time)`` one timing sample,
the median wall time of one inference over at least ``min_time`` seconds after a warm-up.

Peers that cannot change their thread count inside one process (TVM reads ``TVM_NUM_THREADS``
when its pool starts; torch.compile bakes the count into its kernels) run in a worker process
per thread count (:class:`SubprocessRunner`, ``python -m pconv_mlir.peers._worker``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

INSTALL_HINT = "pip install -e '.[bench]' (or make bench-peers)"


class PeerUnavailable(RuntimeError):
    """The peer's package is not installed or does not work here; the message says why."""


def dist_version(*names: str) -> str | None:
    """Installed version of the first distribution in ``names`` that is present."""
    for n in names:
        try:
            return importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def time_loop(fn: Callable[[np.ndarray], object], x: np.ndarray, min_time: float = 0.2,
              min_iters: int = 3, max_iters: int = 10_000) -> float:
    """One warm-up call, then calls until ``min_time`` s and ``min_iters`` calls have passed
    (one call is enough when a single call takes longer than ``min_time``); median ms."""
    fn(x)
    times = []
    start = time.perf_counter()
    while len(times) < max_iters:
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        if elapsed >= min_time and (len(times) >= min_iters or elapsed >= 2 * min_time):
            break
    return float(np.median(times) * 1e3)


class Runner:
    """A converted model. Subclasses implement ``_fn(threads)``: a callable x -> output."""

    def __init__(self, artifact: str | None = None):
        self.artifact = artifact
        self.info: dict = {}  # anything worth reporting (sizes, compile details)

    def _fn(self, threads: int) -> Callable[[np.ndarray], object]:
        raise NotImplementedError

    def run(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        return np.asarray(self._fn(threads)(x))

    def time_ms(self, x: np.ndarray, threads: int, min_time: float = 0.2) -> float:
        return time_loop(self._fn(threads), x, min_time)

    def close(self) -> None:
        pass


class Peer:
    """One runtime. ``name`` is the column in the tables; ``route`` how the model gets there;
    ``threads_how`` how the thread count is set."""

    name = "?"
    route = "?"
    threads_how = "?"
    packages: tuple[str, ...] = ()

    def unavailable(self) -> str | None:
        """None when the peer can run here, else the reason (shown as the skip reason)."""
        return None

    def version(self) -> str:
        return ", ".join(f"{p} {dist_version(p)}" for p in self.packages if dist_version(p)) or "?"

    def convert(self, model, x: np.ndarray, workdir: str) -> Runner:
        raise NotImplementedError


def import_reason(*modules: str) -> str | None:
    """None when all ``modules`` import, else 'X not installed / fails to import: ...'."""
    import importlib
    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError as e:
            return f"{m} not installed ({type(e).__name__}: {str(e)[:120]}); {INSTALL_HINT}"
        except Exception as e:  # noqa: BLE001 - a broken install is a reason too
            return f"{m} fails to import ({type(e).__name__}: {str(e)[:160]})"
    return None


def module_reason(*modules: str) -> str | None:
    """Like :func:`import_reason` but only looks the modules up (no import): for heavy
    packages that are imported in a subprocess anyway."""
    import importlib.util
    for m in modules:
        try:
            found = importlib.util.find_spec(m) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"{m} not installed; {INSTALL_HINT}"
    return None


def subprocess_import_reason(*modules: str) -> str | None:
    """Imports ``modules`` in a fresh interpreter (keeps this process clean); None or why not."""
    reason = module_reason(*modules)
    if reason:
        return reason
    r = subprocess.run([sys.executable, "-c", "import " + ", ".join(modules)], capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return f"{' / '.join(modules)} fails to import: {last[:200]}"
    return None


def python_module(module: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m pconv_mlir.peers.<module> args`` with this checkout on PYTHONPATH."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", f"pconv_mlir.peers.{module}", *args], capture_output=True,
                          text=True, env=env)


class SubprocessRunner(Runner):
    """Runs ``pconv_mlir.peers.<module>.load(artifact, threads)`` in one worker process per
    thread count (started on first use, kept for all rounds), with ``env(threads)`` added to
    the environment."""

    def __init__(self, module: str, artifact: str, env: Callable[[int], dict] | None = None,
                 start_timeout: float = 1800):
        super().__init__(artifact)
        self.module = module
        self.env = env or (lambda t: {})
        self.start_timeout = start_timeout
        self._procs: dict[int, subprocess.Popen] = {}
        self._tmp = tempfile.mkdtemp(prefix="pconv-peer-")

    def _proc(self, threads: int) -> subprocess.Popen:
        p = self._procs.get(threads)
        if p is not None and p.poll() is None:
            return p
        env = dict(os.environ, **self.env(threads))
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        p = subprocess.Popen([sys.executable, "-m", "pconv_mlir.peers._worker", self.module, self.artifact,
                              str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL if not os.environ.get("PCONV_PEERS_DEBUG") else None,
                             env=env, text=True)
        self._procs[threads] = p
        self._ask(p, None)  # waits for {"ready": true}
        return p

    def _ask(self, p: subprocess.Popen, req: dict | None) -> dict:
        if req is not None:
            p.stdin.write(json.dumps(req) + "\n")
            p.stdin.flush()
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.module} worker exited (rc {p.poll()}); rerun with PCONV_PEERS_DEBUG=1")
        resp = json.loads(line)
        if "error" in resp:
            raise RuntimeError(f"{self.module} worker: {resp['error']}")
        return resp

    def run(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        xp, yp = os.path.join(self._tmp, "x.npy"), os.path.join(self._tmp, "y.npy")
        np.save(xp, x)
        self._ask(self._proc(threads), {"op": "run", "x": xp, "out": yp})
        return np.load(yp)

    def time_ms(self, x: np.ndarray, threads: int, min_time: float = 0.2) -> float:
        xp = os.path.join(self._tmp, "x.npy")
        np.save(xp, x)
        return float(self._ask(self._proc(threads), {"op": "time", "x": xp, "min_time": min_time})["ms"])

    def close(self) -> None:
        for p in self._procs.values():
            if p.poll() is None:
                try:
                    p.stdin.close()
                    p.wait(timeout=30)
                except Exception:  # noqa: BLE001
                    p.kill()
        self._procs.clear()
