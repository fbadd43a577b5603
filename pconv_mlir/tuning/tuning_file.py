"""The tuning file: which lowering each accelerated conv measured fastest on a device.

Human-readable JSON, written atomically::

    {"format": "pconv-tuning", "version": 1, "pconv_mlir": "0.1.0",
     "entries": {"<key>": {                      # pconv_mlir.tuning.layer.Layer.key
        "target": "llvm-cpu", "layer": {"C": 64, "K": 64, "H": 56, ..., "G": 32, "structure": "..."},
        "device": "local-task", "threads": 1, "margin": 0.08, "measured_at": "...",
        "candidates": [{"name": "dense", "lowering": "dense", "tiles": null,
                        "predicted_ms": 1.9, "measured_ms": 2.4}, ...],
        "untuned": "pattern", "winner": "pattern tiles d32"}}}

A candidate's ``tiles``: null = the cost model's tiles, "" = no hint (IREE's own choice), else an
IREE CPU lowering config. ``untuned`` names what the cost model picks; ``winner`` differs from it
only when measured faster by ``margin`` (so a tuned build is never slower than an untuned one,
within the timing noise the margin covers).

What a compile does with a file it is given (:func:`load_tuning`, :func:`for_target`):

- unreadable, not JSON, another format or version, or a malformed entry: an error (one line).
  Asked for a tuned build, a silent untuned one would hide the mistake.
- no entry for the compile's target but entries for others (a foreign file): an error.
- stale entries (the model's convs changed shape or structure) and convs without an entry: a
  warning; those convs take the cost model's choice. Every lowering computes the same numbers,
  so a partial file is safe, only less fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pconv_mlir.errors import PconvInputError

FORMAT = "pconv-tuning"
VERSION = 1
LOWERINGS = ("dense", "pattern")


class PconvTuningWarning(UserWarning):
    """A tuning file does not cover every accelerated conv of the model (stale or partial)."""


def empty() -> dict:
    from pconv_mlir import __version__

    return {"format": FORMAT, "version": VERSION, "pconv_mlir": __version__, "entries": {}}


def _check_candidate(where: str, c) -> None:
    if not isinstance(c, dict) or not isinstance(c.get("name"), str):
        raise PconvInputError(f"{where}: a candidate is not an object with a name")
    if c.get("lowering") not in LOWERINGS:
        raise PconvInputError(f"{where}: candidate {c['name']!r}: lowering must be one of {', '.join(LOWERINGS)}")
    if c.get("tiles") is not None and (not isinstance(c["tiles"], str) or '"' in c["tiles"]):
        raise PconvInputError(f"{where}: candidate {c['name']!r}: tiles must be null or a string without quotes")
    for field in ("predicted_ms", "measured_ms"):
        v = c.get(field)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0):
            raise PconvInputError(f"{where}: candidate {c['name']!r}: {field} must be a number >= 0 or null")


def check(data, where: str) -> dict:
    """``data`` if it is a tuning file this pconv reads; else a one-line PconvInputError."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PconvInputError(f"{where}: not a pconv tuning file (expected \"format\": \"{FORMAT}\")")
    if data.get("version") != VERSION:
        raise PconvInputError(f"{where}: tuning file version {data.get('version')!r}; this pconv reads version "
                              f"{VERSION} (re-run `pconv tune`)")
    entries = data.get("entries")
    if not isinstance(entries, dict):
        raise PconvInputError(f"{where}: \"entries\" must be an object")
    for key, e in entries.items():
        at = f"{where}: entry {key!r}"
        if not isinstance(e, dict) or not isinstance(e.get("target"), str) or not key.startswith(e["target"] + "/"):
            raise PconvInputError(f"{at}: needs a \"target\" that starts its key")
        cands = e.get("candidates")
        if not isinstance(cands, list) or not cands:
            raise PconvInputError(f"{at}: needs a non-empty \"candidates\" list")
        for c in cands:
            _check_candidate(at, c)
        names = [c["name"] for c in cands]
        for field in ("winner", "untuned"):
            if e.get(field) not in names:
                raise PconvInputError(f"{at}: \"{field}\" {e.get(field)!r} is not one of its candidates")
    return data


def load_tuning(path: str | os.PathLike) -> dict:
    """The checked contents of a tuning file (see the module docstring for what is an error)."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise PconvInputError(f"tuning file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PconvInputError(f"cannot read tuning file {p}: {getattr(err, 'strerror', None) or err}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise PconvInputError(f"{p}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    return check(data, str(p))


def for_target(data: dict, target: str, where: str) -> dict[str, dict]:
    """The entries of ``data`` measured for ``target`` (key -> entry); a file that holds entries
    for other targets only is an error."""
    mine = {k: e for k, e in data["entries"].items() if e["target"] == target}
    others = sorted({e["target"] for e in data["entries"].values()} - {target})
    if not mine and others:
        raise PconvInputError(f"{where}: tuned for target(s) {', '.join(others)}, not {target}; "
                              f"run `pconv tune --target {target}`")
    return mine


def save_tuning(path: str | os.PathLike, data: dict) -> None:
    from pconv_mlir.fileio import atomic_write

    check(data, str(path))
    atomic_write(path, json.dumps(data, indent=1, sort_keys=False) + "\n")


def winner(entry: dict) -> dict:
    return next(c for c in entry["candidates"] if c["name"] == entry["winner"])


def untuned(entry: dict) -> dict:
    return next(c for c in entry["candidates"] if c["name"] == entry["untuned"])
