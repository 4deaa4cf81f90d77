"""`lstm-nlp export` (ONNX graphs, safetensors weights) and `translate --backend onnxruntime`:
the exported graphs decode exactly as PyTorch does through the same search code, the manifest
says what a runtime needs, the weights come back bit for bit, and every refusal is one line."""

import json
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lstm_nlp.cli import app
from lstm_nlp.data.tokenizer import TokenizerPair
from lstm_nlp.nn import kernels
from lstm_nlp.tasks.translate import onnx_backend
from lstm_nlp.tasks.translate.model import build_model
from lstm_nlp.tasks.translate.search import beam_search, greedy_decode
from lstm_nlp.training import checkpoint

from test_faults import one_error_line, read_only

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "tests" / "fixtures" / "v0.1.0"
TEST_EN = ROOT / "data" / "demo" / "test.en"
runner = CliRunner()


def run(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stderr


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "onnx"
    run("export", "-m", RELEASE / "translate.pt", "--format", "onnx", "-o", out)
    return out


@pytest.fixture(scope="module")
def safetensors_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "st"
    run("export", "-m", RELEASE / "translate.pt", "--format", "safetensors", "-o", out)
    return out


# ------------------------------------------------------------------ ONNX = PyTorch

@pytest.mark.parametrize("beam", [1, 5])
def test_onnxruntime_translates_the_demo_test_set_exactly_as_pytorch(onnx_dir, tmp_path, beam):
    torch_out, ort_out = tmp_path / "torch.txt", tmp_path / "ort.txt"
    run("translate", "-m", RELEASE / "translate.pt", "--beam", beam, "-i", TEST_EN,
        "-o", torch_out)
    log = run("translate", "-m", onnx_dir, "--backend", "onnxruntime", "--beam", beam,
              "-i", TEST_EN, "-o", ort_out)
    expected = torch_out.read_text(encoding="utf-8").splitlines()
    assert len(expected) == 300
    assert ort_out.read_text(encoding="utf-8").splitlines() == expected  # all 300 lines
    assert "onnxruntime" in log and "fp32" in log


def _architecture(tmp_path: Path, model_section: dict) -> tuple[Path, torch.nn.Module]:
    """A randomly initialised model of this shape with the fixture's tokenizers and recipe,
    saved as a checkpoint and exported -> (export folder, the PyTorch model)."""
    ckpt = checkpoint.load(RELEASE / "translate.pt")
    recipe = checkpoint.recipe_of({"recipe": {**ckpt["recipe"], "model": {
        **ckpt["recipe"]["model"], **model_section}}}, tmp_path)
    tok = TokenizerPair.from_state(ckpt["tokenizer"])
    torch.manual_seed(0)
    model = build_model(recipe.model, tok.src.vocab_size, tok.tgt.vocab_size, tok.tgt.pad_id)
    checkpoint.save(tmp_path / "m.pt", {"task": "translate", "recipe": recipe.to_dict(),
                                        "tokenizer": ckpt["tokenizer"],
                                        "model": model.state_dict()})
    run("export", "-m", tmp_path / "m.pt", "--format", "onnx", "-o", tmp_path / "onnx")
    return tmp_path / "onnx", model.eval()


@pytest.mark.parametrize("model_section", [
    {"attention": "dot", "emb_size": 64, "tie_output": True, "share_embeddings": True},
    {"attention": "bahdanau", "enc_layers": 2, "dec_layers": 2},
    {"input_feeding": False, "bidirectional": False, "dec_layers": 2},
    {"attention": "general", "enc_layers": 3},
], ids=["dot-tied", "bahdanau-2x2", "no-feeding-unidirectional", "3-layer-encoder"])
def test_graphs_compute_what_the_model_computes(tmp_path, model_section):
    """Batch and source length other than the traced ones (2 x 3), lengths 1 to S."""
    folder, model = _architecture(tmp_path, model_section)
    ort_model = onnx_backend.load(folder)[0]
    lengths = torch.tensor([7, 1, 4, 7, 2])
    src = torch.randint(4, 200, (5, 7)) * (torch.arange(7) < lengths[:, None])  # (5, 7) padded
    with torch.inference_mode():
        want, got = model.encode(src, lengths), ort_model.encode(src, lengths)
        real = want.mask.unsqueeze(-1)                                          # (B, S, 1)
        for a, b in [(want.memory * real, got.memory * real), (want.keys * real, got.keys * real),
                     (torch.stack(want.state.h), torch.stack(got.state.h)),
                     (torch.stack(want.state.c), torch.stack(got.state.c))]:
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)
        assert torch.equal(got.mask, want.mask)
        prev = torch.tensor([2, 9, 30, 2, 5])
        (logp_a, next_a, w_a), (logp_b, next_b, w_b) = (model.decode_step(prev, want),
                                                         ort_model.decode_step(prev, got))
        torch.testing.assert_close(logp_b, logp_a, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(w_b, w_a, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(next_b.state.feed, next_a.state.feed, atol=1e-5, rtol=1e-4)
        for m in (model, ort_model):
            assert greedy_decode(m, src, lengths, 2, 3, 2.0) == \
                greedy_decode(model, src, lengths, 2, 3, 2.0)
            assert beam_search(m, src, lengths, 2, 3, 4, 1.0, 2.0) == \
                beam_search(model, src, lengths, 2, 3, 4, 1.0, 2.0)


# ------------------------------------------------------------------ what the folder holds

def test_the_manifest_says_what_a_runtime_needs(onnx_dir):
    manifest = json.loads((onnx_dir / "manifest.json").read_text())
    ckpt = checkpoint.load(RELEASE / "translate.pt")
    recipe = ckpt["recipe"]
    assert {p.name for p in onnx_dir.iterdir()} == {"manifest.json", "encoder.onnx",
                                                    "decoder_step.onnx", "tokenizer"}
    assert manifest["format"] == "lstm-nlp-export" and manifest["version"] == 1
    assert manifest["kind"] == "onnx" and manifest["task"] == "translate"
    assert manifest["opset"] == 17 and manifest["lstm_nlp_version"]
    tok = TokenizerPair.from_state(ckpt["tokenizer"])
    assert manifest["vocab"] == {"src_size": tok.src.vocab_size, "tgt_size": tok.tgt.vocab_size,
                                 "joint": True, "pad_id": 0, "unk_id": 1, "bos_id": 2,
                                 "eos_id": 3}
    assert manifest["decode"]["beam_size"] == recipe["decode"]["beam_size"]
    assert manifest["decode"]["max_len_ratio"] == recipe["decode"]["max_len_ratio"]
    assert manifest["decode"]["length_penalty"] == recipe["decode"]["length_penalty"]
    assert manifest["shapes"]["hidden_size"] == 64
    assert manifest["recipe"] == checkpoint.recipe_of(ckpt, RELEASE).to_dict()
    enc, dec = manifest["graphs"]["encoder"], manifest["graphs"]["decoder_step"]
    assert list(enc["inputs"]) == ["src", "lengths"]
    assert list(enc["outputs"]) == ["memory", "keys", "mask", "h", "c", "feed"]
    assert list(dec["inputs"]) == ["prev", "h", "c", "feed", "keys", "memory", "mask"]
    assert list(dec["outputs"]) == ["logp", "h_next", "c_next", "feed_next", "weights"]
    assert enc["inputs"]["src"] == {"dtype": "int64", "shape": ["batch", "src_len"]}
    assert dec["inputs"]["h"] == {"dtype": "float32", "shape": [1, "batch", 64]}
    assert dec["outputs"]["logp"] == {"dtype": "float32", "shape": ["batch", tok.tgt.vocab_size]}
    tokenizer = manifest["tokenizer"]
    assert tokenizer == {"kind": "sentencepiece", "files": {"src": "tokenizer/joint.model"}}
    assert (onnx_dir / "tokenizer" / "joint.model").read_bytes() == ckpt["tokenizer"]["src"]
    assert kernels.ENABLED  # the speed kernels are back on after tracing without them


def test_safetensors_gives_the_weights_back_bit_for_bit(safetensors_dir):
    original = checkpoint.load(RELEASE / "translate.pt")
    for path in (safetensors_dir, safetensors_dir / "model.safetensors"):
        loaded = checkpoint.load(checkpoint.resolve(path))
        assert loaded["model"].keys() == original["model"].keys()
        for name, tensor in original["model"].items():
            assert loaded["model"][name].dtype == tensor.dtype
            assert torch.equal(loaded["model"][name], tensor), name
        assert loaded["recipe"] == original["recipe"]
        assert loaded["tokenizer"] == original["tokenizer"]
        assert loaded["train_state"] == original["train_state"]
        assert "optimizer" not in loaded and "rng" not in loaded
    assert {p.name for p in safetensors_dir.iterdir()} == {"manifest.json", "model.safetensors",
                                                           "tokenizer"}


def test_tied_weights_are_stored_once_and_stay_tied(tmp_path):
    """The language-model fixture ties its output layer to its embeddings."""
    run("export", "-m", RELEASE / "lm.pt", "--format", "safetensors", "-o", tmp_path / "lm")
    from safetensors import safe_open

    original = checkpoint.load(RELEASE / "lm.pt")["model"]
    with safe_open(str(tmp_path / "lm" / "model.safetensors"), framework="pt") as f:
        stored = set(f.keys())
    assert len(stored) == len(original) - 1
    model, _, _ = checkpoint.load_model(tmp_path / "lm")
    assert model.output.weight is model.embedding.weight
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, original[name]), name


def test_every_verb_takes_a_safetensors_export(safetensors_dir, tmp_path):
    want, got = tmp_path / "want.txt", tmp_path / "got.txt"
    run("translate", "-m", RELEASE / "translate.pt", "--beam", 1, "-i", TEST_EN, "-o", want)
    run("translate", "-m", safetensors_dir / "model.safetensors", "--beam", 1, "-i", TEST_EN,
        "-o", got)
    assert got.read_text() == want.read_text()
    run("eval", "-m", safetensors_dir, "--src", TEST_EN, "--ref", TEST_EN.with_suffix(".de"),
        "--beam", 1, "--out-dir", tmp_path)
    assert json.loads((tmp_path / "eval-test.en-beam1.json").read_text())["sentences"] == 300
    run("export", "-m", RELEASE / "classify.pt", "--format", "safetensors", "-o", tmp_path / "c")
    result = runner.invoke(app, ["classify", "-m", str(tmp_path / "c")],
                           input="the acting was not boring .\n")
    assert result.exit_code == 0 and result.stdout.startswith("positive\t"), result.output


# ------------------------------------------------------------------ refusals, one line each

@pytest.mark.parametrize("module, args, extra", [
    ("onnx", ["export", "-m", RELEASE / "translate.pt", "--format", "onnx"], "onnx"),
    ("safetensors", ["export", "-m", RELEASE / "translate.pt", "--format", "safetensors"],
     "safetensors"),
])
def test_a_missing_library_names_its_extra(monkeypatch, tmp_path, module, args, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    result = runner.invoke(app, [str(a) for a in args] + ["-o", str(tmp_path / "out")])
    one_error_line(result, f"needs {module}, which is not installed: "
                           f"pip install 'lstm-nlp[{extra}]'")
    assert not (tmp_path / "out").exists()


def test_a_missing_onnxruntime_names_its_extra(onnx_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    result = runner.invoke(app, ["translate", "-m", str(onnx_dir), "--backend", "onnxruntime"],
                           input="A dog runs.\n")
    one_error_line(result, "--backend onnxruntime needs onnxruntime, which is not installed: "
                           "pip install 'lstm-nlp[onnx]'")


def test_reading_a_safetensors_export_without_the_library_names_its_extra(safetensors_dir,
                                                                          monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    result = runner.invoke(app, ["translate", "-m", str(safetensors_dir)], input="A dog.\n")
    one_error_line(result, "pip install 'lstm-nlp[safetensors]'")


def test_only_translation_models_export_to_onnx(tmp_path):
    result = runner.invoke(app, ["export", "-m", str(RELEASE / "lm.pt"), "--format", "onnx",
                                 "-o", str(tmp_path / "out")])
    one_error_line(result, "is a language model; ONNX export is for translation models "
                           "(--format safetensors exports any model)")
    assert list(tmp_path.iterdir()) == []  # no folder, no temporary folder


def test_an_existing_export_folder_is_kept_unless_overwrite(onnx_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    args = ["export", "-m", str(RELEASE / "translate.pt"), "--format", "safetensors", "-o",
            str(out)]
    one_error_line(runner.invoke(app, args), f"export folder {out} already exists; "
                                             "--overwrite replaces it")
    assert (out / "mine.txt").read_text() == "keep me"
    run(*args, "--overwrite")
    assert {p.name for p in out.iterdir()} == {"manifest.json", "model.safetensors", "tokenizer"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing left beside it


def test_an_unwritable_output_is_refused_before_the_model_loads(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["export", "-m", "no-such-run", "--format", "onnx", "-o",
                                 str(tmp_path / "file")])
    one_error_line(result, f"cannot write export folder {tmp_path / 'file'}: it is a file")
    (tmp_path / "ro").mkdir()
    read_only(monkeypatch, tmp_path / "ro")
    result = runner.invoke(app, ["export", "-m", "no-such-run", "--format", "onnx", "-o",
                                 str(tmp_path / "ro" / "out")])
    one_error_line(result, f"export folder {tmp_path / 'ro' / 'out'}",
                   "Read-only file system")


def test_a_failed_export_leaves_nothing(tmp_path, monkeypatch):
    from lstm_nlp.tasks.translate import onnx_export

    def fails(*args):
        (args[-1] / "encoder.onnx").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx_export, "export_onnx", fails)
    result = runner.invoke(app, ["export", "-m", str(RELEASE / "translate.pt"), "--format",
                                 "onnx", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "No space left on device" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("what, message", [
    ("run", "is not an ONNX export (no manifest.json); --backend onnxruntime takes the folder"),
    ("checkpoint", "is not an ONNX export"),
    ("safetensors", "is a safetensors export; --backend onnxruntime takes an ONNX export"),
])
def test_onnxruntime_needs_an_onnx_export(safetensors_dir, what, message):
    model = {"run": RELEASE, "checkpoint": RELEASE / "translate.pt",
             "safetensors": safetensors_dir}[what]
    result = runner.invoke(app, ["translate", "-m", str(model), "--backend", "onnxruntime"],
                           input="A dog.\n")
    one_error_line(result, message)


@pytest.mark.parametrize("verb", [["translate"], ["eval", "--src", str(TEST_EN), "--ref",
                                                  str(TEST_EN)]])
def test_torch_verbs_point_an_onnx_export_to_onnxruntime(onnx_dir, verb):
    result = runner.invoke(app, [verb[0], "-m", str(onnx_dir), *verb[1:]], input="A dog.\n")
    one_error_line(result, "is an ONNX export: translate with it through --backend onnxruntime")


@pytest.mark.parametrize("option, message", [
    (["--precision", "bf16"], "--precision bf16: the ONNX graphs compute in fp32"),
    (["--device", "cuda"], "--device"),  # not here, or (with a GPU) not onnxruntime's here
])
def test_onnxruntime_refuses_pytorchs_precisions_and_devices(onnx_dir, option, message):
    result = runner.invoke(app, ["translate", "-m", str(onnx_dir), "--backend", "onnxruntime",
                                 *option], input="A dog.\n")
    one_error_line(result, message)


def test_damaged_export_folders_are_one_line(onnx_dir, safetensors_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(onnx_dir, broken)
    (broken / "decoder_step.onnx").write_bytes(b"not a graph")
    result = runner.invoke(app, ["translate", "-m", str(broken), "--backend", "onnxruntime"],
                           input="A dog.\n")
    one_error_line(result, "decoder_step.onnx: onnxruntime cannot load it")
    (broken / "decoder_step.onnx").unlink()
    result = runner.invoke(app, ["translate", "-m", str(broken), "--backend", "onnxruntime"],
                           input="A dog.\n")
    one_error_line(result, "decoder_step.onnx is missing (an incomplete export folder)")
    (broken / "manifest.json").write_text('{"format": "lstm-nlp-export", "version": 9}')
    result = runner.invoke(app, ["translate", "-m", str(broken), "--backend", "onnxruntime"],
                           input="A dog.\n")
    one_error_line(result, "export version 9 is not supported")
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(safetensors_dir / "model.safetensors", alone)
    result = runner.invoke(app, ["translate", "-m", str(alone / "model.safetensors")],
                           input="A dog.\n")
    one_error_line(result, "no safetensors manifest beside it")
