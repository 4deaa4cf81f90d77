"""lstm-nlp: train, evaluate and use LSTM models for NLP from the shell."""

__version__ = "0.1.0"
