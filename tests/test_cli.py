"""The command line: one output line per input line, clean errors, exit codes."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_nlp.cli import app

from conftest import tiny_recipe, write_recipe

runner = CliRunner()


def translate(run, data: bytes, *args):
    return runner.invoke(app, ["translate", "-m", str(run), "--beam", "1", *args], input=data)


def test_translate_keeps_one_line_per_input_line(trained_run):
    data = b"The dog sees a cat.\n\nA woman holds the red ball.\r\n\r\nThe man finds a book."
    result = translate(trained_run, data)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[-1] == "" and len(lines) == 6  # five lines, each ended by a newline
    assert lines[1] == "" and lines[3] == ""     # empty in, empty out
    assert all(lines[i] for i in (0, 2, 4))
    assert "\r" not in result.stdout
    assert "translated 5 lines" in result.stderr  # logs go to stderr, never stdout


def test_translate_in_bf16_keeps_the_line_contract(trained_run):
    result = translate(trained_run, b"The dog sees a cat.\n\nNow.\n", "--precision", "bf16")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.split("\n")) == 4 and "bf16" in result.stderr


def test_translate_is_deterministic_and_order_preserving(trained_run):
    sentences = [b"The dog sees a cat.", b"A woman holds the red ball in the park.", b"Now."]
    together = translate(trained_run, b"\n".join(sentences) + b"\n").stdout.splitlines()
    alone = [translate(trained_run, s + b"\n").stdout.strip("\n") for s in sentences]
    assert together == alone


def test_translate_rejects_invalid_utf8_with_the_line(trained_run):
    result = translate(trained_run, b"The dog.\nThe \xff cat.\n")
    assert result.exit_code == 1
    assert "stdin: line 2, byte 5: not valid UTF-8 (0xff)" in result.stderr
    assert "Traceback" not in result.stderr


def test_translate_files_and_beam(trained_run, tmp_path, corpus):
    out = tmp_path / "hyp.de"
    result = runner.invoke(app, ["translate", "-m", str(trained_run / "best.pt"), "-i",
                                 str(corpus / "test.en"), "-o", str(out), "--beam", "3"])
    assert result.exit_code == 0, result.stderr
    n_in = len((corpus / "test.en").read_text().splitlines())
    assert len(out.read_text().splitlines()) == n_in


def test_translate_says_when_input_has_text_the_vocabulary_lacks(trained_run):
    """An unseen character cannot be read by the model; the output may lose it, so stderr
    says which line and what (the translation goes on: one line out per line in)."""
    result = runner.invoke(app, ["translate", "-m", str(trained_run), "--beam", "1"],
                           input="The dog sees a cat.\nThe Ωmega dog ☃.\nA cat.\n".encode())
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3
    warning = " ".join(result.stderr.split())
    assert "1 line of 3 had text the model's vocabulary lacks (first: line 2, 'Ω', '☃')" in warning
    clean = runner.invoke(app, ["translate", "-m", str(trained_run), "--beam", "1"],
                          input=b"The dog sees a cat.\n")
    assert "warning" not in clean.stderr


def test_eval_writes_reports_with_signature(trained_run, tmp_path, corpus):
    result = runner.invoke(app, ["eval", "-m", str(trained_run), "--split", "valid",
                                 "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    report = (tmp_path / "eval-valid-beam3.json").read_text()
    assert '"bleu":' in report and "nrefs:1|case:mixed" in report and '"chrf":' in report
    assert (tmp_path / "eval-valid-beam3.md").is_file()
    result = runner.invoke(app, ["eval", "-m", str(trained_run), "--src", str(corpus / "test.en"),
                                 "--ref", str(corpus / "test.de"), "--beam", "1",
                                 "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "eval-test.en-beam1.hyp").is_file()  # named after the --src file


@pytest.mark.parametrize("args, message", [
    (["translate", "-m", "no/such/run"], "model not found: no/such/run"),
    (["eval", "-m", "no/such/run"], "model not found"),
    (["train", "no-such-recipe.yaml"], "recipe not found: no-such-recipe.yaml"),
])
def test_bad_paths_exit_1_with_one_line(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_train_errors_exit_1(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(tmp_path / "missing-data"))
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 1 and "data folder not found" in result.stderr
    result = runner.invoke(app, ["train", str(recipe), "--set", "model.hiden_size=3"])
    assert result.exit_code == 1
    assert "did you mean 'model.hidden_size'?" in result.stderr


def test_eval_argument_errors(trained_run, corpus):
    result = runner.invoke(app, ["eval", "-m", str(trained_run), "--src", str(corpus / "test.en")])
    assert result.exit_code == 1 and "--src and --ref go together" in result.stderr
    result = runner.invoke(app, ["eval", "-m", str(trained_run), "--split", "nope"])
    assert result.exit_code == 1 and "file not found" in result.stderr


def test_pipe_into_head_ends_quietly(trained_run):
    lines = "\n".join(["The dog sees a cat."] * 3000) + "\n"
    cmd = (f"{sys.executable} -m lstm_nlp translate -m {trained_run} --beam 1 --batch-size 64 "
           f"| head -n 1")
    proc = subprocess.run(["bash", "-c", "set -o pipefail; " + cmd], input=lines.encode(),
                          capture_output=True, timeout=120)
    assert len(proc.stdout.decode().splitlines()) == 1
    assert b"Traceback" not in proc.stderr and b"BrokenPipe" not in proc.stderr
    assert proc.returncode == 0


def test_help_and_version():
    assert runner.invoke(app, ["--help"]).exit_code == 0
    assert "lstm-nlp 0." in runner.invoke(app, ["--version"]).stdout
    assert runner.invoke(app, ["-V"]).stdout == runner.invoke(app, ["--version"]).stdout


@pytest.mark.parametrize("command", [[], ["train"], ["translate"], ["generate"], ["classify"],
                                     ["eval"], ["inspect"]])
def test_help_shows_what_a_user_types(command):
    """Plain metavars: no Python types (`<bool>`, `<list[str]>`), no braces around the
    recipe, every option described, and no pointer to a README a pip user lacks."""
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for noise in ("<bool>", "<path>", "<int", "<float", "<str>", "list[", "{recipe}",
                  "README", "--no-"):
        assert noise not in result.stdout, (noise, result.stdout)
    if command == ["train"]:
        assert "[OPTIONS] RECIPE" in result.stdout and "KEY=VALUE" in result.stdout
    if not command:
        assert "-V" in result.stdout and "Print the version and exit." in result.stdout


def test_ctrl_c_during_train_exits_130(monkeypatch, tmp_path):
    from lstm_nlp.errors import TrainingInterrupted
    from lstm_nlp.training import run

    def interrupted(*args, **kwargs):
        raise TrainingInterrupted("interrupted at step 4; saved last.pt (continue with --resume)")

    monkeypatch.setattr(run, "train", interrupted)
    result = runner.invoke(app, ["train", "any.yaml"])
    assert result.exit_code == 130 and "continue with --resume" in result.stderr


def test_train_passes_overrides_and_flags(monkeypatch, tmp_path):
    from lstm_nlp.training import run

    seen = {}
    monkeypatch.setattr(run, "train", lambda *a, **k: seen.update(args=a, kwargs=k))
    result = runner.invoke(app, ["train", "r.yaml", "--set", "train.lr=0.1", "--set", "seed=3",
                                 "--run-dir", str(tmp_path), "--resume"])
    assert result.exit_code == 0
    assert seen["args"][1] == ["train.lr=0.1", "seed=3"] and seen["kwargs"]["resume"] is True


def test_help_shows_the_defaults_in_brackets():
    """Rich markup would eat "[recipe]" in option help; the defaults must show."""
    result = runner.invoke(app, ["translate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Beam size; 1 = greedy [recipe]." in result.stdout


@pytest.mark.parametrize("args, option", [
    (["translate", "--beam", "0"], "--beam"),
    (["translate", "--max-len-ratio", "0"], "--max-len-ratio"),
    (["translate", "--batch-size", "0"], "--batch-size"),
    (["generate", "--top-p", "0"], "--top-p"),
    (["generate", "--top-p", "1.5"], "--top-p"),
    (["generate", "--temperature", "-1"], "--temperature"),
    (["generate", "--max-tokens", "0"], "--max-tokens"),
    (["classify", "--batch-size", "0"], "--batch-size"),
    (["eval", "--beam", "0"], "--beam"),
])
def test_numeric_options_are_checked_before_the_model_loads(args, option):
    """A usage error (exit 2, Click's convention) names the option; the model path does not
    exist, so a check after loading would have said so instead."""
    result = runner.invoke(app, [args[0], "-m", "no-such-run", *args[1:]])
    assert result.exit_code == 2
    assert option in result.output and "not found" not in result.output


@pytest.mark.parametrize("args, message", [
    (["translate", "-m", "x", "--beam", "0"], "Invalid value for '--beam'"),
    (["translate", "--bogus"], "No such option: --bogus"),
    (["train"], "Missing argument 'RECIPE'"),
    (["nosuchverb"], "No such command 'nosuchverb'"),
])
def test_usage_errors_are_one_line_with_exit_code_2(args, message):
    """The installed command (not CliRunner): Click's framed box becomes one line."""
    done = subprocess.run([sys.executable, "-m", "lstm_nlp", *args], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "--help" in lines[0], done.stderr


def test_file_system_refusals_are_one_line_naming_the_path(trained_run, tmp_path):
    cases = [(["-i", str(tmp_path / "missing.txt")], "missing.txt: No such file or directory"),
             (["-i", str(tmp_path)], "Is a directory"),
             (["-o", str(tmp_path / "no" / "out.txt")], "does not exist")]
    for args, message in cases:
        result = runner.invoke(app, ["translate", "-m", str(trained_run), *args], input="a\n")
        assert result.exit_code == 1, result.output
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_help_imports_no_torch_and_no_recipe_models():
    """`lstm-nlp --help` answers at once: the task registry names its modules, it does not
    import them (torch, pydantic recipe classes, datasets) before a verb runs."""
    code = ("import sys; from lstm_nlp.cli import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'datasets', 'sentencepiece', 'lstm_nlp.config') "
            "if m in sys.modules]\nprint('HEAVY', heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert "HEAVY []" in done.stdout, done.stdout[-500:] + done.stderr[-500:]


def test_counts_are_said_in_the_right_number():
    from lstm_nlp.reporting.console import counted

    assert [counted(n, "line") for n in (0, 1, 2, 1234)] == ["0 lines", "1 line", "2 lines",
                                                             "1,234 lines"]
    assert counted(1, "empty line") == "1 empty line" and counted(3, "box", "boxes") == "3 boxes"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_install_takes_torch_from_the_index_the_user_names(tmp_path):
    """`make install TORCH_INDEX=...` (a CPU-only torch build); without it, pip's own
    configuration. A dry run (-n) in a scratch venv path shows the pip command."""
    root = Path(__file__).parents[1]
    args = ["make", "-n", "-B", "-C", str(root), "install", f"VENV={tmp_path / 'venv'}"]
    named = subprocess.run(args + ["TORCH_INDEX=https://download.pytorch.org/whl/cpu"],
                           capture_output=True, text=True, timeout=60).stdout
    plain = subprocess.run(args, capture_output=True, text=True, timeout=60).stdout
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in named
    assert "-c constraints.txt" in plain and "--extra-index-url" not in plain
