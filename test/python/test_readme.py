"""README.md's code blocks marked ``<!-- readme-test N [vulkan] -->`` work as written.

They run in the order N in one fresh folder: Python blocks in one namespace in this process
(torch is imported once), shell blocks with bash, ``.venv`` and the repo's ``test/`` linked
into the folder so that the README's paths hold. Then what the blocks wrote is checked: the
numbers against PyTorch, and the pconv-opt example against compile()'s report (one policy: the
3-channel stem is dense in both).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pconv_mlir.runtime import vulkan_available

REPO = Path(__file__).resolve().parents[2]
MARK = re.compile(r"<!-- readme-test (\d+)((?: \w+)*) -->\n```(\w+)\n(.*?)\n```", re.S)


def readme_blocks() -> list[tuple[int, set[str], str, str]]:
    """(order, tags, language, code) of each marked block, by order."""
    text = (REPO / "README.md").read_text()
    blocks = [(int(n), set(tags.split()), lang, code) for n, tags, lang, code in MARK.findall(text)]
    return sorted(blocks, key=lambda b: b[0])


def test_marked_blocks_found():
    blocks = readme_blocks()
    assert len(blocks) >= 5 and {b[2] for b in blocks} == {"python", "sh"}
    assert len({b[0] for b in blocks}) == len(blocks), "two blocks with one number"
    # every marker was parsed: a typo in one would silently drop its block
    assert (REPO / "README.md").read_text().count("<!-- readme-test ") - 1 == len(blocks)  # -1: the prose


def test_readme_blocks(tmp_path, monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    venv = Path(sys.executable).parent.parent
    (tmp_path / ".venv").symlink_to(venv)
    (tmp_path / "test").symlink_to(REPO / "test")
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    namespace: dict = {"__name__": "readme"}
    ran = []
    for order, tags, lang, code in readme_blocks():
        if "vulkan" in tags and not vulkan_available():
            continue
        if lang == "python":
            exec(compile(code, f"README.md block {order}", "exec"), namespace)
        else:
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, f"README block {order} failed:\n{code}\n{r.stdout}\n{r.stderr}"
            assert "Traceback" not in r.stderr
        ran.append(order)
    assert {1, 2, 3, 5} <= set(ran)

    # What the blocks wrote: the CLI's output matches PyTorch, and pconv_mlir.load read the report.
    model, x = namespace["model"], namespace["x"]
    with torch.no_grad():
        want = model(x).numpy()
    from pconv_mlir.numerics import TOLERANCE, rel_err

    assert rel_err(np.load(tmp_path / "y.npy"), want) <= TOLERANCE
    report = namespace["compiled"].report
    assert len(report) == 6 and namespace["compiled"].target == "llvm-cpu"
    # One policy: compile() keeps the 3-channel stem dense (the lowering's cost model), and the README's
    # pconv-opt pipeline leaves it a dense linalg conv too, while the other five become pattern convs.
    assert report[0].lowering.startswith("dense") and report[0].input_shape[1] == 3
    assert all(r.lowering.startswith("pattern") for r in report[1:])
    lowered = (tmp_path / "lowered.mlir").read_text()
    assert "pconv." not in lowered.replace("pconv.tiles", "")
    convs = re.findall(r"linalg\.conv_2d_nchw_fchw\b.*?-> tensor<(\d+)x(\d+)x", lowered)
    assert [c[1] for c in convs] == ["32"], convs  # the stem (3 -> 32 channels) only
    assert "linalg.batch_matmul" in lowered
