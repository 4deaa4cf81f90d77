"""Language modeling end to end: train, resume, eval (split, file, stdin), generate, errors."""

import json

import pytest
import torch
from typer.testing import CliRunner

from lstm_nlp.cli import app
from lstm_nlp.errors import DataError
from lstm_nlp.training import checkpoint
from lstm_nlp.training.run import train as train_run

from conftest import tiny_lm_recipe, write_recipe

runner = CliRunner()


def test_lm_run_folder_report_and_one_validation_per_epoch(trained_lm):
    for name in ("recipe.yaml", "best.pt", "last.pt", "metrics.jsonl", "report.md",
                 "tokenizer/lm.model"):
        assert (trained_lm / name).is_file(), name
    rows = [json.loads(r) for r in (trained_lm / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]  # valid_every 0: at each epoch's end
    assert rows[-1]["val_ppl"] < rows[0]["val_ppl"]
    report = (trained_lm / "report.md").read_text()
    assert "## Perplexity" in report and "## Samples" in report
    test = json.loads((trained_lm / "report.json").read_text())["test"]
    assert test["tokens"] > 0 and test["ppl"] > 1 and len(test["samples"]) == 2


def test_eval_split_file_and_stdin_agree(trained_lm, text_corpus, tmp_path):
    by_split = runner.invoke(app, ["eval", "-m", str(trained_lm), "--split", "test",
                                   "--out-dir", str(tmp_path)])
    assert by_split.exit_code == 0, by_split.stderr
    split_ppl = json.loads((tmp_path / "eval-test.json").read_text())["ppl"]
    text = (text_corpus / "test.txt").read_bytes()
    piped = runner.invoke(app, ["eval", "-m", str(trained_lm), "--out-dir", str(tmp_path)],
                          input=text)
    assert piped.exit_code == 0, piped.stderr
    stdin = json.loads((tmp_path / "eval-stdin.json").read_text())
    assert stdin["ppl"] == pytest.approx(split_ppl)
    assert stdin["bits_per_token"] == pytest.approx(stdin["nll"] / 0.693147, rel=1e-4)
    by_file = runner.invoke(app, ["eval", "-m", str(trained_lm), "-i",
                                  str(text_corpus / "test.txt"), "--out-dir", str(tmp_path)])
    assert by_file.exit_code == 0, by_file.stderr
    by_file_ppl = json.loads((tmp_path / "eval-test.txt.json").read_text())["ppl"]
    assert by_file_ppl == pytest.approx(split_ppl)  # its own report, not the split's
    assert "ppl" in piped.stderr and piped.stdout == ""  # results on stderr and in files


def test_eval_of_an_empty_stdin_scores_the_test_split(trained_lm, tmp_path):
    result = runner.invoke(app, ["eval", "-m", str(trained_lm), "--out-dir", str(tmp_path)],
                           input=b"")  # a script's /dev/null: not a terminal, nothing piped
    assert result.exit_code == 0, result.stderr
    assert "stdin is empty: scoring the test split" in result.stderr
    assert (tmp_path / "eval-test.json").is_file()


def test_eval_batch_size_changes_little(trained_lm, tmp_path):
    result = runner.invoke(app, ["eval", "-m", str(trained_lm), "--split", "valid",
                                 "--batch-size", "4", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "eval-valid.json").read_text())["batch_size"] == 4


def test_generate_one_line_per_prompt_reproducible(trained_lm):
    prompts = b"The red horse\n\nNow the\r\nA girl\n"
    args = ["generate", "-m", str(trained_lm), "--max-tokens", "6", "--seed", "3"]
    one = runner.invoke(app, args, input=prompts)
    two = runner.invoke(app, args, input=prompts)
    assert one.exit_code == 0, one.stderr
    lines = one.stdout.split("\n")
    assert len(lines) == 5 and lines[-1] == ""
    assert one.stdout == two.stdout
    assert "generated 4 continuations" in one.stderr
    other = runner.invoke(app, args[:-1] + ["4", "--temperature", "2"], input=prompts)
    assert other.stdout != one.stdout
    bf16 = runner.invoke(app, args + ["--precision", "bf16"], input=prompts)
    assert bf16.exit_code == 0 and len(bf16.stdout.split("\n")) == 5


@pytest.mark.parametrize("args, data, message", [
    (["generate"], b"ok\n\xfe\n", "stdin: line 2, byte 1: not valid UTF-8 (0xfe)"),
    (["eval", "--src", "x.de", "--ref", "x.en"], b"", "--src/--ref/--beam are for translation"),
    (["eval", "--split", "nope"], b"", "nope.txt"),
    (["translate"], b"a\n", "is a language model; translate needs a translation model"),
])
def test_lm_cli_errors_are_one_line(trained_lm, args, data, message):
    result = runner.invoke(app, [args[0], "-m", str(trained_lm), *args[1:]], input=data)
    assert result.exit_code == 1, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr


def test_generate_refuses_a_translation_model(trained_run):
    result = runner.invoke(app, ["generate", "-m", str(trained_run)], input=b"a\n")
    assert result.exit_code == 1
    assert "is a translation model; generate needs a language model" in result.stderr


def test_bad_lm_data_gives_clear_errors(tmp_path, text_corpus):
    def train(folder, **sections):
        recipe = write_recipe(tmp_path / "r.yaml", tiny_lm_recipe(folder, **sections))
        return train_run(recipe, [], run_dir=tmp_path / "run", overwrite=True)

    with pytest.raises(DataError, match="data folder not found"):
        train(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.txt").write_bytes(b"good line\nbad \xc3\x28 line\n")
    (bad / "valid.txt").write_text("x\n")
    with pytest.raises(DataError, match=r"train.txt: line 2, byte 5: not valid UTF-8"):
        train(bad)
    (bad / "train.txt").write_text("\n  \n")
    with pytest.raises(DataError, match="split 'train' has no text"):
        train(bad)
    (bad / "train.txt").write_text("a b c\n")
    with pytest.raises(DataError, match="training text too short"):
        train(bad)


@pytest.mark.parametrize("average_decay", [0.0, 0.9])
def test_lm_kill_and_resume_gives_the_same_weights(tmp_path, text_corpus, average_decay):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_lm_recipe(
        text_corpus, train={"max_epochs": 0, "max_steps": 30, "valid_every": 10,
                            "variable_bptt": True, "average_decay": average_decay}))
    train_run(recipe, [], run_dir=tmp_path / "straight")

    class Killed(Exception):
        pass

    def kill_at_15(step):
        if step == 15:
            raise Killed

    with pytest.raises(Killed):
        train_run(recipe, [], run_dir=tmp_path / "killed", on_step=kill_at_15)
    saved = checkpoint.load(tmp_path / "killed" / "last.pt")
    assert saved["train_state"]["step"] == 10 and saved["task_state"]["hidden"]
    train_run(recipe, [], run_dir=tmp_path / "killed", resume=True)
    a = checkpoint.load(tmp_path / "straight" / "last.pt")
    b = checkpoint.load(tmp_path / "killed" / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    if average_decay:  # the average resumes too, and best.pt holds it, not the raw weights
        for key in a["average"]:
            assert torch.equal(a["average"][key], b["average"][key]), key
        best = checkpoint.load(tmp_path / "straight" / "best.pt")
        assert not torch.equal(best["model"]["output.bias"], a["model"]["output.bias"])


def test_extra_training_text_and_held_out_validation(tmp_path, text_corpus):
    """Training text from a text split plus a gzipped TSV and a JSONL file; validation lines
    held out from it (seeded), no test split: the run trains and eval --split valid re-derives
    exactly the held-out lines."""
    import gzip

    from lstm_nlp.config import load_recipe
    from lstm_nlp.data.sources import language_corpora

    lines = (text_corpus / "valid.txt").read_text().splitlines()
    with gzip.open(tmp_path / "reviews.tsv.gz", "wt", encoding="utf-8") as f:
        f.write("label\ttext\n" + "".join(f"1\t{line}\n" for line in lines[:10]))
    (tmp_path / "more.jsonl").write_text("".join(json.dumps({"text": line}) + "\n"
                                                 for line in lines[10:20]), encoding="utf-8")
    train_lines = (text_corpus / "train.txt").read_text().splitlines()
    (tmp_path / "wiki.txt").write_text("\n".join(train_lines) + "\n", encoding="utf-8")
    recipe = tiny_lm_recipe(tmp_path, data={
        "train": "wiki", "extra_train": ["reviews.tsv.gz", "more.jsonl"],
        "valid": "", "valid_fraction": 0.1, "test": ""}, train={"max_epochs": 1})
    path = write_recipe(tmp_path / "mixed.yaml", recipe)
    train_text, valid_text = language_corpora(load_recipe(path).data, seed=1)
    train, valid = list(train_text), list(valid_text)
    everything = train_lines + lines[:20]
    assert len(valid) == len(everything) // 10 and len(train) + len(valid) == len(everything)
    assert sorted(train + valid) == sorted(everything)
    assert list(language_corpora(load_recipe(path).data, seed=1)[1]) == valid  # seeded
    assert "reviews.tsv.gz" in train_text.origin and "more.jsonl" in train_text.origin

    run = train_run(path, [], run_dir=tmp_path / "run")
    assert json.loads((run / "report.json").read_text())["test"] is None
    result = runner.invoke(app, ["eval", "-m", str(run), "--split", "valid",
                                 "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    evaluated = json.loads(next(tmp_path.glob("eval-valid*.json")).read_text())
    assert evaluated["lines"] == len(valid)
    assert evaluated["ppl"] == pytest.approx(rows[-1]["val_ppl"], rel=0.1)  # other batching
    no_test = runner.invoke(app, ["eval", "-m", str(run), "--split", "test"])
    assert no_test.exit_code == 1 and "no test split" in no_test.stderr


@pytest.mark.parametrize("data, message", [
    ({"extra_train": ["missing.tsv"]}, "file not found"),
    ({"valid": "", "valid_fraction": 0.0}, "valid_fraction above 0"),
    ({"valid_fraction": 0.9}, "valid_fraction: must be between"),
])
def test_extra_text_and_held_out_errors(tmp_path, text_corpus, data, message):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_lm_recipe(text_corpus, data=data))
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 1 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
