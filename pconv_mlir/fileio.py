"""Writing output files atomically, and checking output paths before the work starts.

Every file the ``pconv`` CLI and :meth:`CompiledModel.save` write goes through
:func:`atomic_write`: the bytes go to a temporary file in the destination's folder, which is
fsynced and then renamed over the destination. A failed write (a full disk, a signal) leaves
the old file as it was and no temporary file behind.

:func:`check_output_paths` runs before a command does its work: each output's folder exists
and is writable, no output is an existing folder, an input, or another output.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from pconv_mlir.errors import PconvInputError

__all__ = ["atomic_write", "save_npy", "check_output_paths", "check_output_dir", "same_file"]

_CHUNK = 1 << 20
# The write primitive, a module attribute so that tests can make it fail (ENOSPC) mid-way.
_os_write = os.write


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once: os.umask can only be read by setting it, which is not thread-safe later on.
_UMASK = _umask()


def _error(path: str | os.PathLike, err: OSError) -> PconvInputError:
    return PconvInputError(f"cannot write {os.fspath(path)}: {err.strerror or err}")


def atomic_write(path: str | os.PathLike, data: bytes | bytearray | memoryview | str) -> None:
    """Write ``data`` (str as UTF-8) to ``path`` atomically: a temporary file in the same folder,
    fsync, rename over ``path``. ``path`` that is a symlink is followed (its target is replaced).
    Raises :class:`PconvInputError` naming ``path`` when the write fails; the old file survives."""
    if isinstance(data, str):
        data = data.encode()
    target = Path(os.path.realpath(path))
    mode = 0o666 & ~_UMASK
    try:
        mode = os.stat(target).st_mode & 0o7777  # keep an existing file's permissions
    except OSError:
        pass
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:64]}.", suffix=".tmp")
    except OSError as err:
        raise _error(path, err) from None
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data).cast("B")
            while view:
                written = _os_write(fd, view[:_CHUNK])
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException as err:  # also a signal (pconv's SIGTERM handler): no temporary file left
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise _error(path, err) from None
        raise
    _fsync_dir(target.parent)


def save_npy(path: str | os.PathLike, array) -> None:
    """``numpy.save`` through :func:`atomic_write` (``path`` taken as given: no ``.npy`` added)."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write(path, buffer.getbuffer())


def save_torch(path: str | os.PathLike, obj) -> None:
    """``torch.save`` through :func:`atomic_write`: a failed write leaves an older file as it was."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(path, buffer.getbuffer())


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (best effort: some file systems refuse fsync on folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name one file (the same inode, or the same path once resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _writable_dir(folder: Path, what: str, path: str) -> None:
    if not folder.is_dir():
        raise PconvInputError(f"{what} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PconvInputError(f"{what} {path}: folder {folder} is not writable")


def check_output_paths(outputs: Iterable[tuple[str, str | os.PathLike | None]],
                       inputs: Iterable[str | os.PathLike | None] = ()) -> None:
    """Check ``(what, path)`` outputs (``what`` names the option, e.g. ``-o``) before any work:
    each folder exists and is writable, no output is a folder, an input, or another output.
    ``None`` paths are skipped. Raises :class:`PconvInputError` with one line."""
    seen: list[tuple[str, str]] = []
    ins = [os.fspath(p) for p in inputs if p is not None]
    for what, path in outputs:
        if path is None:
            continue
        path = os.fspath(path)
        if not path:
            raise PconvInputError(f"{what}: empty path")
        resolved = Path(os.path.realpath(path))
        if resolved.is_dir():
            raise PconvInputError(f"{what} {path}: is a folder, not a file")
        _writable_dir(resolved.parent, what, path)
        for source in ins:
            if same_file(path, source):
                raise PconvInputError(f"{what} {path} is the input {source}: refusing to overwrite it")
        for other_what, other in seen:
            if same_file(path, other):
                raise PconvInputError(f"{what} and {other_what} are the same file ({path})")
        seen.append((what, path))


def check_output_dir(what: str, path: str | os.PathLike | None) -> None:
    """Check a folder an option will create or fill (e.g. ``--dump-ir``): it is a writable folder,
    or it does not exist yet and its nearest existing ancestor is a writable folder."""
    if path is None:
        return
    path = os.fspath(path)
    if not path:
        raise PconvInputError(f"{what}: empty path")
    folder = Path(os.path.realpath(path))
    if folder.exists():
        if not folder.is_dir():
            raise PconvInputError(f"{what} {path}: exists and is not a folder")
        _writable_dir(folder, what, path)
        return
    ancestor = folder.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise PconvInputError(f"{what} {path}: {ancestor} is not a folder")
    _writable_dir(ancestor, what, path)
