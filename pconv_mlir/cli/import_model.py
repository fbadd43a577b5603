"""``pconv import MODEL.pt2 -o MODEL.mlir``: a torch.export program to linalg-on-tensors MLIR,
the input of ``pconv compile`` and ``pconv-opt``."""

from __future__ import annotations

import argparse

from pconv_mlir.errors import PconvInputError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("import", help="convert a torch.export program (.pt2) to linalg MLIR",
                              description="Import MODEL.pt2 (torch.export.save of torch.export.export(model, "
                                          "(x,))) with torch-mlir to linalg-on-tensors .mlir, as pconv compile "
                                          "and pconv-opt read it.")
    p.add_argument("input", metavar="MODEL.pt2", help="torch.export.save archive")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.mlir", help="output .mlir")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pconv_mlir.fileio import atomic_write, check_output_paths
    from pconv_mlir.frontend import load_exported_program, pickled_model_help

    check_output_paths([("-o", args.output)], inputs=[args.input])
    if args.input.endswith(".pt"):
        raise PconvInputError(pickled_model_help(args.input) if _is_pickle(args.input) else
                              f"{args.input}: pconv import reads torch.export programs (.pt2)")
    if not args.input.endswith(".pt2"):
        raise PconvInputError(f"{args.input}: expected a torch.export program (.pt2, torch.export.save)")
    from pconv_mlir.compiler import import_model

    text = import_model(load_exported_program(args.input), None)
    atomic_write(args.output, text)
    print(f"wrote {args.output} ({len(text):,} characters of linalg-on-tensors MLIR)")
    return 0


def _is_pickle(path: str) -> bool:
    """A torch.save file (a zip holding data.pkl): looked at, never unpickled."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/data.pkl") for n in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
