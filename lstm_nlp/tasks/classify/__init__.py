"""Classification: (bi)LSTM encoder with pooling, ULMFiT transfer from a language model."""
