"""IREE HAL devices: which exist here, one cached device per name, the local-task thread count.

``local-task`` thread count: IREE creates the task executor (its worker threads) once per
process, when the ``local-task`` driver is first created, from the
``--task_topology_group_count`` flag. The first :func:`get_device` for ``local-task`` fixes
it; asking for a different count later in the same process raises
:class:`PconvRuntimeError` (use a new process, e.g. the ``pconv bench`` CLI).

No numpy here: the CLI reads :data:`DEVICES` while it builds its parser.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from pconv_mlir.errors import PconvRuntimeError, first_line
from pconv_mlir.runtime.topology import MAX_THREADS, check_affinity, check_threads, topology_flags

__all__ = ["DEVICES", "MAX_THREADS", "available_devices", "vulkan_available", "get_device", "check_thread_count",
           "local_task_threads"]

#: Device names accepted by :func:`pconv_mlir.runtime.load_module`.
DEVICES = ("local-task", "local-sync", "vulkan")

_LOCK = threading.RLock()
_LOCAL_TASK_THREADS: int | None = None  # thread count the local-task driver got
_LOCAL_TASK_CPUS: tuple[int, ...] | None = None  # the CPUs its workers are pinned to, if any
_DEVICES: dict[str, Any] = {}


def available_devices() -> list[str]:
    """Names from :data:`DEVICES` whose IREE driver is compiled into the runtime."""
    import iree.runtime as rt

    drivers = set(rt.query_available_drivers())
    return [d for d in DEVICES if d in drivers]


def vulkan_available() -> bool:
    """Whether a Vulkan device can be created (a driver such as Mesa lavapipe is installed)."""
    import iree.runtime as rt

    if "vulkan" not in available_devices():
        return False
    try:
        rt.get_driver("vulkan").create_default_device()
    except Exception:  # no ICD, or a driver that fails to initialise: both mean "no Vulkan here"
        return False
    return True


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # not Linux
        return 0


def local_task_threads() -> int | None:
    """Worker threads of this process's local-task driver: None before it exists, 0 when
    unknown (driver created outside pconv_mlir, or no /proc)."""
    return _LOCAL_TASK_THREADS


def check_thread_count(threads: int | None) -> None:
    """PconvInputError unless ``threads`` is None or in 1..MAX_THREADS."""
    check_threads(threads)


def get_device(device: str, threads: int | None, cpu_affinity=None):
    """Returns a (process-cached) HAL device for ``device``; ``cpu_affinity`` (CPU ids, e.g.
    ``[0, 1]`` or ``"0-1"``) pins local-task's workers, one per CPU
    (:mod:`pconv_mlir.runtime.topology`)."""
    global _LOCAL_TASK_THREADS, _LOCAL_TASK_CPUS
    import iree.runtime as rt

    if device not in DEVICES:
        raise PconvRuntimeError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if (threads is not None or cpu_affinity is not None) and device != "local-task":
        raise PconvRuntimeError(f"--threads and --cpu-affinity apply to the local-task device only, not {device!r}")
    cpus = check_affinity(cpu_affinity, threads)
    threads = len(cpus) if cpus else threads
    with _LOCK:
        if device == "local-task":
            if _LOCAL_TASK_THREADS is None:
                flags = topology_flags(threads, cpus)
                if flags:
                    rt.flags.parse_flags(*flags)
                # Create the (process-cached) driver now and count the worker
                # threads it starts (IREE's default: one per physical core).
                before = _thread_count()
                try:
                    rt.get_driver("local-task")
                except Exception as e:
                    raise PconvRuntimeError(f"cannot create the local-task driver: {first_line(e)}") from None
                started = _thread_count() - before
                _LOCAL_TASK_THREADS = threads if threads is not None else (started if started > 0 else 0)
                _LOCAL_TASK_CPUS = cpus
            elif cpus is not None and cpus != _LOCAL_TASK_CPUS:
                raise PconvRuntimeError(
                    f"the local-task driver of this process already runs with CPU affinity "
                    f"{','.join(map(str, _LOCAL_TASK_CPUS)) if _LOCAL_TASK_CPUS else 'none'}; IREE fixes it when the "
                    "driver is created, so another affinity needs a new process (e.g. `pconv bench --cpu-affinity`)")
            elif threads is not None and _LOCAL_TASK_THREADS and threads != _LOCAL_TASK_THREADS:
                raise PconvRuntimeError(
                    f"the local-task driver of this process already runs {_LOCAL_TASK_THREADS} "
                    f"worker thread(s); IREE fixes the count when the driver is created, so "
                    f"{threads} needs a new process (e.g. `pconv bench --threads {threads}`)"
                )
        if device in _DEVICES:
            return _DEVICES[device]
        try:
            drivers = set(rt.query_available_drivers())
        except Exception as e:  # pragma: no cover
            raise PconvRuntimeError(f"cannot query IREE drivers: {first_line(e)}") from None
        if device not in drivers:
            raise PconvRuntimeError(
                f"IREE runtime has no {device!r} driver (available: {', '.join(sorted(drivers))})"
            )
        try:
            dev = rt.get_driver(device).create_default_device()
        except Exception as e:
            if device == "vulkan":
                raise PconvRuntimeError(
                    "no usable Vulkan device: "
                    f"{first_line(e)}. Install a Vulkan driver (e.g. Debian's "
                    "mesa-vulkan-drivers for the lavapipe CPU driver) or set "
                    "VK_ICD_FILENAMES to a driver's ICD json."
                ) from None
            raise PconvRuntimeError(f"cannot create {device} device: {first_line(e)}") from None
        _DEVICES[device] = dev
        return dev
