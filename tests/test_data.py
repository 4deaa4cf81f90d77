import json

import pytest

from lstm_nlp.data.corpora import load_split, read_lines
from lstm_nlp.errors import DataError
from lstm_nlp.tasks.translate.config import TranslateDataConfig

PAIRS = [("Ein Hund.", "A dog."), ("Zwei Katzen, \"drei\".", "Two cats, \"three\".")]


def test_parallel_files_crlf_and_missing_final_newline(tmp_path):
    (tmp_path / "train.de").write_bytes(b"Ein Hund.\r\nZwei Katzen.")
    (tmp_path / "train.en").write_bytes(b"A dog.\nTwo cats.\n")
    split = load_split(TranslateDataConfig(dir=str(tmp_path), src_lang="de", tgt_lang="en"), "train")
    assert split.src == ["Ein Hund.", "Zwei Katzen."] and split.tgt == ["A dog.", "Two cats."]


def test_misaligned_files_name_both_files(tmp_path):
    (tmp_path / "train.de").write_text("a\nb\nc\n")
    (tmp_path / "train.en").write_text("a\nb\n")
    with pytest.raises(DataError, match=r"misaligned files: .*train.de has 3 lines, .*train.en has 2"):
        load_split(TranslateDataConfig(dir=str(tmp_path), src_lang="de", tgt_lang="en"), "train")


def test_non_utf8_names_file_and_line(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"fine\nalso fine\ncaf\xe9\n")
    with pytest.raises(DataError, match=r"bad.txt: line 3, byte 4: not valid UTF-8 \(0xe9\)"):
        read_lines(tmp_path / "bad.txt")


def test_missing_file_folder_and_empty_split(tmp_path):
    cfg = TranslateDataConfig(dir=str(tmp_path), src_lang="de", tgt_lang="en")
    with pytest.raises(DataError, match="file not found: .*train.de"):
        load_split(cfg, "train")
    with pytest.raises(DataError, match="data folder not found"):
        load_split(TranslateDataConfig(dir=str(tmp_path / "nope")), "train")
    (tmp_path / "train.de").write_text("")
    (tmp_path / "train.en").write_text("")
    with pytest.raises(DataError, match="split 'train' is empty"):
        load_split(cfg, "train")


def _write_tabular(tmp_path, fmt):
    import datasets

    if fmt == "tsv":
        (tmp_path / "train.tsv").write_text(
            "de\ten\n" + "".join(f"{a}\t{b}\n" for a, b in PAIRS), encoding="utf-8")
    elif fmt == "csv":
        ds = datasets.Dataset.from_dict({"de": [a for a, _ in PAIRS], "en": [b for _, b in PAIRS]})
        ds.to_csv(str(tmp_path / "train.csv"), index=False)
    elif fmt == "jsonl":
        (tmp_path / "train.jsonl").write_text(
            "".join(json.dumps({"de": a, "en": b}, ensure_ascii=False) + "\n" for a, b in PAIRS),
            encoding="utf-8")
    elif fmt == "parquet":
        ds = datasets.Dataset.from_dict({"de": [a for a, _ in PAIRS], "en": [b for _, b in PAIRS]})
        ds.to_parquet(str(tmp_path / "train.parquet"))
    elif fmt == "disk":
        ds = datasets.Dataset.from_dict({"translation": [{"de": a, "en": b} for a, b in PAIRS]})
        datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "ds"))


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl", "parquet", "disk"])
def test_tabular_formats_through_datasets(tmp_path, fmt):
    _write_tabular(tmp_path, fmt)
    if fmt == "disk":
        cfg = TranslateDataConfig(format="disk", dir=str(tmp_path / "ds"), src_column="translation.de",
                         tgt_column="translation.en")
    else:
        cfg = TranslateDataConfig(format=fmt, dir=str(tmp_path), src_column="de", tgt_column="en")
    split = load_split(cfg, "train")
    assert list(zip(split.src, split.tgt)) == PAIRS


def test_tabular_errors(tmp_path):
    _write_tabular(tmp_path, "jsonl")
    with pytest.raises(DataError, match=r"no column 'src' \(columns: de, en\)"):
        load_split(TranslateDataConfig(format="jsonl", dir=str(tmp_path)), "train")
    (tmp_path / "valid.tsv").write_bytes(b"de\ten\nok\tok\n\xff\tbad\n")
    with pytest.raises(DataError, match="valid.tsv: line 3, byte 1: not valid UTF-8"):
        load_split(TranslateDataConfig(format="tsv", dir=str(tmp_path), src_column="de", tgt_column="en"),
                   "valid")
    _write_tabular(tmp_path, "disk")
    with pytest.raises(DataError, match=r"no split 'test' \(has: train\)"):
        load_split(TranslateDataConfig(format="disk", dir=str(tmp_path / "ds")), "test")


def test_hub_offline_is_a_clear_error(tmp_path):
    cfg = TranslateDataConfig(format="hub", hub_name="no-such-user/no-such-dataset-xyz")
    with pytest.raises(DataError, match="could not load split 'train' as hub"):
        load_split(cfg, "train")
