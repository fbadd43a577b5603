#!/usr/bin/env python3
"""This CPU's fp32 FMA peak, measured: the ceiling the per-layer tables divide by.

Builds a tiny C kernel with the system C compiler (12 independent FMA chains, the widest vector
the CPU has: AVX-512, else AVX2+FMA), runs it on 1 thread and on every core (one process per
core) and reports GMAC/s (one FMA lane = one multiply-accumulate).

    python benchmarks/cpu_peak.py [--seconds 1.0] [--realtime]
Writes results/cpu_peak.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pconv_mlir.fileio import atomic_write  # noqa: E402
from pconv_mlir.peers.bench import machine  # noqa: E402
from pconv_mlir.provenance import repo_commit  # noqa: E402
from pconv_mlir.runtime.timing import realtime_priority  # noqa: E402

KERNEL = r"""
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#if defined(__AVX512F__)
typedef __m512 V; enum { LANES = 16 };
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define STORE _mm512_storeu_ps
#else
typedef __m256 V; enum { LANES = 8 };
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
#define STORE _mm256_storeu_ps
#endif
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
  double seconds = atof(argv[1]);
  V a = SET1(0.999f), b = SET1(1e-6f);
  V c0 = SET1(0), c1 = SET1(1), c2 = SET1(2), c3 = SET1(3), c4 = SET1(4), c5 = SET1(5);
  V c6 = SET1(6), c7 = SET1(7), c8 = SET1(8), c9 = SET1(9), c10 = SET1(10), c11 = SET1(11);
  long iters = 0; double t0 = now(), t;
  do {
    for (int i = 0; i < 1000; ++i) {
      c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b); c3 = FMA(c3, a, b);
      c4 = FMA(c4, a, b); c5 = FMA(c5, a, b); c6 = FMA(c6, a, b); c7 = FMA(c7, a, b);
      c8 = FMA(c8, a, b); c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b);
    }
    iters += 1000; t = now();
  } while (t - t0 < seconds);
  V s = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(ADD(c4, c5), ADD(c6, c7)), ADD(ADD(c8, c9), ADD(c10, c11))));
  float out[LANES]; STORE(out, s);
  printf("%d %.6f %.1f\n", LANES, 12.0 * LANES * iters / (t - t0) / 1e9, out[0]);
  return 0;
}
"""


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--realtime", action="store_true", help="measure at real-time priority (root)")
    p.add_argument("--out", default=os.path.join(ROOT, "results", "cpu_peak"))
    a = p.parse_args()
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        print("cpu_peak: no C compiler (cc, gcc or clang) on PATH", file=sys.stderr)
        return 1
    flags = _cpu_flags()
    isa = ["-mavx512f"] if "avx512f" in flags else ["-mavx2", "-mfma"]
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "peak.c"), os.path.join(tmp, "peak")
        with open(src, "w") as f:
            f.write(KERNEL)
        subprocess.run([cc, "-O2", *isa, src, "-o", exe], check=True)
        cores = os.cpu_count() or 1
        runs: dict[str, list[float]] = {"1": [], str(cores): []}
        with realtime_priority(a.realtime) as rt:
            for _ in range(a.repeats):
                out = subprocess.run([exe, str(a.seconds)], capture_output=True, text=True, check=True).stdout
                lanes, gmacs = int(out.split()[0]), float(out.split()[1])
                runs["1"].append(gmacs)
                procs = [subprocess.Popen([exe, str(a.seconds)], stdout=subprocess.PIPE, text=True)
                         for _ in range(cores)]
                runs[str(cores)].append(sum(float(pr.communicate()[0].split()[1]) for pr in procs))
    best = {k: max(v) for k, v in runs.items()}
    data = {"date": datetime.date.today().isoformat(), "commit": repo_commit(), "machine": machine(),
            "isa": " ".join(isa), "vector_lanes": lanes, "compiler": cc, "realtime": rt,
            "command": "python benchmarks/cpu_peak.py " + " ".join(sys.argv[1:]),
            "gmacs_per_s": runs, "peak_gmacs_per_s": best, "peak_gmacs_per_core": best["1"]}
    atomic_write(a.out + ".json", json.dumps(data, indent=1) + "\n")
    md = [f"# fp32 FMA peak of this CPU ({data['date']})", "",
          f"Machine: {data['machine']}; commit {data['commit']}. Command: `{data['command']}`.", "",
          f"12 independent FMA chains of {lanes}-lane vectors ({data['isa']}), {a.seconds} s per run, best of "
          f"{a.repeats} (a ceiling); real-time priority: {'yes' if rt else 'no'}. 1 FMA lane = 1 MAC.", "",
          "| threads | GMAC/s (best) | all runs |", "|---|---|---|"]
    md += [f"| {k} | {best[k]:.1f} | {', '.join(f'{v:.1f}' for v in runs[k])} |" for k in runs]
    atomic_write(a.out + ".md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
