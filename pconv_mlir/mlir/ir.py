"""Every MLIR Python binding the project uses, imported in one place.

The pconv dialect and passes live on the upstream MLIR bindings shipped inside the
torch-mlir wheel (they have IRDL and ``dialects.ext``; IREE's do not). These APIs move
between LLVM versions, so the rest of the code imports them from here only.
"""

from torch_mlir import ir, passmanager
from torch_mlir.dialects import arith, func, linalg, tensor
from torch_mlir.dialects import ext as dialect_ext

PassManager = passmanager.PassManager
MLIRError = ir.MLIRError

__all__ = ["ir", "passmanager", "PassManager", "MLIRError", "arith", "func", "linalg", "tensor", "dialect_ext"]
