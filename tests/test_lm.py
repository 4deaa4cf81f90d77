"""Language model pieces: BPTT layout, hidden-state carrying, tying, regularisers, perplexity,
the word vocabulary, sampling."""

import math

import pytest
import torch

from lstm_nlp.config import recipe_from_dict
from lstm_nlp.config.sections import TokenizerConfig
from lstm_nlp.data.tokenizer import (EOS_ID, UNK_ID, WordTokenizer, tokenizer_from_state,
                                     train_tokenizer)
from lstm_nlp.errors import CheckpointError, ConfigError
from lstm_nlp.nn.regularization import keep_mask
from lstm_nlp.tasks.lm.config import LMModelConfig
from lstm_nlp.tasks.lm.model import LanguageModel, build_lm
from lstm_nlp.tasks.lm.sampling import SampleOptions, generate, next_token
from lstm_nlp.tasks.lm.task import (LanguageModelTask, batchify, bptt_windows, stream_nll,
                                    token_stream, window)

REGULARISED = dict(dropout=0.4, dropout_input=0.3, dropout_hidden=0.3, dropout_embedding=0.2,
                   weight_drop=0.5)


def small_lm(vocab=20, tie=True, **p):
    kwargs = dict(dropout=0.0, dropout_input=0.0, dropout_hidden=0.0, dropout_embedding=0.0,
                  weight_drop=0.0)
    kwargs.update(p)
    torch.manual_seed(0)
    return LanguageModel(vocab, 8, 12, 2, tie, 0.0, True, **kwargs)


def test_batchify_lays_out_parallel_streams_in_columns():
    data = batchify(torch.arange(26), 4)  # the alphabet, 4 streams; y, z dropped
    assert data.shape == (6, 4)
    assert data[:, 0].tolist() == [0, 1, 2, 3, 4, 5]      # a..f go down column 0
    assert data[0].tolist() == [0, 6, 12, 18]              # a g m s
    w = window(data, 2, 3)
    assert torch.equal(w.targets[:-1], w.inputs[1:])       # targets = inputs shifted by one
    assert w.targets[-1].tolist() == data[5].tolist()


@pytest.mark.parametrize("variable", [False, True])
def test_bptt_windows_cover_the_stream_once_and_replay_by_epoch(variable):
    windows = bptt_windows(1000, 35, variable, seed=1, epoch=3)
    assert windows[0][0] == 0
    for (s, n), (s2, _) in zip(windows, windows[1:]):
        assert s + n == s2                                 # contiguous, no overlap
    assert windows[-1][0] + windows[-1][1] == 999          # the last position is only a target
    assert windows == bptt_windows(1000, 35, variable, seed=1, epoch=3)
    if variable:
        assert len({n for _, n in windows[:-1]}) > 3
        assert windows != bptt_windows(1000, 35, True, seed=1, epoch=4)
    else:
        assert all(n == 35 for _, n in windows[:-1])


def _task(batch_size=4, bptt=5, **train):
    recipe = recipe_from_dict({"task": "lm", "train": {"batch_size": batch_size, "bptt": bptt,
                                                       "max_epochs": 1, **train}})
    stream = torch.randint(4, 20, (203,), generator=torch.Generator().manual_seed(0))
    return LanguageModelTask(recipe, stream, stream[:50])


def test_hidden_state_is_carried_across_windows_and_detached():
    task, model = _task(), small_lm()
    windows = task.epoch_batches(0)
    task.loss(model, task.collate(windows[0]))
    carried = [h.clone() for h, _ in task.states[0]]
    assert all(not h.requires_grad for h, _ in task.states[0])  # graph cut between windows
    assert any(h.abs().sum() > 0 for h in carried)
    # the second window starts from the carried state, not from zeros
    w = task.collate(windows[1])
    with torch.no_grad():
        from_carried, _ = model.loss(w.inputs, w.targets, [(h, c) for h, c in task.states[0]])
        from_zero, _ = model.loss(w.inputs, w.targets, model.init_state(4))
    out = task.loss(model, w)
    assert out.loss.item() == pytest.approx(from_carried.loss.item(), rel=1e-6)
    assert out.loss.item() != pytest.approx(from_zero.loss.item(), rel=1e-6)
    out.objective().backward()  # backward through one window only: no error about freed graphs
    task.loss(model, task.collate(windows[0]))  # a new epoch starts from zeros again
    restarted = [h for h, _ in task.states[0]]
    assert all(torch.allclose(a, b) for a, b in zip(restarted, carried))


def test_with_accumulation_a_step_is_one_window_over_all_the_streams_in_parts():
    """accum_steps 2, batch_size 4: 8 streams, each window twice (parts 0 and 1, streams 0-3
    and 4-7), each part with its own carried state, saved side by side and read back."""
    task, model = _task(accum_steps=2), small_lm()
    whole = _task(batch_size=8)
    assert task.data.equal(whole.data)
    items = task.epoch_batches(0)
    assert items[:4] == [(0, 5, 0), (0, 5, 1), (5, 5, 0), (5, 5, 1)]
    first, second = task.collate(items[0]), task.collate(items[1])
    assert first.inputs.equal(whole.data[0:5, :4]) and second.inputs.equal(whole.data[0:5, 4:])
    assert second.targets.equal(whole.data[1:6, 4:]) and second.part == 1
    task.loss(model, first), task.loss(model, second)
    saved = task.state_dict()
    assert saved["parts"] == [0, 1] and saved["hidden"][0].shape[1] == 8
    again = _task(accum_steps=2)
    again.load_state_dict(saved)
    for part in (0, 1):
        for (h, c), (h2, c2) in zip(task.states[part], again.states[part]):
            assert h.equal(h2) and c.equal(c2)


def test_loss_per_sequence_sums_over_time_and_averages_over_streams():
    model = small_lm()
    token, seq = _task(loss_per="token"), _task(loss_per="sequence")
    w = token.collate(token.epoch_batches(0)[0])
    a, b = token.loss(model, w), seq.loss(model, w)
    assert b.objective().item() == pytest.approx(a.objective().item() * 5, rel=1e-5)  # bptt 5


def test_weight_tying_shares_one_tensor():
    model = build_lm(LMModelConfig(emb_size=16, hidden_size=32, layers=3, tie_weights=True), 50)
    assert model.output.weight is model.embedding.weight
    assert model.lstms[-1].hidden_size == 16 and model.lstms[0].hidden_size == 32
    n_unique = len({p.data_ptr() for p in model.parameters()})
    assert n_unique == len(list(model.parameters()))  # parameters() lists the shared one once
    untied = build_lm(LMModelConfig(emb_size=16, hidden_size=32, layers=3, tie_weights=False), 50)
    assert untied.output.weight is not untied.embedding.weight
    assert untied.lstms[-1].hidden_size == 32


@pytest.mark.parametrize("switch", list(REGULARISED))
def test_each_regulariser_is_active_in_training_and_off_in_eval(switch):
    plain, reg = small_lm(), small_lm(**{switch: REGULARISED[switch]})
    reg.load_state_dict(plain.state_dict())
    ids = torch.randint(4, 20, (7, 3), generator=torch.Generator().manual_seed(1))
    plain.eval(), reg.eval()
    with torch.no_grad():
        a, _, _ = plain(ids, plain.init_state(3))
        b, _, _ = reg(ids, reg.init_state(3))
        assert torch.equal(a, b)                    # eval: exactly the unregularised model
        reg.train()
        c, _, _ = reg(ids, reg.init_state(3))
    assert not torch.allclose(a, c)                 # training: the regulariser acts


def test_locked_dropout_uses_one_mask_for_all_time_steps():
    from lstm_nlp.nn.regularization import locked_dropout

    x = torch.ones(6, 4, 10)
    y = locked_dropout(x, 0.5, True)
    assert torch.equal(y[0], y[5]) and (y == 0).any()
    assert torch.equal(locked_dropout(x, 0.5, False), x)


def test_weight_drop_keeps_gradients_flowing_to_the_recurrent_weights():
    model = small_lm(weight_drop=0.5)
    ids = torch.randint(4, 20, (5, 2))
    out, _ = model.loss(ids, ids, model.init_state(2))
    out.objective().backward()
    grad = model.lstms[0].weight_hh_l0.grad
    assert grad is not None and grad.abs().sum() > 0
    assert (grad == 0).float().mean() > 0.2         # dropped connections get no gradient


def test_keep_mask_drops_the_asked_fraction_and_keeps_the_mean():
    torch.manual_seed(0)
    m = keep_mask((200, 500), 0.3)
    assert (m == 0).float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert m.mean().item() == pytest.approx(1.0, abs=0.02)


def test_ar_and_tar_penalties_enter_the_objective_only_in_training():
    model = small_lm()
    ids = torch.randint(4, 20, (6, 2))
    out, _ = model.loss(ids, ids, model.init_state(2), ar_alpha=2.0, tar_beta=1.0)
    assert out.penalty is not None and out.penalty.item() > 0
    assert out.objective().item() == pytest.approx(out.loss.item() / 12 + out.penalty.item())
    model.eval()
    out, _ = model.loss(ids, ids, model.init_state(2), ar_alpha=2.0, tar_beta=1.0)
    assert out.penalty is None


def test_perplexity_is_exp_of_mean_nll_on_a_hand_computed_case():
    # Output weights 0, bias = log p: the next-token distribution is p whatever the input.
    model = small_lm(vocab=6, tie=False)
    p = torch.tensor([1e-9, 1e-9, 1e-9, 0.5, 0.3, 0.2])
    with torch.no_grad():
        model.output.weight.zero_()
        model.output.bias.copy_(p.log())
    stream = torch.tensor([EOS_ID, 4, 5, 4, EOS_ID])  # predicted: 4, 5, 4, eos
    nll = -(math.log(0.3) + math.log(0.2) + math.log(0.3) + math.log(0.5)) / 4
    for batch_size in (1, 2):
        stats = stream_nll(model, stream if batch_size == 1 else torch.cat([stream, stream]),
                           batch_size, bptt=3)
        assert stats["nll"] == pytest.approx(nll, rel=1e-5)
        assert stats["ppl"] == pytest.approx(math.exp(nll), rel=1e-5)
        assert stats["bits_per_token"] == pytest.approx(nll / math.log(2), rel=1e-5)


def test_word_vocabulary_round_trip_and_unknown_words():
    lines = ["the cat sat", "the dog sat", "a <unk> ran", ""]
    tok = train_tokenizer(lines, TokenizerConfig(type="word", vocab_size=0), seed=1)
    assert tok.words[:4] == ["<pad>", "<unk>", "<s>", "<eos>"]
    assert tok.words[4:6] == ["sat", "the"]  # by count, ties alphabetical
    ids = tok.encode(["the dog sat", "the zebra sat", "<unk>"])
    assert tok.decode(ids[:1]) == ["the dog sat"]
    assert ids[1][1] == UNK_ID and ids[2] == [UNK_ID]  # unseen word and literal <unk>: one id
    assert tok.decode([ids[1]]) == ["the <unk> sat"]
    again = tokenizer_from_state(tok.kind, tok.proto)
    assert again.words == tok.words and again.encode(["a cat"]) == tok.encode(["a cat"])
    capped = WordTokenizer.train(lines, vocab_size=6, min_freq=1)
    assert capped.vocab_size == 6
    assert WordTokenizer.train(lines, 0, min_freq=2).words[4:] == ["sat", "the"]
    with pytest.raises(CheckpointError, match="corrupt"):
        tokenizer_from_state("word", b"garbage")
    with pytest.raises(ConfigError, match="no word occurs at least 9 times"):
        WordTokenizer.train(lines, 0, min_freq=9)


def test_lowercase_vocabularies_fold_case_in_training_and_encoding():
    word = train_tokenizer(["The Cat", "the cat"], TokenizerConfig(type="word", vocab_size=0,
                                                                   lowercase=True), seed=1)
    assert word.words[4:] == ["cat", "the"] and word.encode(["THE CAT"]) == word.encode(["the cat"])
    assert tokenizer_from_state("word", word.proto).encode(["The"]) == word.encode(["the"])
    sp = train_tokenizer(["The Cat sat on the Mat."] * 50, TokenizerConfig(
        vocab_size=30, lowercase=True), seed=1)
    assert sp.encode(["THE CAT"]) == sp.encode(["the cat"])


def test_token_stream_ends_every_line_with_eos_and_starts_from_eos():
    tok = WordTokenizer.train(["a b"], 0, 1)
    stream = token_stream(tok, ["a b", "", "b"]).tolist()
    a, b = tok.index["a"], tok.index["b"]
    assert stream == [EOS_ID, a, b, EOS_ID, EOS_ID, b, EOS_ID]


def test_sampling_filters():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([[0.0, 0.0, 0.0, 1.0, 3.0, 2.0, 0.5]])
    greedy = SampleOptions(temperature=0.0)
    assert next_token(logits, greedy, g).item() == 4
    top1 = SampleOptions(top_k=1)
    assert {next_token(logits, top1, g).item() for _ in range(20)} == {4}
    top2 = SampleOptions(top_k=2)
    assert {next_token(logits, top2, g).item() for _ in range(50)} == {4, 5}
    nucleus = SampleOptions(top_p=0.6)  # p(4) = 0.6: only 4 ranks before the mass is reached
    assert {next_token(logits, nucleus, g).item() for _ in range(50)} == {4}
    everything = {next_token(logits, SampleOptions(), g).item() for _ in range(300)}
    assert everything == {1, 3, 4, 5, 6}  # pad and bos are never produced; unk may be


def test_generate_is_reproducible_with_a_seed_and_keeps_one_output_per_prompt():
    tok = WordTokenizer.train(["a b c d e f g h"], 0, 1)
    model = build_lm(LMModelConfig(emb_size=8, hidden_size=8, layers=1), tok.vocab_size)
    prompts = ["a b", "", "c d e f", "zzz"]
    opts = SampleOptions(max_tokens=6, temperature=1.5)
    one = generate(model, tok, prompts, opts, torch.Generator().manual_seed(7))
    two = generate(model, tok, prompts, opts, torch.Generator().manual_seed(7))
    other = generate(model, tok, prompts, opts, torch.Generator().manual_seed(8))
    assert one == two and len(one) == 4
    assert one != other
    assert all(len(t.split()) <= 6 for t in one)
    # a prompt's continuation does not depend on the other prompts in its batch (greedy)
    greedy = SampleOptions(max_tokens=6, temperature=0.0)
    together = generate(model, tok, prompts, greedy, torch.Generator())
    alone = [generate(model, tok, [p], greedy, torch.Generator())[0] for p in prompts]
    assert together == alone


def test_lm_recipe_errors_name_the_key():
    def load(**sections):
        return recipe_from_dict({"task": "lm", "train": {"max_epochs": 1}, **sections})

    with pytest.raises(ConfigError, match="unknown key 'model.dropout_hiden'; did you mean "
                                          "'model.dropout_hidden'"):
        load(model={"dropout_hiden": 0.1})
    with pytest.raises(ConfigError, match="unknown key 'train.label_smoothing'"):
        load(train={"max_epochs": 1, "label_smoothing": 0.1})  # a translation key
    with pytest.raises(ConfigError, match="'bleu' is for translation"):
        load(train={"max_epochs": 1, "early_stopping_metric": "bleu"})
    with pytest.raises(ConfigError, match="model.weight_drop: must be between 0.0 and 0.99"):
        load(model={"weight_drop": 1.0})
    with pytest.raises(ConfigError, match="tokenizer.type: must be one of unigram, bpe, word"):
        load(tokenizer={"type": "char"})
    with pytest.raises(ConfigError, match=r"eval.prompts\[1\]: expected a string"):
        load(eval={"prompts": ["ok", {"a": 1}]})
    assert load(eval={"prompts": ["a", 3]}).eval.prompts == ["a", "3"]
