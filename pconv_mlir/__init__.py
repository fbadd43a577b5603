"""pconv-mlir: compile PCONV pattern-pruned CNNs with MLIR and IREE."""

__version__ = "0.1.0"

from pconv_mlir.compiler import CompiledModel, compile  # noqa: E402,A001

__all__ = ["compile", "CompiledModel", "__version__"]
