"""pconv-mlir: compile PCONV pattern-pruned CNNs with MLIR and IREE."""

__version__ = "0.1.0"
