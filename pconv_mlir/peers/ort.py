"""ONNX Runtime (CPU execution provider). Also the ONNX export that TVM and MNN start from."""

from __future__ import annotations

import os
import warnings

from .base import Peer, Runner, import_reason

ONNX_OPSET = 17


def export_onnx(model, x, workdir: str) -> str:
    """``workdir/model.onnx`` (exported once per workdir): torch.onnx's TorchScript exporter
    (opset 17, constant folding; in eval mode it folds BatchNorm into the convs), input ``x``,
    output ``y``; the torch.export-based exporter if that fails."""
    import torch
    path = os.path.join(workdir, "model.onnx")
    if os.path.exists(path):
        return path
    xt = torch.from_numpy(x)
    model = model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (xt,), path, dynamo=False, opset_version=ONNX_OPSET,
                              input_names=["x"], output_names=["y"], do_constant_folding=True)
    except Exception:  # noqa: BLE001 - fall back to the torch.export route
        torch.onnx.export(model, (xt,), path, dynamo=True, input_names=["x"], output_names=["y"],
                          external_data=False)
    return path


class _OrtRunner(Runner):
    def __init__(self, path):
        super().__init__(path)
        self._sessions = {}

    def _fn(self, threads):
        import onnxruntime as ort
        s = self._sessions.get(threads)
        if s is None:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            s = self._sessions[threads] = ort.InferenceSession(self.artifact, so, providers=["CPUExecutionProvider"])
        return lambda x: s.run(None, {"x": x})[0]


class OnnxRuntime(Peer):
    name = "onnxruntime"
    route = ("torch.onnx.export (TorchScript exporter, opset 17) -> InferenceSession (CPUExecutionProvider, "
             "ORT_ENABLE_ALL)")
    threads_how = "SessionOptions.intra_op_num_threads=n, inter_op_num_threads=1, sequential; one session per n"
    packages = ("onnxruntime", "onnx")

    def unavailable(self):
        return import_reason("onnx", "onnxruntime")

    def convert(self, model, x, workdir):
        return _OrtRunner(export_onnx(model, x, workdir))
