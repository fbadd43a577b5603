"""MNN: ONNX -> mnnconvert -> MNN.nn module on the CPU backend (fp32, precision high)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np

from .base import Peer, Runner, import_reason
from .ort import export_onnx


def _mnnconvert() -> str | None:
    exe = os.path.join(os.path.dirname(sys.executable), "mnnconvert")
    return exe if os.path.exists(exe) else shutil.which("mnnconvert")


class _MnnRunner(Runner):
    def __init__(self, path, shape):
        super().__init__(path)
        self.shape = list(shape)
        self._nets = {}

    def _fn(self, threads):
        import MNN
        F = MNN.expr
        net = self._nets.get(threads)
        if net is None:
            rt = MNN.nn.create_runtime_manager(({"backend": "CPU", "numThread": threads, "precision": "high"},))
            net = self._nets[threads] = MNN.nn.load_module_from_file(self.artifact, ["x"], ["y"], runtime_manager=rt)

        def fn(x):
            (y,) = net.forward([F.const(x, self.shape, F.NCHW)])
            return np.array(F.convert(y, F.NCHW).read())
        return fn


class Mnn(Peer):
    name = "mnn"
    route = "ONNX (as onnxruntime) -> mnnconvert -f ONNX -> MNN.nn.load_module_from_file (CPU backend, precision high)"
    threads_how = "create_runtime_manager({'numThread': n}); one module per n"
    packages = ("mnn",)

    def unavailable(self):
        reason = import_reason("onnx", "MNN")
        if reason is None and _mnnconvert() is None:
            reason = "mnnconvert (MNN's converter, in the mnn package) not found"
        return reason

    def convert(self, model, x, workdir):
        onnx_path = export_onnx(model, x, workdir)
        path = os.path.join(workdir, "model.mnn")
        r = subprocess.run([_mnnconvert(), "-f", "ONNX", "--modelFile", onnx_path, "--MNNModel", path,
                            "--bizCode", "pconv"], capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(path):
            raise RuntimeError(f"mnnconvert failed: {(r.stdout + r.stderr).strip()[-800:]}")
        return _MnnRunner(path, x.shape)
