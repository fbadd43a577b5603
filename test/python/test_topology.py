"""Thread count and CPU affinity options: checks, IREE flags, CLI lines (no timing)."""

import os
import subprocess
import sys

import pytest

from pconv_mlir.errors import PconvInputError
from pconv_mlir.runtime.topology import MAX_THREADS, check_affinity, check_threads, parse_cpu_ids, topology_flags


def test_parse_cpu_ids():
    assert parse_cpu_ids("0,2-3") == (0, 2, 3)
    assert parse_cpu_ids([1, 0]) == (1, 0)
    assert parse_cpu_ids(None) is None


@pytest.mark.parametrize("bad", ["", "a", "3-1", "0,0", "-1", [0, 0], [0.5], [True], 7, [MAX_THREADS]])
def test_bad_cpu_ids(bad):
    with pytest.raises(PconvInputError):
        parse_cpu_ids(bad)


@pytest.mark.parametrize("bad", [0, -1, MAX_THREADS + 1, 1.5, True, "2"])
def test_bad_threads(bad):
    with pytest.raises(PconvInputError, match="thread count"):
        check_threads(bad)


def test_affinity_and_threads_must_agree():
    cpu = sorted(os.sched_getaffinity(0))[0]
    assert check_affinity([cpu], 1) == (cpu,)
    assert check_affinity(str(cpu), None) == (cpu,)
    with pytest.raises(PconvInputError, match="one worker per listed CPU"):
        check_affinity([cpu], 2)


def test_affinity_names_cpus_of_this_process_only():
    missing = max(os.sched_getaffinity(0)) + 1
    with pytest.raises(PconvInputError, match="not available to this process"):
        check_affinity([missing], None)
    assert check_affinity([missing], None, local=False) == (missing,)  # a phone's CPUs: form only


def test_topology_flags():
    assert topology_flags(None, None) == []
    assert topology_flags(3, None) == ["--task_topology_group_count=3"]
    assert topology_flags(None, (4, 5)) == ["--task_topology_cpu_ids=4,5"]


def test_android_options_build_tool_flags():
    from pconv_mlir.android.runner import _bench_flags, _check_run_options

    assert _check_run_options(None, 10, threads=2) == ["--task_topology_group_count=2"]
    flags = _bench_flags(_check_run_options(None, 10, cpu_affinity="4-7", repeats=3), 3)
    assert "--task_topology_cpu_ids=4,5,6,7" in flags and "--benchmark_repetitions=3" in flags
    with pytest.raises(PconvInputError, match="local-task device only"):
        _check_run_options("vulkan", 10, threads=2)


@pytest.mark.parametrize("args,message", [
    (["--threads", "0"], "thread count"),
    (["--cpu-affinity", "0,0"], "lists a CPU twice"),
    (["--cpu-affinity", "0", "--threads", "2"], "one worker per listed CPU"),
    (["--cpu-affinity", "4096"], "CPU ids must be in"),
])
def test_cli_rejects_bad_topology_in_one_line(tmp_path, args, message):
    for cmd in ("run", "bench"):
        r = subprocess.run([sys.executable, "-m", "pconv_mlir.cli.main", cmd, str(tmp_path / "missing.vmfb"), *args],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and message in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


ADD = """func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
  %r = arith.addf %a, %a : tensor<4xf32>
  return %r : tensor<4xf32>
}
"""


def test_bench_pins_workers_in_a_new_process(tmp_path):
    from pconv_mlir.targets import compile_mlir

    module = tmp_path / "add.vmfb"
    module.write_bytes(compile_mlir(ADD, "llvm-cpu"))
    cpu = sorted(os.sched_getaffinity(0))[-1]
    r = subprocess.run([sys.executable, "-m", "pconv_mlir.cli.main", "bench", str(module), "--cpu-affinity", str(cpu),
                        "--repeats", "1", "--warmup", "0"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "threads 1" in r.stdout, r.stderr
    code = ("import sys; from pconv_mlir.runtime import load_module; from pconv_mlir.errors import PconvError\n"
            f"m = load_module(sys.argv[1], cpu_affinity=[{cpu}]); assert m.threads == 1\n"
            "try:\n    load_module(sys.argv[1], threads=2)\nexcept PconvError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code, str(module)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "already runs 1 worker" in r.stdout, r.stderr + r.stdout
