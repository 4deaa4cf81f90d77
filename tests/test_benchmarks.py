"""The benchmark scripts run (a tiny configuration): they import the package's internals, so a
refactor that breaks them must fail here, not at the next speed measurement."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent / "benchmarks"
ROOT = Path(__file__).resolve().parent.parent
FIXTURE_MODEL = ROOT / "tests" / "fixtures" / "v0.1.0" / "translate.pt"


@pytest.mark.parametrize("script, args, expect", [
    ("bench_translate_speed.py", ["--steps", "1", "--rounds", "1", "--precision", "fp32"],
     "fp32: lstm-nlp"),
    ("bench_lm_speed.py", ["--steps", "2", "--rounds", "1", "--precision", "fp32"], "fp32"),
    ("bench_matmul.py", ["--repeats", "1"], "output layer chunk"),
    ("bench_decode_speed.py", ["--model", str(FIXTURE_MODEL),
                               "--src", str(ROOT / "data" / "demo" / "test.en"), "--limit", "20",
                               "--rounds", "1"], "beam 5 fp32"),
])
def test_benchmark_runs(script, args, expect):
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert expect in done.stdout
