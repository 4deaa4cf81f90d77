"""What the file system refuses, end to end: a missing or unwritable input, output or run folder,
a disk that fills while a checkpoint is written, a run killed before its first checkpoint, a
huge or hostile recipe. Each is one line (`error: ...`, naming the path and the reason) and exit
code 1, found before hours of work where it can be.

Tests run as root here and in CI, where permissions stop nothing: a read-only file system and a
full disk are emulated by patching the calls that would meet them (`read_only`, `FillingFile`).
"""

import builtins
import errno
import io
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_nlp.cli import app
from lstm_nlp.config import load_recipe
from lstm_nlp.errors import ConfigError, FileSystemError
from lstm_nlp.training import checkpoint
from lstm_nlp.training.run import train as train_run

from conftest import tiny_lm_recipe, tiny_recipe, write_recipe

runner = CliRunner()
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def one_error_line(result, *fragments: str) -> str:
    """The command failed with exit code 1 and one `error:` line holding every fragment."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.rstrip().endswith(errors[0])  # the last thing said, nothing after it
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def read_only(monkeypatch, folder: Path) -> None:
    """Emulate a read-only file system at `folder`: what would create, change or remove an entry
    under it fails with EROFS, as the kernel answers even root there; reading still works."""
    refuse_changes(monkeypatch, folder, errno.EROFS, files_writable=False)


def locked(monkeypatch, folder: Path) -> None:
    """Emulate a folder without write permission (for another user than root): its files can
    be rewritten in place, but no entry can be created, renamed or removed in it (EACCES)."""
    refuse_changes(monkeypatch, folder, errno.EACCES, files_writable=True)


def refuse_changes(monkeypatch, folder: Path, code: int, files_writable: bool) -> None:
    folder = os.path.abspath(folder)

    def inside(path) -> bool:
        if isinstance(path, int):
            return False
        path = os.path.abspath(os.fspath(path))
        return path == folder or path.startswith(folder + os.sep)

    def guard(original, writes=lambda *a, **k: True, creates_only=False):
        def call(path, *args, **kwargs):
            if (kwargs.get("dir_fd") is None and inside(path) and writes(*args, **kwargs)
                    and not (creates_only and os.path.exists(path))):
                raise OSError(code, os.strerror(code), os.fspath(path))
            return original(path, *args, **kwargs)
        return call

    def opens_for_writing(mode="r", *args, **kwargs):
        return any(c in mode for c in "wax+")

    monkeypatch.setattr(os, "open", guard(os.open, lambda flags, *a, **k: flags & WRITE_FLAGS,
                                          files_writable))
    monkeypatch.setattr(io, "open", guard(io.open, opens_for_writing, files_writable))
    monkeypatch.setattr(builtins, "open", guard(builtins.open, opens_for_writing,
                                                files_writable))
    for name in ("mkdir", "unlink", "remove", "rmdir", "replace", "rename"):
        monkeypatch.setattr(os, name, guard(getattr(os, name)))


class FillingFile:
    """A binary file on a disk with `room` bytes left: it writes what fits, then fails with
    ENOSPC, leaving the partial file behind (as a real full disk does)."""

    def __init__(self, file, room: int) -> None:
        self.file, self.room = file, room

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if view.nbytes > self.room:
            self.file.write(view[:self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= view.nbytes
        return self.file.write(view)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def fill_disk_at(monkeypatch, name: str, nth: int, room: int = 100_000) -> None:
    """The `nth` checkpoint temp file called `name` (1 = the first) meets a full disk."""
    seen = []

    def opener(path, mode="r", *args, **kwargs):
        file = open(path, mode, *args, **kwargs)
        if Path(path).name == name:
            seen.append(path)
            if len(seen) == nth:
                return FillingFile(file, room)
        return file

    monkeypatch.setattr(checkpoint, "open", opener, raising=False)


def fail_if_setup_runs(monkeypatch) -> None:
    """The tokenizer and the model are built in the task's setup: it must not be reached."""
    from lstm_nlp.tasks.lm import verbs as lm_verbs
    from lstm_nlp.tasks.translate import verbs as translate_verbs

    def setup(*args, **kwargs):
        raise AssertionError("the tokenizer and model were built for an unwritable run folder")

    monkeypatch.setattr(translate_verbs, "setup", setup)
    monkeypatch.setattr(lm_verbs, "setup", setup)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# -- 1. inference verbs: -i and -o --------------------------------------------------------------

@pytest.fixture(params=["translate", "generate", "classify"])
def verb(request, trained_run, trained_lm, tmp_path):
    """A verb and a model for it; the classifier's model does not exist, as its -i and -o must be
    refused before the model loads."""
    models = {"translate": trained_run, "generate": trained_lm,
              "classify": tmp_path / "not-loaded-first"}
    return [request.param, "-m", str(models[request.param])]


def test_input_file_missing_or_a_folder_is_one_line(verb, tmp_path):
    result = runner.invoke(app, [*verb, "-i", str(tmp_path / "missing.txt")], input="a\n")
    one_error_line(result, f"cannot read {tmp_path / 'missing.txt'}: No such file or directory")
    result = runner.invoke(app, [*verb, "-i", str(tmp_path)], input="a\n")
    one_error_line(result, f"cannot read {tmp_path}: Is a directory")


def test_output_file_in_a_missing_or_read_only_folder_is_one_line(verb, tmp_path, monkeypatch):
    out = tmp_path / "no" / "out.txt"
    result = runner.invoke(app, [*verb, "-o", str(out)], input="a\n")
    one_error_line(result, f"cannot write {out}: folder {out.parent} does not exist")
    result = runner.invoke(app, [*verb, "-o", str(tmp_path)], input="a\n")
    one_error_line(result, f"cannot write {tmp_path}: it is a folder")
    (tmp_path / "ro").mkdir()
    read_only(monkeypatch, tmp_path / "ro")
    result = runner.invoke(app, [*verb, "-o", str(tmp_path / "ro" / "out.txt")], input="a\n")
    one_error_line(result, f"cannot write {tmp_path / 'ro' / 'out.txt'}: Read-only file system")


def test_output_file_on_a_disk_that_fills_is_one_line_and_leaves_nothing(trained_run, tmp_path,
                                                                         monkeypatch):
    out = tmp_path / "out.txt"

    def opener(path, mode="r", *args, **kwargs):
        file = io.open(path, mode, *args, **kwargs)
        if Path(path).name == ".out.txt.tmp":
            file.write = lambda text: (_ for _ in ()).throw(
                OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        return file

    from lstm_nlp import filesystem
    monkeypatch.setattr(filesystem, "open", opener, raising=False)
    result = runner.invoke(app, ["translate", "-m", str(trained_run), "--beam", "1", "-o",
                                 str(out)], input="The dog sees a cat.\n")
    one_error_line(result, f"cannot write {out}: disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output, no temp file


def test_eval_input_and_report_folder_refusals_are_one_line(trained_lm, tmp_path, monkeypatch):
    base = ["eval", "-m", str(trained_lm), "--out-dir", str(tmp_path)]
    one_error_line(runner.invoke(app, [*base, "-i", str(tmp_path / "missing.txt")]),
                   f"file not found: {tmp_path / 'missing.txt'}")
    one_error_line(runner.invoke(app, [*base, "-i", str(tmp_path)]), f"{tmp_path} is a folder")
    (tmp_path / "ro").mkdir()
    read_only(monkeypatch, tmp_path / "ro")
    started = time.perf_counter()
    result = runner.invoke(app, ["eval", "-m", str(trained_lm), "--out-dir",
                                 str(tmp_path / "ro" / "reports")])
    one_error_line(result, f"cannot create report folder {tmp_path / 'ro' / 'reports'}: "
                           "Read-only file system")
    assert "ppl" not in result.stderr  # refused before it scored anything
    assert time.perf_counter() - started < 10


# -- 1 and 2. run folders: refused before the tokenizer and the model are built -----------------

def test_new_run_folder_on_a_read_only_file_system_is_refused_before_setup(
        corpus, tmp_path, monkeypatch):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "empty").mkdir()
    read_only(monkeypatch, tmp_path / "ro")
    fail_if_setup_runs(monkeypatch)
    run = tmp_path / "ro" / "runs" / "x"
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(run)])
    one_error_line(result, f"cannot create run folder {run}: Read-only file system")
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(tmp_path / "ro" / "empty")])
    one_error_line(result, f"cannot write run folder {tmp_path / 'ro' / 'empty'}: "
                           "Read-only file system")


def test_resume_of_a_read_only_run_folder_changes_nothing_and_builds_nothing(
        trained_run, corpus, tmp_path, monkeypatch):
    """The bug: --resume trained, then failed when it saved, after rewriting recipe.yaml and
    metrics.jsonl."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    read_only(monkeypatch, run)
    fail_if_setup_runs(monkeypatch)
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(run), "--resume",
                                 "--set", "train.max_steps=40"])
    one_error_line(result, f"cannot write run folder {run}: Read-only file system")
    assert snapshot(run) == before  # recipe.yaml and metrics.jsonl byte for byte


def test_resume_of_a_folder_without_write_permission_changes_nothing(
        trained_run, corpus, tmp_path, monkeypatch):
    """The issue's case: recipe.yaml and metrics.jsonl can be rewritten in place, but no
    checkpoint can be created: refused before they are rewritten, not hours later."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    locked(monkeypatch, run)
    fail_if_setup_runs(monkeypatch)
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(run), "--resume",
                                 "--set", "train.max_steps=40"])
    one_error_line(result, f"cannot write run folder {run}: Permission denied")
    assert snapshot(run) == before


def test_resume_with_a_file_that_cannot_be_rewritten_is_refused_before_setup(
        trained_run, corpus, tmp_path, monkeypatch):
    """The folder takes new files, but metrics.jsonl (appended to, truncated on resume) cannot
    be written: refused before anything is rewritten."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    original = os.open

    def refuse_metrics(path, flags, *args, **kwargs):
        if Path(os.fspath(path)).name == "metrics.jsonl" and flags & WRITE_FLAGS:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return original(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse_metrics)
    fail_if_setup_runs(monkeypatch)
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(run), "--resume"])
    one_error_line(result, f"{run / 'metrics.jsonl'}: Permission denied")
    assert snapshot(run) == before


def test_overwrite_of_a_read_only_run_folder_removes_nothing(trained_run, corpus, tmp_path,
                                                             monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    read_only(monkeypatch, run)
    fail_if_setup_runs(monkeypatch)
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(run), "--overwrite"])
    one_error_line(result, f"cannot remove run folder {run}: Read-only file system")
    assert snapshot(run) == before


def test_overwrite_with_a_file_that_cannot_be_removed_names_it(trained_run, corpus, tmp_path,
                                                               monkeypatch):
    """What no check can see in advance as root (an immutable file, a file another user's
    sticky folder protects) comes out of the removal itself: one line naming the file."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    stuck = run / "tokenizer" / "joint.model"
    original = os.unlink

    def unlink(path, *args, **kwargs):
        name = os.fspath(path)
        if name == str(stuck) or (kwargs.get("dir_fd") is not None and name == stuck.name):
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), name)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    fail_if_setup_runs(monkeypatch)
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(run), "--overwrite"])
    one_error_line(result, f"cannot remove run folder {run}: {stuck}: Operation not permitted")


def test_chain_resume_on_a_read_only_folder_rewrites_nothing(text_corpus, tmp_path, monkeypatch):
    write_recipe(tmp_path / "a.yaml", {**tiny_lm_recipe(text_corpus), "name": "a"})
    write_recipe(tmp_path / "b.yaml", {**tiny_lm_recipe(
        text_corpus, model={"init_from": "x"}, tokenizer={}), "name": "b"})
    chain = write_recipe(tmp_path / "chain.yaml", {"task": "chain", "stages": ["a.yaml", "b.yaml"]})
    run = tmp_path / "run"
    run.mkdir()
    (run / "chain.json").write_text('{"written": "before"}\n')
    before = snapshot(run)
    read_only(monkeypatch, run)
    fail_if_setup_runs(monkeypatch)
    result = runner.invoke(app, ["train", str(chain), "--run-dir", str(run), "--resume"])
    one_error_line(result, f"cannot write run folder {run}: Read-only file system")
    assert snapshot(run) == before


def permissions_bind_us(folder: Path) -> bool:
    """Whether a folder's permissions stop this process (not root, nor root with
    CAP_DAC_OVERRIDE), tried on a scratch folder."""
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "x").touch()
    except PermissionError:
        return True
    finally:
        folder.chmod(0o755)
    return False


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_real_folder_without_write_permission_is_refused(trained_run, corpus, tmp_path):
    if not permissions_bind_us(tmp_path / "scratch"):
        pytest.skip("chmod does not stop this process (root)")
    run, parent = tmp_path / "run", tmp_path / "locked"
    shutil.copytree(trained_run, run)
    parent.mkdir()
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    before = snapshot(run)
    run.chmod(0o555)
    parent.chmod(0o555)
    try:
        result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(run), "--resume"])
        one_error_line(result, f"cannot write run folder {run}: Permission denied")
        result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(parent / "x")])
        one_error_line(result, f"cannot create run folder {parent / 'x'}: Permission denied")
    finally:
        run.chmod(0o755)
        parent.chmod(0o755)
    assert snapshot(run) == before


# -- 3. a disk that fills while a checkpoint is written -----------------------------------------

def test_disk_full_during_save_keeps_the_previous_checkpoint(trained_run, tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    shutil.copyfile(trained_run / "last.pt", path)
    previous = path.read_bytes()
    payload = {k: v for k, v in checkpoint.load(path).items() if k not in ("format", "version")}
    fill_disk_at(monkeypatch, ".last.pt.tmp", 1)
    with pytest.raises(FileSystemError) as refused:
        checkpoint.save(path, payload)
    message = str(refused.value)
    assert message.startswith(f"cannot save {path}: disk full (the checkpoint needs about ")
    size = f"{len(previous) / 1e6:.1f} MB"  # the same model: the same size, near enough
    assert f"needs about {size};" in message and "free on that file system" in message
    assert "--resume" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # the temp file is gone
    assert path.read_bytes() == previous
    checkpoint.load_model(path)  # still loads


@pytest.mark.parametrize("failure", [OSError(errno.EIO, os.strerror(errno.EIO)),
                                     KeyboardInterrupt()])
def test_any_failed_save_removes_its_temp_file(trained_run, tmp_path, monkeypatch, failure):
    path = tmp_path / "best.pt"
    payload = {k: v for k, v in checkpoint.load(trained_run / "best.pt").items()
               if k not in ("format", "version")}

    def torch_save(obj, file):
        file.write(b"PK\x03\x04 a partial zip")
        raise failure

    monkeypatch.setattr(checkpoint.torch, "save", torch_save)
    with pytest.raises(type(failure) if isinstance(failure, KeyboardInterrupt)
                       else FileSystemError) as raised:
        checkpoint.save(path, payload)
    if isinstance(failure, OSError):
        assert str(raised.value) == f"cannot save {path}: Input/output error"
    assert list(tmp_path.iterdir()) == []


def test_disk_full_while_training_exits_1_and_the_run_resumes(corpus, tmp_path, monkeypatch):
    """The checkpoint at step 20 meets a full disk: one line, exit 1, the step-10 checkpoint
    intact; with space again, --resume finishes the run."""
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(
        corpus, train={"max_steps": 30, "valid_every": 10, "valid_bleu": False,
                       "early_stopping_metric": "loss"}))
    run = tmp_path / "run"
    fill_disk_at(monkeypatch, ".last.pt.tmp", 2)
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(run)])
    one_error_line(result, f"cannot save {run / 'last.pt'}: disk full (the checkpoint needs "
                           "about ", " MB; ", "free some space, then continue with --resume")
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    assert checkpoint.load(run / "last.pt")["train_state"]["step"] == 10
    monkeypatch.undo()
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(run), "--resume"])
    assert result.exit_code == 0, result.output
    assert checkpoint.load(run / "last.pt")["train_state"]["step"] == 30


# -- 6. a run killed before its first checkpoint -------------------------------------------------

class Killed(Exception):
    pass


def kill_at(step_to_kill: int):
    def on_step(step):
        if step == step_to_kill:
            raise Killed
    return on_step


def test_resume_before_the_first_checkpoint_starts_afresh(corpus, tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(
        corpus, train={"max_steps": 10, "valid_every": 10, "valid_bleu": False,
                       "early_stopping_metric": "loss"}))
    run = tmp_path / "run"
    with pytest.raises(Killed):
        train_run(recipe, [], run_dir=run, on_step=kill_at(4))
    assert (run / "recipe.yaml").is_file() and not (run / "last.pt").exists()
    with pytest.raises(ConfigError, match="differs from the run's at model.hidden_size"):
        train_run(recipe, ["model.hidden_size=32"], run_dir=run, resume=True)  # same rules
    capsys.readouterr()
    train_run(recipe, ["train.max_steps=12"], run_dir=run, resume=True)  # a limit may change
    assert f"{run} has no checkpoint yet: starting it afresh" in capsys.readouterr().err
    assert checkpoint.load(run / "last.pt")["train_state"]["step"] == 12
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 12]


def test_resume_of_a_folder_that_is_no_run_folder_is_refused(corpus, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me\n")
    for folder in (tmp_path / "notes", tmp_path / "nothing"):
        with pytest.raises(ConfigError, match=f"no last.pt and no recipe.yaml in {folder}: not "
                                              "a run folder; nothing to resume"):
            train_run(recipe, [], run_dir=folder, resume=True)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me\n"
    assert not (tmp_path / "nothing").exists()


def test_chain_stage_killed_before_its_first_checkpoint_resumes(text_corpus, tmp_path, capsys):
    write_recipe(tmp_path / "a.yaml", {**tiny_lm_recipe(text_corpus, train={"max_epochs": 1}),
                                       "name": "a"})
    write_recipe(tmp_path / "b.yaml", {**tiny_lm_recipe(
        text_corpus, model={"init_from": "x"}, tokenizer={}, train={"max_epochs": 1}),
        "name": "b"})
    chain = write_recipe(tmp_path / "chain.yaml", {"task": "chain", "stages": ["a.yaml", "b.yaml"]})
    run = tmp_path / "run"

    def kill_in_stage_b(step):
        if (run / "b" / "recipe.yaml").is_file():
            raise Killed

    with pytest.raises(Killed):
        train_run(chain, [], run_dir=run, on_step=kill_in_stage_b)
    assert (run / "a" / "report.json").is_file() and not (run / "b" / "last.pt").exists()
    capsys.readouterr()
    train_run(chain, [], run_dir=run, resume=True)
    assert f"{run / 'b'} has no checkpoint yet: starting it afresh" in capsys.readouterr().err
    assert (run / "b" / "report.json").is_file()


# -- 7. huge or hostile recipes ------------------------------------------------------------------

def test_a_5_mb_recipe_is_refused_fast_with_its_size(corpus, tmp_path):
    path = write_recipe(tmp_path / "huge.yaml", tiny_recipe(corpus))
    with path.open("a") as f:
        f.write("notes:\n" + "- an endless list of words, five megabytes of them\n" * 100_000)
    size = f"{path.stat().st_size / 1e6:.1f} MB"
    assert path.stat().st_size > 5_000_000
    started = time.perf_counter()
    with pytest.raises(ConfigError) as refused:
        load_recipe(path)
    assert time.perf_counter() - started < 10  # a hang guard: parsing it all took minutes
    assert str(refused.value) == (f"{path}: {size} is too large for a recipe (at most 1.0 MB); "
                                  "is it the right file?")
    one_error_line(runner.invoke(app, ["train", str(path)]), f"{size} is too large")


@pytest.mark.parametrize("text, message", [
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
     + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
               for p, n in zip("abcdefg", "bcdefgh")),
     "its YAML aliases expand to 123,456,790 values, too many for a recipe (at most 100,000)"),
    ("a: &a [*a]\n", "a YAML alias refers to the section that holds it"),
    ("a: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply for a recipe"),
])
def test_hostile_yaml_is_refused_fast(tmp_path, text, message):
    """A few hundred bytes of nested aliases would take minutes and gigabytes to copy."""
    path = tmp_path / "hostile.yaml"
    path.write_text("task: translate\n" + text)
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_recipe(path)
    assert time.perf_counter() - started < 30  # a hang guard, not a speed target: expanding
    # the aliases would take minutes and gigabytes; refusing them takes well under a second


def test_shipped_recipes_are_well_within_the_limits():
    for path in sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml")):
        assert path.stat().st_size < 100_000, path
        load_recipe(path)
