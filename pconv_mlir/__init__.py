"""pconv-mlir: compile PCONV pattern-pruned CNNs with MLIR and IREE."""

__version__ = "0.1.0"
__all__ = ["compile", "load", "CompiledModel", "__version__"]


def __getattr__(name):
    # Lazy: `import pconv_mlir.pruning` (or the CLI's --help) should not load the MLIR stack.
    if name in ("compile", "load", "CompiledModel"):
        from pconv_mlir import compiler

        return getattr(compiler, name)
    raise AttributeError(f"module 'pconv_mlir' has no attribute {name!r}")
