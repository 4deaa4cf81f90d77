"""What a run report's figures and gate statistics cost, in seconds (wall and CPU), for finished
run folders: each measurement in a fresh process where torch is imported and matplotlib is not,
in the order `train` pays them at the end of a run: matplotlib starts loading in the background
(`figures.warm_up`), the test split is scored (timed too: what the loading hides behind), then
the figures are drawn and the gate statistics taken. The runs alternate, round after round.

    python tests/benchmarks/bench_report_cost.py runs/demo-translate runs/demo-lm \
        runs/demo-sentiment --rounds 3
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(run: Path) -> dict[str, float]:
    """One run folder: the report's figures (into a temporary folder) and its gate
    statistics, timed."""
    from lstm_nlp.config import load_recipe
    from lstm_nlp.reporting import figures
    from lstm_nlp.reporting.console import read_metrics
    from lstm_nlp.tasks import gates, registry
    from lstm_nlp.training import checkpoint, insight

    recipe = load_recipe(run / "recipe.yaml")
    spec = registry.get(recipe.task)
    task, _, _ = spec.api().setup(recipe, run, True)  # its validation data
    model, tok, _ = checkpoint.load_model(run)
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    out = {}
    wall, cpu = time.perf_counter(), time.process_time()
    figures.warm_up()
    spec.api().test_report(model, tok, recipe)
    out["test_wall"], out["test_cpu"] = time.perf_counter() - wall, time.process_time() - cpu
    with tempfile.TemporaryDirectory() as folder:
        wall, cpu = time.perf_counter(), time.process_time()
        insight.report_figures(Path(folder), recipe, spec, read_metrics(run / "metrics.jsonl"),
                               report["best_step"], report["test"])
        out["figures_wall"], out["figures_cpu"] = (time.perf_counter() - wall,
                                                   time.process_time() - cpu)
    wall, cpu = time.perf_counter(), time.process_time()
    gates.validation_section(spec.name, model, task)
    out["gates_wall"], out["gates_cpu"] = time.perf_counter() - wall, time.process_time() - cpu
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # the child: one measurement, one JSON line
        importlib.import_module("torch")  # before the clock starts, as in a run
        print(json.dumps(measure(args.runs[0])))
        return
    results: dict[Path, list[dict[str, float]]] = {run: [] for run in args.runs}
    for _ in range(args.rounds):
        for run in args.runs:
            done = subprocess.run([sys.executable, __file__, "--one", str(run)],
                                  capture_output=True, text=True, check=True)
            results[run].append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = results[run][-1]
            print(f"{run}: test scoring {r['test_wall']:.2f} s wall, {r['test_cpu']:.2f} s CPU "
                  f"(matplotlib loading behind it); figures {r['figures_wall']:.2f} s wall, "
                  f"{r['figures_cpu']:.2f} s CPU; gate statistics {r['gates_wall']:.2f} s wall, "
                  f"{r['gates_cpu']:.2f} s CPU", flush=True)
    for run, rows in results.items():
        medians = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"median {run}: test scoring {medians['test_wall']:.2f} s wall; "
              f"figures {medians['figures_wall']:.2f} s wall "
              f"({medians['figures_cpu']:.2f} CPU), gate statistics {medians['gates_wall']:.2f} "
              f"s wall ({medians['gates_cpu']:.2f} CPU)")


if __name__ == "__main__":
    main()
