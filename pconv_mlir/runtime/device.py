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

from pconv_mlir.errors import PconvInputError, PconvRuntimeError, first_line

__all__ = ["DEVICES", "MAX_THREADS", "available_devices", "vulkan_available", "get_device", "check_thread_count",
           "local_task_threads"]

#: Device names accepted by :func:`pconv_mlir.runtime.load_module`.
DEVICES = ("local-task", "local-sync", "vulkan")
#: Most local-task worker threads accepted: far above any phone's or this host's cores, low
#: enough that a typo (``--threads 100000``) is an error and not 100,000 threads.
MAX_THREADS = 256

_LOCK = threading.RLock()
_LOCAL_TASK_THREADS: int | None = None  # thread count the local-task driver got
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
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise PconvInputError(f"thread count must be in 1..{MAX_THREADS}, got {threads}")


def get_device(device: str, threads: int | None):
    """Returns a (process-cached) HAL device for ``device``."""
    global _LOCAL_TASK_THREADS
    import iree.runtime as rt

    if device not in DEVICES:
        raise PconvRuntimeError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if threads is not None and device != "local-task":
        raise PconvRuntimeError(f"--threads applies to the local-task device only, not {device!r}")
    check_thread_count(threads)
    with _LOCK:
        if device == "local-task":
            if _LOCAL_TASK_THREADS is None:
                if threads is not None:
                    rt.flags.parse_flags(f"--task_topology_group_count={threads}")
                # Create the (process-cached) driver now and count the worker
                # threads it starts (IREE's default: one per physical core).
                before = _thread_count()
                try:
                    rt.get_driver("local-task")
                except Exception as e:
                    raise PconvRuntimeError(f"cannot create the local-task driver: {first_line(e)}") from None
                started = _thread_count() - before
                _LOCAL_TASK_THREADS = threads if threads is not None else (started if started > 0 else 0)
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
