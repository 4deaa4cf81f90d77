"""The benchmark scripts run (a tiny configuration): they import the package's internals, so a
refactor that breaks them must fail here, not at the next speed measurement."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent / "benchmarks"
FIXTURE = Path(__file__).parent / "fixtures" / "v0.1.0" / "translate.pt"
DEMO_EN = Path(__file__).parent.parent / "data" / "demo" / "test.en"


@pytest.mark.parametrize("script, args, expect", [
    ("bench_translate_speed.py", ["--steps", "1", "--rounds", "1", "--precision", "fp32"],
     "fp32: lstm-nlp"),
    ("bench_lm_speed.py", ["--steps", "2", "--rounds", "1", "--precision", "fp32"], "fp32"),
    ("bench_matmul.py", ["--repeats", "1"], "output layer chunk"),
    ("bench_onnx_translate.py", ["--model", str(FIXTURE), "--src", str(DEMO_EN), "--limit", "8",
                                 "--rounds", "1", "--beams", "1"],
     "beam 1 identical to onnxruntime's: torch fp32 8/8"),
    ("bench_token_store.py", ["--gigabytes", "0.0003", "--steps", "2", "--more-steps", "1",
                              "--eval-kb", "3", "--workdir", "{tmp}/bench"],
     "stores reused by --resume and the second start: True"),
    ("bench_decode_speed.py", ["--model", str(FIXTURE),
                               "--src", str(DEMO_EN), "--limit", "20",
                               "--rounds", "1"], "GFLOP per sentence"),
])
def test_benchmark_runs(script, args, expect, tmp_path):
    args = [arg.format(tmp=tmp_path) for arg in args]
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert expect in done.stdout


def test_decode_benchmark_counts_one_step_of_matrix_products():
    """One decoder row of an input-feeding model with embeddings 8, hidden 8 and 20 target
    pieces: gates 32 x (8 + 8) and 32 x 8, attention output 8 x 16, output layer 20 x 8."""
    sys.path.insert(0, str(BENCH))
    try:
        from bench_decode_speed import step_macs
    finally:
        sys.path.remove(str(BENCH))
    from lstm_nlp.tasks.translate.model import Seq2SeqModel

    model = Seq2SeqModel(20, 20, 0, 8, 8, 1, 1, True, "general", True, 0.0, True, True)
    assert step_macs(model) == 32 * 16 + 32 * 8 + 8 * 16 + 20 * 8
