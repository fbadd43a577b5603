"""Writing self-contained Android / aarch64 bundles of a compiled module.

A bundle is a folder that runs a .vmfb on an aarch64 device with nothing
installed there:

    iree-run-module, iree-benchmark-module   aarch64 tools from the manylinux
                                             aarch64 iree-base-runtime wheel
                                             (same version as the compiler)
    ld-linux-aarch64.so.1, libc.so.6, ...    aarch64 glibc loader + libraries
                                             (Debian's *-arm64-cross packages)
    module.vmfb, input0.npy ...              the module and its inputs
    reference0.npy ...                       optional expected outputs
    run.sh, bench.sh                         run through the bundled loader:
        ./ld-linux-aarch64.so.1 --library-path . ./iree-run-module --module=...
    bundle.json                              metadata (function, device, files)

The tools are glibc programs, so on Android they run through the bundled loader
(Android's kernel runs them; bionic is not involved).  Consequences: CPU modules
(``local-task``/``local-sync``) run on a phone; the ``vulkan`` device needs the
phone's bionic ``libvulkan.so``, which a glibc process cannot load, so Vulkan on a
phone needs IREE tools built with the Android NDK (see docs/android.md).

The bundle is run by :mod:`pconv_mlir.android.runner` (on a phone through adb, or here
under ``qemu-aarch64-static``).

Downloads are cached in ``$PCONV_MLIR_CACHE`` (default ``~/.cache/pconv-mlir``):
``pip download`` of the aarch64 wheel and ``apt-get download`` of
libc6-arm64-cross, libgcc-s1-arm64-cross and libstdc++6-arm64-cross (``Architecture:
all`` packages, so no multiarch setup is needed; they are unpacked with
``dpkg-deb -x``, not installed).  If ``/usr/aarch64-linux-gnu/lib`` already holds
the libraries (those packages installed), it is used directly.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pconv_mlir.errors import PconvInputError, PconvRuntimeError, first_line
from pconv_mlir.fileio import save_npy
from pconv_mlir.runtime.buffers import to_numpy
from pconv_mlir.runtime.device import DEVICES
from pconv_mlir.runtime.module import check_finite, function_signature, read_vmfb
from pconv_mlir.runtime.signature import check_arrays

__all__ = [
    "IREE_RUNTIME_VERSION",
    "REMOTE_DIR",
    "cache_dir",
    "fetch_runtime_tools",
    "fetch_glibc",
    "bundle",
    "load_bundle",
    "bundle_scripts",
    "check_file_name",
    "check_function_name",
    "check_remote_dir",
]

IREE_RUNTIME_VERSION = "3.13.0"
REMOTE_DIR = "/data/local/tmp/pconv-bundle"
TOOLS = ("iree-run-module", "iree-benchmark-module")
LOADER = "ld-linux-aarch64.so.1"
# Libraries the two tools need (readelf -d NEEDED, closed over libstdc++).
GLIBC_LIBS = (
    LOADER,
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libgcc_s.so.1",
    "libstdc++.so.6",
)
CROSS_DEBS = ("libc6-arm64-cross", "libgcc-s1-arm64-cross", "libstdc++6-arm64-cross")
SYSTEM_CROSS_LIB = Path("/usr/aarch64-linux-gnu/lib")
BUNDLE_FORMAT = "pconv-android-bundle/1"

# A bundle is untrusted input: every name read from bundle.json is a plain file name in the bundle
# (no '/', no '..', no leading '.' or '-'), the function an identifier, the remote folder one plain
# name under /data/local/tmp. What the names are used for (host paths, shell words) needs no more.
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_REMOTE_DIR = re.compile(r"/data/local/tmp/[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_file_name(name: Any, what: str, suffix: str) -> str:
    """``name`` if it is a plain file name ending in ``suffix``; else PconvInputError."""
    if not isinstance(name, str) or not _FILE_NAME.fullmatch(name) or ".." in name or not name.endswith(suffix):
        raise PconvInputError(f"{what} {name!r} is not a plain {suffix} file name "
                              "(letters, digits, '.', '_', '-'; no '/' or '..')")
    return name


def check_function_name(name: Any, what: str = "function") -> str:
    """``name`` if it is an identifier (letters, digits, '_'); else PconvInputError."""
    if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
        raise PconvInputError(f"{what} {name!r} is not an identifier (letters, digits, '_')")
    return name


def check_remote_dir(path: Any, what: str = "remote folder") -> str:
    """``path`` if it is ``/data/local/tmp/NAME`` with a plain NAME: the folder ``pconv android``
    deletes (``rm -rf``) and refills on the phone; else PconvInputError."""
    if not isinstance(path, str) or not _REMOTE_DIR.fullmatch(path) or ".." in path:
        raise PconvInputError(f"{what} {path!r} must be /data/local/tmp/NAME with a plain NAME "
                              "(letters, digits, '.', '_', '-')")
    return path


def cache_dir() -> Path:
    d = Path(os.environ.get("PCONV_MLIR_CACHE") or Path.home() / ".cache" / "pconv-mlir")
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def _cache_lock(cache: Path) -> Iterator[None]:
    """One process at a time fills the cache (bundles made in parallel share it)."""
    with open(cache / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _staging_dir(cache: Path, name: str) -> Iterator[Path]:
    """A fresh folder in the cache, removed afterwards unless renamed away."""
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=f".{name}.", suffix=".tmp"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(staged: Path, final: Path) -> None:
    """Rename the filled ``staged`` folder to ``final`` (under the cache lock)."""
    os.chmod(staged, 0o755)
    shutil.rmtree(final, ignore_errors=True)
    staged.rename(final)


def run_tool(cmd: Sequence[str], timeout: float, what: str, **kw) -> subprocess.CompletedProcess:
    """Runs ``cmd`` capturing its output; a missing program or a timeout is a one-line
    PconvRuntimeError that says ``what`` was being done."""
    try:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, **kw
        )
    except FileNotFoundError:
        raise PconvRuntimeError(f"{what}: `{cmd[0]}` not found") from None
    except subprocess.TimeoutExpired:
        raise PconvRuntimeError(f"{what}: timed out after {timeout:.0f} s: {shlex.join(cmd)}") from None


def tail(s: str, n: int = 8) -> str:
    """The last ``n`` non-blank lines of a tool's output, for error messages."""
    lines = [l for l in (s or "").strip().splitlines() if l.strip()]
    return "\n".join(lines[-n:])


def fetch_runtime_tools(cache: Path | None = None, timeout: float = 600) -> Path:
    """Returns a directory holding the aarch64 iree-run-module and
    iree-benchmark-module (downloading the wheel into the cache if needed). Safe when several
    processes fill one cache at once: they take turns (a lock) and publish by rename."""
    cache = cache or cache_dir()
    tools = cache / f"iree-runtime-{IREE_RUNTIME_VERSION}-aarch64"
    if all((tools / t).is_file() for t in TOOLS):
        return tools
    with _cache_lock(cache):
        if all((tools / t).is_file() for t in TOOLS):  # another process filled it meanwhile
            return tools
        wheels = cache / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        pat = f"iree_base_runtime-{IREE_RUNTIME_VERSION}-*aarch64*.whl"
        found = sorted(wheels.glob(pat))
        if not found:
            with _staging_dir(cache, "wheels") as tmp:
                cmd = [
                    sys.executable, "-m", "pip", "download", "--only-binary=:all:",
                    "--platform", "manylinux_2_28_aarch64", "--python-version", "3.11",
                    "--no-deps", f"iree-base-runtime=={IREE_RUNTIME_VERSION}", "-d", str(tmp),
                ]
                r = run_tool(cmd, timeout, "downloading the aarch64 iree-base-runtime wheel")
                for wheel in tmp.glob(pat):
                    wheel.rename(wheels / wheel.name)
            found = sorted(wheels.glob(pat))
            if r.returncode != 0 or not found:
                raise PconvRuntimeError(
                    "cannot download the aarch64 iree-base-runtime wheel "
                    f"({shlex.join(cmd)}):\n{tail(r.stderr or r.stdout)}"
                )
        with _staging_dir(cache, tools.name) as tmp:
            try:
                with zipfile.ZipFile(found[-1]) as z:
                    for t in TOOLS:
                        with z.open(f"iree/_runtime_libs/{t}") as src, open(tmp / t, "wb") as dst:
                            shutil.copyfileobj(src, dst)
                        os.chmod(tmp / t, 0o755)
            except (KeyError, zipfile.BadZipFile) as e:
                raise PconvRuntimeError(f"{found[-1]}: unexpected wheel contents: {e}") from None
            _publish(tmp, tools)
    return tools


def fetch_glibc(cache: Path | None = None, timeout: float = 300) -> Path:
    """Returns a directory holding the aarch64 glibc loader and the libraries
    in GLIBC_LIBS. Safe under concurrency, as :func:`fetch_runtime_tools`."""
    if all((SYSTEM_CROSS_LIB / l).exists() for l in GLIBC_LIBS):
        return SYSTEM_CROSS_LIB
    cache = cache or cache_dir()
    root = cache / "aarch64-glibc"
    lib_in = Path("usr") / "aarch64-linux-gnu" / "lib"
    if all((root / lib_in / l).exists() for l in GLIBC_LIBS):
        return root / lib_in
    with _cache_lock(cache):
        if all((root / lib_in / l).exists() for l in GLIBC_LIBS):
            return root / lib_in
        debs = cache / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        for pkg in CROSS_DEBS:
            if list(debs.glob(f"{pkg}_*.deb")):
                continue
            with _staging_dir(cache, "debs") as tmp:
                r = run_tool(["apt-get", "download", pkg], timeout, f"apt-get download {pkg}", cwd=tmp)
                for deb in tmp.glob(f"{pkg}_*.deb"):
                    deb.rename(debs / deb.name)
            if r.returncode != 0 or not list(debs.glob(f"{pkg}_*.deb")):
                raise PconvRuntimeError(
                    f"cannot download Debian package {pkg} (needed for the aarch64 glibc "
                    f"loader): {tail(r.stderr or r.stdout, 3)}. Alternatively install "
                    f"{' '.join(CROSS_DEBS)} (files land in {SYSTEM_CROSS_LIB})."
                )
        with _staging_dir(cache, root.name) as tmp:
            for deb in sorted(debs.glob("*.deb")):
                r = run_tool(["dpkg-deb", "-x", str(deb), str(tmp)], timeout, f"dpkg-deb -x {deb.name}")
                if r.returncode != 0:
                    raise PconvRuntimeError(f"cannot unpack {deb}: {tail(r.stderr)}")
            missing = [l for l in GLIBC_LIBS if not (tmp / lib_in / l).exists()]
            if missing:
                raise PconvRuntimeError(f"aarch64 glibc libraries missing after unpacking: {missing}")
            _publish(tmp, root)
    return root / lib_in


def _module_signature(vmfb: bytes, function: str):
    """(inputs, outputs) TensorSpecs of ``function`` read from the module's
    reflection metadata (no device needed)."""
    import iree.runtime as rt

    try:
        mod = rt.VmModule.copy_buffer(rt.VmInstance(), vmfb)
    except Exception as e:
        raise PconvRuntimeError(f"corrupt or truncated module: {first_line(e)}") from None
    return function_signature(mod, function)


def _copy_resolved(src: Path, dst: Path) -> None:
    shutil.copyfile(src.resolve(), dst)
    os.chmod(dst, 0o755)


# run.sh and bench.sh: one of the two tools on the bundled module, through the bundled loader
# (or, for Android-built tools, directly). Every value comes from a checked bundle.json and is
# shell-quoted.
_SCRIPT = """#!/bin/sh
# {verb} {module} {how}.
#   ./{script} [extra {tool} flags{example}]
# Environment: PCONV_DEVICE (default {device}), PCONV_EXEC_PREFIX (e.g.
# qemu-aarch64-static for an emulated run on x86).
cd "$(dirname "$0")" || exit 1
DEFAULT_DEVICE={device}
DEVICE="${{PCONV_DEVICE:-$DEFAULT_DEVICE}}"
exec $PCONV_EXEC_PREFIX {launcher}./{tool} \\
  {module_flag} --device="$DEVICE" {function_flag} \\
{flags}  "$@"
"""


def bundle_scripts(meta: dict) -> dict[str, str]:
    """The text of run.sh and bench.sh for a checked bundle.json (:func:`load_bundle`): what
    :func:`bundle` writes, and what the runner requires to find before it runs a bundle."""
    q = shlex.quote
    in_flags = "".join(f"  {q('--input=@' + n)} \\\n" for n in meta["inputs"])
    io_flags = in_flags + "".join(f"  {q('--output=@' + n)} \\\n" for n in meta["outputs"])
    android = meta.get("tools") == "android"
    fmt = dict(module=meta["module"], device=q(meta["device"]),
               how="with the bundled Android (NDK) tools" if android else "through the bundled aarch64 glibc loader",
               launcher="" if android else f"./{LOADER} --library-path . ",
               module_flag=q(f"--module={meta['module']}"), function_flag=q(f"--function={meta['function']}"))
    return {
        "run.sh": _SCRIPT.format(verb="Runs", script="run.sh", tool="iree-run-module", example="",
                                 flags=io_flags, **fmt),
        "bench.sh": _SCRIPT.format(verb="Benchmarks", script="bench.sh", tool="iree-benchmark-module",
                                   example=", e.g. --task_topology_group_count=4", flags=in_flags, **fmt),
    }


def _check_bundle_target(out: Path) -> None:
    """``out`` may be created, or replaced as a whole: it is absent, an empty folder or an older
    bundle (it holds bundle.json); never a file or another folder with things in it."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise PconvInputError(f"{out}: exists and is not a folder")
        if any(out.iterdir()) and not (out / "bundle.json").is_file():
            raise PconvInputError(f"{out}: folder is not empty and not a pconv bundle; refusing to replace it")
    parent = out.parent
    if not parent.is_dir():
        raise PconvInputError(f"{out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PconvInputError(f"{out}: folder {parent} is not writable")


def _replace_dir(staged: Path, out: Path) -> None:
    """Put the complete bundle ``staged`` at ``out``; an older bundle there is removed only after."""
    os.chmod(staged, 0o755)
    if not out.exists():
        staged.rename(out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name[:64]}.", suffix=".old"))
    out.rename(old)  # onto the empty folder mkdtemp made
    try:
        staged.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _phone_device(vmfb: bytes, src: str, device: str | None) -> str:
    """The device a bundle of ``vmfb`` runs on (None: the module's); refuses a module with CPU
    code for another architecture than the phone's (an llvm-cpu module is x86-64 code)."""
    from pconv_mlir.runtime.module_info import module_info

    info = module_info(vmfb)
    if info.cpu_archs - {"arm_64"}:
        raise PconvInputError(f"{src}: compiled for {info.what} ({info.archs} code), which a phone cannot run: "
                              "compile it with "
                              "--target arm64-android (or a vulkan-* target) for the bundle")
    if info.vulkan and device not in (None, "vulkan"):
        raise PconvInputError(f"{src}: compiled for {info.what}, which runs on the vulkan device, not {device}")
    if info.cpu_archs and device == "vulkan":
        raise PconvInputError(f"{src}: compiled for {info.what}, which runs on local-task or local-sync, not vulkan")
    return device or info.default_device()


def bundle(
    module: str | os.PathLike | bytes,
    inputs: Sequence[Any],
    out_dir: str | os.PathLike,
    device: str | None = None,
    function: str = "main",
    references: Sequence[Any] | None = None,
    cache: Path | None = None,
    allow_nonfinite: bool = False,
    android_tools: str | os.PathLike | None = None,
) -> Path:
    """Writes a self-contained aarch64 bundle (see module docstring).

    ``inputs`` are numpy arrays / torch tensors or paths to .npy files;
    ``references`` (optional) are the expected outputs, compared by
    ``pconv android run``.  Inputs are checked against the module's signature, and must be
    finite unless ``allow_nonfinite`` (see :func:`pconv_mlir.runtime.check_finite`).
    The bundle is written in a temporary folder next to ``out_dir`` and renamed into place:
    an older bundle at ``out_dir`` stays as it was until the new one is complete.
    ``android_tools``: a folder with ``iree-run-module`` and ``iree-benchmark-module`` built for
    Android with the NDK (bionic; docs/android.md): bundled instead of the glibc tools and run
    directly. The glibc tools cannot load Android's ``libvulkan.so``, so Vulkan on a phone needs them.
    """
    if device is not None and device not in DEVICES:
        raise PconvInputError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    check_function_name(function)
    out = Path(os.path.realpath(out_dir))
    _check_bundle_target(out)
    vmfb, src = read_vmfb(module)
    device = _phone_device(vmfb, src, device)
    in_specs, out_specs = _module_signature(vmfb, function)

    arrays = []
    for i, x in enumerate(inputs):
        if isinstance(x, (str, os.PathLike)):
            try:
                x = np.load(x, allow_pickle=False)
            except Exception as e:
                raise PconvInputError(f"cannot read input {i} from {x}: {e}") from None
        elif not isinstance(x, np.ndarray):
            x = to_numpy(x, f"input {i}")
        arrays.append(np.ascontiguousarray(x))
    check_arrays(arrays, in_specs, function)
    if not allow_nonfinite:
        check_finite(arrays)

    refs = []
    for i, r in enumerate(references or []):
        if isinstance(r, (str, os.PathLike)):
            try:
                r = np.load(r, allow_pickle=False)
            except Exception as e:
                raise PconvInputError(f"cannot read reference {i} from {r}: {e}") from None
        refs.append(np.asarray(r))
    if refs and len(refs) != len(out_specs):
        raise PconvInputError(f"{function} has {len(out_specs)} output(s), got {len(refs)} reference(s)")

    if android_tools is not None:
        tools, libc, libs = check_android_tools(android_tools), None, ()
    else:
        tools, libc, libs = fetch_runtime_tools(cache), fetch_glibc(cache), GLIBC_LIBS

    meta = dict(
        format=BUNDLE_FORMAT,
        iree_runtime=IREE_RUNTIME_VERSION,
        module="module.vmfb",
        function=function,
        device=device,
        inputs=[f"input{i}.npy" for i in range(len(arrays))],
        input_types=[s.mlir_type for s in in_specs],
        outputs=[f"output{i}.npy" for i in range(len(out_specs))],
        output_types=[s.mlir_type for s in out_specs],
        references=[f"reference{i}.npy" for i in range(len(refs))],
        remote_dir=REMOTE_DIR,
        tools="android" if android_tools is not None else "glibc",
    )
    staged = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name[:64]}.", suffix=".tmp"))
    try:
        for t in TOOLS:
            _copy_resolved(tools / t, staged / t)
        for l in libs:
            _copy_resolved(libc / l, staged / l)
        (staged / "module.vmfb").write_bytes(vmfb)
        for name, a in [*zip(meta["inputs"], arrays), *zip(meta["references"], refs)]:
            save_npy(staged / name, a)
        for name, text in bundle_scripts(meta).items():
            (staged / name).write_text(text)
            os.chmod(staged / name, 0o755)
        (staged / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n")
        _replace_dir(staged, out)
    except OSError as e:
        raise PconvInputError(f"cannot write the bundle {out}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return out


def _elf_interpreter(path: Path) -> tuple[int, str | None]:
    """(e_machine, PT_INTERP path or None) of a 64-bit little-endian ELF file; ValueError if not one."""
    import struct

    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF program")
    machine = struct.unpack_from("<H", data, 18)[0]
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return machine, data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode(errors="replace")
    return machine, None


def check_android_tools(folder: str | os.PathLike) -> Path:
    """``folder``, checked to hold IREE's two runtime tools built for Android arm64 (AArch64 ELF
    programs run by bionic's /system/bin/linker64), else PconvInputError saying what is wrong."""
    d = Path(folder)
    for t in TOOLS:
        f = d / t
        if not f.is_file():
            raise PconvInputError(f"{d}: no {t} (build IREE's runtime tools with the Android NDK: docs/android.md)")
        try:
            machine, interp = _elf_interpreter(f)
        except (OSError, ValueError, IndexError) as e:
            raise PconvInputError(f"{f}: not an Android arm64 program ({first_line(e)})") from None
        if machine != 183:  # EM_AARCH64
            raise PconvInputError(f"{f}: built for ELF machine {machine}, not AArch64 (183)")
        if interp is not None and not interp.startswith("/system/bin/linker64"):
            raise PconvInputError(f"{f}: its loader is {interp}, not Android's /system/bin/linker64 (a glibc build "
                                  "cannot load the phone's libvulkan.so)")
    return d


def _bad_bundle(f: Path, why: str) -> PconvInputError:
    return PconvInputError(f"{f}: not a usable bundle: {why} (re-create it with `pconv android bundle`)")


def load_bundle(bundle_dir: str | os.PathLike) -> dict:
    """The checked metadata (``bundle.json``) of the bundle in ``bundle_dir``.

    A bundle is untrusted input: every file name must be a plain name of a regular file in the
    bundle (see :func:`check_file_name`), the function an identifier, the device known, no
    name used twice, and no entry of the folder a symlink. PconvInputError otherwise."""
    d = Path(bundle_dir)
    f = d / "bundle.json"
    if not f.is_file():
        raise PconvRuntimeError(f"{d}: not a pconv bundle (no bundle.json; make one with `pconv android bundle`)")
    try:
        meta = json.loads(f.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise _bad_bundle(f, f"unreadable: {first_line(e)}") from None
    if not isinstance(meta, dict):
        raise _bad_bundle(f, "not a JSON object")
    if meta.get("format") != BUNDLE_FORMAT:
        raise _bad_bundle(f, f"format {meta.get('format')!r}, expected {BUNDLE_FORMAT!r}")
    try:
        check_file_name(meta.get("module"), "module", ".vmfb")
        check_function_name(meta.get("function"))
        if meta.get("device") not in DEVICES:
            raise PconvInputError(f"device {meta.get('device')!r} is not one of {', '.join(DEVICES)}")
        names = [meta["module"]]
        for key in ("inputs", "outputs", "references"):
            value = meta.get(key, [] if key == "references" else None)
            if not isinstance(value, list):
                raise PconvInputError(f"{key} must be a list of file names")
            names += [check_file_name(n, f"{key}[{i}]", ".npy") for i, n in enumerate(value)]
            meta[key] = value
        if meta["references"] and len(meta["references"]) != len(meta["outputs"]):
            raise PconvInputError(f"{len(meta['references'])} references for {len(meta['outputs'])} outputs")
        if len(set(names)) != len(names):
            raise PconvInputError("a file name is used twice")
        if "remote_dir" in meta:
            check_remote_dir(meta["remote_dir"], "remote_dir")
        if meta.setdefault("tools", "glibc") not in ("glibc", "android"):
            raise PconvInputError(f"tools {meta['tools']!r} is not glibc or android")
    except PconvInputError as e:
        raise _bad_bundle(f, str(e)) from None
    links = sorted(e.name for e in os.scandir(d) if e.is_symlink())
    if links:
        raise _bad_bundle(f, f"{links[0]} is a symlink (a bundle holds regular files only)")
    return meta
