import random

from lstm_nlp.data.batching import pad, seq2seq_batch, token_batches


def test_targets_are_shifted_and_padded():
    b = seq2seq_batch([[5, 6, 7], [8]], [[9, 10], [11, 12, 13]], pad_id=0, bos_id=2, eos_id=3)
    assert b.src.tolist() == [[5, 6, 7], [8, 0, 0]] and b.src_lengths.tolist() == [3, 1]
    assert b.tgt_in.tolist() == [[2, 9, 10, 0], [2, 11, 12, 13]]
    assert b.tgt_out.tolist() == [[9, 10, 3, 0], [11, 12, 13, 3]]
    assert b.n_tokens == 7


def test_token_batches_cover_everything_once_within_budget():
    rng = random.Random(0)
    src = [rng.randint(1, 40) for _ in range(500)]
    tgt = [rng.randint(1, 40) for _ in range(500)]
    batches = token_batches(src, tgt, 300, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        width = max(max(src[i], tgt[i] + 1) for i in b)
        assert width * len(b) <= 300 or len(b) == 1


def test_token_batches_depend_only_on_seed_and_epoch():
    src, tgt = list(range(1, 201)), list(range(200, 0, -1))
    assert token_batches(src, tgt, 400, 1, 3) == token_batches(src, tgt, 400, 1, 3)
    assert token_batches(src, tgt, 400, 1, 3) != token_batches(src, tgt, 400, 1, 4)


def test_pad_handles_lengths():
    ids, lengths = pad([[1], [2, 3, 4]], pad_id=0)
    assert ids.tolist() == [[1, 0, 0], [2, 3, 4]] and lengths.tolist() == [1, 3]
