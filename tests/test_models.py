"""Model invariants: attention masks, beam == greedy at size 1, overfitting a tiny corpus."""

import pytest
import torch

from lstm_nlp.data.batching import pad, seq2seq_batch
from lstm_nlp.nn.attention import Attention
from lstm_nlp.tasks.translate.model import Seq2SeqModel
from lstm_nlp.tasks.translate.search import beam_search, greedy_decode

PAD, BOS, EOS = 0, 2, 3


def make_model(attention="general", input_feeding=True, **kw) -> Seq2SeqModel:
    torch.manual_seed(0)
    args = dict(src_vocab=30, tgt_vocab=30, pad_id=PAD, emb_size=16, hidden_size=32,
                enc_layers=1, dec_layers=1, bidirectional=True, attention=attention,
                input_feeding=input_feeding, dropout=0.0, tie_output=False,
                share_embeddings=False)
    args.update(kw)
    return Seq2SeqModel(**args).eval()


@pytest.mark.parametrize("kind", ["dot", "general", "bahdanau"])
@pytest.mark.parametrize("steps", [None, 4])
def test_attention_weights_sum_to_one_and_ignore_padding(kind, steps):
    torch.manual_seed(0)
    att = Attention(kind, 8, 8)
    memory = torch.randn(3, 5, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    query = torch.randn(3, 8) if steps is None else torch.randn(3, steps, 8)
    context, weights = att(query, att.project_keys(memory), memory, mask)
    w = weights if steps is None else weights[:, 0]
    assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]))
    assert (w[~mask] == 0).all()
    # padding content cannot leak into the context
    memory2 = memory.clone()
    memory2[~mask] = 100.0
    context2, _ = att(query, att.project_keys(memory2), memory2, mask)
    assert torch.allclose(context, context2, atol=1e-6)


@pytest.mark.parametrize("attention", ["dot", "general", "bahdanau"])
@pytest.mark.parametrize("input_feeding", [True, False])
def test_teacher_forced_states_equal_step_by_step_states(attention, input_feeding):
    model = make_model(attention, input_feeding, dec_layers=2)
    src, lengths = pad([[5, 6, 7, 8], [9, 10]], PAD)
    tgt_in = torch.tensor([[BOS, 11, 12, 13], [BOS, 14, 15, PAD]])
    with torch.no_grad():
        full = model.forward_states(src, lengths, tgt_in)                       # (B, T, H)
        enc = model.encode(src, lengths)
        for t in range(tgt_in.size(1)):
            out, state, _ = model.decoder.step(tgt_in[:, t], enc.state, enc.keys, enc.memory,
                                               enc.mask, enc.weights)
            enc.state = state
            assert torch.allclose(out, full[:, t], atol=1e-5)


def test_padding_in_the_source_does_not_change_the_output():
    model = make_model()
    alone = torch.tensor([[5, 6]])
    padded, lengths = pad([[5, 6], [7, 8, 9, 10, 11]], PAD)
    tgt = torch.tensor([[BOS, 12, 13]])
    with torch.no_grad():
        a = model.forward_states(alone, torch.tensor([2]), tgt)
        b = model.forward_states(padded, lengths, torch.cat([tgt, tgt]))[:1]
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("input_feeding", [True, False])
def test_beam_of_one_equals_greedy(input_feeding):
    model = make_model(input_feeding=input_feeding)
    torch.manual_seed(1)
    src, lengths = pad([torch.randint(4, 30, (n,)).tolist() for n in (3, 7, 1, 5, 9)], PAD)
    greedy = greedy_decode(model, src, lengths, BOS, EOS, max_len_ratio=2.0)
    beam = beam_search(model, src, lengths, BOS, EOS, beam_size=1, length_penalty=1.0,
                       max_len_ratio=2.0)
    assert greedy == beam
    assert all(len(h) <= int(n * 2.0) + 5 for h, n in zip(greedy, lengths))


def test_beam_search_scores_at_least_as_well_as_greedy():
    model = make_model()
    torch.manual_seed(2)
    src, lengths = pad([torch.randint(4, 30, (6,)).tolist() for _ in range(4)], PAD)

    def logprob(hyp, i):
        batch = seq2seq_batch([src[i, : lengths[i]].tolist()], [hyp], PAD, BOS, EOS)
        with torch.no_grad():
            return -float(model.loss(batch).loss)

    greedy = greedy_decode(model, src, lengths, BOS, EOS, 2.0)
    beam = beam_search(model, src, lengths, BOS, EOS, 4, 0.0, 2.0)
    for i in range(4):
        assert logprob(beam[i], i) >= logprob(greedy[i], i) - 1e-4


def test_tied_and_shared_embeddings_are_one_tensor():
    model = make_model(emb_size=32, tie_output=True, share_embeddings=True)
    assert model.output.weight is model.decoder.embed.weight
    assert model.encoder.embed is model.decoder.embed


@pytest.mark.parametrize("input_feeding", [True, False])
def test_tiny_model_overfits_tiny_corpus(input_feeding):
    torch.manual_seed(0)
    src = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14, 15]]
    tgt = [[20, 21], [22, 23, 24], [25], [26, 27, 28, 29]]
    model = make_model(input_feeding=input_feeding).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    batch = seq2seq_batch(src, tgt, PAD, BOS, EOS)
    for _ in range(150):
        opt.zero_grad()
        out = model.loss(batch)
        (out.loss / out.n_tokens).backward()
        opt.step()
    model.eval()
    s, lengths = pad(src, PAD)
    assert greedy_decode(model, s, lengths, BOS, EOS, 2.0) == tgt
    assert beam_search(model, s, lengths, BOS, EOS, 3, 1.0, 2.0) == tgt


def test_scheduled_sampling_feeds_model_predictions():
    model = make_model().train()
    batch = seq2seq_batch([[5, 6, 7]] * 4, [[8, 9, 10, 11]] * 4, PAD, BOS, EOS)
    torch.manual_seed(0)
    none = model._sampled_inputs(batch, 0.0)
    assert torch.equal(none, batch.tgt_in)
    every = model._sampled_inputs(batch, 1.0)
    assert torch.equal(every[:, 0], batch.tgt_in[:, 0])           # BOS is always gold
    assert not torch.equal(every, batch.tgt_in)                    # an untrained model errs
    out = model.loss(batch, label_smoothing=0.1, sampling_ratio=0.5)
    assert torch.isfinite(out.loss) and out.n_tokens == 20


@pytest.mark.parametrize("attention", ["dot", "general"])
def test_fused_input_feeding_loop_matches_autograd(attention):
    """The hand-written backward (fused_decoder.py) gives autograd's values and gradients."""
    src, lengths = pad([[5, 6, 7, 8], [9, 10], [11, 12, 13]], PAD)
    batch = seq2seq_batch([[5, 6, 7, 8], [9, 10], [11, 12, 13]], [[14, 15], [16, 17, 18, 19], [20]],
                          PAD, BOS, EOS)
    results = []
    for fused in (True, False):
        model = make_model(attention).train()  # dropout 0: both paths are deterministic
        model.decoder.fused = fused
        out = model.loss(batch, label_smoothing=0.1)
        out.loss.backward()
        results.append((out.loss.detach(), {n: p.grad.clone() for n, p in
                                            model.named_parameters() if p.grad is not None}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert torch.allclose(loss_a, loss_b, atol=1e-5)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], atol=1e-5, rtol=1e-4), name
