# make demo   fresh machine: venv + install, train the demo recipes, translate, score, generate,
#             classify
# make test   fresh machine: venv + install, run the whole test suite
# make install TORCH_INDEX=https://download.pytorch.org/whl/cpu   torch's CPU-only build (no GPU
#             libraries, ~200 MB instead of gigabytes); or .../whl/cu128 for CUDA. Empty: pip's own
#             configuration (PyPI, or the indexes pip.conf names)
PYTHON ?= python3
VENV   ?= .venv
TORCH_INDEX ?=
BIN    := $(VENV)/bin
DECODE_MODEL ?= runs/multi30k-en-de
STAMP  := $(VENV)/.installed-stamp
export HF_DATASETS_OFFLINE := 1
export HF_HUB_OFFLINE := 1

.PHONY: install test demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt \
		$(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -e ".[test]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	@echo "--- English -> German demo model: 5 epochs, about 1 minute on 2 idle cores (longer on a busy machine, same model):"
	$(BIN)/lstm-nlp train recipes/demo-translate.yaml --overwrite
	@echo "--- translate held-out demo sentences (stdin -> stdout), beam 5:"
	head -n 5 data/demo/test.en | $(BIN)/lstm-nlp translate -m runs/demo-translate
	@echo "--- score the held-out set with sacrebleu on translate's output:"
	$(BIN)/lstm-nlp translate -m runs/demo-translate -i data/demo/test.en -o runs/demo-translate/test.hyp
	$(BIN)/sacrebleu data/demo/test.de -i runs/demo-translate/test.hyp -m bleu chrf -b
	@echo "--- lstm-nlp eval (BLEU, chrF, perplexity; report in runs/demo-translate/):"
	$(BIN)/lstm-nlp eval -m runs/demo-translate --split test
	@echo "--- language model on the English demo text: 6 epochs, about 15 seconds on 2 idle cores:"
	$(BIN)/lstm-nlp train recipes/demo-lm.yaml --overwrite
	@echo "--- continue three prompts (stdin -> stdout; an empty line starts a new text):"
	printf 'the red horse\nNow the\n\n' | $(BIN)/lstm-nlp generate -m runs/demo-lm --temperature 0.7 --seed 1
	@echo "--- perplexity of held-out text piped on stdin:"
	cat data/demo/test.en | $(BIN)/lstm-nlp eval -m runs/demo-lm
	@echo "--- sentiment classifier on generated reviews (data/demo/sentiment): 6 epochs, about 10 seconds on 2 idle cores:"
	$(BIN)/lstm-nlp train recipes/demo-sentiment.yaml --overwrite
	@echo "--- classify two reviews (stdin -> stdout: label, probability):"
	printf 'the acting was not boring .\nthe music is great , but the story is truly weak .\n' | $(BIN)/lstm-nlp classify -m runs/demo-sentiment

bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_translate_speed.py
	$(BIN)/python tests/benchmarks/bench_lm_speed.py
	$(BIN)/python tests/benchmarks/bench_matmul.py
	@if [ -e $(DECODE_MODEL) ]; then \
		$(BIN)/python tests/benchmarks/bench_decode_speed.py --model $(DECODE_MODEL); \
	else echo "decode speed: no $(DECODE_MODEL); train recipes/multi30k-en-de.yaml or give DECODE_MODEL=RUN"; fi

clean:
	rm -rf $(VENV) runs
