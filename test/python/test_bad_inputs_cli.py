"""Bad input to the ``pconv`` CLI, the runtime and Android bundles (issue 18, items 1 and 3-6).

Each probe expects a non-zero exit, exactly one line on stderr naming the problem, no traceback
and no damaged file; or, where the input is fine but the world is not (a full disk, a signal,
two threads or processes at once), that nothing is lost and nothing is left running.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from support import ADD_MLIR

import pconv_mlir
from pconv_mlir import android, fileio
from pconv_mlir.cli import main as cli
from pconv_mlir.errors import PconvError, PconvInputError, PconvRuntimeError
from pconv_mlir.runtime import load_module
from pconv_mlir.targets import compile_mlir

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
X = np.arange(8, dtype=np.float32).reshape(2, 4)


def _tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: (SHA-256, mtime) by relative path; symlinks by their target."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = ("link:" + os.readlink(p), 0)
        elif p.is_file():
            out[str(p.relative_to(root))] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def _refused(argv, capsys, *needles: str, rc: int = 1) -> str:
    """Runs ``pconv ARGV`` in-process; asserts exit ``rc``, one stderr line holding ``needles``."""
    status = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert status == rc, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _run_pconv(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "pconv"), *args], capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """add.mlir, add.vmfb (y = 2x) and x.npy."""
    d = tmp_path_factory.mktemp("cli")
    (d / "add.mlir").write_text(ADD_MLIR)
    (d / "add.vmfb").write_bytes(compile_mlir(ADD_MLIR, "llvm-cpu"))
    np.save(d / "x.npy", X)
    return d


@pytest.fixture
def no_compile(monkeypatch):
    """Fails the test if a compile starts: these errors must come before the work."""
    def refuse(*args, **kwargs):
        raise AssertionError("the compile started")
    monkeypatch.setattr(pconv_mlir, "compile", refuse)


# ------------------------------------------------------------------ output paths (item 4, 6)

@pytest.mark.parametrize("make_args, needle", [
    (lambda d: ["-o", d / "in.mlir"], "is the input"),
    (lambda d: ["-o", d / "m.vmfb", "--report", d / "m.vmfb"], "same file"),
    (lambda d: ["-o", d / "nodir" / "m.vmfb"], "does not exist"),
    (lambda d: ["-o", d / "plain.txt" / "m.vmfb"], "does not exist"),
    (lambda d: ["-o", d], "is a folder"),
    (lambda d: ["-o", d / "m.vmfb", "--report", d / "nodir" / "r.json"], "--report"),
    (lambda d: ["-o", d / "m.vmfb", "--report", d / "in.mlir"], "is the input"),
    (lambda d: ["-o", d / "m.vmfb", "--dump-ir", d / "plain.txt" / "ir"], "not a folder"),
    (lambda d: ["-o", d / "m.vmfb", "--dump-ir", d / "plain.txt"], "not a folder"),
], ids=["o-is-input", "o-is-report", "no-folder", "file-as-folder", "o-is-folder", "report-no-folder",
        "report-is-input", "dump-ir-under-file", "dump-ir-is-file"])
def test_compile_output_paths_checked_before_the_compile(tmp_path, capsys, no_compile, make_args, needle):
    (tmp_path / "in.mlir").write_text(ADD_MLIR)
    (tmp_path / "plain.txt").write_text("keep me")
    before = _tree(tmp_path)
    _refused(["compile", tmp_path / "in.mlir", *make_args(tmp_path)], capsys, needle)
    assert _tree(tmp_path) == before


def test_compile_replaces_a_good_module_atomically_and_survives_a_full_disk(work, tmp_path, capsys, monkeypatch):
    out, report = tmp_path / "m.vmfb", tmp_path / "r.json"
    assert cli.main(["compile", str(work / "add.mlir"), "-o", str(out), "--report", str(report)]) == 0
    capsys.readouterr()
    good = _tree(tmp_path)
    real_write = os.write

    def full_disk(fd, data):  # half of the first chunk goes out, then the disk is full
        if len(data) > 1:
            real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio, "_os_write", full_disk)
    line = _refused(["compile", work / "add.mlir", "-o", out, "--report", report], capsys, str(out),
                    "No space left on device")
    assert "m.vmfb" in line
    assert _tree(tmp_path) == good  # the old module and report, and no temporary file
    monkeypatch.undo()
    y = load_module(out, device="local-sync").run(X)
    assert np.array_equal(y, 2 * X)


def test_save_refuses_one_path_for_module_and_report(tmp_path):
    compiled = pconv_mlir.compile(ADD_MLIR)
    with pytest.raises(PconvInputError, match="same file"):
        compiled.save(tmp_path / "m.vmfb", tmp_path / "m.vmfb")
    assert not (tmp_path / "m.vmfb").exists()
    compiled.save(tmp_path / "m.vmfb", tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["target"] == "llvm-cpu"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.vmfb", "r.json"]


def test_atomic_write_keeps_permissions_and_follows_symlinks(tmp_path):
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    (tmp_path / "link.bin").symlink_to(target)
    fileio.atomic_write(tmp_path / "link.bin", b"new")
    assert target.read_bytes() == b"new" and (target.stat().st_mode & 0o777) == 0o640
    assert (tmp_path / "link.bin").is_symlink()


def test_run_output_paths_checked_before_the_run(work, tmp_path, capsys):
    (tmp_path / "keep.npy").write_bytes(b"keep")
    before = _tree(tmp_path)
    _refused(["run", work / "add.vmfb", "-d", "local-sync", "-i", work / "x.npy", "-o", tmp_path / "nodir" / "y.npy"],
             capsys, "does not exist")
    _refused(["run", work / "add.vmfb", "-d", "local-sync", "-i", work / "x.npy", "-o", work / "x.npy"],
             capsys, "is the input")
    _refused(["run", work / "add.vmfb", "-d", "local-sync", "-i", work / "x.npy", "-o", work / "add.vmfb"],
             capsys, "is the input")
    _refused(["run", work / "add.vmfb", "-d", "local-sync", "-i", work / "x.npy",
              "-o", tmp_path / "keep.npy", "-o", tmp_path / "keep.npy"], capsys, "same file")
    assert _tree(tmp_path) == before
    assert np.array_equal(np.load(work / "x.npy"), X)


# ------------------------------------------------------------------ pconv prune (items 4, 6)

@pytest.fixture
def no_training(monkeypatch):
    import pconv_mlir.pruning as pruning

    def refuse(*args, **kwargs):
        raise AssertionError("the training started")
    monkeypatch.setattr(pruning, "fit", refuse)


@pytest.mark.parametrize("extra, needle", [
    (["--out", "{tmp}/nodir/x.pt"], "does not exist"),
    (["--out", "{tmp}"], "is a folder"),
    (["--batch-size", "0"], "--batch-size"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "-0.1"], "--lr"),
    (["--epochs", "-1"], "--epochs"),
    (["--threads", "0"], "--threads"),
    (["--threads", "100000"], "--threads"),
    (["--image-size", "0"], "--image-size"),
    (["--image-size", "100000"], "--image-size"),
    (["--model-arg", "width=0"], "empty"),
    (["--model-arg", "width=-3"], "negative"),
    (["--model-arg", "width=1000000"], "parameters"),
    (["--model-arg", "width=\"x\""], "cannot build"),
    (["--model-arg", "depth=3"], "cannot build"),
], ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_prune_refuses_bad_options_before_training(tmp_path, capsys, no_training, extra, needle):
    extra = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    out = [] if "--out" in extra else ["--out", str(tmp_path / "x.pt")]
    _refused(["prune", "--quiet", *out, *extra], capsys, needle)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ checkpoints (item 6)

def _checkpoint(tmp_path: Path, edit) -> Path:
    from pconv_mlir.models import small_cnn
    from pconv_mlir.pruning import PatternPruner, PruningConfig, save_pruned

    torch.manual_seed(0)
    model = small_cnn(width=8, num_classes=5)
    pruner = PatternPruner(PruningConfig(group_size=4, num_patterns=6)).prepare(model)
    pruner.hard_prune()
    meta = pruner.finalize()
    meta.input_shape = [1, 1, 16, 16]
    path = tmp_path / "m.pt"
    save_pruned(path, model, meta)
    raw = torch.load(path, weights_only=True)
    edit(raw)
    torch.save(raw, path)
    return path


@pytest.mark.parametrize("edit, needle", [
    (lambda r: r.pop("meta"), "'meta'"),
    (lambda r: r.pop("state_dict"), "'state_dict'"),
    (lambda r: r.update(state_dict=[1, 2]), "'state_dict'"),
    (lambda r: r.update(state_dict={"features.0.weight": "x"}), "'state_dict'"),
    (lambda r: r.update(meta=[1]), "'meta'"),
    (lambda r: r["meta"].pop("arch_kwargs"), "malformed"),
    (lambda r: r["meta"].update(arch_kwargs=[1]), "malformed"),
    (lambda r: r["meta"].update(arch_kwargs={"width": 10**6}), "parameters"),
    (lambda r: r["meta"].update(arch_kwargs={"width": -1}), "negative"),
    (lambda r: r["meta"].update(arch_kwargs={"width": "wide"}), "cannot build"),
    (lambda r: r["meta"].update(arch=7), "unknown model"),
    (lambda r: r["meta"].update(input_shape=[1, 1, 10**6, 10**6]), "elements"),
    (lambda r: r["meta"].update(input_shape=[0, 1, 16, 16]), ">= 1"),
    (lambda r: r["meta"].update(input_shape=[1, 1, 16, 16, 1, 1, 1, 1, 1]), "dimensions"),
], ids=["no-meta", "no-state-dict", "state-dict-list", "state-dict-str", "meta-list", "no-arch-kwargs",
        "arch-kwargs-list", "huge-width", "negative-width", "str-width", "arch-int", "huge-input-shape",
        "zero-input-shape", "rank-9-input-shape"])
def test_malformed_checkpoint_is_one_line(tmp_path, capsys, no_compile, edit, needle):
    path = _checkpoint(tmp_path, edit)
    _refused(["compile", path, "-o", tmp_path / "m.vmfb"], capsys, needle)
    assert not (tmp_path / "m.vmfb").exists()


@pytest.mark.parametrize("shape, needle", [
    ("0,1,16,16", ">= 1"), ("1,-1,16,16", ">= 1"), ("1,1,100000,100000", "elements"), ("", "integers"),
])
def test_input_shape_checked_before_import(tmp_path, capsys, no_compile, shape, needle):
    """0,1,16,16 was a SIGFPE inside torch-mlir."""
    path = _checkpoint(tmp_path, lambda r: None)
    _refused(["compile", path, "-o", tmp_path / "m.vmfb", "--input-shape", shape], capsys, needle)


def test_input_shape_zero_in_a_child_process(tmp_path):
    """The crash itself (SIGFPE) would take the process down: so once through the console script."""
    path = _checkpoint(tmp_path, lambda r: r["meta"].update(input_shape=[0, 1, 16, 16]))
    r = _run_pconv("compile", str(path), "-o", str(tmp_path / "m.vmfb"))
    assert r.returncode == 1, r.stderr
    errors = [l for l in r.stderr.splitlines() if "error" in l]
    assert len(errors) == 1 and "input_shape" in errors[0] and "Traceback" not in r.stderr, r.stderr


# ------------------------------------------------------------------ run / bench (items 3, 6)

def test_bench_and_run_bound_the_thread_count(work, capsys):
    _refused(["bench", work / "add.vmfb", "--threads", "100000"], capsys, "1..256")
    _refused(["bench", work / "add.vmfb", "--threads", "0"], capsys, "1..256")
    _refused(["run", work / "add.vmfb", "-i", work / "x.npy", "--threads", "-2"], capsys, "1..256")
    _refused(["bench", work / "add.vmfb", "--repeats", "0"], capsys, "--repeats")


def test_nonfinite_input_refused_unless_allowed(work, tmp_path, capsys):
    bad = X.copy()
    bad[0, 1], bad[1, 2] = np.nan, np.inf
    np.save(tmp_path / "bad.npy", bad)
    mod = load_module(work / "add.vmfb", device="local-sync")
    with pytest.raises(PconvInputError, match="input 0 holds 2 non-finite"):
        mod.run(bad)
    y = mod.run(bad, allow_nonfinite=True)
    assert np.isnan(y[0, 1]) and np.isinf(y[1, 2])
    _refused(["run", work / "add.vmfb", "-d", "local-sync", "-i", tmp_path / "bad.npy"], capsys,
             "non-finite", "--allow-nonfinite")
    _refused(["bench", work / "add.vmfb", "-d", "local-sync", "-i", tmp_path / "bad.npy"], capsys, "non-finite")
    assert cli.main(["run", str(work / "add.vmfb"), "-d", "local-sync", "-i", str(tmp_path / "bad.npy"),
                     "--allow-nonfinite", "-o", str(tmp_path / "y.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), 2 * bad, equal_nan=True)


def test_why_nonfinite_inputs_are_refused(one_thread):
    """The semantics the refusal guards: a pattern conv never reads its pruned taps, so a NaN
    there does not reach the output as it does in PyTorch's dense conv."""
    from pconv_mlir.synthetic import pattern_prune_model

    torch.manual_seed(0)
    net = pattern_prune_model(nn.Sequential(nn.Conv2d(32, 64, 3, padding=1)).eval(), group_size=32)
    x = torch.randn(1, 32, 8, 8)
    compiled = pconv_mlir.compile(net, [x])
    assert compiled.report[0].lowering.startswith("pattern"), compiled.report[0].lowering
    x[0, :, 4, 4] = float("nan")
    with pytest.raises(PconvInputError, match="non-finite"):
        compiled.run(x)
    got = compiled.run(x, allow_nonfinite=True)
    want = net(x).detach().numpy()
    assert np.isnan(want).sum() > np.isnan(got).sum()


# ------------------------------------------------------------------ module integrity (item 3)

def test_every_bit_flip_of_the_zip_framing_is_refused_or_harmless(work):
    """The member bytes are covered by their CRC-32; this tries each bit of everything else (the
    headers and the central directory), in a child process: a crash there fails the test."""
    script = textwrap.dedent(f"""
        import io, zipfile
        import numpy as np
        from pconv_mlir.errors import PconvRuntimeError
        from pconv_mlir.runtime import load_module
        data = open({str(work / "add.vmfb")!r}, "rb").read()
        spans = [(i.header_offset + 30 + len(i.filename.encode()) + len(i.extra), i.compress_size)
                 for i in zipfile.ZipFile(io.BytesIO(data)).infolist()]
        framing = [j for j in range(len(data)) if not any(a <= j < a + n for a, n in spans)]
        x = np.arange(8, dtype=np.float32).reshape(2, 4)
        refused = 0
        for j in framing:
            for bit in range(8):
                b = bytearray(data)
                b[j] ^= 1 << bit
                try:
                    y = load_module(bytes(b), device="local-sync").run(x)
                except PconvRuntimeError:
                    refused += 1
                    continue
                assert np.array_equal(y, 2 * x), (j, bit)
        print(len(framing) * 8, refused)
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    tried, refused = map(int, r.stdout.split())
    assert tried > 1000 and refused > tried // 3



@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bare") / "bare.vmfb"
    path.write_bytes(compile_mlir(ADD_MLIR, "llvm-cpu", extra_flags=["--iree-vm-emit-polyglot-zip=false"]))
    assert path.read_bytes()[:4] != b"PK\x03\x04"
    return path


def test_bare_flatbuffer_needs_a_checksum(bare, tmp_path, capsys):
    module = tmp_path / "m.vmfb"
    shutil.copy(bare, module)
    with pytest.raises(PconvRuntimeError, match="bare FlatBuffer module has no checksum"):
        load_module(module, device="local-sync")
    _refused(["run", module, "-d", "local-sync", "-i", _x_file(tmp_path)], capsys, "bare FlatBuffer")
    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    (tmp_path / "m.vmfb.sha256").write_text(f"{digest}  m.vmfb\n")
    y = load_module(module, device="local-sync").run(X)
    assert np.array_equal(y, 2 * X)
    y = load_module(bare.read_bytes(), device="local-sync", sha256=digest).run(X)
    assert np.array_equal(y, 2 * X)


def _x_file(d: Path) -> Path:
    np.save(d / "x.npy", X)
    return d / "x.npy"


def test_flipped_bit_in_a_checksummed_bare_module_is_refused(bare, tmp_path, capsys):
    """Every single-bit flip at 200 spread offsets: refused by the SHA-256 before IREE sees it
    (without it, some of these run wrong or crash: IREE checks the FlatBuffer's structure only)."""
    data = bare.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    for offset in range(0, len(data), max(1, len(data) // 200)):
        flipped = bytearray(data)
        flipped[offset] ^= 1 << (offset % 8)
        with pytest.raises(PconvRuntimeError, match="SHA-256 does not match"):
            load_module(bytes(flipped), device="local-sync", sha256=digest)
    module = tmp_path / "m.vmfb"
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    module.write_bytes(flipped)
    (tmp_path / "m.vmfb.sha256").write_text(digest + "\n")
    _refused(["run", module, "-d", "local-sync", "-i", _x_file(tmp_path)], capsys, "SHA-256 does not match")
    (tmp_path / "m.vmfb.sha256").write_text("not a digest\n")
    _refused(["run", module, "-d", "local-sync", "-i", _x_file(tmp_path)], capsys, "not a SHA-256")


# ------------------------------------------------------------------ standard streams (item 6)

def test_closed_or_full_stdout_is_one_line(work, tmp_path):
    r = subprocess.run(f"exec {BIN / 'pconv'} bench {work / 'add.vmfb'} -d local-sync --repeats 1 > /dev/full",
                       shell=True, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        "pconv bench: error: cannot write to standard output: No space left on device"], r.stderr
    # `pconv run ... | head -0`: the reader is gone before pconv writes
    p = subprocess.Popen([str(BIN / "pconv"), "run", str(work / "add.vmfb"), "-d", "local-sync",
                          "-i", str(work / "x.npy")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=120) == 1
    assert err.strip().splitlines() == ["pconv run: error: cannot write to standard output: Broken pipe"], err
    # a closed stdout or stdin acts as /dev/null: the command does its work
    out = tmp_path / "y.npy"
    r = subprocess.run(f"exec {BIN / 'pconv'} run {work / 'add.vmfb'} -d local-sync -i {work / 'x.npy'} -o {out} "
                       ">&- <&-", shell=True, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert np.array_equal(np.load(out), 2 * X)
    r = subprocess.run(f"exec {BIN / 'pconv'} --help > /dev/full", shell=True, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr


# ------------------------------------------------------------------ concurrency and signals (item 5)

def test_two_threads_compile_modules_at_once(one_thread):
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3)).eval() for _ in range(2)]
    x = torch.randn(1, 3, 8, 8)
    results: dict[int, object] = {}
    barrier = threading.Barrier(2)

    def work(i):
        barrier.wait()
        try:
            results[i] = pconv_mlir.compile(nets[i], [x])
        except Exception as e:  # reported below, with the other thread's result
            results[i] = e

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        assert not isinstance(results[i], Exception), results[i]
        got = results[i].run(x)
        assert np.abs(got - nets[i](x).detach().numpy()).max() < 1e-4


def _children(pid: int) -> dict[int, str]:
    """pid -> command name of the live children of ``pid``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry)] = name
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_compile_kills_iree_compile(tmp_path, signum):
    """iree-compile was left running as an orphan when pconv got SIGTERM."""
    from pconv_mlir.compiler import import_model
    from pconv_mlir.models import small_cnn

    torch.manual_seed(0)
    (tmp_path / "net.mlir").write_text(import_model(small_cnn(width=32), [torch.zeros(1, 1, 32, 32)]))
    p = subprocess.Popen([str(BIN / "pconv"), "compile", str(tmp_path / "net.mlir"), "--dense",
                          "-o", str(tmp_path / "net.vmfb")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    child = None
    while child is None and p.poll() is None and time.monotonic() < deadline:
        child = next((c for c, name in _children(p.pid).items() if name.startswith("iree-compile")), None)
        time.sleep(0.02)
    assert child is not None, "iree-compile never ran"
    p.send_signal(signum)
    _, err = p.communicate(timeout=60)
    time.sleep(0.2)
    assert not _alive(child), "iree-compile survived pconv"
    expected = 128 + signum if signum == signal.SIGTERM else 130
    assert p.returncode == expected, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert sorted(f.name for f in tmp_path.iterdir()) == ["net.mlir"]


def test_two_processes_fill_one_android_cache(tmp_path):
    """Two first-time bundles shared a cache and raced on iree-runtime-3.13.tmp."""
    try:
        android.fetch_runtime_tools()
        android.fetch_glibc()
    except PconvRuntimeError as e:
        pytest.skip(f"cannot fetch the aarch64 runtime tools / glibc: {e}")
    source = android.cache_dir()
    script = textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from pconv_mlir.android import fetch_glibc, fetch_runtime_tools
        cache, start = Path(sys.argv[1]), float(sys.argv[2])
        time.sleep(max(0.0, start - time.time()))
        print(fetch_runtime_tools(cache), fetch_glibc(cache))
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for round_ in range(3):
        cache = tmp_path / f"cache{round_}"
        for folder in ("wheels", "debs"):  # downloads seeded: the race is in unpacking them
            shutil.copytree(source / folder, cache / folder)
        start = time.time() + 3
        procs = [subprocess.Popen([sys.executable, "-c", script, str(cache), str(start)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (_, err) in zip(procs, outs):
            assert p.returncode == 0, err[-2000:]
        assert outs[0][0] == outs[1][0]
        tools = cache / f"iree-runtime-{android.IREE_RUNTIME_VERSION}-aarch64"
        assert sorted(f.name for f in tools.iterdir()) == sorted(android.bundler.TOOLS)
        assert not [f for f in cache.iterdir() if f.name.endswith(".tmp")]


# ------------------------------------------------------------------ Android bundles (items 1, 6)

needs_qemu = pytest.mark.skipif(shutil.which(android.QEMU) is None, reason="qemu-user-static not installed")


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory) -> Path:
    try:
        android.fetch_runtime_tools()
        android.fetch_glibc()
    except PconvRuntimeError as e:
        pytest.skip(f"cannot fetch the aarch64 runtime tools / glibc: {e}")
    d = tmp_path_factory.mktemp("android")
    (d / "arm.vmfb").write_bytes(compile_mlir(ADD_MLIR, "arm64-android"))
    return android.bundle(d / "arm.vmfb", [X], d / "bundle", references=[2 * X])


@pytest.fixture
def fake_adb(tmp_path, monkeypatch) -> Path:
    """An `adb` on PATH that logs its calls, says a phone is there, and pulls a fixed .npy."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    log = tmp_path / "adb.log"
    np.save(tmp_path / "pulled.npy", 2 * X)
    (bin_dir / "adb").write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$*" >> {log}
        [ "$1" = -s ] && shift 2
        case "$1" in
          get-state) echo device ;;
          shell) echo PCONV_RC=0 ;;
          pull) cp {tmp_path / "pulled.npy"} "$3" ;;
        esac
    """))
    os.chmod(bin_dir / "adb", 0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_fake_adb_runs_a_good_bundle(good_bundle, tmp_path, fake_adb, capsys):
    b = tmp_path / "b"
    shutil.copytree(good_bundle, b)
    assert cli.main(["android", "run", str(b)]) == 0
    assert "PASS" in capsys.readouterr().out
    calls = _calls(fake_adb)
    assert calls[1] == "shell rm -rf /data/local/tmp/pconv-bundle && mkdir -p /data/local/tmp/pconv-bundle"
    assert calls[-1].startswith("pull /data/local/tmp/pconv-bundle/output0.npy ")
    assert np.array_equal(np.load(b / "output0.npy"), 2 * X)
    assert not [f for f in b.iterdir() if f.name.endswith(".tmp")]


def _edit_meta(**changes):
    def edit(b: Path):
        meta = json.loads((b / "bundle.json").read_text())
        meta.update(changes)
        (b / "bundle.json").write_text(json.dumps(meta))
    return edit


def _victim(b: Path) -> str:
    return str(b.parent / "victim.npy")


MALICIOUS = {
    "output-absolute": (lambda b: _edit_meta(outputs=[_victim(b)])(b), "outputs[0]"),
    "output-dotdot": (_edit_meta(outputs=["../victim.npy"]), "outputs[0]"),
    "output-subdir": (_edit_meta(outputs=["sub/output0.npy"]), "outputs[0]"),
    "reference-dotdot": (_edit_meta(references=["../victim.npy"]), "references[0]"),
    "input-absolute": (lambda b: _edit_meta(inputs=[_victim(b)])(b), "inputs[0]"),
    "module-dotdot": (_edit_meta(module="../victim.vmfb"), "module"),
    "function-injection": (_edit_meta(function="main$(touch${IFS}pwned)"), "not an identifier"),
    "function-not-a-string": (_edit_meta(function=7), "not an identifier"),
    "outputs-not-a-list": (_edit_meta(outputs="output0.npy"), "must be a list"),
    "output-is-an-input": (_edit_meta(outputs=["input0.npy"]), "used twice"),
    "device-unknown": (_edit_meta(device="gpu; touch pwned"), "device"),
    "remote-dir-root": (_edit_meta(remote_dir="/"), "remote_dir"),
    "format-unknown": (_edit_meta(format="something/2"), "format"),
    "json-list": (lambda b: (b / "bundle.json").write_text("[1, 2]"), "JSON object"),
    "json-broken": (lambda b: (b / "bundle.json").write_text("{\"format\": "), "unreadable"),
    "json-not-utf8": (lambda b: (b / "bundle.json").write_bytes(b"\xff\xfe{}"), "unreadable"),
    "output-symlink": (lambda b: (b / "output0.npy").symlink_to(_victim(b)), "symlink"),
    "run-sh-edited": (lambda b: (b / "run.sh").write_text((b / "run.sh").read_text() + "touch pwned\n"), "run.sh"),
    "bench-sh-missing": (lambda b: (b / "bench.sh").unlink(), "bench.sh"),
}


@pytest.mark.parametrize("via", ["emulate", "adb"])
@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_bundle_is_refused_and_touches_nothing(good_bundle, tmp_path, fake_adb, capsys, monkeypatch,
                                                         case, via):
    edit, needle = MALICIOUS[case]
    b = tmp_path / "work" / "b"
    shutil.copytree(good_bundle, b)
    (b.parent / "victim.npy").write_bytes(b"precious")
    (b.parent / "victim.vmfb").write_bytes(b"precious")
    edit(b)
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path / "work")
    _refused(["android", "run", b, *(["--emulate"] if via == "emulate" else [])], capsys, needle)
    assert _tree(tmp_path / "work") == before
    assert not list(tmp_path.rglob("pwned"))
    assert _calls(fake_adb) == []  # refused before adb ran at all
    _refused(["android", "bench", b, *(["--emulate"] if via == "emulate" else [])], capsys, needle)
    assert _tree(tmp_path / "work") == before and _calls(fake_adb) == []


def test_missing_bundle_json_is_one_line(tmp_path, capsys, fake_adb):
    _refused(["android", "run", tmp_path, "--emulate"], capsys, "not a pconv bundle")
    _refused(["android", "run", tmp_path / "nothing-here"], capsys, "not a pconv bundle")
    assert _calls(fake_adb) == []


@pytest.mark.parametrize("remote", ["/", "/data/local/tmp", "/data/local/tmp/", "/data/local/tmp/../..",
                                    "/data/local/tmp/a/b", "/data/local/tmp/$(reboot)", "/sdcard/x", "relative"])
def test_remote_dir_is_checked_before_rm_rf(good_bundle, fake_adb, remote):
    with pytest.raises(PconvInputError, match="/data/local/tmp/NAME"):
        android.run_adb(good_bundle, remote_dir=remote)
    with pytest.raises(PconvInputError, match="/data/local/tmp/NAME"):
        android.bench_adb(good_bundle, remote_dir=remote)
    assert _calls(fake_adb) == []


def test_bundle_refuses_a_function_that_is_not_an_identifier(good_bundle, tmp_path, capsys, monkeypatch):
    module = good_bundle / "module.vmfb"
    np.save(tmp_path / "x.npy", X)
    monkeypatch.chdir(tmp_path)
    _refused(["android", "bundle", module, "-i", tmp_path / "x.npy", "-o", tmp_path / "b",
              "-f", "main$(touch${IFS}pwned)"], capsys, "--function", "not an identifier")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["x.npy"]


def test_bundle_output_dir_is_checked_and_replaced_whole(good_bundle, tmp_path, capsys):
    module = good_bundle / "module.vmfb"
    np.save(tmp_path / "x.npy", X)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    _refused(["android", "bundle", module, "-i", tmp_path / "x.npy", "-o", tmp_path / "notes"], capsys,
             "not a pconv bundle")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"
    _refused(["android", "bundle", module, "-i", tmp_path / "x.npy", "-o", tmp_path / "x.npy"], capsys,
             "not a folder")
    b = tmp_path / "b"
    assert cli.main(["android", "bundle", str(module), "-i", str(tmp_path / "x.npy"), "-o", str(b)]) == 0
    (b / "output0.npy").write_bytes(b"stale")
    assert cli.main(["android", "bundle", str(module), "-i", str(tmp_path / "x.npy"), "-o", str(b)]) == 0
    assert not (b / "output0.npy").exists()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["b", "notes", "x.npy"]  # no staging folders left
    capsys.readouterr()


def test_bundle_refuses_nonfinite_inputs(good_bundle, tmp_path, capsys):
    bad = X.copy()
    bad[0, 0] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    _refused(["android", "bundle", good_bundle / "module.vmfb", "-i", tmp_path / "bad.npy", "-o", tmp_path / "b"],
             capsys, "non-finite")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("args, needle", [
    (["--timeout", "nan"], "timeout"), (["--timeout", "0"], "timeout"), (["--tolerance", "nan"], "tolerance"),
    (["--tolerance", "-1"], "tolerance"),
])
def test_android_run_options(good_bundle, capsys, fake_adb, args, needle):
    _refused(["android", "run", good_bundle, *args], capsys, needle)
    assert _calls(fake_adb) == []


@pytest.mark.parametrize("args, needle", [(["--threads", "100000"], "1..256"), (["--repeats", "0"], "repeats")])
def test_android_bench_options(good_bundle, capsys, fake_adb, args, needle):
    _refused(["android", "bench", good_bundle, *args], capsys, needle)
    assert _calls(fake_adb) == []


@needs_qemu
def test_emulated_run_of_a_checked_bundle(good_bundle, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(good_bundle, b)
    res = android.run_emulated(b, timeout=180)
    assert res.passed and np.array_equal(res.outputs[0], 2 * X)


def test_bundle_api_errors_are_pconv_errors(good_bundle, tmp_path):
    with pytest.raises(PconvError, match="not an identifier"):
        android.bundle(good_bundle / "module.vmfb", [X], tmp_path / "b", function="../x")
    with pytest.raises(PconvError, match="thread count"):
        android.bench_emulated(good_bundle, threads=0)
