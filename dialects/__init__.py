"""Dialects defined by pconv-mlir (loaded into torch_mlir contexts)."""
