"""Bad inputs outside pconv-opt: each a clear error (a PconvError, or one line and exit 1
from the ``pconv`` CLI), never a traceback, an 'internal error' or a crash.

Corrupt and truncated .vmfb files, wrong input shapes/dtypes/counts, no Vulkan driver (or
a module for another device), models and layers the compiler does not cover, and pruning
metadata that does not match the model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from support import ADD_MLIR

import pconv_mlir
from pconv_mlir.cli import main as cli
from pconv_mlir.errors import PconvCompileError, PconvInputError, PconvRuntimeError
from pconv_mlir.patterns import PRUNED
from pconv_mlir.runtime import load_module
from pconv_mlir.targets import compile_mlir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def vmfb(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "add.vmfb"
    path.write_bytes(compile_mlir(ADD_MLIR, "llvm-cpu"))
    return path


def _cli(argv, capsys) -> tuple[int, str]:
    rc = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    return rc, err


# ------------------------------------------------------------------------------ .vmfb

def test_truncated_vmfb_at_every_kind_of_cut(vmfb):
    data = vmfb.read_bytes()
    for cut in (0, 1, 4, 15, 16, 40, 100, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 1):
        with pytest.raises(PconvRuntimeError, match="corrupt or truncated|not an IREE"):
            load_module(data[:cut], device="local-sync")


def test_corrupt_vmfb_never_crashes_the_process(vmfb, tmp_path):
    """Random byte flips, in a child process (a crash there would be IREE running a damaged
    embedded ELF: load_module checks the zip framing's CRCs first). Each corrupted module
    either loads and gives the right answer, or raises PconvRuntimeError."""
    script = textwrap.dedent(f"""
        import random, sys
        import numpy as np
        from pconv_mlir.errors import PconvRuntimeError
        from pconv_mlir.runtime import load_module
        data = open({str(vmfb)!r}, "rb").read()
        rng = random.Random(0)
        x = np.arange(8, dtype=np.float32).reshape(2, 4)
        errors = ran = 0
        for i in range(150):
            b = bytearray(data)
            for _ in range(rng.choice((1, 1, 2, 8))):
                j = rng.randrange(len(b))
                b[j] ^= 1 << rng.randrange(8)
            try:
                y = load_module(bytes(b), device="local-sync").run(x)
            except PconvRuntimeError:
                errors += 1
                continue
            assert np.array_equal(y, 2 * x), (i, y)
            ran += 1
        print(errors, ran)
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    errors, ran = map(int, r.stdout.split())
    assert errors + ran == 150 and errors > 100


def test_damaged_embedded_executable_is_rejected(vmfb):
    """A flip inside the embedded ELF (which IREE would run as is) fails the CRC check."""
    import io
    import zipfile

    data = vmfb.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        elf = next(i for i in z.infolist() if i.filename.endswith(".so"))
    start = elf.header_offset + 30 + len(elf.filename.encode()) + len(elf.extra)
    damaged = bytearray(data)
    damaged[start + elf.file_size // 2] ^= 0xFF
    with pytest.raises(PconvRuntimeError, match="CRC mismatch"):
        load_module(bytes(damaged), device="local-sync")


def test_corrupt_vmfb_from_the_cli(vmfb, tmp_path, capsys):
    bad = tmp_path / "bad.vmfb"
    bad.write_bytes(vmfb.read_bytes()[:500])
    np.save(tmp_path / "x.npy", np.zeros((2, 4), np.float32))
    rc, err = _cli(["run", bad, "--device", "local-sync", "--input", tmp_path / "x.npy"], capsys)
    assert rc == 1 and "corrupt or truncated" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "text.vmfb").write_text("hello, I am not a module at all")
    rc, err = _cli(["run", tmp_path / "text.vmfb", "--device", "local-sync"], capsys)
    assert rc == 1 and "not an IREE" in err


# ------------------------------------------------------------------------------ inputs

def test_wrong_input_shape_dtype_count(vmfb):
    mod = load_module(vmfb, device="local-sync")
    x = np.ones((2, 4), np.float32)
    assert np.array_equal(mod.run(x), 2 * x)
    cases = [
        ((np.ones((4, 2), np.float32),), "shape"),
        ((np.ones((2, 4, 1), np.float32),), "shape"),
        ((np.ones((2, 4), np.float64),), "dtype"),
        ((np.ones((2, 4), np.int32),), "dtype"),
        ((torch.ones(2, 4, dtype=torch.float16),), "dtype"),
        ((x, x), "expects 1 input"),
        ((), "expects 1 input"),
        (([[1.0] * 4] * 2,), "expected a numpy array or torch tensor"),
        (("x",), "dtype"),
    ]
    for args, message in cases:
        with pytest.raises(PconvInputError, match=message):
            mod.run(*args)


def test_wrong_input_from_the_cli(vmfb, tmp_path, capsys):
    np.save(tmp_path / "wrong.npy", np.ones((3, 3), np.float32))
    rc, err = _cli(["run", vmfb, "--device", "local-sync", "--input", tmp_path / "wrong.npy"], capsys)
    assert rc == 1 and "shape" in err
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    rc, err = _cli(["run", vmfb, "--device", "local-sync", "--input", tmp_path / "junk.npy"], capsys)
    assert rc == 1 and "cannot read" in err


# ------------------------------------------------------------------------------ devices

def test_no_vulkan_driver(vmfb):
    """With no Vulkan ICD found, loading on 'vulkan' says so (child process: the Vulkan
    loader reads VK_ICD_FILENAMES once per process)."""
    script = textwrap.dedent(f"""
        from pconv_mlir.errors import PconvRuntimeError
        from pconv_mlir.runtime import load_module
        try:
            load_module({str(vmfb)!r}, device="vulkan")
        except PconvRuntimeError as e:
            print("ERR", e)
        else:
            print("LOADED")
    """)
    env = dict(os.environ, VK_ICD_FILENAMES="/nonexistent/icd.json", VK_DRIVER_FILES="/nonexistent/icd.json",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout.strip()
    assert out.startswith("ERR") and ("Vulkan" in out or "vulkan" in out), out
    assert "Traceback" not in r.stderr


def test_module_for_another_device(vmfb):
    """A CPU module on a Vulkan device, or an unknown device name: a clear error."""
    with pytest.raises(PconvRuntimeError, match="unknown device"):
        load_module(vmfb, device="tpu")
    with pytest.raises(PconvRuntimeError, match="--threads and --cpu-affinity apply to the local-task device only"):
        load_module(vmfb, device="local-sync", threads=2)
    try:
        load_module(vmfb, device="vulkan")
    except PconvRuntimeError as e:  # no driver here, or the module has no Vulkan executable
        assert "vulkan" in str(e).lower()
    else:  # pragma: no cover - IREE loads a module whose dispatches it cannot run
        pytest.fail("a llvm-cpu module loaded on the Vulkan device")


# ------------------------------------------------------------------- compile-side inputs

class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # control flow on data: torch.export refuses it
            return x
        return -x


def test_model_that_cannot_be_imported():
    with pytest.raises(PconvCompileError, match="cannot import the model"):
        pconv_mlir.compile(DataDependent(), [torch.randn(1, 3, 4, 4)])
    with pytest.raises(PconvInputError, match="needs example_inputs"):
        pconv_mlir.compile(nn.Conv2d(3, 3, 3))


def test_bad_mlir_target_and_input_file(tmp_path, capsys):
    with pytest.raises(PconvCompileError, match="not valid MLIR"):
        pconv_mlir.compile("func.func @main(%x: tensor<4xf32> {")
    with pytest.raises(PconvCompileError, match="unknown target"):
        pconv_mlir.compile(ADD_MLIR, target="gpu-of-the-future")
    with pytest.raises(PconvInputError, match="cannot read"):
        pconv_mlir.compile(str(tmp_path / "missing.mlir"))
    (tmp_path / "m.onnx").write_text("x")
    rc, err = _cli(["compile", tmp_path / "m.onnx", "-o", tmp_path / "m.vmfb"], capsys)
    assert rc == 1 and "expected a .mlir file" in err
    (tmp_path / "bad.mlir").write_text("this is not MLIR")
    rc, err = _cli(["compile", tmp_path / "bad.mlir", "-o", tmp_path / "m.vmfb"], capsys)
    assert rc == 1 and "not valid MLIR" in err


def test_unsupported_layers_stay_dense_with_a_reason():
    """Convs pconv does not cover are not errors: the report says why each stays dense
    (no IREE compile here: only the pconv passes)."""
    from pconv_mlir.compiler import import_model, run_pconv_passes

    net = nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, padding=1)).eval()
    x = torch.randn(1, 3, 6, 6)
    _, report = run_pconv_passes(import_model(net, [x]))
    lowering = [r.lowering for r in report]
    assert lowering[0].startswith("dense (kernel is 5x5"), lowering
    assert lowering[1].startswith("dense (1x1: weights are dense"), lowering  # no block connectivity
    assert lowering[2].startswith("dense (weights are not pattern-sparse"), lowering


# ------------------------------------------------------------------- pruning metadata

def _saved_pruned(tmp_path, edit=None) -> Path:
    from pconv_mlir.models import small_cnn
    from pconv_mlir.pruning import PatternPruner, PruningConfig, save_pruned

    torch.manual_seed(0)
    model = small_cnn(width=8, num_classes=5)
    pruner = PatternPruner(PruningConfig(group_size=4, num_patterns=6)).prepare(model)
    pruner.hard_prune()
    meta = pruner.finalize()
    path = tmp_path / "m.pt"
    save_pruned(path, model, meta)
    if edit:
        raw = torch.load(path, weights_only=True)
        edit(raw)
        torch.save(raw, path)
    return path


def _weight_outside_pattern(raw):
    layer = raw["meta"]["layers"][1]
    k, c = map(int, (layer["pattern_ids"] == PRUNED).nonzero()[0])
    raw["state_dict"][layer["name"] + ".weight"][k, c, 1, 1] = 1.0


def _ids_for_another_shape(raw):
    layer = raw["meta"]["layers"][0]
    layer["pattern_ids"] = layer["pattern_ids"][:3].clone()
    layer["mask"] = layer["mask"][:3].clone()


@pytest.mark.parametrize("edit, message", [
    (_weight_outside_pattern, "outside its pattern"),
    (_ids_for_another_shape, "metadata is for"),
    (lambda raw: raw["meta"]["layers"][0].update(name="features.99"), "no nn.Conv2d"),
    (lambda raw: raw["meta"].update(layers="nonsense"), "malformed"),
], ids=["outside-pattern", "shape", "name", "malformed"])
def test_pruning_metadata_that_does_not_match(tmp_path, capsys, edit, message):
    from pconv_mlir.pruning import load_pruned

    path = _saved_pruned(tmp_path, edit)
    with pytest.raises(ValueError, match=message):
        load_pruned(path)
    # The CLI: one line, exit 1, a user error (not an 'internal error'), nothing compiled.
    rc, err = _cli(["compile", path, "-o", tmp_path / "m.vmfb", "--input-shape", "1,1,16,16"], capsys)
    assert rc == 1 and message.split()[0] in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "m.vmfb").exists()


def test_pruned_file_missing_or_garbage(tmp_path, capsys):
    rc, err = _cli(["compile", tmp_path / "missing.pt", "-o", tmp_path / "m.vmfb"], capsys)
    assert rc == 1 and "missing.pt" in err
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    rc, err = _cli(["compile", tmp_path / "junk.pt", "-o", tmp_path / "m.vmfb"], capsys)
    assert rc == 1 and "not a readable" in err
    path = _saved_pruned(tmp_path)
    rc, err = _cli(["compile", path, "-o", tmp_path / "m.vmfb", "--input-shape", "1,one,16,16"], capsys)
    assert rc == 1 and "--input-shape" in err
