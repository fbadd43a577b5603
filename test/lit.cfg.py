# lit configuration for pconv-mlir's FileCheck tests (pip lit + pip filecheck).
import os

import lit.formats

config.name = "pconv-mlir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["lit.cfg.py", "python", "data"]

repo = os.path.dirname(config.test_source_root)
venv_bin = os.path.join(repo, ".venv", "bin")
config.environment["PATH"] = os.pathsep.join([venv_bin, os.environ.get("PATH", "")])
config.environment["PYTHONDONTWRITEBYTECODE"] = "1"
config.substitutions.append(("%python", os.path.join(venv_bin, "python")))
