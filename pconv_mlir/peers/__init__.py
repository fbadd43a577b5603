"""Peer runtimes for the benchmark against PCONV's peers (``benchmarks/peers_bench.py``).

One module per runtime; each gives a :class:`~pconv_mlir.peers.base.Peer` whose
``convert(model, x, workdir)`` returns a runner with ``run(x, threads)`` and
``time_ms(x, threads, min_time)``. A peer whose package is missing says why in
``unavailable()`` and is skipped. The packages come with the ``bench`` extra
(``pip install -e '.[bench]'``, ``make bench-peers``).
"""

from __future__ import annotations

from .base import Peer, PeerUnavailable, Runner, time_loop  # noqa: F401
from .eager import TorchEager
from .inductor import TorchCompile
from .iree_llvmcpu import Iree
from .litert import LiteRt
from .mnn_express import Mnn
from .ort import OnnxRuntime
from .tvm_relax import TvmRelax

#: Column order of the tables: PyTorch first, pconv last.
PEERS: dict[str, Peer] = {p.name: p for p in (
    TorchEager(), TorchCompile(), OnnxRuntime(), LiteRt(), TvmRelax(), Mnn(), Iree(dense=True),
    Iree(dense=True, channels_last=True), Iree(dense=False))}


def get_peer(name: str) -> Peer:
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    return PEERS[name]
