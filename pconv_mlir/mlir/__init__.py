"""MLIR plumbing shared by the dialect, the passes, ``pconv-opt`` and the compiler driver.

``ir`` is the one module that imports the MLIR Python bindings; ``parsing`` reads MLIR text
safely, ``diagnostics`` collects and prints diagnostics, ``constants`` reads constant tensors,
``pass_infra`` and ``pipeline`` define and run pconv passes, ``pconv_ops`` reads and builds
pconv op attributes. Importing this package loads no bindings: each module does, when imported.
"""
