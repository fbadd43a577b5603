"""Android / aarch64: self-contained bundles of a compiled module (:mod:`.bundler`) and running
them on a phone through adb or here under qemu (:mod:`.runner`). The CLI is ``pconv android``
(:mod:`pconv_mlir.cli.android`); docs/android.md says what runs where."""

from pconv_mlir.android import bundler, runner
from pconv_mlir.android.bundler import *  # noqa: F403 - the package's API is its two modules' __all__
from pconv_mlir.android.runner import *  # noqa: F403

__all__ = [*bundler.__all__, *runner.__all__]
