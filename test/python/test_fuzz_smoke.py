"""pconv-opt fuzz smoke run (the long run is ``make fuzz``): 200 mutated lit-corpus inputs,
each exit 0 or exit 1 with a diagnostic; no traceback, internal error, crash or hang.
Plus regressions for inputs the fuzzer found."""

from __future__ import annotations

import random

import pytest

from pconv_mlir.testing.fuzz import (
    FAILURE_KINDS,
    MUTATOR_NAMES,
    classify,
    fuzz,
    generate_cases,
    load_corpus,
    mutate,
    run_in_process,
)


def test_corpus_and_mutators():
    corpus = load_corpus()
    assert len(corpus) > 20 and all(s.pipelines for s in corpus)
    rng = random.Random(0)
    seen = set()
    for _ in range(300):
        data, applied = mutate(corpus[0].text, rng)
        assert isinstance(data, bytes)
        seen.update(applied)
    assert seen == set(MUTATOR_NAMES)
    a = [(c.data, c.args) for c in generate_cases(20, seed=3)]
    assert a == [(c.data, c.args) for c in generate_cases(20, seed=3)]  # reproducible from the seed


def test_fuzz_smoke_200():
    summary = fuzz(200, seed=12345, timeout=60)
    assert summary.count == 200
    details = [(f["kind"], f["seed"], f["mutators"], f["args"], f["stderr"][-300:]) for f in summary.failures]
    assert summary.passed, details
    assert summary.outcomes.get("diagnostic", 0) > 100  # the mutations do reach the error paths


@pytest.mark.parametrize("line, message, where", [
    # A misspelt required attribute: the verifier listed the op's attributes with
    # `a.name` on the attribute *names* (str) and raised AttributeError (internal error).
    ('%y = "pconv.permute_channels"(%x) {permutatio = array<i64: 1, 0>} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>',
     "is missing a required attribute (has: permutatio)", ":2:"),
    # Upstream MLIR segfaults on these (linalg BroadcastOp/TransposeOp::parse): the parsing
    # child crashes instead, and the input is refused where the crash first happens.
    ("%y = linalg.broadcast ins(%b : tensor<2xf32>) outs(%e : tensor<1x2x4x4xf32>) dimensions = ,0[ 2, 3]",
     "MLIR crashed (SIGSEGV)", ":2:"),
    ("%y = linalg.broadcast ins(%b : tensor<2xf32>) outs(%e : tensor<1x2x4x4xf32>) "
     "dimensions = [0, 99999999999999999999, 3]",
     "MLIR crashed (SIGSEGV)", ":2:"),
    ("%y = linalg.transpose ins(%t : tensor<2x2xf32>) outs(%u : tensor<2x2xf32>) permutation = [1 0]",
     "MLIR crashed (SIGSEGV)", ":2:"),
    # ... and a tensor.pad amount of -2^63, the "dynamic" marker (10,000-input fuzz run, input 9731).
    ("%c = arith.constant 0.0 : f32\n"
     "  %p = tensor.pad %x low[-9223372036854775808, 0, 1, 1] high[0, 0, 1, 1] {\n"
     "  ^bb0(%i: index, %j: index, %k: index, %l: index):\n    tensor.yield %c : f32\n"
     "  } : tensor<1x2x4x4xf32> to tensor<1x2x6x6xf32>",
     "static_low holds -9223372036854775808 (the 'dynamic' marker)", ":3:"),
])
def test_regressions_found_by_fuzzing(line, message, where):
    text = ("func.func @f(%x: tensor<1x2x4x4xf32>, %b: tensor<2xf32>, %e: tensor<1x2x4x4xf32>, %t: tensor<2x2xf32>,"
            " %u: tensor<2x2xf32>) {\n  " + line + "\n  return\n}\n")
    result = run_in_process(text.encode(), [])
    assert classify(result) == "diagnostic", result
    assert message in result["stderr"] and where in result["stderr"], result["stderr"]


def test_truncated_resource_blob_at_end_of_input():
    # The file ends inside the blob's string literal: the MLIR lexer read past the buffer
    # and segfaulted (5 of 10,000 fuzz inputs) until parsing appended a newline.
    text = ('func.func @f() -> tensor<2xf32> {\n  %c = arith.constant dense_resource<w> : tensor<2xf32>\n'
            '  return %c : tensor<2xf32>\n}\n{-#\n  dialect_resources: {\n    builtin: {\n      w: "0x0400000000')
    result = run_in_process(text.encode(), ["-p", "canonicalize"])
    assert classify(result) == "diagnostic", result
    assert "expected hex string blob for key 'w'" in result["stderr"], result["stderr"]


def test_well_formed_broadcast_is_not_rejected():
    text = ("func.func @f(%b: tensor<2xf32>, %e: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {\n"
            "  %y = linalg.broadcast ins(%b : tensor<2xf32>) outs(%e : tensor<1x2x4x4xf32>) dimensions = [0, 2, 3]\n"
            "  return %y : tensor<1x2x4x4xf32>\n}\n")
    result = run_in_process(text.encode(), ["-p", "canonicalize"])
    assert result["rc"] == 0 and classify(result) == "ok", result


def test_classify():
    assert classify({"rc": 0, "stderr": "", "traceback": None}) == "ok"
    assert classify({"rc": 1, "stderr": "f:1:2: error: x", "traceback": None}) == "diagnostic"
    assert classify({"rc": 1, "stderr": "", "traceback": None}) == "no-diagnostic"
    assert classify({"rc": 1, "stderr": "pconv-opt: internal error: KeyError", "traceback": None}) == "internal-error"
    assert classify({"rc": None, "stderr": "", "traceback": "Traceback ..."}) == "traceback"
    assert classify({"rc": 2, "stderr": "usage", "traceback": None}) == "bad-exit-code"
    assert set(FAILURE_KINDS) >= {"crash", "hang"}
