"""Worker process for a peer that needs its own process per thread count.

    python -m pconv_mlir.peers._worker MODULE ARTIFACT THREADS

Loads ``pconv_mlir.peers.MODULE.load(ARTIFACT, THREADS)`` (a callable x -> output), answers
``{"ready": true}``, then one JSON line per request on stdin: ``{"op": "run", "x": npy, "out": npy}``
or ``{"op": "time", "x": npy, "min_time": s}`` -> ``{"ms": median}``. Library chatter on stdout
is moved to stderr so the protocol stays clean.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

import numpy as np


def main() -> int:
    module, artifact, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def say(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    from pconv_mlir.peers.base import time_loop
    try:
        fn = importlib.import_module(f"pconv_mlir.peers.{module}").load(artifact, threads)
    except Exception as e:  # noqa: BLE001
        say({"error": f"load: {type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}"})
        return 1
    say({"ready": True})
    for line in sys.stdin:
        try:
            req = json.loads(line)
            x = np.load(req["x"])
            if req["op"] == "run":
                np.save(req["out"], np.asarray(fn(x)))
                say({"ok": True})
            elif req["op"] == "time":
                say({"ms": time_loop(fn, x, float(req.get("min_time", 0.2)))})
            else:
                say({"error": f"unknown op {req['op']!r}"})
        except Exception as e:  # noqa: BLE001
            say({"error": f"{type(e).__name__}: {e}"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
