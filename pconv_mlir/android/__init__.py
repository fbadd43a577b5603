"""Android / aarch64: self-contained bundles of a compiled module (:mod:`.bundler`) and running
them on a phone through adb or here under qemu (:mod:`.runner`). The CLI is ``pconv android``
(:mod:`pconv_mlir.cli.android`); docs/android.md says what runs where."""

from pconv_mlir.android.bundler import (
    IREE_RUNTIME_VERSION,
    REMOTE_DIR,
    bundle,
    cache_dir,
    fetch_glibc,
    fetch_runtime_tools,
    load_bundle,
)
from pconv_mlir.android.runner import (
    QEMU,
    BundleResult,
    bench_adb,
    bench_emulated,
    compare_outputs,
    run_adb,
    run_emulated,
)

__all__ = [
    "IREE_RUNTIME_VERSION",
    "REMOTE_DIR",
    "QEMU",
    "cache_dir",
    "fetch_runtime_tools",
    "fetch_glibc",
    "bundle",
    "load_bundle",
    "BundleResult",
    "compare_outputs",
    "run_emulated",
    "bench_emulated",
    "run_adb",
    "bench_adb",
]
