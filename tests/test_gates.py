"""Gates recomputed from the weights (nn/gates.py and each task's gates module): they reproduce
the hidden states of the model's own LSTMs, for every kind of LSTM in the three tasks; the
saturation statistics on known values."""

import json
import sys

import pytest
import torch

from lstm_nlp.data.tokenizer import TokenizerPair, WordTokenizer
from lstm_nlp.nn.gates import GateTrace, LayerTrace, most_saturated, statistics
from lstm_nlp.tasks.classify import gates as classify_gates
from lstm_nlp.tasks.classify.model import Classifier
from lstm_nlp.tasks.lm import gates as lm_gates
from lstm_nlp.tasks.lm.model import LanguageModel
from lstm_nlp.tasks.translate import gates as translate_gates
from lstm_nlp.tasks.translate.model import Seq2SeqModel
from lstm_nlp.training import checkpoint

TOL = 1e-5
WORDS = ["<pad>", "<unk>", "<s>", "<eos>"] + [f"w{i}" for i in range(26)]


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and float((a - b).abs().max()) < TOL


def seq2seq(**kwargs) -> Seq2SeqModel:
    torch.manual_seed(0)
    args = dict(src_vocab=30, tgt_vocab=30, pad_id=0, emb_size=12, hidden_size=16,
                enc_layers=2, dec_layers=1, bidirectional=True, attention="general",
                input_feeding=True, dropout=0.3, tie_output=False, share_embeddings=False)
    return Seq2SeqModel(**{**args, **kwargs}).eval()


def by_name(traces: list[LayerTrace]) -> dict[str, GateTrace]:
    return {t.name: t.trace for t in traces}


@pytest.mark.parametrize("kwargs", [
    {},                                                     # fused input-feeding decoder
    {"dec_layers": 2, "attention": "bahdanau"},             # input feeding, step by step
    {"input_feeding": False, "dec_layers": 2},              # nn.LSTM decoder
    {"bidirectional": False, "enc_layers": 1, "attention": "dot"},
])
def test_translation_gates_reproduce_the_encoder_and_decoder_states(kwargs):
    model = seq2seq(**kwargs)
    tok = TokenizerPair(WordTokenizer(WORDS), WordTokenizer(WORDS))
    src, tgt = [5, 9, 4, 17, 8, 6], [7, 11, 12, 25]
    traces = translate_gates.traces(model, tok, src, tgt)
    got = by_name(traces)
    enc, dirs = model.encoder, model.encoder.num_dirs
    with torch.no_grad():
        out, (h_n, _) = enc.rnn(enc.embed(torch.tensor([src])))               # (1, S, H)
        names = [t.name for t in traces if t.name.startswith("encoder")]
        assert len(names) == enc.rnn.num_layers * dirs
        top = torch.cat([got[n].hidden for n in names[-dirs:]], -1)
        assert close(top, out[0])
        for k, name in enumerate(names):  # every layer's final state, both directions
            final = got[name].hidden[0 if name.endswith("backward") else -1]
            assert close(final, h_n[k, 0])
        encoded = model.encode(torch.tensor([src]), torch.tensor([len(src)]))
        prev = torch.tensor([2])
        for t, token in enumerate(tgt + [3]):  # the decoder's own steps, teacher-forced
            _, encoded, _ = model.decode_step(prev, encoded)
            for k in range(model.decoder.num_layers):
                assert close(got[f"decoder layer {k}"].hidden[t], encoded.state.h[k][0]), (t, k)
            prev = torch.tensor([token])
    assert [t.tokens for t in traces if t.name == "decoder layer 0"] == [
        ["<s>", "w3", "w7", "w8", "w21"]]


def test_language_model_gates_reproduce_every_layer():
    torch.manual_seed(0)
    model = LanguageModel(30, 12, 20, 3, tie_weights=True, init_range=0.0, locked_dropout=True,
                          dropout=0.3, dropout_input=0.2, dropout_hidden=0.2,
                          dropout_embedding=0.1, weight_drop=0.5).eval()
    ids = [3, 5, 9, 4, 3, 17, 8]
    got = by_name(lm_gates.traces(model, WordTokenizer(WORDS), ids))
    with torch.no_grad():
        x = model.embedding(torch.tensor(ids)).unsqueeze(1)                     # (T, 1, E)
        for k, lstm in enumerate(model.lstms):
            x, _ = lstm(x)
            assert close(got[f"lm layer {k}"].hidden, x[:, 0])
    assert got["lm layer 2"].hidden.size(1) == 12  # tied: the last layer has emb_size units


@pytest.mark.parametrize("bidirectional", [True, False])
def test_classifier_gates_reproduce_every_layer_and_direction(bidirectional):
    torch.manual_seed(0)
    model = Classifier(30, ["a", "b"], 12, 10, 2, bidirectional, False, "attention", 0, 0.3,
                       0.1, 0.1, 0.1, 0.3, True, "head", 50, 10).eval()
    ids = [3, 5, 9, 4, 17, 8]
    traces = classify_gates.traces(model, WordTokenizer(WORDS), ids)
    assert len(traces) == 2 * (2 if bidirectional else 1)
    with torch.no_grad():
        out, _ = model.encode(torch.tensor(ids).unsqueeze(1), torch.tensor([len(ids)]))
    top = torch.cat([t.trace.hidden for t in traces if " layer 1" in t.name], -1)
    assert close(top, out[:, 0])


def trace_of(i, f, o) -> GateTrace:
    t = lambda v: torch.tensor(v, dtype=torch.float).view(-1, 2)  # noqa: E731
    return GateTrace(t(i), t(f), t(o), t([3.0, 4.0, 0.0, 0.0]), t([0.0] * 4))


def test_saturation_shares_and_cell_norm_on_known_values():
    trace = trace_of([0.05, 0.5, 0.5, 0.99], [0.5, 0.5, 0.5, 0.0], [0.95, 0.95, 0.95, 0.95])
    (stats,) = statistics([LayerTrace("x", ["a", "b"], trace)])
    assert stats.shares == {"input": (0.25, 0.25), "forget": (0.25, 0.0), "output": (0.0, 1.0)}
    assert stats.cell_norm == pytest.approx(2.5)  # norms 5 and 0
    assert (stats.steps, stats.units) == (2, 2)
    # unit 1 (input 0.5/0.99, forget 0.5/0.0, output 0.95/0.95: 4 of 6 saturated) before
    # unit 0 (0.05/0.5, 0.5/0.5, 0.95/0.95: 3 of 6)
    assert most_saturated(trace, 2) == [1, 0]


def test_statistics_pool_every_text_of_a_layer():
    a = trace_of([0.05, 0.05, 0.05, 0.05], [0.5] * 4, [0.5] * 4)
    b = trace_of([0.5, 0.5, 0.5, 0.5], [0.5] * 4, [0.5] * 4)
    stats = statistics([LayerTrace("x", [], a), LayerTrace("y", [], a), LayerTrace("x", [], b)])
    assert [s.name for s in stats] == ["x", "y"]
    assert stats[0].shares["input"] == (0.5, 0.0) and stats[0].steps == 4


# ---------------------------------------------------------------- lstm-nlp inspect


def inspect(*args, data: bytes | None = None):
    from typer.testing import CliRunner

    from lstm_nlp.cli import app

    return CliRunner().invoke(app, ["inspect", *map(str, args)], input=data)


def test_inspect_describes_a_checkpoint(trained_run):
    result = inspect("-m", trained_run)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert f"checkpoint  {trained_run / 'best.pt'}" in out
    assert "task        translate (translation); recipe tiny, seed 1" in out
    assert "vocabulary  120 source, 120 target (joint)" in out
    assert "encoder.rnn" in out and "decoder.w_in" in out
    assert "gates over" not in out  # no text, no statistics


def test_inspect_json_has_every_layer_and_its_gate_statistics(trained_run, corpus, tmp_path):
    heatmap = tmp_path / "gates.png"
    result = inspect("-m", trained_run, "-i", corpus / "valid.en", "--json", "--heatmap",
                     heatmap)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    model, _, _ = checkpoint.load_model(trained_run)
    assert report["parameters"]["total"] == sum(p.numel() for p in model.parameters())
    assert report["training"]["best_step"] == checkpoint.load(trained_run / "best.pt")[
        "train_state"]["best_step"]
    gates = report["gates"]
    assert gates["texts"] == len((corpus / "valid.en").read_text().splitlines())
    assert [g["name"] for g in gates["layers"]] == [
        "encoder layer 0 forward", "encoder layer 0 backward", "decoder layer 0"]
    for g in gates["layers"]:
        for gate in ("input", "forget", "output"):
            assert 0.0 <= g[f"{gate}_left"] <= 1.0 and 0.0 <= g[f"{gate}_right"] <= 1.0
            assert g[f"{gate}_left"] + g[f"{gate}_right"] <= 1.0
        assert g["cell_norm"] > 0 and g["units"] == 32 + 32 * (g["name"] == "decoder layer 0")
    assert report["heatmap"] == str(heatmap) and heatmap.read_bytes()[:4] == b"\x89PNG"


def test_inspect_reads_stdin_piped_or_named(trained_lm):
    text = b"the red horse sees the dog .\n\nthe man finds a book .\n"
    piped = inspect("-m", trained_lm, "--json", data=text)
    named = inspect("-m", trained_lm, "--json", "-i", "-", data=text)
    assert piped.exit_code == named.exit_code == 0, piped.stderr
    assert json.loads(piped.stdout)["gates"] == json.loads(named.stdout)["gates"]
    layers = json.loads(piped.stdout)["gates"]["layers"]
    # one stream: <eos>, 7 words, <eos>, 6 words, <eos> (empty lines are not read)
    assert [(g["name"], g["steps"]) for g in layers] == [("lm layer 0", 16), ("lm layer 1", 16)]
    assert (trained_lm / "inspect-stdin.png").is_file()
    text_out = inspect("-m", trained_lm, data=text).stdout
    assert "gates over 2 texts" in text_out and "lm layer 1" in text_out


def test_inspect_without_text_or_with_only_empty_lines(trained_lm, tmp_path):
    quiet = inspect("-m", trained_lm, data=b"")
    assert quiet.exit_code == 0 and "stdin is empty" in quiet.stderr
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n")
    result = inspect("-m", trained_lm, "-i", blank)
    assert result.exit_code == 1
    assert f"error: {blank}: no text to inspect (only empty lines)" in result.stderr


def test_inspect_heatmap_without_matplotlib(monkeypatch, trained_lm, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    asked = inspect("-m", tmp_path / "no-such-run", "--heatmap", tmp_path / "h.png",
                    data=b"the dog .\n")
    assert asked.exit_code == 1  # asked for by name: refused before the model loads
    assert asked.stderr.strip() == ("error: gate heatmaps needs matplotlib, which is not "
                                    "installed: pip install 'lstm-nlp[plots]'")
    implied = inspect("-m", trained_lm, "--json", data=b"the dog .\n")
    assert implied.exit_code == 0  # the statistics stand; the heatmap is a warning
    assert json.loads(implied.stdout)["heatmap"] is None
    assert "warning: gate heatmap left out" in implied.stderr
