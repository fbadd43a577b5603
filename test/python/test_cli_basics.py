"""The console scripts: help, version, and no traceback on garbage input."""

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def run(*args, stdin=None):
    return subprocess.run([str(BIN / args[0]), *args[1:]], input=stdin, capture_output=True, timeout=120)


def test_pconv_help_and_version():
    assert run("pconv", "--help").returncode == 0
    out = run("pconv", "--version")
    assert out.returncode == 0 and b"pconv-mlir" in out.stdout


def test_pconv_opt_help_lists_every_pass():
    from pconv_mlir.passes import PASSES

    out = run("pconv-opt", "--help")
    assert out.returncode == 0
    for flag in PASSES:
        assert flag.encode() in out.stdout


def test_pconv_opt_garbage_bytes():
    out = run("pconv-opt", stdin=bytes(range(256)) * 4)
    assert out.returncode == 1
    assert b"Traceback" not in out.stderr
    assert b"error" in out.stderr
