"""Gates recomputed from the weights (nn/gates.py and each task's gates module): they reproduce
the hidden states of the model's own LSTMs, for every kind of LSTM in the three tasks; the
saturation statistics on known values."""

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
