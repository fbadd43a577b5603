"""The test lab: what tests, fuzzing and benchmarks use to exercise the compiler, not part of
compiling. :mod:`.harness` runs one lowered conv on its own (wrap, compile, run, reference),
:mod:`.sparse_gen` makes pattern-sparse test weights, :mod:`.fuzz` fuzzes ``pconv-opt``."""
