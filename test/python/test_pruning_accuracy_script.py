"""scripts/prune_accuracy_1x1.py end to end at one epoch per phase (what it writes, not how
accurate one epoch is)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_thread")  # the script sets 1 thread; the fixture restores it


def load_script():
    spec = importlib.util.spec_from_file_location("prune_accuracy_1x1", ROOT / "scripts" / "prune_accuracy_1x1.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_writes_json_markdown_and_plot(tmp_path):
    script = load_script()
    argv = ["--models", "small_mobilenet", "--seeds", "0", "--reductions", "2", "--dense-epochs", "1",
            "--admm-epochs", "1", "--retrain-epochs", "1", "--jobs", "1", "--out-dir", str(tmp_path)]
    assert script.main(argv) == 0
    saved = json.loads((tmp_path / "pruning_accuracy_1x1.json").read_text())
    assert [r["variant"] for r in saved["runs"]] == ["dense", "1x1 2x admm", "1x1 2x oneshot"]
    pruned = saved["runs"][1]
    # every 1x1 conv of small_mobilenet has an even number of input channels: exactly 2x
    # 6 pattern convs (depthwise) + the 6 1x1 block convs the cost model takes (>= 16 channels per block)
    assert pruned["macs_1x1"] == 2.0 and pruned["macs_3x3"] > 1.0 and pruned["pattern_convs"] == 12
    assert saved["settings"]["command"].startswith("python scripts/prune_accuracy_1x1.py --models small_mobilenet")
    assert saved["settings"]["commit"] and saved["settings"]["cpu"]
    text = (tmp_path / "pruning_accuracy_1x1.md").read_text()
    assert saved["settings"]["commit"] in text and "| 1x1 2x admm | 2.00x |" in text
    assert (tmp_path / "pruning_accuracy_1x1.png").read_bytes()[:4] == b"\x89PNG"
    # --render-only rebuilds the same tables from the JSON
    (tmp_path / "pruning_accuracy_1x1.md").unlink()
    assert script.main(["--render-only", "--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / "pruning_accuracy_1x1.md").read_text() == text


def test_bad_reduction_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        load_script().parse_args(["--reductions", "0.5"])
    assert exc.value.code == 2 and "--reductions must be >= 1" in capsys.readouterr().err
