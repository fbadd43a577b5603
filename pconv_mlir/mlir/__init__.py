"""MLIR plumbing shared by the dialect, the passes, ``pconv-opt`` and the compiler driver.

``ir`` is the one module that imports the MLIR Python bindings; ``parsing`` reads MLIR text
safely, ``diagnostics`` collects and prints diagnostics, ``constants`` reads constant tensors,
``pass_infra`` and ``pipeline`` define and run pconv passes (the pconv ops themselves, with
their typed builders and accessors, are ``pconv_mlir.dialects.pconv``). Importing this package
loads no bindings: each module does, when imported.
"""
