"""`lstm-nlp search`: the space file checked before any trial, grid and shared studies, trials
that fail, get pruned or are interrupted, --resume, the report and the best recipe. Trials are
tiny trainings of the demo sentiment recipe (a few steps each)."""

import json
import shutil
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

from lstm_nlp.cli import app
from lstm_nlp.config import load_recipe
from lstm_nlp.errors import ConfigError
from lstm_nlp.search import study as studies
from lstm_nlp.search.space import load_space
from lstm_nlp.training import checkpoint

from test_signals import lstm_nlp

optuna = pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "recipes" / "demo-sentiment.yaml"
TINY = [f"data.dir={ROOT / 'data' / 'demo' / 'sentiment'}", "train.max_steps=6",
        "train.valid_every=3", "model.emb_size=8", "model.hidden_size=8", "train.threads=1"]
runner = CliRunner()


def write_space(path: Path, space: dict) -> Path:
    path.write_text(yaml.safe_dump(space), encoding="utf-8")
    return path


def search_args(space: Path, run_dir: Path, *more: str, overrides=TINY) -> list[str]:
    sets = [arg for item in overrides for arg in ("--set", item)]
    return ["search", str(DEMO), "--space", str(space), "--run-dir", str(run_dir), *sets, *more]


def search(space: Path, run_dir: Path, *more: str, overrides=TINY):
    """`lstm-nlp search` in this process (its workers are processes of their own)."""
    return runner.invoke(app, search_args(space, run_dir, *more, overrides=overrides))


def trials_of(run_dir: Path) -> list:
    storage = studies.default_storage(run_dir)
    name = optuna.get_all_study_names(storage)[0]
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def report(run_dir: Path) -> dict:
    return json.loads((run_dir / "report.json").read_text())


# -- the space file ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def base():
    return load_recipe(DEMO, TINY).to_dict()


@pytest.mark.parametrize("entry, message", [
    ({"model.hiden_size": [8, 16]},
     "unknown key 'model.hiden_size'; did you mean 'model.hidden_size'?"),
    ({"modle.dropout": [0.1]}, "unknown key 'modle'; did you mean 'model'?"),
    ({"model.hidden_size": {"uniform": [8, 64]}},
     "model.hidden_size: expected an integer, got 8.0 (from uniform: [8.0, 64.0]; int: "
     "[low, high] draws integers)"),
    ({"model.pooling": ["max", "maxx"]},
     "model.pooling: must be one of last, max, mean, attention, concat; got 'maxx'"),
    ({"model.dropout": {"uniform": [0.1, 1.5]}},
     "model.dropout: must be between 0.0 and 0.99, got 1.5"),
    ({"model.bidirectional": [True, "yes"]},
     "model.bidirectional: expected true or false, got 'yes'"),
    ({"model.dropout": {"gaussian": [0.1, 0.2]}}, "model.dropout: unknown distribution 'gaussian'; "
     "(one of log_uniform, uniform, int, choice)"),
    ({"train.lr": {"loguniform": [1e-4, 1e-2]}},
     "train.lr: unknown distribution 'loguniform'; did you mean 'log_uniform'?"),
    ({"model.dropout": {"uniform": [0.5, 0.1]}},
     "model.dropout: uniform: low must be below high, got [0.5, 0.1]"),
    ({"train.lr": {"log_uniform": [0, 0.1]}}, "train.lr: log_uniform: low must be above 0"),
    ({"model.layers": {"int": [1.5, 3]}}, "model.layers: int needs [low, high], two integers"),
    ({"model.dropout": 0.3}, "model.dropout: expected one distribution"),
    ({"model.pooling": []}, "model.pooling: choice needs a list of values"),
    ({"model.pooling": ["max", "max"]}, "model.pooling: a value is listed twice"),
    ({"task": ["lm"]}, "task: not a key a search can vary"),
])
def test_a_bad_space_is_one_line_naming_the_key(tmp_path, base, entry, message):
    space = write_space(tmp_path / "space.yaml", entry)
    with pytest.raises(ConfigError) as e:
        load_space(space, base)
    assert str(e.value).startswith(f"{space}: ") and message in str(e.value), str(e.value)


def test_a_space_reads_numbers_as_numbers_and_leaves_cross_key_rules_to_the_trials(tmp_path, base):
    """1e-4 (no dot) is a number, as in recipes; `chunk` needs a unidirectional encoder, which
    another key decides: a trial with both fails alone, the space is not refused."""
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {log_uniform: [1e-4, 1e-2]}\nmodel.long_text: [head, chunk]\n")
    loaded = load_space(space, base)
    assert loaded.to_dict() == {"train.lr": {"log_uniform": [1e-4, 1e-2]},
                                "model.long_text": {"choice": ["head", "chunk"]}}


def test_grid_needs_lists(tmp_path, base):
    space = write_space(tmp_path / "space.yaml", {"model.dropout": {"uniform": [0.1, 0.5]}})
    with pytest.raises(ConfigError, match="--sampler grid needs a list of values for every key"):
        load_space(space, base, grid=True)


def test_the_cli_refuses_a_bad_space_before_any_trial(tmp_path):
    space = write_space(tmp_path / "space.yaml", {"model.hiden_size": [8, 16]})
    result = search(space, tmp_path / "run", "--trials", "2")
    assert result.exit_code == 1
    assert "did you mean 'model.hidden_size'?" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_a_chain_recipe_is_refused(tmp_path):
    space = write_space(tmp_path / "space.yaml", {"seed": [1, 2]})
    result = runner.invoke(app, ["search", str(ROOT / "recipes" / "sst2-pretrained.yaml"),
                                 "--space", str(space), "--trials", "2", "--run-dir",
                                 str(tmp_path / "run")])
    assert result.exit_code == 1 and "search a chain's stages one at a time" in \
        " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


def test_without_optuna_one_line_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if not installed
    space = write_space(tmp_path / "space.yaml", {"model.hidden_size": [8, 16]})
    result = search(space, tmp_path / "run", "--trials", "2")
    assert result.exit_code == 1
    assert " ".join(result.output.split()) == ("error: lstm-nlp search needs optuna, which is not "
                                     "installed: pip install 'lstm-nlp[search]'")


# -- which trials count -----------------------------------------------------------------------

def fake(number, state, **system_attrs):
    return SimpleNamespace(number=number, state=optuna.trial.TrialState[state],
                           system_attrs=system_attrs)


@pytest.mark.parametrize("trials, mine, grid, surplus", [
    # a new trial counts after those numbered before it, the database's order
    ([fake(0, "COMPLETE"), fake(1, "RUNNING"), fake(2, "RUNNING")], 2, False, True),
    ([fake(0, "COMPLETE"), fake(1, "RUNNING"), fake(2, "RUNNING")], 1, False, False),
    # interrupted trial 0 is continued by 2: only 2 counts
    ([fake(0, "FAIL"), fake(1, "COMPLETE"), fake(2, "RUNNING", **{studies.RETRIES: [0]})],
     2, False, False),
    # a queued trial counts after every other counted one
    ([fake(0, "FAIL", **{studies.RETRIES: []}), fake(1, "RUNNING"), fake(2, "RUNNING"),
      fake(3, "RUNNING", fixed_params={})], 3, False, True),
    # a trial made past --trials in a race neither counts nor is counted
    ([fake(0, "COMPLETE"), fake(1, "FAIL", **{studies.SURPLUS: True}), fake(2, "RUNNING")],
     2, False, False),
    # a grid runs only its queued points
    ([fake(0, "COMPLETE", fixed_params={}), fake(1, "RUNNING")], 1, True, True),
])
def test_surplus_keeps_the_count_exact(trials, mine, grid, surplus):
    assert studies.surplus(trials, trials[mine], 2, grid) is surplus


# -- searches ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """A finished grid search of 2 x 2 points, asked for more trials than the grid has."""
    folder = tmp_path_factory.mktemp("grid")
    space = write_space(folder / "space.yaml", {"model.hidden_size": [8, 16],
                                                "model.pooling": ["max", "mean"]})
    result = search(space, folder / "run", "--trials", "10", "--sampler", "grid",
                    "--pruner", "none")
    assert result.exit_code == 0, result.output
    return SimpleNamespace(space=space, run=folder / "run", output=result.output)


def test_grid_search_visits_every_point_once(grid_run):
    trials = trials_of(grid_run.run)
    points = sorted((t.params["model.hidden_size"], t.params["model.pooling"]) for t in trials)
    assert points == [(8, "max"), (8, "mean"), (16, "max"), (16, "mean")]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert "the grid has 4 points: 4 trials" in grid_run.output
    for t in trials:  # each trial an ordinary run with its values, validated, no test split
        folder = grid_run.run / f"trial-{t.number:04d}"
        recipe = yaml.safe_load((folder / "recipe.yaml").read_text())
        assert recipe["model"]["hidden_size"] == t.params["model.hidden_size"]
        assert recipe["data"]["test"] == ""
        assert (folder / "best.pt").is_file()
        assert len(t.intermediate_values) == 2  # validations at steps 3 and 6
    table = (grid_run.run / "report.md").read_text()
    assert "4 trials: 4 complete" in table and "| 3 | complete | 16 |" in table
    for figure in ("history", "importances", "parallel"):
        assert (grid_run.run / f"{figure}.png").stat().st_size > 1000


def test_best_recipe_is_a_plain_recipe_that_trains(grid_run, tmp_path):
    from lstm_nlp.training.run import train as train_run

    best = report(grid_run.run)["best"]
    path = grid_run.run / "best-recipe.yaml"
    recipe = yaml.safe_load(path.read_text())
    assert recipe["model"]["hidden_size"] == best["params"]["model.hidden_size"]
    assert recipe["model"]["pooling"] == best["params"]["model.pooling"]
    assert recipe["data"]["test"] == "test" and recipe["name"] == "demo-sentiment-search-best"
    run = train_run(path, [], run_dir=tmp_path / "best")
    assert json.loads((run / "report.json").read_text())["test"]["accuracy"] is not None


def test_resume_keeps_finished_trials_and_refuses_another_space_or_recipe(grid_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(grid_run.run, run)
    result = search(grid_run.space, run, "--trials", "10", "--sampler", "grid")
    assert result.exit_code == 1 and "already exists; continue its study with --resume" in \
        result.output
    other = write_space(tmp_path / "other.yaml", {"model.hidden_size": [8, 32]})
    result = search(other, run, "--trials", "10", "--sampler", "grid", "--resume")
    assert result.exit_code == 1
    assert "the search space differs from the study's at model.hidden_size" in result.output
    result = search(grid_run.space, run, "--trials", "10", "--resume",
                    overrides=[*TINY, "model.emb_size=16"])
    assert result.exit_code == 1
    assert "the recipe differs from the study's at model.emb_size (8 in the study, 16 now)" in \
        result.output
    result = search(grid_run.space, run, "--trials", "10", "--sampler", "grid", "--resume")
    assert result.exit_code == 0, result.output
    assert len(trials_of(run)) == 4  # nothing run again
    result = search(grid_run.space, tmp_path / "empty", "--trials", "2", "--resume")
    assert result.exit_code == 1 and "no study in" in result.output


def start_study(tmp_path: Path, space: dict, trials: int, overrides: list[str],
                sampler: str = "tpe"):
    """What `lstm-nlp search` does before its workers start: the study, its base recipe, the
    grid queued; -> the settings a worker (run_trials, called in this process) takes."""
    from lstm_nlp.config import save_recipe
    from lstm_nlp.search import run

    request = run.Request(DEMO, write_space(tmp_path / "space.yaml", space), trials=trials,
                          sampler=sampler, run_dir=tmp_path / "run", overrides=overrides)
    recipe = load_recipe(DEMO, overrides)
    loaded = load_space(request.space, recipe.to_dict(), grid=sampler == "grid")
    settings = run.make_settings(request, recipe)
    _, study = run.open_study(request, settings, {"recipe": recipe.to_dict(),
                                                  "space": loaded.to_dict()})
    save_recipe(recipe, settings.base_recipe)
    if sampler == "grid":
        studies.queue_grid(study, loaded.grid())
    return SimpleNamespace(settings=settings, study=study, request=request)


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tmp_path):
    """`chunk` needs a unidirectional encoder: that trial fails with the recipe's reason, the
    next one trains, and the report says both."""
    from lstm_nlp.search import summary
    from lstm_nlp.search.trial import run_trials

    search = start_study(tmp_path, {"model.long_text": ["chunk", "head"]}, 2, TINY, "grid")
    assert run_trials(search.settings) == 2
    states = {t.params["model.long_text"]: t for t in trials_of(tmp_path / "run")}
    assert states["chunk"].state == optuna.trial.TrialState.FAIL
    assert "needs model.bidirectional: false" in states["chunk"].user_attrs["error"]
    assert states["head"].state == optuna.trial.TrialState.COMPLETE
    summary.write(search.study, search.settings, DEMO, search.request.space)
    assert report(tmp_path / "run")["best"]["params"] == {"model.long_text": "head"}
    text = (tmp_path / "run" / "report.md").read_text()
    assert "2 trials: 1 failed, 1 complete" in text and "| 0 | failed | chunk |" in text
    assert "parameter importances: they need at least 2 complete trials (1 so far)" in text


def test_a_pruned_trial_stops_like_early_stopping(tmp_path):
    """A pruner that must prune (validation accuracy is never 99% here): each trial stops at
    its first validation, keeps its checkpoints and report, and is told pruned."""
    from lstm_nlp.search.trial import run_trials

    search = start_study(tmp_path, {"train.lr": {"log_uniform": [1e-3, 1e-2]}}, 2,
                         [*TINY, "train.max_steps=30"])
    assert run_trials(search.settings, pruner=optuna.pruners.ThresholdPruner(lower=0.99)) == 2
    for t in trials_of(tmp_path / "run"):
        assert t.state == optuna.trial.TrialState.PRUNED
        assert t.user_attrs["pruned"].startswith("pruned at validation 1 (step 3, val accuracy")
        folder = tmp_path / "run" / f"trial-{t.number:04d}"
        assert (folder / "best.pt").is_file() and (folder / "report.md").is_file()
        assert [r["step"] for r in map(json.loads, (folder / "metrics.jsonl").read_text(
            ).splitlines())] == [3]
        assert json.loads((folder / "report.json").read_text())["stop_reason"].startswith(
            "pruned at validation 1")


def wait_for(condition, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_two_processes_share_one_sqlite_study(tmp_path):
    """Two searches on one study (the second joins with --resume): 4 trials in all, none run
    twice, by both processes."""
    space = write_space(tmp_path / "space.yaml", {"train.lr": {"log_uniform": [1e-3, 1e-2]},
                                                  "model.dropout": {"uniform": [0.1, 0.5]}})
    run = tmp_path / "run"
    args = search_args(space, run, "--trials", "4", "--pruner", "none",
                       overrides=[*TINY, "train.max_steps=40", "train.valid_every=20"])[1:]
    first = lstm_nlp("search", *args, cwd=tmp_path)
    wait_for(lambda: (run / "base-recipe.yaml").is_file())  # the study exists
    second = lstm_nlp("search", *args, "--resume", cwd=tmp_path)
    for proc in (first, second):
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-2000:]
    trials = trials_of(run)
    shown = [t for t in trials if not t.system_attrs.get(studies.SURPLUS)]
    assert len(shown) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in shown)
    assert len({t.number for t in shown}) == 4
    assert len({t.user_attrs["pid"] for t in shown}) == 2  # each process ran some
    assert sorted(p.name for p in run.glob("trial-*")) == [f"trial-{t.number:04d}"
                                                            for t in shown]


def test_a_search_stopped_by_ctrl_c_resumes_to_its_trials(tmp_path):
    """SIGINT while a trial trains: that trial saves its last.pt, the search exits 130, and
    --resume continues the trial from its checkpoint and finishes the study's 2 trials."""
    space = write_space(tmp_path / "space.yaml", {"train.lr": {"log_uniform": [1e-3, 1e-2]}})
    run = tmp_path / "run"
    args = search_args(space, run, "--trials", "2", "--pruner", "none",
                       overrides=[*TINY, "train.max_steps=2000", "train.valid_every=5"])[1:]
    proc = lstm_nlp("search", *args, cwd=tmp_path)
    metrics = run / "trial-0000" / "metrics.jsonl"
    wait_for(lambda: metrics.is_file() and len(metrics.read_text().splitlines()) >= 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert "search stopped by Ctrl-C (SIGINT) after 0 of 2 trials; --resume continues it" in \
        " ".join(err.decode().split())
    assert (run / "trial-0000" / "last.pt").is_file()

    before = metrics.read_text().splitlines()
    saved = checkpoint.load(run / "trial-0000" / "last.pt")["train_state"]["step"]
    limit = (saved // 5 + 2) * 5  # a limit may change on --resume: 5-10 more steps
    args[args.index("train.max_steps=2000")] = f"train.max_steps={limit}"
    result = runner.invoke(app, ["search", *args, "--resume"])
    assert result.exit_code == 0, result.output
    trials = {t.number: t for t in trials_of(run)}
    assert trials[0].state == optuna.trial.TrialState.FAIL
    assert trials[0].user_attrs["interrupted"].startswith("stopped by Ctrl-C (SIGINT) at step")
    assert trials[1].system_attrs[studies.RETRIES] == [0]  # trial 1 continues trial 0 ...
    assert trials[1].params == trials[0].params
    rows = (run / "trial-0001" / "metrics.jsonl").read_text().splitlines()
    assert rows[:len(before)] == before  # ... from its checkpoint, its validations kept
    assert [json.loads(r)["step"] for r in rows] == list(range(5, limit + 1, 5))
    assert not (run / "trial-0000").exists()
    done = [t for t in trials.values() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2 and "| 0 | interrupted |" in (run / "report.md").read_text()


@pytest.mark.parametrize("recipe", ["sst2", "multi30k-en-de", "demo-sentiment"])
def test_the_shipped_spaces_fit_their_recipes_and_comment_every_key(recipe):
    path = ROOT / "recipes" / "search" / f"{recipe}-space.yaml"
    assert load_space(path, load_recipe(ROOT / "recipes" / f"{recipe}.yaml").to_dict()).params
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert "#" in line, f"{path.name}: key without a comment: {line!r}"


def test_resume_queues_again_a_trial_whose_process_was_killed(tmp_path):
    """A trial left running by a process that is gone (kill -9, a crash) is failed and queued
    again with its values at --resume, without waiting for its heartbeat to go stale."""
    import subprocess

    search = start_study(tmp_path, {"train.lr": {"log_uniform": [1e-3, 1e-2]}}, 2, TINY)
    trial = search.study.ask()
    trial.suggest_float("train.lr", 1e-3, 1e-2, log=True)
    studies.mark_process(trial)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    trial.set_user_attr("pid", gone.pid)  # as if that process had run it
    storage = studies.open_storage(search.settings.storage)
    assert studies.requeue_lost_here(search.study, storage) == [trial.number]
    lost, again = trials_of(tmp_path / "run")
    assert lost.state == optuna.trial.TrialState.FAIL
    assert again.state == optuna.trial.TrialState.WAITING and again.params == lost.params
    assert again.system_attrs[studies.RETRIES] == [lost.number]
    assert studies.requeue_lost_here(search.study, storage) == []  # once


def test_a_worker_killed_outright_is_one_line(tmp_path):
    from lstm_nlp.errors import LstmNlpError
    from lstm_nlp.search import run

    search = start_study(tmp_path, {"train.lr": [0.001]}, 1, TINY)
    with pytest.raises(LstmNlpError, match=r"^search process 1 stopped: killed by SIGKILL \(its "
                                           r"log: .*worker-1.log\); --resume continues"):
        run.finish(search.study, search.settings, [-signal.SIGKILL], None)
