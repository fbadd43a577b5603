"""torch.compile (Inductor, CPU C++/OpenMP kernels), one worker process per thread count:
Inductor fixes the OpenMP thread count in the kernels it generates, so the count is set with
torch.set_num_threads before compiling, in a fresh process."""

from __future__ import annotations

import os
import shutil

from .base import Peer, SubprocessRunner, module_reason


def load(artifact: str, threads: int):
    import torch
    torch.set_num_threads(threads)
    model = torch.load(artifact, weights_only=False).eval()
    compiled = torch.compile(model)

    def fn(x):
        with torch.no_grad():
            return compiled(torch.from_numpy(x)).numpy()
    return fn


class TorchCompile(Peer):
    name = "torch.compile"
    route = "torch.compile(model) (Inductor, default mode), compiled in the worker on first call"
    threads_how = "torch.set_num_threads(n) before compiling, one worker process per n"
    packages = ("torch",)

    def unavailable(self):
        if not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
            return "no C++ compiler on PATH (Inductor's CPU backend needs one)"
        return module_reason("torch._inductor")

    def convert(self, model, x, workdir):
        import torch
        path = os.path.join(workdir, "model.pt")
        if not os.path.exists(path):
            torch.save(model.eval(), path)
        return SubprocessRunner("inductor", path)
