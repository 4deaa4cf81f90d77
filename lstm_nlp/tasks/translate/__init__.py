"""Translation: bi-LSTM encoder, attentional LSTM decoder, greedy and beam search, BLEU/chrF."""
