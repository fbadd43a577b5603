"""Bad MLIR and bad pipelines for ``pconv-opt`` and ``pconv compile`` (issue 18 items 2, 3, 5, 6;
issue 17 item 4).

Inputs that crash upstream MLIR's parser, verifier or printer are parsed in a child process
first (:mod:`pconv_mlir.mlir.parsing`): each must end in one located error and exit 1, never a
signal; valid MLIR that a text guard used to refuse must pass. Then ``pconv-opt``'s own edges
(options, pipelines, output files, standard streams, Ctrl-C) and the compile pipeline it shares
with ``pconv_mlir.compile``, whose failing pass leaves a reproducer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pconv_mlir.errors import PconvCompileError, PconvInputError
from pconv_mlir.mlir import parsing
from pconv_mlir.tools import pconv_opt

BIN = Path(sys.executable).parent
WEIGHTS = ("dense<[[[[0.0, 4.0, 0.0], [5.0, 7.0, 8.0], [0.0, 0.0, 0.0]], [[1.0, 2.0, 0.0], [0.0, 7.0, 0.0], "
           "[0.0, 8.0, 0.0]]]]> : tensor<1x2x3x3xf32>")


def _opt(argv, capsys) -> tuple[int, str, str]:
    rc = pconv_opt.main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" not in captured.err, captured.err
    return rc, captured.out, captured.err


BROADCAST = """func.func @f(%x: tensor<4xf32>, %init: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %y = linalg.broadcast ins(%x : tensor<4xf32>) outs(%init : tensor<4x8xf32>)
      dimensions = [DIMS]
  return %y : tensor<4x8xf32>
}
"""
PAD = """func.func @f(%x: tensor<4xf32>) -> tensor<6xf32> {
  %c = arith.constant 0.0 : f32
  %y = tensor.pad %x AMOUNTS { ^bb0(%i: index): tensor.yield %c : f32 } : tensor<4xf32> to tensor<6xf32>
  return %y : tensor<6xf32>
}
"""
RESOURCE = """func.func @f() -> tensor<4xf32> {
  %w = arith.constant dense_resource<blob> : tensor<4xf32>
  return %w : tensor<4xf32>
}
{-#
  dialect_resources: {
    builtin: {
      blob: "0xHEX"
    }
  }
#-}
"""
GOOD_BLOB = "04000000" + "0000803F" * 4


# ------------------------------------------------------------------ parser crashes (item 2)

@pytest.mark.parametrize("text, line", [
    (BROADCAST.replace("DIMS", "1.5"), 3),  # the list on the line after its op: a guard missed it
    (BROADCAST.replace("DIMS", "0,\n 1.5"), 3),  # a line break inside the list: a truncated list crashes too
    ("func.func @f() attributes {a = " + "[" * 10000 + "]" * 10000 + "} {\n  return\n}\n", 1),  # stack
    (RESOURCE.replace("HEX", "00000000" + "0000803F" * 4), 8),  # alignment 0: "LLVM ERROR: out of memory"
], ids=["list-on-next-line", "break-in-list", "nested-10000", "blob-alignment-0"])
def test_parser_crash_is_a_located_error(tmp_path, capsys, text, line):
    path = tmp_path / "crash.mlir"
    path.write_text(text)
    rc, out, err = _opt([path, "-o", tmp_path / "out.mlir"], capsys)
    assert rc == 1 and out == "", err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}:{line}:"), err
    assert "MLIR crashed" in lines[0], err
    assert not (tmp_path / "out.mlir").exists()


def test_dynamic_marker_in_a_static_list_is_refused(tmp_path, capsys):
    """high[-2^63]: the verifier accepts it, the printer reads an operand that is not there (a
    crash, or garbage: not a sure crash, so the IR itself is checked)."""
    path = tmp_path / "pad.mlir"
    path.write_text(PAD.replace("AMOUNTS", "low[1] high[-9223372036854775808]"))
    rc, out, err = _opt([path], capsys)
    assert rc == 1 and out == "" and err.startswith(f"{path}:3:8: error: tensor.pad: static_high holds"), err


@pytest.mark.parametrize("text", [
    BROADCAST.replace("DIMS", "1"),  # a list on the next line is valid
    "// linalg.broadcast dimensions = is how a broadcast names its new dims\n" + BROADCAST.replace("DIMS", "1"),
    PAD.replace("AMOUNTS", "low[1] high[1]"),
    RESOURCE.replace("HEX", GOOD_BLOB),
], ids=["list-on-next-line", "comment-naming-the-attribute", "pad", "resource"])
def test_valid_mlir_that_a_text_guard_refused_passes(tmp_path, capsys, text):
    path = tmp_path / "ok.mlir"
    path.write_text(text)
    rc, out, err = _opt([path], capsys)
    assert rc == 0 and "func.func @f" in out, err


@pytest.mark.parametrize("amounts", ["low[1] high[1] low[9223372036854775000]", "low[1] high[9223372036854775807]",
                                     "low[1] high[2147483648]"])
def test_repeated_lists_and_extreme_pads_are_diagnostics(tmp_path, capsys, amounts):
    path = tmp_path / "pad.mlir"
    path.write_text(PAD.replace("AMOUNTS", amounts))
    rc, _, err = _opt([path], capsys)
    assert rc == 1 and f"{path}:3:" in err and "MLIR crashed" not in err, err


def test_crash_beside_threads_is_confirmed_in_a_fresh_interpreter(monkeypatch):
    """Beside other threads a fork may inherit another thread's locks or half-changed data: its
    crash verdict is confirmed by a new interpreter before the input is refused."""
    spawned = []
    real = parsing._run_spawned
    monkeypatch.setattr(parsing, "_run_spawned", lambda *a: spawned.append(1) or real(*a))
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    try:
        assert parsing._child_parse(parsing._framed(BROADCAST.replace("DIMS", "1"), 0), False) is None
        assert spawned == []  # a clean parse needs no confirmation
        status, _ = parsing._child_parse(parsing._framed(BROADCAST.replace("DIMS", "x"), 0), False)
        assert status == signal.SIGSEGV and spawned == [1]
    finally:
        stop.set()
        helper.join()


def test_compile_refuses_a_parser_crash(tmp_path):
    import pconv_mlir

    path = tmp_path / "crash.mlir"
    path.write_text(BROADCAST.replace("DIMS", "1.5"))
    with pytest.raises(PconvCompileError, match=r"3:\d+: MLIR crashed"):
        pconv_mlir.compile(str(path))


# ------------------------------------------------------------------ resources (item 3)

@pytest.mark.parametrize("hex_, needle", [
    ("04000000" + "0000803F" * 2, "holds 8 bytes, its type tensor<4xf32> needs 16"),
    ("04000000" + "0000803F" * 5, "holds 20 bytes"),
], ids=["short", "long"])
def test_resource_blob_of_the_wrong_size_is_refused(hex_, needle):
    from pconv_mlir.compiler import run_pconv_passes

    with pytest.raises(PconvCompileError, match=needle):
        run_pconv_passes(RESOURCE.replace("HEX", hex_))


def test_resource_without_data_is_refused():
    from pconv_mlir.compiler import run_pconv_passes

    with pytest.raises(PconvCompileError, match="resource 'nope' holds no data"):
        run_pconv_passes(RESOURCE.replace("HEX", GOOD_BLOB).replace("dense_resource<blob>", "dense_resource<nope>"))
    run_pconv_passes(RESOURCE.replace("HEX", GOOD_BLOB))  # the right size passes


# ------------------------------------------------------------------ dynamic shapes (item 5)

DYNAMIC = f"""func.func @f(%x: tensor<?x2x6x6xf32>) -> tensor<?x1x4x4xf32> {{
  %zero = arith.constant 0.000000e+00 : f32
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x2x6x6xf32>
  %w = arith.constant {WEIGHTS}
  %e = tensor.empty(%n) : tensor<?x1x4x4xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<?x1x4x4xf32>) -> tensor<?x1x4x4xf32>
  %y = linalg.conv_2d_nchw_fchw {{dilations = dense<1> : vector<2xi64>,
      strides = dense<1> : vector<2xi64>}} ins(%x, %w : tensor<?x2x6x6xf32>, tensor<1x2x3x3xf32>)
      outs(%init : tensor<?x1x4x4xf32>) -> tensor<?x1x4x4xf32>
  return %y : tensor<?x1x4x4xf32>
}}
"""


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_dynamic_shapes_stay_dense_and_report_question_marks(layout):
    from pconv_mlir.compiler import run_pconv_passes

    text, report = run_pconv_passes(DYNAMIC, layout=layout)
    assert [r.input_shape for r in report] == [["?", 2, 6, 6]]
    assert report[0].output_shape == ["?", 1, 4, 4]
    assert report[0].lowering.startswith("dense (dynamic shapes")
    assert "linalg.conv_2d" in text and "9223372036854775808" not in text


# ------------------------------------------------------------------ pconv-opt edges (item 6)

@pytest.mark.parametrize("pipeline, needle", [
    ("pconv-compact-weights{block-size=-1}", "'block-size' must be >= 0"),
    ("pconv-compact-weights{min-mac-reduction=nan}", "finite"),
    ("pconv-compact-weights{min-mac-reduction=-2}", ">= 0"),
    ("pconv-eliminate-redundant-loads{gather-cost=inf}", "finite"),
    ("pconv-eliminate-redundant-loads{max-block-size=0}", ">= 1"),
    ("pconv-lower-to-linalg{force=maybe}", "true or false"),
    ("pconv-convert-to-nhwc{pointwise-tiles=maybe}", "must be one of auto, always, never"),
    ("inline{default-pipeline=bogus}", "'bogus' does not refer to a registered pass"),
    ("pconv-pipeline{layout=nwhc}", "nchw or nhwc"),
    ("pconv-pipeline{lay-out=nhwc}", "has no option 'lay-out'"),
    ("pconv-cleanup{own-dense-convs=2}", "true or false"),
], ids=lambda v: v.split("{")[0] + "-" + v.split("{")[-1].rstrip("}") if "{" in v else None)
def test_bad_pipeline_options_are_one_line(tmp_path, capsys, pipeline, needle):
    path = tmp_path / "in.mlir"
    path.write_text(PAD.replace("AMOUNTS", "low[1] high[1]"))
    rc, out, err = _opt([path, "-p", pipeline], capsys)
    assert rc == 1 and out == "" and len(err.strip().splitlines()) == 1 and needle in err, err


def test_output_file_is_checked_first_and_kept_on_failure(tmp_path, capsys):
    good, bad, out = tmp_path / "good.mlir", tmp_path / "bad.mlir", tmp_path / "out.mlir"
    good.write_text(PAD.replace("AMOUNTS", "low[1] high[1]"))
    bad.write_text("func.func @f( {\n")
    out.write_text("keep me\n")
    assert _opt([bad, "-o", out], capsys)[0] == 1
    assert out.read_text() == "keep me\n"  # a failed run does not truncate a good output
    rc, _, err = _opt([good, "-o", good], capsys)
    assert rc == 1 and "is the input" in err and "tensor.pad" in good.read_text()
    rc, _, err = _opt([good, "-o", tmp_path / "nodir" / "x.mlir"], capsys)
    assert rc == 1 and "does not exist" in err
    assert _opt([good, "-o", out], capsys)[0] == 0 and "tensor.pad" in out.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_non_utf8_input_is_one_line(tmp_path, capsys):
    path = tmp_path / "latin1.mlir"
    path.write_bytes("// caf\xe9\nfunc.func @f() {\n  return\n}\n".encode("latin-1"))
    rc, _, err = _opt([path], capsys)
    assert rc == 1 and "not UTF-8" in err and len(err.strip().splitlines()) == 1, err


def _console(args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "pconv-opt"), *args], capture_output=True, timeout=120, **kw)


def test_closed_standard_streams(tmp_path):
    path = tmp_path / "in.mlir"
    path.write_text(PAD.replace("AMOUNTS", "low[1] high[1]"))
    # closed stdin: read as empty input (an empty module); closed stdout: output goes nowhere
    r = subprocess.run(f"{BIN / 'pconv-opt'} <&-", shell=True, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "module" in r.stdout and r.stderr == "", r.stderr
    r = subprocess.run(f"{BIN / 'pconv-opt'} {path} >&-", shell=True, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_ctrl_c_is_one_line():
    proc = subprocess.Popen([str(BIN / "pconv-opt")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)  # it waits on stdin, which stays open
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and err.strip() == "pconv-opt: interrupted", err


# ------------------------------------------------------------------ one pipeline (issue 17 item 4)

def test_compile_and_pconv_opt_share_the_named_pipeline():
    from pconv_mlir import compiler
    from pconv_mlir.mlir import pipeline

    assert compiler.pconv_pipeline is pipeline.pconv_pipeline
    assert compiler.cleanup_pipeline is pipeline.cleanup_pipeline
    for layout in ("nchw", "nhwc"):
        assert pipeline._expand_named("pconv-pipeline", {"layout": layout}) == pipeline.pconv_pipeline(layout)
    assert pipeline._expand_named("pconv-pipeline", {}) == compiler.PCONV_PIPELINE
    assert pipeline._expand_named("pconv-cleanup", {"own-dense-convs": "true"}) == pipeline.cleanup_pipeline(True)


def test_help_explains_every_option(capsys):
    import dataclasses

    from pconv_mlir.mlir.pipeline import NAMED_PIPELINES
    from pconv_mlir.passes import PASSES, pass_class

    with pytest.raises(SystemExit):
        pconv_opt.main(["--help"])
    out = capsys.readouterr().out
    for flag in PASSES:
        for field in dataclasses.fields(pass_class(flag)):
            text = field.metadata.get("help", "")
            assert text, f"{flag} option {field.name} has no help text"
            assert f"{field.name.replace('_', '-')}=" in out and text in out
    for name, (summary, options, _) in NAMED_PIPELINES.items():
        assert name in out and summary in out
        assert all(f"{opt}={default}  {text}" in out for opt, (default, text) in options.items())


def test_failing_pass_writes_a_reproducer(tmp_path, capsys):
    import re

    import pconv_mlir

    # a pattern conv whose weights are a function argument: the lowering needs constants
    path = tmp_path / "argweights.mlir"
    path.write_text("""func.func @f(%x: tensor<1x2x8x8xf32>, %w: tensor<1x2x3x3xf32>, %b: tensor<1xf32>)
    -> tensor<1x1x8x8xf32> {
  %y = "pconv.conv2d"(%x, %w, %b) {strides = array<i64: 1, 1>, dilations = array<i64: 1, 1>,
         padding = array<i64: 1, 1, 1, 1>, groups = 1 : i64, patterns = array<i64: 1, 3, 4, 5>,
         kernel_patterns = dense<[[0, -1]]> : tensor<1x2xi8>, block_size = 1 : i64}
       : (tensor<1x2x8x8xf32>, tensor<1x2x3x3xf32>, tensor<1xf32>) -> tensor<1x1x8x8xf32>
  return %y : tensor<1x1x8x8xf32>
}
""")
    dump = tmp_path / "ir"
    with pytest.raises(PconvCompileError) as failed:
        pconv_mlir.compile(str(path), dump_ir=str(dump))
    first = str(failed.value).splitlines()[0]
    m = re.search(r"reproduce: pconv-opt -p (\S+) (\S+)\)", first)
    assert m and m.group(1) == "pconv-lower-to-linalg" and Path(m.group(2)).parent == dump, first
    rc, _, err = _opt([m.group(2), "-p", m.group(1)], capsys)
    assert rc == 1 and "the lowering needs constant weights" in err, err


def test_compile_input_errors_are_input_errors(tmp_path):
    import pconv_mlir

    path = tmp_path / "latin1.mlir"
    path.write_bytes(b"// caf\xe9\n")
    with pytest.raises(PconvInputError, match="not UTF-8"):
        pconv_mlir.compile(str(path))
    assert os.listdir(tmp_path) == ["latin1.mlir"]


def test_checkpoints_load_without_pickled_code():
    """Every torch.load of a file a user may hand over (checkpoints, the demo's weights) passes
    weights_only=True; only the peers' benchmark load their own artifacts in full."""
    import ast

    root = Path(__file__).resolve().parents[2] / "pconv_mlir"
    unsafe = []
    for path in root.rglob("*.py"):
        if "peers" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load" \
                    and getattr(node.func.value, "id", None) == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                if not (isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True):
                    unsafe.append(f"{path.relative_to(root)}:{node.lineno}")
    assert unsafe == []
