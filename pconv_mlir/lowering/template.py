"""Filling the IR skeletons in ``templates/`` (see its README)."""

from __future__ import annotations

import functools
import string
from importlib import resources

__all__ = ["render"]


@functools.cache
def _template(name: str) -> string.Template:
    text = resources.files(__package__).joinpath("templates", f"{name}.mlir").read_text()
    return string.Template(text)


def render(name: str, **values) -> str:
    """``templates/<name>.mlir`` with every ``${key}`` replaced (KeyError if one is missing)."""
    return _template(name).substitute({k: str(v) for k, v in values.items()})
