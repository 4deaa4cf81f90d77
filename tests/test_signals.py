"""Stopping a run from outside (SIGTERM from `timeout`, `docker stop`, systemd or a batch
scheduler; SIGHUP; a second signal while a checkpoint is written) and a run that diverges."""

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_nlp.cli import app
from lstm_nlp.errors import Aborted, TrainingInterrupted
from lstm_nlp.training import checkpoint
from lstm_nlp.training.run import train as train_run

from conftest import tiny_recipe, write_recipe

ROOT = Path(__file__).resolve().parent.parent


def long_recipe(path: Path, corpus: Path) -> Path:
    """A run that would train for minutes: validations every 10 steps, a log line per step."""
    return write_recipe(path, tiny_recipe(corpus, train={
        "max_steps": 100_000, "valid_every": 10, "log_every": 1, "valid_bleu": False,
        "early_stopping_metric": "loss"}, data={"test": ""}))  # no test evaluation: faster


def lstm_nlp(*args: str, cwd: Path, new_session: bool = False) -> subprocess.Popen:
    """`python -m lstm_nlp ARGS` from this checkout, with the stop signals at their defaults
    (a test runner started with nohup, or as a background job, passes them on ignored);
    `new_session`: in a session and process group of its own, which killpg reaches alone."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400",  # no wrapped lines
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def default_signals():
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)

    return subprocess.Popen([sys.executable, "-m", "lstm_nlp", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=new_session, preexec_fn=default_signals)


def wait_for_step(proc: subprocess.Popen, step: int, timeout: float = 120) -> bytes:
    """The child's stderr up to its log line of `step` or a later one."""
    fd, seen, deadline = proc.stderr.fileno(), b"", time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 1 << 16)
            seen += chunk
            logged = [int(n) for n in re.findall(rb"^step (\d+) ", seen, re.MULTILINE)]
            if logged and max(logged) >= step:
                return seen
            if not chunk:
                break
    proc.kill()
    raise AssertionError(f"no step {step} within {timeout:g} s:\n{seen.decode()[-2000:]}")


@pytest.mark.parametrize("signum, code, resume", [(signal.SIGTERM, 143, True),
                                                  (signal.SIGHUP, 129, False)])
def test_a_stop_signal_saves_last_pt_and_exits_128_plus_its_number(tmp_path, corpus, signum,
                                                                    code, resume):
    """A real training process, stopped after its first validation (step 10) by `kill`: it
    finishes the step, saves last.pt with the steps since that validation, says so and exits
    with the shell's code for that signal; --resume continues from there."""
    recipe, run = long_recipe(tmp_path / "r.yaml", corpus), tmp_path / "run"
    proc = lstm_nlp("train", str(recipe), "--run-dir", str(run), cwd=tmp_path)
    seen = wait_for_step(proc, 12)
    proc.send_signal(signum)
    _, rest = proc.communicate(timeout=120)
    stderr = (seen + rest).decode()
    assert proc.returncode == code, stderr[-2000:]
    name = signal.Signals(signum).name
    stopped = re.search(rf"^stopped by {name} at step (\d+); saved (\S+) \(continue with "
                        r"--resume\)$", stderr, re.MULTILINE)
    assert stopped and Path(stopped[2]) == run / "last.pt", stderr[-2000:]
    assert "Traceback" not in stderr
    step = int(stopped[1])
    validated = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text(
        ).splitlines()]
    assert checkpoint.load(run / "last.pt")["train_state"]["step"] == step
    assert validated[0] == 10 and step > validated[-1]  # the steps since then are kept
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    if resume:  # in this process, to save starting another (the CLI's --resume calls this)
        train_run(recipe, [f"train.max_steps={step + 3}"], run_dir=run, resume=True)
        assert checkpoint.load(run / "last.pt")["train_state"]["step"] == step + 3


@pytest.fixture
def recipe(tmp_path, corpus):
    return write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus, train={
        "max_steps": 50, "valid_every": 10, "valid_bleu": False,
        "early_stopping_metric": "loss"}))


def send_at(step: int, *signums: int):
    """An on_step hook that sends `signums` to this process after `step`."""
    def hook(at):
        if at == step:
            for signum in signums:
                os.kill(os.getpid(), signum)
    return hook


def signal_during_saves(monkeypatch, signum: int) -> list[str]:
    """Make every checkpoint write receive `signum` half way (after the handler could act,
    before the file is complete); -> the names written, in order."""
    written, save = [], checkpoint.save

    def save_with_a_signal(path, payload):
        os.kill(os.getpid(), signum)  # Python runs the handler before kill() returns
        save(path, payload)
        written.append(Path(path).name)

    monkeypatch.setattr(checkpoint, "save", save_with_a_signal)
    return written


def test_a_second_signal_while_saving_on_the_way_out_leaves_a_whole_last_pt(
        tmp_path, recipe, monkeypatch):
    before = signal.getsignal(signal.SIGTERM)
    written = signal_during_saves(monkeypatch, signal.SIGTERM)
    with pytest.raises(TrainingInterrupted, match="stopped by SIGTERM at step 4") as e:
        train_run(recipe, [], run_dir=tmp_path / "run", on_step=send_at(4, signal.SIGTERM))
    assert e.value.signum == signal.SIGTERM and written == ["last.pt"]
    assert checkpoint.load(tmp_path / "run" / "last.pt")["train_state"]["step"] == 4
    assert signal.getsignal(signal.SIGTERM) is before  # the handler it found is restored


def test_a_second_signal_while_a_validation_saves_waits_for_both_files(
        tmp_path, recipe, monkeypatch):
    """The first SIGTERM comes at step 10, just before its validation; the second during
    that validation's writes: it aborts, but only once last.pt and best.pt are complete."""
    written = signal_during_saves(monkeypatch, signal.SIGTERM)
    with pytest.raises(Aborted, match="SIGTERM again: stopped at once") as e:
        train_run(recipe, [], run_dir=tmp_path / "run", on_step=send_at(10, signal.SIGTERM))
    assert e.value.signum == signal.SIGTERM and written == ["last.pt", "best.pt"]
    for name in written:
        assert checkpoint.load(tmp_path / "run" / name)["train_state"]["step"] == 10


def test_a_second_ctrl_c_outside_saving_aborts_at_once(tmp_path, recipe):
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt) as e:
        train_run(recipe, [], run_dir=tmp_path / "run",
                  on_step=send_at(4, signal.SIGINT, signal.SIGINT))
    assert isinstance(e.value, Aborted) and e.value.signum == signal.SIGINT
    assert not (tmp_path / "run" / "last.pt").exists()  # nothing saved: aborted at once
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("exc, code", [
    (TrainingInterrupted("stopped by SIGTERM at step 4; saved last.pt", signal.SIGTERM), 143),
    (TrainingInterrupted("stopped by SIGHUP at step 4; saved last.pt", signal.SIGHUP), 129),
    (Aborted("SIGTERM again: stopped at once", signal.SIGTERM), 143),
    (KeyboardInterrupt(), 130),
])
def test_the_exit_code_is_128_plus_the_signal(monkeypatch, exc, code):
    from lstm_nlp.training import run

    def stopped(*args, **kwargs):
        raise exc

    monkeypatch.setattr(run, "train", stopped)
    result = CliRunner().invoke(app, ["train", "any.yaml"])
    assert result.exit_code == code
    assert (str(exc) or "interrupted") in result.stderr


def strict_rows(run: Path) -> list[dict]:
    """metrics.jsonl read by a parser that refuses NaN and Infinity, as strict JSON does."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return [json.loads(line, parse_constant=refuse)
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_lr_1e30_stops_at_once_with_the_fix_and_saves_nothing(tmp_path, corpus):
    """The issue's run: lr 1e30 with Adam. Its first update already wrecks the weights, so
    step 1's validation loss is ~1e31: exit 1 with the fix, no best.pt, no last.pt."""
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus, train={
        "lr": 1e30, "optimizer": "adam", "max_steps": 30, "valid_every": 1,
        "valid_bleu": False, "early_stopping_metric": "loss"}))
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(recipe), "--run-dir", str(run)],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert re.search(r"^error: training diverged at step 1: the validation loss is \S+, over "
                     r"10000 times the first step's [\d.]+; lower train\.lr \(now 1e\+30\), "
                     r"or warm up longer \(train\.warmup_steps, now 0\) or clip harder "
                     r"\(train\.clip_norm, now 5\), and train again \(--overwrite\); nothing "
                     r"diverged was saved \(no checkpoint either\)$", result.stderr,
                     re.MULTILINE), result.stderr
    assert not (run / "best.pt").exists() and not (run / "last.pt").exists()
    assert not (run / "metrics.jsonl").exists() or strict_rows(run) == []
    assert not (run / "report.json").exists()


def test_a_run_that_diverges_midway_keeps_its_good_checkpoints(tmp_path, recipe, monkeypatch):
    """The lr jumps to 1e30 after step 12 (validated at 10): step 14's training loss gives it
    away; best.pt and last.pt keep step 10, metrics.jsonl stays strict JSON."""
    from lstm_nlp.errors import DivergenceError
    from lstm_nlp.training import loop

    schedule = loop.learning_rate
    monkeypatch.setattr(loop, "learning_rate",
                        lambda cfg, state: 1e30 if state.step >= 12 else schedule(cfg, state))
    run = tmp_path / "run"
    with pytest.raises(DivergenceError, match=r"diverged at step 14: the training loss is \S+, "
                       r"over 10000 times the first step's") as e:
        train_run(recipe, [], run_dir=run)
    assert f"nothing diverged was saved ({run / 'last.pt'} holds step 10, the last good one)" \
        in str(e.value)
    for name in ("best.pt", "last.pt"):
        assert checkpoint.load(run / name)["train_state"]["step"] == 10
    assert [r["step"] for r in strict_rows(run)] == [10]
