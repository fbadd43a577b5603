"""Apache TVM (Relax), untuned: ONNX -> relax.frontend.onnx -> tvm.compile for the host CPU.

Both the compile and the runs are in separate processes: TVM's thread pool reads
``TVM_NUM_THREADS`` when it starts, so each thread count gets its own worker.
No tuning: MetaSchedule on this 2-core machine would take hours per model (see the README).

    python -m pconv_mlir.peers.tvm_relax MODEL.onnx OUT.so 1,3,32,32   # compile
"""

from __future__ import annotations

import os
import sys

from .base import Peer, PeerUnavailable, SubprocessRunner, module_reason, python_module
from .ort import export_onnx

IMPORT_FAILED = 3


def compile_onnx(onnx_path: str, so_path: str, shape) -> str:
    import onnx
    import tvm
    from tvm.relax.frontend.onnx import from_onnx
    mod = from_onnx(onnx.load(onnx_path), shape_dict={"x": list(shape)}, keep_params_in_input=False)
    cpu = tvm.get_global_func("target.llvm_get_system_cpu")()
    target = tvm.target.Target({"kind": "llvm", "mcpu": cpu})
    tvm.compile(mod, target=target).export_library(so_path)
    return cpu


def load(artifact: str, threads: int):
    import tvm
    from tvm import relax
    assert os.environ.get("TVM_NUM_THREADS") == str(threads)
    vm = relax.VirtualMachine(tvm.runtime.load_module(artifact), tvm.cpu())
    f = vm["main"]

    def fn(x):
        out = f(tvm.runtime.tensor(x))
        return (out if hasattr(out, "numpy") else out[0]).numpy()
    return fn


class TvmRelax(Peer):
    name = "tvm"
    route = ("ONNX (as onnxruntime) -> relax.frontend.onnx -> tvm.compile(target llvm, mcpu=host), untuned default "
             "pipeline")
    threads_how = "TVM_NUM_THREADS=n in the environment of one worker process per n"
    packages = ("apache-tvm",)

    def unavailable(self):
        return module_reason("onnx", "tvm")

    def convert(self, model, x, workdir):
        onnx_path = export_onnx(model, x, workdir)
        so = os.path.join(workdir, "model_tvm.so")
        r = python_module("tvm_relax", onnx_path, so, ",".join(map(str, x.shape)))
        if r.returncode == IMPORT_FAILED:
            # a broken install (e.g. typing_extensions downgraded under tvm) is a skip reason
            raise PeerUnavailable(f"tvm fails to import: {(r.stderr.strip().splitlines() or ['?'])[-1][:200]}")
        if r.returncode != 0:
            raise RuntimeError(f"TVM compile failed: {r.stderr.strip()[-800:]}")
        runner = SubprocessRunner("tvm_relax", so, env=lambda t: {"TVM_NUM_THREADS": str(t)})
        runner.info["mcpu"] = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "?"
        return runner


if __name__ == "__main__":
    try:
        import tvm.relax.frontend.onnx  # noqa: F401
    except Exception:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        raise SystemExit(IMPORT_FAILED) from None
    print(compile_onnx(sys.argv[1], sys.argv[2], [int(v) for v in sys.argv[3].split(",")]))
