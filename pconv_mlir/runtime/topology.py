"""Thread count and CPU affinity of IREE's ``local-task`` executor, as checked options.

IREE takes both as flags (``iree-run-module``, ``iree-benchmark-module`` and the Python runtime's
``iree.runtime.flags.parse_flags`` alike): ``--task_topology_group_count=N`` runs N unpinned
workers; ``--task_topology_cpu_ids=0,2`` runs one worker pinned to each listed logical CPU and
ignores the group count. So with an affinity the thread count is the number of CPUs listed: a
``threads`` that disagrees is an error, not silently ignored.

CPU ids are checked against the CPUs this process may run on when the module runs here
(``local=True``); for a phone (the Android bundle) they can only be checked for form.
No numpy or IREE here: the CLI calls these while it checks its arguments.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from pconv_mlir.errors import PconvInputError

__all__ = ["MAX_THREADS", "check_threads", "parse_cpu_ids", "check_affinity", "topology_flags"]

#: Most workers accepted: far above any phone's or this host's cores, low enough that a typo
#: (``--threads 100000``) is an error and not 100,000 threads.
MAX_THREADS = 256


def check_threads(threads: int | None) -> None:
    """PconvInputError unless ``threads`` is None or an int in 1..MAX_THREADS."""
    if threads is None:
        return
    if not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= MAX_THREADS:
        raise PconvInputError(f"thread count must be an integer in 1..{MAX_THREADS}, got {threads!r}")


def parse_cpu_ids(spec: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """``"0,2-3"`` (or ``[0, 2, 3]``) -> ``(0, 2, 3)``; None stays None. PconvInputError on
    anything else: empty lists, negative or repeated ids, malformed ranges."""
    if spec is None:
        return None
    ids: list[int] = []
    if isinstance(spec, str):
        for part in spec.split(","):
            lo, sep, hi = part.strip().partition("-")
            try:
                first, last = int(lo), int(hi) if sep else int(lo)
            except ValueError:
                raise PconvInputError(f"CPU affinity must be CPU ids like 0,2-3, got {spec!r}") from None
            if last < first:
                raise PconvInputError(f"CPU affinity: empty range {part.strip()!r} in {spec!r}")
            ids.extend(range(first, last + 1))
    else:
        try:
            items = list(spec)
        except TypeError:
            raise PconvInputError(f"CPU affinity must be a list of CPU ids, got {spec!r}") from None
        for i in items:
            if not isinstance(i, int) or isinstance(i, bool):
                raise PconvInputError(f"CPU affinity must be integer CPU ids, got {spec!r}")
            ids.append(i)
    if not ids:
        raise PconvInputError("CPU affinity lists no CPU")
    if any(i < 0 or i >= MAX_THREADS for i in ids):
        raise PconvInputError(f"CPU ids must be in 0..{MAX_THREADS - 1}, got {spec!r}")
    if len(set(ids)) != len(ids):
        raise PconvInputError(f"CPU affinity lists a CPU twice: {spec!r}")
    return tuple(ids)


def _format(ids) -> str:
    return ",".join(map(str, sorted(ids)))


def check_affinity(cpu_ids: str | Sequence[int] | None, threads: int | None,
                   local: bool = True) -> tuple[int, ...] | None:
    """The parsed ``cpu_ids`` after checking them with ``threads`` (see the module docstring);
    ``local``: the ids must name CPUs this process may run on."""
    check_threads(threads)
    ids = parse_cpu_ids(cpu_ids)
    if ids is None:
        return None
    if threads is not None and threads != len(ids):
        raise PconvInputError(f"{threads} thread(s) but {len(ids)} CPU(s) in the affinity {_format(ids)}: IREE "
                              "runs one worker per listed CPU (give one of the two, or make them agree)")
    if local:
        try:
            allowed = os.sched_getaffinity(0)
        except (AttributeError, OSError):  # not Linux: the CPU count is all we know
            allowed = set(range(os.cpu_count() or 1))
        missing = [i for i in ids if i not in allowed]
        if missing:
            raise PconvInputError(f"CPU(s) {_format(missing)} not available to this process "
                                  f"(available: {_format(allowed)})")
    return ids


def topology_flags(threads: int | None, cpu_ids: Sequence[int] | None) -> list[str]:
    """IREE flags for a checked (``threads``, ``cpu_ids``) pair: none for IREE's default."""
    if cpu_ids:
        return [f"--task_topology_cpu_ids={','.join(map(str, cpu_ids))}"]
    if threads is not None:
        return [f"--task_topology_group_count={threads}"]
    return []
