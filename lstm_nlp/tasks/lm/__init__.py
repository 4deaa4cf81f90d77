"""Language modeling: AWD-LSTM, truncated BPTT over parallel streams, perplexity, sampling."""
