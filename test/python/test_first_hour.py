"""A new user's first hour (issue 19): the device follows the module's target, a way in from the
user's own model (.pt2, pconv import), save/load, and the small traps (one clear line each)."""

import io
import pathlib
import warnings
import zipfile

import numpy as np
import pytest
from support import ADD_MLIR

torch = pytest.importorskip("torch")

import pconv_mlir  # noqa: E402
from pconv_mlir import android  # noqa: E402
from pconv_mlir.cli.main import main  # noqa: E402
from pconv_mlir.errors import PconvCompileError, PconvInputError, PconvRuntimeError  # noqa: E402
from pconv_mlir.numerics import TOLERANCE, rel_err  # noqa: E402
from pconv_mlir.runtime import load_module, vulkan_available  # noqa: E402
from pconv_mlir.runtime.module_info import module_info, resolve_device  # noqa: E402
from pconv_mlir.targets import TARGETS, compile_mlir  # noqa: E402

X = np.arange(8, dtype=np.float32).reshape(2, 4)


def _cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def add_modules(tmp_path_factory):
    """y = x + x compiled by pconv_mlir.compile for three kinds of target (a second each)."""
    d = tmp_path_factory.mktemp("first_hour")
    np.save(d / "x.npy", X)
    paths = {}
    for target in ("llvm-cpu", "vulkan-lavapipe", "arm64-android"):
        paths[target] = d / f"{target}.vmfb"
        pconv_mlir.compile(ADD_MLIR, target=target).save(paths[target])
    return d, paths


# ------------------------------------------------------------------ item 1: the device follows the target

def test_target_recorded_and_device_follows(add_modules):
    _, paths = add_modules
    cpu, vk = paths["llvm-cpu"].read_bytes(), paths["vulkan-lavapipe"].read_bytes()
    assert module_info(cpu).target == "llvm-cpu" and module_info(vk).target == "vulkan-lavapipe"
    assert module_info(cpu).default_device() == "local-task" and module_info(vk).default_device() == "vulkan"
    assert load_module(cpu).device == "local-task"
    assert load_module(cpu, device="local-sync").device == "local-sync"  # an override still works
    with pytest.raises(PconvRuntimeError, match="runs on the vulkan device, not local-task"):
        load_module(vk, device="local-task")
    with pytest.raises(PconvRuntimeError, match="runs on local-task or local-sync, not vulkan"):
        load_module(cpu, device="vulkan")
    with pytest.raises(PconvRuntimeError, match="aarch64 code.*cannot run"):
        load_module(paths["arm64-android"])
    # a module compiled elsewhere (no recorded target): its executables' format decides
    foreign = module_info(compile_mlir(ADD_MLIR, "vulkan-lavapipe"))
    assert foreign.target is None and resolve_device(foreign, None, "m") == "vulkan"
    if vulkan_available():
        compiled = pconv_mlir.compile(ADD_MLIR, target="vulkan-lavapipe")
        assert np.array_equal(compiled.run(X), 2 * X) and compiled.device == "vulkan"


def test_cli_device_follows_target(add_modules, capsys):
    d, paths = add_modules
    rc, out, err = _cli(["run", paths["llvm-cpu"], "--input", d / "x.npy", "-o", d / "y.npy"], capsys)
    assert rc == 0 and np.array_equal(np.load(d / "y.npy"), 2 * X), err
    rc, _, err = _cli(["run", paths["vulkan-lavapipe"], "--device", "local-sync", "--input", d / "x.npy"], capsys)
    assert rc == 1 and len(err.strip().splitlines()) == 1 and "runs on the vulkan device" in err
    rc, _, err = _cli(["bench", paths["llvm-cpu"], "--device", "vulkan", "--repeats", "1"], capsys)
    assert rc == 1 and "not vulkan" in err and "Traceback" not in err
    if vulkan_available():
        rc, out, err = _cli(["bench", paths["vulkan-lavapipe"], "--repeats", "2", "--warmup", "0"], capsys)
        assert rc == 0 and "vulkan" in out, err


# ------------------------------------------------------------------ item 7: android bundle refuses x86 code

def test_android_bundle_refuses_host_module(add_modules, capsys, monkeypatch):
    d, paths = add_modules

    def no_fetch(*_):
        raise AssertionError("refused only after fetching the tools")

    monkeypatch.setattr(android.bundler, "fetch_runtime_tools", no_fetch)
    with pytest.raises(PconvInputError, match="x86-64.*phone cannot run.*arm64-android"):
        android.bundle(paths["llvm-cpu"], [X], d / "bundle")
    rc, _, err = _cli(["android", "bundle", paths["llvm-cpu"], "--input", d / "x.npy", "-o", d / "bundle"], capsys)
    assert rc == 1 and "phone cannot run" in err and not (d / "bundle").exists()
    assert android.bundler._phone_device(paths["arm64-android"].read_bytes(), "m", None) == "local-task"
    assert android.bundler._phone_device(paths["vulkan-lavapipe"].read_bytes(), "m", None) == "vulkan"


# ------------------------------------------------------------------ items 4, 6, 7: a small torch model

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class _Touch:
    """Unpickling this creates a file: proof that a file was (not) unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = Net()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
    return model.eval(), torch.randn(1, 3, 8, 8)


def test_pt2_import_and_compile(net, tmp_path, capsys):
    model, x = net
    with torch.no_grad():
        want = model(x).numpy()
    torch.export.save(torch.export.export(model, (x,)), tmp_path / "m.pt2")
    np.save(tmp_path / "x.npy", x.numpy())
    rc, out, err = _cli(["import", tmp_path / "m.pt2", "-o", tmp_path / "m.mlir"], capsys)
    assert rc == 0 and "linalg.conv_2d_nchw_fchw" in (tmp_path / "m.mlir").read_text(), err
    rc, out, err = _cli(["compile", tmp_path / "m.pt2", "-o", tmp_path / "m.vmfb"], capsys)
    assert rc == 0, err
    assert rel_err(load_module(tmp_path / "m.vmfb").run(x), want) <= TOLERANCE


def test_pickles_are_never_unpickled(net, tmp_path, capsys):
    model, x = net
    marker = tmp_path / "unpickled"
    torch.save({"model": model, "payload": _Touch(marker)}, tmp_path / "whole.pt")  # as torch.save(model)
    for cmd in (["compile", tmp_path / "whole.pt", "-o", tmp_path / "w.vmfb"],
                ["import", tmp_path / "whole.pt", "-o", tmp_path / "w.mlir"]):
        rc, _, err = _cli(cmd, capsys)
        assert rc == 1 and len(err.strip().splitlines()) == 1, err
        assert "pickled model" in err and "torch.export.save" in err
    # a .pt2 whose sample inputs are not plain tensors: torch.export.load would unpickle them fully
    torch.export.save(torch.export.export(model, (x,)), tmp_path / "good.pt2")
    evil = io.BytesIO()
    torch.save(_Touch(marker), evil)
    with zipfile.ZipFile(tmp_path / "good.pt2") as src, zipfile.ZipFile(tmp_path / "evil.pt2", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, evil.getvalue() if "/data/sample_inputs/" in item.filename else data)
    rc, _, err = _cli(["compile", tmp_path / "evil.pt2", "-o", tmp_path / "e.vmfb"], capsys)
    assert rc == 1 and "does not unpickle" in err, err
    with pytest.raises(PconvInputError, match="does not unpickle"):
        pconv_mlir.compile(str(tmp_path / "evil.pt2"))
    assert not marker.exists()


def test_compile_api_first_hour(net, tmp_path):
    model, x = net
    with torch.no_grad():
        want = model(x).numpy()
    model.train()
    model.bn.eval()  # mixed modes come back as they were
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = pconv_mlir.compile(model, x)  # one bare tensor: one input, not split on its batch
    assert not [w for w in caught if "LeafSpec" in str(w.message)]
    assert model.training and model.conv.training and not model.bn.training
    assert len(repr(compiled)) < 200 and "llvm-cpu" in repr(compiled)
    y = compiled.run(x)
    assert isinstance(y, np.ndarray) and rel_err(y, want) <= TOLERANCE
    # save -> load, and runtime.load_module gives the same type as CompiledModel.run
    compiled.save(tmp_path / "m.vmfb", tmp_path / "r.json")
    again = pconv_mlir.load(tmp_path / "m.vmfb", tmp_path / "r.json")
    assert again.target == "llvm-cpu" and again.report == compiled.report
    assert np.array_equal(again.run(x), y)
    assert isinstance(load_module(tmp_path / "m.vmfb").run(x), np.ndarray)
    assert isinstance(load_module(tmp_path / "m.vmfb").run_all(x), list)
    # threads on a loaded module: reloaded with them, or a clear error; never ignored
    n = compiled._loaded.threads
    if n:
        assert compiled.run(x, threads=n) is not None and compiled._loaded.threads == n
        with pytest.raises(PconvRuntimeError, match="new process"):
            compiled.run(x, threads=n + 1)
    # a 3-D example input (no batch): torch's message gains what to do
    with pytest.raises(PconvCompileError, match="batch dimension"):
        pconv_mlir.compile(model.eval(), [x[0]])


# ------------------------------------------------------------------ item 7: small traps

def test_png_input_and_compile_help(add_modules, tmp_path, capsys):
    _, paths = add_modules
    png = tmp_path / "cat.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    rc, _, err = _cli(["run", paths["llvm-cpu"], "--input", png], capsys)
    assert rc == 1 and "is a PNG image, not a .npy array" in err and "allow_pickle" not in err
    with pytest.raises(SystemExit):
        main(["compile", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in TARGETS)
