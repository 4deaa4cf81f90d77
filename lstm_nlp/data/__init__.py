"""Text in: corpora readers (files, datasets, the hub), tokenizers, batching, stdin/file lines."""
