"""LiteRT (TFLite) with its default XNNPACK delegate; the model comes from litert-torch.

The conversion runs in a subprocess (litert-torch pulls in JAX, torchao and its own torch
decompositions; the harness process stays clean):

    python -m pconv_mlir.peers.litert MODEL.pt X.npy OUT.tflite
"""

from __future__ import annotations

import os
import sys

from .base import Peer, Runner, import_reason, module_reason, python_module


class _LiteRtRunner(Runner):
    def __init__(self, path):
        super().__init__(path)
        self._interps = {}

    def _fn(self, threads):
        it = self._interps.get(threads)
        if it is None:
            from ai_edge_litert.interpreter import Interpreter
            it = self._interps[threads] = Interpreter(model_path=self.artifact, num_threads=threads)
            it.allocate_tensors()
        (inp,), (out,) = it.get_input_details(), it.get_output_details()

        def fn(x):
            it.set_tensor(inp["index"], x)
            it.invoke()
            return it.get_tensor(out["index"])
        return fn


class LiteRt(Peer):
    name = "tflite"
    route = ("litert_torch.convert(model, (x,)) (torch.export -> TFLite flatbuffer, fp32, no TensorFlow) "
             "-> ai_edge_litert Interpreter (default XNNPACK delegate)")
    threads_how = "Interpreter(num_threads=n); one interpreter per n"
    packages = ("ai-edge-litert", "litert-torch")

    def unavailable(self):
        return import_reason("ai_edge_litert.interpreter") or module_reason("litert_torch")

    def convert(self, model, x, workdir):
        import numpy as np
        import torch
        mpath, xpath = os.path.join(workdir, "model.pt"), os.path.join(workdir, "x.npy")
        path = os.path.join(workdir, "model.tflite")
        if not os.path.exists(mpath):
            torch.save(model.eval(), mpath)
        np.save(xpath, x)
        r = python_module("litert", mpath, xpath, path)
        if r.returncode != 0 or not os.path.exists(path):
            raise RuntimeError(f"litert_torch.convert failed: {r.stderr.strip()[-800:]}")
        return _LiteRtRunner(path)


def _convert(model_path: str, x_path: str, out: str) -> None:
    import contextlib
    import io

    import litert_torch
    import numpy as np
    import torch
    model = torch.load(model_path, weights_only=False).eval()
    with contextlib.redirect_stdout(io.StringIO()):
        litert_torch.convert(model, (torch.from_numpy(np.load(x_path)),)).export(out)


if __name__ == "__main__":
    _convert(*sys.argv[1:4])
