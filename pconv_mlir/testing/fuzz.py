"""Fuzzing pconv-opt: mutators over the lit corpus and an in-process runner with timeouts.

``pconv-opt`` promises that bad input gets a diagnostic and exit code 1, never a Python
traceback or its ``internal error`` line, and never a hang. This module checks that on
many mutated inputs without paying the tool's start-up per input:

- :func:`load_corpus` takes the ``.mlir`` files under ``test/`` (whole and split on
  ``// -----``) together with the pipelines their RUN lines use;
- :func:`mutate` applies 1-3 random edits (byte flips, truncation, swapped tokens, changed
  numbers/attribute values/types, deleted or duplicated lines, inserted tokens, and edits aimed
  at the parser's crashes: line breaks inside lists, repeated lists, integers at the i64
  limits, nesting up to 50,000 deep);
- :class:`WorkerPool` runs ``pconv_mlir.tools.pconv_opt.main(argv)`` in a worker
  subprocess (``python -m pconv_mlir.testing.fuzz --worker``) that handles many inputs, watched by
  the parent with a per-input timeout; a worker that dies (a C++ abort or segfault in
  MLIR) or hangs is recorded with its input and replaced;
- :func:`classify` turns one result into ``ok`` (exit 0), ``diagnostic`` (exit 1 with an
  ``error:`` line), or a failure kind: ``traceback``, ``internal-error``,
  ``bad-exit-code``, ``no-diagnostic``, ``crash``, ``hang``.

``scripts/fuzz_pconv_opt.py`` is the long run; ``test/python/test_fuzz_smoke.py`` a short one.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import random
import re
import select
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from pconv_mlir.provenance import REPO

SPLIT = "// -----"
FAILURE_KINDS = ("traceback", "internal-error", "bad-exit-code", "no-diagnostic", "crash", "hang")

# Pipelines every input may get, besides those of its own RUN lines.
BASE_PIPELINES = (
    "",
    "pconv-raise-pattern-conv",
    "pconv-reorder-kernels",
    "pconv-compact-weights",
    "pconv-eliminate-redundant-loads",
    "pconv-lower-to-linalg",
    "pconv-raise-pattern-conv,pconv-reorder-kernels,pconv-compact-weights,"
    "pconv-eliminate-redundant-loads,pconv-lower-to-linalg,inline,canonicalize",
    "pconv-raise-pattern-conv,pconv-compact-weights{block-size=4},pconv-eliminate-redundant-loads{gather-cost=1.0}",
    "canonicalize,cse",
)

_RUN_PIPELINE = re.compile(r"""-p\s+("[^"]*"|\S+)""")


@dataclass
class Seed:
    """One corpus entry: MLIR text and the pipelines to try it with."""

    name: str
    text: str
    pipelines: list[str]


def load_corpus(root: str | os.PathLike | None = None) -> list[Seed]:
    """Every ``.mlir`` under ``test/`` (not lit's Output/), whole and chunk by chunk."""
    root = Path(root or REPO / "test")
    seeds = []
    for path in sorted(root.rglob("*.mlir")):
        if "Output" in path.parts:
            continue
        text = path.read_text()
        own = [m.group(1).strip('"') for line in text.splitlines() if "RUN:" in line
               for m in _RUN_PIPELINE.finditer(line)]
        own = [p for p in own if not p.startswith(("pconv-no-such", "no-such")) and "bogus" not in p]
        pipelines = sorted(set(own) | set(BASE_PIPELINES))
        rel = str(path.relative_to(root))
        seeds.append(Seed(rel, text, pipelines))
        chunks = text.split(f"\n{SPLIT}\n")
        if len(chunks) > 1:
            for i, chunk in enumerate(chunks):
                seeds.append(Seed(f"{rel}#{i}", chunk, pipelines))
    return seeds


# ---------------------------------------------------------------------------- mutators

_TOKEN = re.compile(r"%[\w.#$]+|@[\w.$]+|-?\d+\.\d+(?:e[-+]?\d+)?|-?\d+|[A-Za-z_][\w.$]*|\"[^\"\n]*\"|\S")
_NUMBER = re.compile(r"(?<![\w%#.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])")
_SHAPE = re.compile(r"(tensor|vector|memref)<([0-9x?]*x)?([a-z]+\d*)>")
_ATTR_VALUE = re.compile(r"(\b[a-z_]+\s*=\s*)(array<i64:[^>]*>|dense<[^>]*>|-?\d+\s*:\s*i64|\"[^\"]*\")")
_INTERESTING_INTS = ("0", "-1", "1", "2", "3", "4", "8", "9", "-9", "64", "127", "128", "-128", "255",
                     "65535", "2147483647", "-2147483648", "4294967296", "9223372036854775807",
                     "-9223372036854775808", "18446744073709551616", "99999999999999999999999")
_INTERESTING_FLOATS = ("0.0", "-0.0", "1.0e+38", "3.4e+39", "1.0e-45", "nan", "inf", "0x7FC00000", "1e999")
_TYPES = ("f32", "f16", "f64", "i8", "i32", "i64", "i1", "index", "bf16", "none", "f32x", "i0")
_JUNK_TOKENS = ("{", "}", "(", ")", "<", ">", "[", "]", ",", ":", "=", "->", "^bb0", "%", "@", "#", "!",
                "\"", "loc(", "{-#", "#-}", "dense_resource<x>", "array<i64>", "affine_map<(d0) -> (d0)>",
                "tensor<?xf32>", "tensor<*xf32>", "\"pconv.conv2d\"", "\"pconv.packed_conv2d\"",
                "\"pconv.permute_channels\"", "func.func", "return", "// -----", "\x00", "\u00e9", "\ufffd")


def _flip_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not b:
            break
        i = rng.randrange(len(b))
        b[i] = rng.choice((b[i] ^ (1 << rng.randrange(8)), rng.randrange(256), ord(rng.choice("{}()<>[],:=%@\"x0-"))))
    return bytes(b)


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data) + 1)] if data else data


def _tokens(text: str):
    return list(_TOKEN.finditer(text))


def _swap_tokens(text: str, rng: random.Random) -> str:
    toks = _tokens(text)
    if len(toks) < 2:
        return text
    a, b = sorted(rng.sample(range(len(toks)), 2))
    if rng.random() < 0.5:  # nearby tokens: more often still parseable
        b = min(len(toks) - 1, a + rng.randint(1, 6))
        if a == b:
            return text
    ta, tb = toks[a], toks[b]
    return text[:ta.start()] + tb.group() + text[ta.end():tb.start()] + ta.group() + text[tb.end():]


def _change_number(text: str, rng: random.Random) -> str:
    nums = list(_NUMBER.finditer(text))
    if not nums:
        return text
    m = rng.choice(nums)
    old = m.group()
    if "." in old or "e" in old:
        new = rng.choice(_INTERESTING_FLOATS + (str(-float(old)),))
    else:
        choices = _INTERESTING_INTS + (str(int(old) + 1), str(int(old) - 1), str(-int(old)), str(int(old) * 2))
        new = rng.choice(choices)
    return text[:m.start()] + new + text[m.end():]


def _change_type(text: str, rng: random.Random) -> str:
    shapes = list(_SHAPE.finditer(text))
    if not shapes:
        return text
    m = rng.choice(shapes)
    dims = (m.group(2) or "").rstrip("x").split("x") if m.group(2) else []
    r = rng.random()
    if r < 0.3 or not dims:
        elem = rng.choice(_TYPES)
    else:
        elem = m.group(3)
    if dims and r >= 0.3:
        i = rng.randrange(len(dims))
        op = rng.random()
        if op < 0.5:
            dims[i] = rng.choice(("0", "1", "2", "3", "?", "7", "1000000", "9223372036854775807"))
        elif op < 0.75:
            del dims[i]
        else:
            dims.insert(i, rng.choice(("1", "2", "3")))
    body = "x".join(dims + [elem])
    return text[:m.start()] + f"{m.group(1)}<{body}>" + text[m.end():]


def _change_attribute(text: str, rng: random.Random) -> str:
    attrs = list(_ATTR_VALUE.finditer(text))
    if not attrs:
        return _change_number(text, rng)
    m = rng.choice(attrs)
    value = m.group(2)
    if value.startswith("array<i64:"):
        n = rng.choice((0, 1, 2, 3, 4, 5, 8))
        vals = ", ".join(rng.choice(_INTERESTING_INTS[:12]) for _ in range(n))
        new = rng.choice((f"array<i64: {vals}>" if n else "array<i64>", f"array<i32: {vals}>",
                          f"dense<[{vals}]> : tensor<{n}xi64>", "unit", "\"s\"", "0 : i64"))
    elif value.startswith("dense<"):
        new = rng.choice(("dense<0>", "dense<-1>", "dense<127>", "dense<[[0]]>", "dense<[]>", "dense<1.5>",
                          "array<i64: 1>", "\"x\"", "dense_resource<__elided__>", "dense_resource<nope>"))
    elif value.endswith("i64"):
        new = rng.choice(_INTERESTING_INTS) + rng.choice((" : i64", " : i32", " : i1", " : index", ""))
    else:
        new = rng.choice(("\"\"", "\"@nope\"", "1 : i64", "\"" + "z" * 300 + "\""))
    return text[:m.start(2)] + new + text[m.end(2):]


def _edit_lines(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    i = rng.randrange(len(lines))
    r = rng.random()
    if r < 0.4:
        del lines[i]
    elif r < 0.7:
        lines.insert(i, lines[rng.randrange(len(lines))])
    else:
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


def _insert_token(text: str, rng: random.Random) -> str:
    i = rng.randrange(len(text) + 1)
    return text[:i] + rng.choice(_JUNK_TOKENS) + text[i:]


# Aimed at the upstream parser's crashes (a list on the next line, a second low[/high[ list,
# amounts at the i64 limits, deep nesting): what a text guard in front of the parser misses.
_LIST = re.compile(r"(\b(?:low|high|dimensions\s*=\s*|permutation\s*=\s*|array<i64:\s*)\[?)([^\]\n>]*)([\]>])")
_EXTREME_INTS = ("9223372036854775807", "-9223372036854775808", "-9223372036854775807", "9223372036854775808",
                 "18446744073709551615", "2147483648", "-2147483649", "4611686018427387904",
                 "100000000000000000000000000000")
_DEEP = (100, 1000, 5000, 10000, 50000)


def _break_list(text: str, rng: random.Random) -> str:
    """A line break inside or in front of a bracketed list (valid MLIR: whitespace)."""
    spots = [m.start() for m in re.finditer(r"\[|\]|,|\b(?:dimensions|permutation)\b", text)]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + rng.choice(("\n", "\n      ", "\n// a comment\n")) + text[i:]


def _repeat_list(text: str, rng: random.Random) -> str:
    """A list written twice (``low[1] low[1]``, ``dimensions = [0] dimensions = [0]``), maybe changed."""
    lists = list(_LIST.finditer(text))
    if not lists:
        return text
    m = rng.choice(lists)
    copy = m.group()
    if rng.random() < 0.5:
        copy = _NUMBER.sub(lambda _: rng.choice(_EXTREME_INTS + ("0", "-1", "1")), copy, count=1)
    return text[:m.end()] + " " + copy + text[m.end():]


def _extreme_int(text: str, rng: random.Random) -> str:
    """An integer inside a list set to (or past) the i64 limits."""
    lists = [m for m in _LIST.finditer(text) if _NUMBER.search(m.group(2))]
    if not lists:
        return _change_number(text, rng)
    m = rng.choice(lists)
    nums = list(_NUMBER.finditer(m.group(2)))
    n = rng.choice(nums)
    start = m.start(2) + n.start()
    return text[:start] + rng.choice(_EXTREME_INTS) + text[m.start(2) + n.end():]


def _deep_nesting(text: str, rng: random.Random) -> str:
    """Attributes, types or parentheses nested hundreds to 50,000 deep."""
    n = rng.choice(_DEEP)
    what = rng.choice(("[" * n + "]" * n, "{a = " * n + "unit" + "}" * n, "tensor<" * n + "f32" + ">" * n,
                       "(" * n + ")" * n, "loc(" * n + "unknown" + ")" * n, "[" * n))
    attrs = list(_ATTR_VALUE.finditer(text))
    if attrs and rng.random() < 0.5:
        m = rng.choice(attrs)
        return text[:m.start(2)] + what + text[m.end(2):]
    i = rng.randrange(len(text) + 1)
    return text[:i] + what + text[i:]


TEXT_MUTATORS = {
    "break-list": _break_list,
    "repeat-list": _repeat_list,
    "extreme-int": _extreme_int,
    "deep-nesting": _deep_nesting,
    "swap-tokens": _swap_tokens,
    "change-number": _change_number,
    "change-type": _change_type,
    "change-attribute": _change_attribute,
    "edit-lines": _edit_lines,
    "insert-token": _insert_token,
}
BYTE_MUTATORS = {"flip-bytes": _flip_bytes, "truncate": _truncate}
MUTATOR_NAMES = tuple(BYTE_MUTATORS) + tuple(TEXT_MUTATORS)


def mutate(text: str, rng: random.Random) -> tuple[bytes, list[str]]:
    """1-3 random edits of ``text``; returns the mutated bytes (not always valid UTF-8)
    and the names of the mutators applied."""
    data = text.encode()
    applied = []
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        name = rng.choice(MUTATOR_NAMES)
        applied.append(name)
        if name in BYTE_MUTATORS:
            data = BYTE_MUTATORS[name](data, rng)
        else:
            data = TEXT_MUTATORS[name](data.decode("utf-8", errors="surrogateescape"), rng).encode(
                "utf-8", errors="surrogateescape")
    return data, applied


@dataclass
class Case:
    """One fuzz input: the bytes, pconv-opt's arguments (the input file is appended), provenance."""

    index: int
    data: bytes
    args: list[str]
    seed: str
    mutators: list[str]
    stdin: bool = False

    def to_json(self) -> dict:
        return {"index": self.index, "seed": self.seed, "mutators": self.mutators, "args": self.args,
                "stdin": self.stdin, "input_b64": base64.b64encode(self.data).decode()}


def generate_cases(count: int, seed: int = 0, corpus: list[Seed] | None = None):
    """``count`` deterministic cases from ``seed``."""
    rng = random.Random(seed)
    corpus = corpus or load_corpus()
    for index in range(count):
        s = rng.choice(corpus)
        data, applied = mutate(s.text, rng)
        args = []
        pipeline = rng.choice(s.pipelines)
        if pipeline:
            args += ["-p", pipeline]
        r = rng.random()
        if r < 0.35:
            args.append("--split-input-file")
        elif r < 0.45:
            args += ["--split-input-file", "--verify-diagnostics"]
        elif r < 0.47:
            args.append("--mlir-print-ir-after-all")
        yield Case(index, data, args, s.name, applied, stdin=rng.random() < 0.1)


# ------------------------------------------------------------------ running in-process

def run_in_process(data: bytes, args: list[str], stdin: bool = False, workdir: str | None = None) -> dict:
    """Run pconv-opt's ``main`` on ``data`` in this process; returns rc, stderr, escaped
    exception (a traceback string) and the output size."""
    from pconv_mlir.tools.pconv_opt import main

    workdir = workdir or tempfile.gettempdir()
    path = os.path.join(workdir, f"fuzz-{os.getpid()}.mlir")
    out_path = os.path.join(workdir, f"fuzz-{os.getpid()}.out")
    with open(path, "wb") as f:
        f.write(data)
    argv = list(args) + (["-"] if stdin else [path]) + ["-o", out_path]
    err, escaped, rc = io.StringIO(), None, None
    old = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="strict")
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(argv)
    except SystemExit as e:  # argparse, or sys.exit from somewhere it should not be
        rc = e.code if isinstance(e.code, int) else 2
    except BaseException:  # noqa: BLE001 - anything escaping main is the bug we look for
        escaped = traceback.format_exc()
    finally:
        sys.stdin = old
    return {"rc": rc, "stderr": err.getvalue()[-4000:], "traceback": escaped}


def classify(result: dict) -> str:
    """``ok``, ``diagnostic`` or one of :data:`FAILURE_KINDS`."""
    if result.get("traceback") or "Traceback (most recent call last)" in result.get("stderr", ""):
        return "traceback"
    stderr = result.get("stderr", "")
    if "internal error" in stderr:
        return "internal-error"
    if result["rc"] == 0:
        return "ok"
    if result["rc"] != 1:
        return "bad-exit-code"
    if not stderr.strip():  # exit 1 must come with a message saying why
        return "no-diagnostic"
    return "diagnostic"


def _worker() -> int:
    """Read JSON cases (one a line) on stdin, answer one JSON line each on the original
    stdout; fd 1 and 2 are pointed elsewhere so MLIR's own writes cannot break the protocol."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    workdir = tempfile.mkdtemp(prefix="pconv-fuzz-")
    import pconv_mlir.tools.pconv_opt  # noqa: F401 - import before the first timed case
    from pconv_mlir.dialects.pconv import load_pconv_dialect  # noqa: F401
    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        job = json.loads(line)
        t0 = time.perf_counter()
        result = run_in_process(base64.b64decode(job["input_b64"]), job["args"], job.get("stdin", False), workdir)
        result["seconds"] = time.perf_counter() - t0
        result["index"] = job["index"]
        proto.write(json.dumps(result) + "\n")
    return 0


class WorkerPool:
    """One worker subprocess, restarted after a crash or a hang."""

    def __init__(self, timeout: float = 20.0, python: str = sys.executable):
        self.timeout = timeout
        self.python = python
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._stderr_file = None

    def _start(self) -> None:
        self._stderr_file = tempfile.TemporaryFile()
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env.pop("PCONV_DEBUG", None)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen([self.python, "-m", "pconv_mlir.testing.fuzz", "--worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr_file, cwd=str(REPO), env=env)
        if self._readline(120.0) is None:
            raise RuntimeError(f"fuzz worker did not start: {self._stderr_tail()}")

    def _readline(self, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline()

    def _stderr_tail(self) -> str:
        if self._stderr_file is None:
            return ""
        self._stderr_file.seek(0)
        return self._stderr_file.read()[-3000:].decode(errors="replace")

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        self.restarts += 1

    def run(self, case: Case) -> dict:
        if self.proc is None:
            self._start()
        self._stderr_file.seek(0)
        self._stderr_file.truncate()
        job = case.to_json()
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self._readline(self.timeout)
        if line is None:
            self._kill()
            return {"rc": None, "stderr": "", "traceback": None, "kind": "hang", "seconds": self.timeout}
        if not line:
            code = self.proc.wait()
            tail = self._stderr_tail()
            self.proc = None
            self.restarts += 1
            return {"rc": code, "stderr": tail, "traceback": None, "kind": "crash", "seconds": None}
        result = json.loads(line)
        result["kind"] = classify(result)
        return result

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@dataclass
class FuzzSummary:
    count: int = 0
    outcomes: dict = field(default_factory=dict)  # kind -> count
    by_mutator: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)  # failing cases (inputs base64) with their output
    seconds: float = 0.0
    worker_restarts: int = 0
    refused_crashes: int = 0  # diagnostics saying MLIR crashed in the parsing child (caught, no failure)

    def failure_counts(self) -> dict:
        return {k: self.outcomes.get(k, 0) for k in FAILURE_KINDS}

    @property
    def passed(self) -> bool:
        return not any(self.failure_counts().values())


def fuzz(count: int, seed: int = 0, timeout: float = 20.0, progress=None, keep_failures: int = 200,
         max_seconds: float | None = None) -> FuzzSummary:
    """Run ``count`` mutated inputs through pconv-opt (fewer when ``max_seconds`` run out: the
    summary's ``count`` says how many); see the module docstring."""
    summary = FuzzSummary()
    pool = WorkerPool(timeout=timeout)
    t0 = time.perf_counter()
    try:
        for case in generate_cases(count, seed):
            if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                break
            result = pool.run(case)
            kind = result["kind"]
            summary.count += 1
            summary.outcomes[kind] = summary.outcomes.get(kind, 0) + 1
            summary.refused_crashes += kind == "diagnostic" and "error: MLIR crashed" in result.get("stderr", "")
            for m in set(case.mutators):
                summary.by_mutator.setdefault(m, {}).setdefault(kind, 0)
                summary.by_mutator[m][kind] += 1
            if kind in FAILURE_KINDS and len(summary.failures) < keep_failures:
                entry = case.to_json()
                entry.update(kind=kind, rc=result.get("rc"), stderr=result.get("stderr", "")[-2000:],
                             traceback=result.get("traceback"))
                summary.failures.append(entry)
            if progress:
                progress(summary, case, result)
    finally:
        pool.close()
    summary.seconds = time.perf_counter() - t0
    summary.worker_restarts = pool.restarts
    return summary


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        sys.exit(_worker())
    sys.exit("usage: python -m pconv_mlir.testing.fuzz --worker (see scripts/fuzz_pconv_opt.py)")
