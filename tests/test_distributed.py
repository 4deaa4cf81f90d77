"""Training in several processes (torch.distributed, DistributedDataParallel, torchrun): a step of
2 processes is the step of 1 process accumulating 2 batches; a run killed with SIGKILL resumes
to the weights of an uninterrupted one; SIGTERM saves one checkpoint; a process that dies ends
the run with one line; and what is refused before any process starts."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from lstm_nlp.cli import app
from lstm_nlp.errors import ConfigError
from lstm_nlp.training import checkpoint, distributed, launch, runtime, threads
from lstm_nlp.training.run import train as train_run

from conftest import tiny_lm_recipe, tiny_recipe, write_corpus, write_recipe, write_text_corpus
from test_classify import tiny_classify_recipe, write_sentiment
from test_signals import lstm_nlp, wait_for_step

runner = CliRunner()

LIMITS = {"max_steps": 30, "max_epochs": 0, "valid_every": 30, "early_stopping_metric": "loss",
          "log_every": 1}
NO_DROPOUT = {"dropout": 0.0, "dropout_input": 0.0, "dropout_hidden": 0.0}


def equivalence_recipes(folder: Path) -> dict[str, dict]:
    """A tiny recipe of each task, every dropout off (the processes draw their own masks), 30
    steps, no test split."""
    no_test = {"test": ""}
    return {
        "translate": tiny_recipe(write_corpus(folder / "pairs"), model={"dropout": 0.0},
                                 train={**LIMITS, "valid_bleu": False}, data=no_test),
        "lm": tiny_lm_recipe(write_text_corpus(folder / "text"), train=LIMITS, data=no_test,
                             model={**NO_DROPOUT, "dropout_embedding": 0.0, "weight_drop": 0.0}),
        "classify": tiny_classify_recipe(write_sentiment(folder / "sentiment", n_train=200,
                                                         n_eval=20),
                                         model=NO_DROPOUT, train=LIMITS, data=no_test),
    }


def resume_recipe(text: Path) -> dict:
    """A language model with its dropouts on (every rank's RNG matters), validated every 10 of
    80 steps: each validation a checkpoint to resume from."""
    return tiny_lm_recipe(text, data={"test": ""}, train={
        "max_epochs": 0, "max_steps": 80, "valid_every": 10, "threads": 2, "log_every": 1,
        "early_stopping_metric": "loss"})


def _rank_main(rank: int, port: int, jobs: list[tuple[str, str, list[str]]]) -> None:
    """One of two processes as torchrun would start it (its environment), training `jobs`
    (recipe, run folder, overrides) one after the other in the same process group."""
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    for recipe, run_dir, overrides in jobs:
        train_run(Path(recipe), overrides, run_dir=Path(run_dir))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory) -> Path:
    """The 2-process runs the tests compare with, in one pair of processes (each start costs
    seconds): the three tasks' equivalence runs, 1 thread each (train.threads 2 for the
    machine), and the uninterrupted run of the resume test."""
    import torch.multiprocessing as mp

    folder = tmp_path_factory.mktemp("ddp")
    jobs = [(str(write_recipe(folder / f"{task}.yaml", raw)), str(folder / f"two-{task}"),
             ["train.threads=2"]) for task, raw in equivalence_recipes(folder).items()]
    resumed = write_recipe(folder / "resume.yaml", resume_recipe(folder / "text"))
    jobs.append((str(resumed), str(folder / "straight"), []))
    mp.start_processes(_rank_main, args=(free_port(), jobs), nprocs=2, start_method="spawn")
    return folder


def largest_difference(a: dict, b: dict) -> tuple[float, float]:
    """The largest absolute difference between two state dicts, and their largest value."""
    assert a.keys() == b.keys()
    return (max((a[k] - b[k]).abs().max().item() for k in a),
            max(b[k].abs().max().item() for k in b))


@pytest.mark.parametrize("task", ["translate", "lm", "classify"])
def test_two_processes_train_like_one_accumulating_two_batches(task, two_process_runs):
    """2 processes x batch B == 1 process x train.accum_steps 2 x batch B: the same parameters
    after 30 steps, to fp32 rounding (measured: at most 6e-6 of weights up to 4.3)."""
    folder = two_process_runs
    one = train_run(folder / f"{task}.yaml", ["train.threads=1", "train.accum_steps=2"],
                    run_dir=folder / f"one-{task}")
    two = checkpoint.load(folder / f"two-{task}" / "last.pt")
    assert two["train_state"]["step"] == 30 and two["world_size"] == 2
    worst, scale = largest_difference(two["model"], checkpoint.load(one / "last.pt")["model"])
    assert worst <= 1e-5 * max(scale, 1.0), \
        f"{task}: largest difference {worst:.3g} (largest weight {scale:.3g})"


def wait_until(ready, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    """The processes `pid` started (torchrun's agent: the training processes)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in state  # ended, not yet reaped


def rows(run: Path) -> int:
    path = run / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_run_killed_with_sigkill_resumes_to_the_weights_of_an_uninterrupted_one(
        two_process_runs):
    """kill -9 of the launcher's process group at a random step after the first checkpoint:
    the training processes die with it (they are in sessions of their own, but end with their
    parent), and `--resume --nproc 2` ends with the uninterrupted run's weights, bit for bit."""
    folder = two_process_runs
    recipe, run = folder / "resume.yaml", folder / "killed"
    proc = lstm_nlp("train", str(recipe), "--nproc", "2", "--run-dir", str(run), cwd=folder,
                    new_session=True)
    checkpoints = random.randint(1, 3)
    wait_until(lambda: rows(run) >= checkpoints and len(children(proc.pid)) == 2, proc)
    time.sleep(random.uniform(0, 0.3))
    workers = children(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 10
    while not all(gone(pid) for pid in workers):
        assert time.monotonic() < deadline, "training processes outlived their launcher"
        time.sleep(0.05)
    saved = checkpoint.load(run / "last.pt")["train_state"]["step"]
    assert saved < 80 and not (run / "report.json").exists()

    resumed = lstm_nlp("train", str(recipe), "--nproc", "2", "--run-dir", str(run), "--resume",
                       cwd=folder)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()[-2000:]
    a = checkpoint.load(folder / "straight" / "last.pt")
    b = checkpoint.load(run / "last.pt")
    assert a["train_state"]["step"] == b["train_state"]["step"] == 80
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), f"{key} (killed at step {saved})"
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(10, 90, 10))


@pytest.fixture
def long_recipe(tmp_path, corpus) -> Path:
    """A run that would train for minutes, with a log line every step."""
    return write_recipe(tmp_path / "long.yaml", tiny_recipe(corpus, data={"test": ""}, train={
        "max_steps": 100_000, "valid_every": 1000, "log_every": 1, "valid_bleu": False,
        "early_stopping_metric": "loss"}))


def test_sigterm_to_the_launcher_saves_one_checkpoint_and_exits_143(tmp_path, long_recipe):
    proc = lstm_nlp("train", str(long_recipe), "--nproc", "2", "--run-dir", str(tmp_path / "run"),
                    cwd=tmp_path)
    seen = wait_for_step(proc, 3, timeout=180)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    err = (seen + err).decode()
    assert proc.returncode == 143, err[-2000:]
    stops = [line for line in err.splitlines() if "stopped by SIGTERM" in line]
    assert len(stops) == 1, err[-2000:]  # rank 0 says it; the other prints nothing
    step = checkpoint.load(tmp_path / "run" / "last.pt")["train_state"]["step"]
    assert f"at step {step};" in stops[0] and step >= 3
    assert "Traceback" not in err


def test_a_process_that_dies_ends_the_run_with_one_line(tmp_path, long_recipe):
    """SIGKILL to rank 1: rank 0 stops at once (its collective fails), the launcher names the
    rank that died; in bounded time (well under torchrun's 30 s shutdown grace)."""
    proc = lstm_nlp("train", str(long_recipe), "--nproc", "2", "--run-dir", str(tmp_path / "run"),
                    cwd=tmp_path)
    seen = wait_for_step(proc, 2, timeout=180)
    rank1 = next(pid for pid in children(proc.pid)
                 if b"RANK=1\0" in Path(f"/proc/{pid}/environ").read_bytes())
    killed_at = time.monotonic()
    os.kill(rank1, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - killed_at
    err = (seen + err).decode()
    assert proc.returncode == 1, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert f"rank 1 (pid {rank1}) was killed by SIGKILL" in last, err[-2000:]
    assert "another process of this run stopped or died" in err
    assert "Traceback" not in err, err[-3000:]
    assert took < 60


# -- what is refused before any process starts, and the parts --------------------------------

def test_nproc_below_1_is_a_one_line_usage_error(tmp_path, corpus):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    done = subprocess.run([sys.executable, "-m", "lstm_nlp", "train", str(recipe), "--nproc", "0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Invalid value for '--nproc'" in lines[0], done.stderr


def test_nproc_refuses_a_chain_and_a_launch_inside_torchrun(tmp_path, corpus, monkeypatch):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    chained = write_recipe(tmp_path / "chain.yaml", {"task": "chain",
                                                     "stages": ["r.yaml", "r.yaml"]})
    with pytest.raises(ConfigError, match="chain recipe, which trains in one process"):
        launch.check(2, chained, [], None)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="started by torchrun"):
        launch.check(2, recipe, [], None)


def test_nproc_refuses_a_device_that_cannot_take_the_processes(monkeypatch):
    """MPS has no DDP backend; one named GPU cannot hold 2 processes; 4 need 4 GPUs."""
    with pytest.raises(ConfigError, match="mps trains in one process"):
        distributed.check_shareable(torch.device("mps"), 2, "--nproc 2", explicit=False)
    with pytest.raises(ConfigError, match="cuda:1 is one GPU; 2 processes take one GPU each"):
        distributed.check_shareable(torch.device("cuda", 1), 2, "--nproc 2", explicit=True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match="4 processes need a GPU each; 2 are visible"):
        distributed.check_shareable(torch.device("cuda"), 4, "--nproc 4", explicit=False)
    distributed.check_shareable(torch.device("cuda"), 2, "--nproc 2", explicit=False)
    distributed.check_shareable(torch.device("cpu"), 8, "--nproc 8", explicit=False)


def test_nproc_with_a_device_that_is_not_here_is_one_line(tmp_path, corpus):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    result = runner.invoke(app, ["train", str(recipe), "--nproc", "2", "--device", "cuda"])
    assert result.exit_code == 1
    assert "cuda is not available here" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_run_of_two_processes_resumes_only_with_two(two_process_runs):
    with pytest.raises(ConfigError, match="trained by 2 processes, this run has 1; resume it "
                                          r"with as many \(--nproc 2\)"):
        train_run(two_process_runs / "resume.yaml", [], run_dir=two_process_runs / "straight",
                  resume=True)


def test_the_processes_run_the_train_command_they_were_given():
    assert launch.worker_args(Path("r.yaml"), ["train.lr=0.1", "seed=2"], Path("runs/x"), True,
                              False, "cpu") == [
        "train", "r.yaml", "--set", "train.lr=0.1", "--set", "seed=2", "--run-dir", "runs/x",
        "--overwrite", "--device", "cpu"]
    assert launch.worker_args(Path("r.yaml"), [], None, False, True, None) == \
        ["train", "r.yaml", "--resume"]


def failure(pid: int, exitcode: int, timestamp: int = 0, message: str | None = None):
    """A stand-in for torchrun's ProcessFailure."""
    data = {"message": message} if message else {}
    return SimpleNamespace(pid=pid, exitcode=exitcode, timestamp=timestamp,
                           error_file_data=data,
                           signal_name=lambda: signal.Signals(-exitcode).name)


@pytest.mark.parametrize("failures, code, said", [
    ({1: failure(11, -9), 0: failure(10, 1)}, 1, "rank 1 (pid 11) was killed by SIGKILL"),
    ({0: failure(10, -15), 1: failure(11, -9)}, 1, "rank 1 (pid 11) was killed by SIGKILL"),
    ({0: failure(10, 1), 1: failure(11, 1)}, 1, None),  # rank 0 said why
    ({0: failure(10, 143)}, 143, None),
    ({1: failure(11, 1, message="data: no such file")}, 1, "rank 1: data: no such file"),
    ({2: failure(12, 1, 5), 1: failure(11, 3, 9)}, 1, "rank 2: exited with code 1"),
])
def test_the_launcher_says_which_process_failed_unless_rank_0_did(failures, code, said, capsys):
    assert launch.failed(failures) == code
    err = capsys.readouterr().err
    assert (said in err and len(err.strip().splitlines()) == 1) if said else not err


def test_threads_are_the_machines_and_shared_by_its_processes(monkeypatch):
    set_to = []
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    runtime.set_threads(6, 2)
    runtime.set_threads(0, 2)
    runtime.set_threads(1, 4)
    runtime.set_threads(3, 1)
    runtime.set_threads(0, 1)  # alone: torch's default, untouched
    assert set_to == [3, 4, 1, 3]


def test_the_governor_of_one_of_several_processes_takes_its_share_of_the_free_cores():
    """8 cores, 2 processes, other programs using 3: each of the two trains on 2 threads."""
    readings = [threads.Reading(0.0, 0.0, 0.0), threads.Reading(3 * 5.0, 0.0, 5.0),
                threads.Reading(6 * 5.0, 0.0, 10.0)]  # busy CPU seconds of the others
    now = [0.0]
    set_to = []
    load = threads.ThreadGovernor(4, lambda: readings.pop(0), set_to.append, interval_s=5.0,
                                  clock=lambda: now[0], cores=8, processes=2)
    for now[0] in (5.0, 10.0):
        load.tick()
    assert set_to == [2]


def test_the_cpu_time_of_the_training_processes_is_read_from_proc():
    if not Path(f"/proc/{os.getpid()}/stat").exists():
        pytest.skip("no /proc")
    spent = threads.processes_cpu_seconds((os.getpid(), 2 ** 22 + 7))  # the second: no such pid
    assert 0 < spent <= time.process_time() + 0.1


def test_a_chain_under_torchrun_is_refused_in_one_line(tmp_path, corpus, monkeypatch):
    write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    chained = write_recipe(tmp_path / "chain.yaml", {"task": "chain",
                                                     "stages": ["r.yaml", "r.yaml"]})
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="a chain recipe trains in one process"):
        train_run(chained, [], run_dir=tmp_path / "run")


def test_a_lost_peer_is_one_line_and_the_other_ranks_errors_go_to_torchruns_file(
        tmp_path, monkeypatch):
    """gloo's broken connection becomes PeerLost; a rank other than 0, muted, leaves its own
    error's line in the file torchrun reads (a ProcessFailure's message)."""
    monkeypatch.setattr(distributed.signal, "signal", lambda *args: None)  # keep pytest's
    error_file = tmp_path / "error.json"
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(error_file))
    gloo = RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error "
                        "[127.0.0.1]:21672: Connection reset by peer.")
    with pytest.raises(distributed.PeerLost, match="rank 0: another process of this run"):
        with distributed.reported(distributed.Group(rank=0, size=2)):
            raise gloo
    assert not error_file.exists()  # rank 0 prints its own
    with pytest.raises(ConfigError):
        with distributed.reported(distributed.Group(rank=1, size=2)):
            raise ConfigError("data: no such file")
    assert json.loads(error_file.read_text())["message"] == "data: no such file"
    with pytest.raises(ValueError):  # not a lost peer, not a domain error: as it was
        with distributed.reported(distributed.Group(rank=1, size=2)):
            raise ValueError("a bug")
