"""A way in from the user's own model: ``torch.export``'s ``.pt2`` (an ExportedProgram).

``torch.export.load`` unpickles parts of a ``.pt2`` file with ``weights_only=False`` (tensor
subclasses, custom objects, and sample inputs that fail the ``weights_only`` load), so it can
run code from the file. :func:`check_pt2` reads the archive first, without unpickling
anything that could run code: every pickled member must load with ``torch.load(weights_only=True)``
(plain tensors and containers), and members that only a full unpickler reads (custom or opaque
objects, AOTInductor code, the pre-2.8 legacy layout) are refused. What passes is then loaded
by ``torch.export.load``, whose pickled loads all succeed with ``weights_only=True`` first.

A ``torch.save(model)`` file is a pickle of the model's classes: it is never unpickled here
(:data:`PICKLED_MODEL_HELP` says what to do instead).
"""

from __future__ import annotations

import io
import json
import os
import zipfile

from pconv_mlir.errors import PconvInputError

__all__ = ["check_pt2", "load_exported_program", "pickled_model_help"]


def pickled_model_help(path: str | os.PathLike) -> str:
    """One line for a file that needs a full unpickler (a ``torch.save(model)`` file)."""
    return (f"{path}: a pickled model (torch.save(model)); pconv does not unpickle files (that can run code "
            "from them). Export it instead: torch.export.save(torch.export.export(model.eval(), (x,)), "
            "'model.pt2'), then `pconv compile model.pt2` or `pconv import model.pt2 -o model.mlir`")


# Members of a torch.export.save archive (after its top folder) that are read as text or raw bytes.
_PLAIN_PREFIXES = ("models/", "extra/", ".data/", "data/weights/weight_", "data/constants/tensor_")
_PLAIN_NAMES = {"archive_format", "archive_version", "byteorder"}


def _weights_only_ok(blob: bytes) -> bool:
    import torch

    try:
        torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception:
        return False
    return True


def check_pt2(path: str | os.PathLike) -> None:
    """PconvInputError unless ``path`` is a ``torch.export.save`` archive that
    ``torch.export.load`` reads without running pickled code (see the module docstring)."""
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise PconvInputError(f"{path}: no such file") from None
    except (OSError, zipfile.BadZipFile) as err:
        raise PconvInputError(f"{path}: not a torch.export .pt2 archive ({err})") from None
    with archive:
        names = archive.namelist()
        top = {n.split("/", 1)[0] for n in names}
        if len(top) != 1 or not any(n.endswith("/archive_format") for n in names):
            if any(n.endswith("/data.pkl") for n in names):
                raise PconvInputError(pickled_model_help(path))
            raise PconvInputError(f"{path}: not a torch.export .pt2 archive (torch.export.save writes one)")
        (prefix,) = top
        rel = {n[len(prefix) + 1:]: n for n in names if "/" in n}
        pickled = []  # members torch.export.load unpickles
        for name in rel:
            if name.startswith("data/aotinductor/"):
                raise PconvInputError(f"{path}: holds AOTInductor code; export the model with torch.export only")
            if name.startswith("data/sample_inputs/"):
                pickled.append(name)
            elif name.endswith("_config.json") and name.startswith(("data/weights/", "data/constants/")):
                folder = name.rsplit("/", 1)[0]
                try:
                    config = json.loads(archive.read(rel[name]))["config"]
                    entries = list(config.values())
                except (ValueError, KeyError, TypeError, AttributeError) as err:
                    raise PconvInputError(f"{path}: malformed {name} ({err})") from None
                for entry in entries:
                    member = f"{folder}/{entry.get('path_name', '')}" if isinstance(entry, dict) else ""
                    if not isinstance(entry, dict) or member not in rel:
                        raise PconvInputError(f"{path}: malformed {name}")
                    if entry.get("path_name", "").startswith(("custom_obj_", "opaque_obj_")):
                        raise PconvInputError(f"{path}: holds pickled Python objects (custom/opaque constants), "
                                              "which pconv does not unpickle")
                    if entry.get("use_pickle"):
                        pickled.append(member)
            elif name.endswith(".pt") or not (name in _PLAIN_NAMES or name.startswith(_PLAIN_PREFIXES)
                                              or name.endswith("_config.json")):
                raise PconvInputError(f"{path}: unexpected member {name!r} (a legacy or unknown .pt2 layout; "
                                      "re-export it with this torch's torch.export.save)")
        for name in pickled:
            if not _weights_only_ok(archive.read(rel[name])):
                raise PconvInputError(f"{path}: {name} holds pickled objects other than tensors, which pconv "
                                      "does not unpickle")


def load_exported_program(path: str | os.PathLike):
    """The ExportedProgram in ``path`` (``torch.export.save``), after :func:`check_pt2`."""
    import logging

    import torch

    check_pt2(path)
    logger = logging.getLogger("torch.export")  # its load logs a traceback before raising: one line is ours
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return torch.export.load(path)
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise PconvInputError(f"{path}: torch.export.load failed: {type(err).__name__}: {first}") from None
    finally:
        logger.setLevel(level)
