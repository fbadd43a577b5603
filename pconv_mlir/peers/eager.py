"""PyTorch eager: the reference itself, timed in this process."""

from __future__ import annotations

import numpy as np

from .base import Peer, Runner, time_loop


class _EagerRunner(Runner):
    def __init__(self, model):
        super().__init__(None)
        self.model = model.eval()

    def _call(self, x):
        import torch
        with torch.no_grad():
            return self.model(torch.from_numpy(x)).numpy()

    def _with_threads(self, threads, fn):
        import torch
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return fn()
        finally:
            torch.set_num_threads(old)

    def run(self, x, threads=1):
        return self._with_threads(threads, lambda: np.asarray(self._call(x)))

    def time_ms(self, x, threads, min_time=0.2):
        return self._with_threads(threads, lambda: time_loop(self._call, x, min_time))


class TorchEager(Peer):
    name = "pytorch"
    route = "nn.Module, eval(), torch.no_grad()"
    threads_how = "torch.set_num_threads(n) around the timing, in process"
    packages = ("torch",)

    def convert(self, model, x, workdir):
        return _EagerRunner(model)
