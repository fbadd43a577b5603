"""Every registered pass is found under its own flag, in the module named after it."""

import sys

import pytest

from pconv_mlir.passes import PASSES, pass_class


@pytest.mark.parametrize("flag", sorted(PASSES))
def test_pass_name_equals_flag(flag):
    cls = pass_class(flag)
    assert cls.name == flag
    assert PASSES[flag] == flag.removeprefix("pconv-").replace("-", "_")
    assert cls.summary, f"{flag} has no summary"
    assert cls.__module__.endswith("." + PASSES[flag])
    doc = sys.modules[cls.__module__].__doc__ or ""
    assert "::" in doc, f"{flag}'s module docstring shows no before/after IR"


def test_every_pass_has_a_lit_test():
    from pathlib import Path

    lit_dir = Path(__file__).resolve().parents[1] / "passes"
    for flag in PASSES:
        assert (lit_dir / f"{flag}.mlir").is_file(), f"no lit test for {flag}"
