"""`lstm-nlp export`: a model as files other programs read. `folder.py` writes and reads export
folders (manifest, tokenizers, written atomically), `weights.py` the safetensors format (any
task), `verb.py` the verb; a task's ONNX graphs come from its own folder (the registry's
`onnx_module`)."""
