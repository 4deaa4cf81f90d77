"""Devices: naming one (train.device, --device), refusing one that is not here in one line,
fp16 only on CUDA, the gradient scaler in checkpoints, and the plain PyTorch path that CUDA and
MPS take, driven here on the CPU (no GPU machine runs these tests)."""

from __future__ import annotations

import json
import re
import tokenize
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from lstm_nlp.cli import app
from lstm_nlp.config.sections import TrainConfig
from lstm_nlp.data.batching import seq2seq_batch
from lstm_nlp.errors import ConfigError
from lstm_nlp.nn import decoder, encoder, kernels, regularization
from lstm_nlp.nn.kernels import matmul, output_loss
from lstm_nlp.reporting.console import Reporter
from lstm_nlp.tasks.base import LossOutput
from lstm_nlp.tasks.classify.model import Classifier
from lstm_nlp.tasks.classify.task import collate
from lstm_nlp.tasks.lm.model import LanguageModel
from lstm_nlp.tasks.lm.task import stream_nll
from lstm_nlp.tasks.translate.model import Seq2SeqModel
from lstm_nlp.tasks.translate.search import beam_search, greedy_decode
from lstm_nlp.training import checkpoint, devices, runtime
from lstm_nlp.training.devices import resolve_device, to_device
from lstm_nlp.training.loop import Trainer

from conftest import tiny_lm_recipe, tiny_recipe, write_recipe

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "tests" / "fixtures" / "v0.1.0"
CPU = torch.device("cpu")
runner = CliRunner()

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
no_mps = pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
NO_CUDA = ("{source}: {name} is not available here (this PyTorch has no CUDA, or no GPU is "
           "visible); use cpu or auto")


def one_line(result) -> str:
    """The error line of a failed command: exactly one line on stderr, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.output
    return lines[0]


# ------------------------------------------------------------------ naming a device


def test_cpu_and_auto_resolve_here():
    assert resolve_device("cpu") == CPU
    expected = "cuda" if torch.cuda.is_available() else \
        "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_is_refused_here_in_one_line(name):
    with pytest.raises(ConfigError) as e:
        resolve_device(name, "train.device")
    assert str(e.value) == NO_CUDA.format(source="train.device", name=name)


@no_mps
def test_mps_is_refused_here_in_one_line():
    with pytest.raises(ConfigError, match=r"^--device: mps is not available here \(this "
                                          r"PyTorch has no MPS.*; use cpu or auto$"):
        resolve_device("mps")


@pytest.mark.parametrize("name", ["gpu", "CPU", "cuda:", "cuda:x", "cpu:0", "", "auto "])
def test_a_name_that_is_no_device_is_refused(name):
    with pytest.raises(ConfigError) as e:
        resolve_device(name, "--device")
    assert str(e.value) == (f"--device: must be one of auto, cpu, cuda, cuda:N or mps; "
                            f"got {name!r}")


def test_cuda_names_on_a_machine_with_two_gpus(monkeypatch):
    """What a GPU machine answers, with CUDA's two questions answered for it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == CPU
    with pytest.raises(ConfigError, match=r"^--device: cuda:2 is not available here \(2 GPUs "
                                          r"are visible: cuda:0 to cuda:1\)$"):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"\(1 GPU is visible: cuda:0\)$"):
        resolve_device("cuda:1")


def test_auto_takes_mps_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    assert resolve_device("mps") == torch.device("mps")


def test_to_device_moves_the_tensors_of_a_batch_and_keeps_the_rest():
    batch = seq2seq_batch([[5, 6, 7], [8]], [[9], [10, 11]], 0, 1, 2)
    moved = to_device(batch, torch.device("meta"))
    assert moved.src.device.type == moved.tgt_out.device.type == "meta"
    assert moved.n_tokens == batch.n_tokens and batch.src.device == CPU  # a copy moved
    pair = to_device((batch.src, 3), torch.device("meta"))
    assert pair[0].is_meta and pair[1] == 3
    assert to_device(batch, CPU).src is batch.src  # already there: nothing copied


# ------------------------------------------------------------------ training: train.device


@pytest.fixture
def nothing_built(monkeypatch):
    """Fail the test if training gets as far as building a tokenizer or a model."""
    from lstm_nlp.tasks.translate import verbs

    def built(*args, **kwargs):
        raise AssertionError("setup ran: the device should have been refused before")

    monkeypatch.setattr(verbs, "setup", built)


@no_cuda
def test_train_on_a_device_not_here_is_one_line_before_anything_is_built(
        tmp_path, corpus, nothing_built):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus, train={"device": "cuda"}))
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", str(recipe), "--run-dir", str(run_dir)])
    assert result.exit_code == 1
    assert one_line(result) == "error: " + NO_CUDA.format(source="train.device", name="cuda")
    assert not run_dir.exists()
    result = runner.invoke(app, ["train", str(recipe), "--device", "cuda:1",
                                 "--run-dir", str(run_dir)])
    assert result.exit_code == 1  # the option names itself
    assert one_line(result) == "error: " + NO_CUDA.format(source="--device", name="cuda:1")
    assert not run_dir.exists()


@no_cuda
def test_a_chain_checks_every_stage_device_before_its_run_folder(tmp_path, text_corpus,
                                                                  monkeypatch):
    from lstm_nlp.tasks.lm import verbs

    monkeypatch.setattr(verbs, "setup", lambda *a, **k: pytest.fail("a stage was set up"))
    write_recipe(tmp_path / "a.yaml", {**tiny_lm_recipe(text_corpus), "name": "a"})
    write_recipe(tmp_path / "b.yaml", {**tiny_lm_recipe(
        text_corpus, model={"init_from": "x"}, tokenizer={}, train={"device": "cuda:0"}),
        "name": "b"})
    chain = write_recipe(tmp_path / "chain.yaml", {"task": "chain",
                                                   "stages": ["a.yaml", "b.yaml"]})
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(chain), "--run-dir", str(run)])
    assert result.exit_code == 1 and not run.exists()
    assert one_line(result) == "error: " + NO_CUDA.format(source="train.device", name="cuda:0")
    result = runner.invoke(app, ["train", str(chain), "--run-dir", str(run), "--device", "cuda"])
    assert result.exit_code == 1 and not run.exists()  # --device: every stage's train.device
    assert one_line(result) == "error: " + NO_CUDA.format(source="--device", name="cuda")


def test_train_device_name_is_checked_with_the_recipe(tmp_path, corpus, nothing_built):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus, train={"device": "gpu"}))
    result = runner.invoke(app, ["train", str(recipe)])
    assert result.exit_code == 1
    assert one_line(result) == ("error: train.device: must be one of auto, cpu, cuda, cuda:N or "
                                "mps; got 'gpu'")
    result = runner.invoke(app, ["train", str(recipe), "--device", "gpu"])
    assert result.exit_code == 2 and "Invalid value for '--device'" in result.output


def test_train_in_fp16_on_the_cpu_is_one_line_before_anything_is_built(
        tmp_path, corpus, nothing_built):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus, train={"precision": "fp16"}))
    result = runner.invoke(app, ["train", str(recipe), "--device", "cpu",
                                 "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert one_line(result) == ("error: train.precision: fp16 needs a CUDA device (this runs on "
                                "cpu); use bf16 or fp32")
    assert not (tmp_path / "run").exists()


def test_train_device_cpu_trains_and_may_change_on_resume(tmp_path, corpus):
    from lstm_nlp.training.run import train as train_run

    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(corpus, train={
        "max_steps": 4, "valid_every": 2}, decode={"beam_size": 1}))
    run_dir = train_run(recipe, ["eval.samples=0"], tmp_path / "run", device="cpu")
    assert "device: cpu" in (run_dir / "recipe.yaml").read_text()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["device"] == "cpu" and report["steps"] == 4
    # the resolved recipe says cpu; resumed with the recipe's auto, it goes on
    train_run(recipe, ["eval.samples=0", "train.max_steps=6"], run_dir, resume=True)
    assert checkpoint.load(run_dir / "last.pt")["train_state"]["step"] == 6


def test_precision_choices():
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        runtime.autocast("fp16", CPU)
    assert runtime.inference_precision(None, "fp16", CPU) == "fp32"  # trained on a GPU
    assert runtime.inference_precision(None, "bf16", CPU) == "bf16"
    assert runtime.inference_precision("fp32", "bf16", CPU) == "fp32"
    with pytest.raises(ConfigError, match=r"^--precision: fp16 needs a CUDA device"):
        runtime.inference_precision("fp16", "fp32", CPU)
    assert not runtime.grad_scaler("bf16", CPU).is_enabled()
    assert runtime.inference_precision(None, "fp16", torch.device("cuda")) == "fp16"


# ------------------------------------------------------------------ inference: --device

TEXTS = ROOT / "data" / "demo" / "test.en"


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lines") / "in.txt"
    path.write_text("".join(TEXTS.read_text(encoding="utf-8").splitlines(True)[:12]),
                    encoding="utf-8")
    return path


VERBS = {  # verb -> its arguments on the 0.1.0 checkpoints (their outputs: test_compat.py)
    "translate": ["translate", "-m", RELEASE / "translate.pt", "--beam", "2"],
    "generate": ["generate", "-m", RELEASE / "lm.pt", "--max-tokens", "6", "--seed", "4"],
    "classify": ["classify", "-m", RELEASE / "classify.pt", "--format", "jsonl"],
    "eval": ["eval", "-m", RELEASE / "lm.pt"],
}


@no_cuda
@pytest.mark.parametrize("verb", list(VERBS))
def test_every_inference_verb_refuses_a_device_not_here_in_one_line(verb, lines, tmp_path):
    args = [str(a) for a in VERBS[verb]] + ["-i", str(lines), "--device", "cuda"]
    result = runner.invoke(app, args + (["--out-dir", str(tmp_path)] if verb == "eval" else []))
    assert result.exit_code == 1
    assert one_line(result) == "error: " + NO_CUDA.format(source="--device", name="cuda")
    assert result.stdout == "" and not list(tmp_path.iterdir())


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_inference_verb_checks_device_names_and_fp16(verb, lines):
    args = [str(a) for a in VERBS[verb]] + ["-i", str(lines)]
    result = runner.invoke(app, args + ["--device", "tpu"])
    assert result.exit_code == 2 and "'tpu' is not a device" in result.output
    result = runner.invoke(app, args + ["--device", "cpu", "--precision", "fp16"])
    assert result.exit_code == 1
    assert one_line(result) == ("error: --precision: fp16 needs a CUDA device (this runs on "
                                "cpu); use bf16 or fp32")


@pytest.mark.parametrize("verb", list(VERBS))
def test_device_cpu_gives_what_the_default_gives(verb, lines, tmp_path):
    outputs = []
    for device in ([], ["--device", "cpu"]):
        out = tmp_path / f"out{len(outputs)}"
        out.mkdir()
        args = [str(a) for a in VERBS[verb]] + ["-i", str(lines), *device]
        args += ["--out-dir", str(out)] if verb == "eval" else ["-o", str(out / "out.txt")]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        if verb == "eval":
            report = json.loads((out / "eval-in.txt.json").read_text())
            outputs.append({k: v for k, v in report.items() if k != "tokens_per_s"})
        else:
            outputs.append((out / "out.txt").read_text(encoding="utf-8"))
    assert outputs[0] == outputs[1] and outputs[0]


# ------------------------------------------------------------------ the gradient scaler


class Points:
    """y = 2x on a few points, a fake task for the trainer (one 'token' per point)."""

    def __init__(self):
        self.batches = [torch.tensor([[1.0], [2.0]]), torch.tensor([[0.5], [3.0]])]

    def epoch_batches(self, epoch):
        return [0, 1]

    def collate(self, i):
        return self.batches[i]

    def loss(self, model, x):
        return LossOutput(((model(x) - 2 * x) ** 2).sum(), n_tokens=x.size(0), n_correct=0)

    def validate(self, model):
        return {"val_loss": 1.0}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def trainer(run_dir: Path, max_steps: int) -> Trainer:
    cfg = TrainConfig(max_steps=max_steps, lr=0.05, optimizer="adam", clip_norm=1.0,
                      valid_every=3)
    torch.manual_seed(0)
    return Trainer(torch.nn.Linear(1, 1), Points(), cfg, run_dir,
                   Reporter(run_dir / "metrics.jsonl"), {}, ("val_loss", False))


def test_the_gradient_scaler_state_round_trips_through_last_pt(tmp_path, monkeypatch):
    """fp16 is for CUDA, but the scaler's path is the same on every device: here an enabled CPU
    scaler (growing its scale every 2 steps) goes through scale, unscale before clipping, step
    and update; a run resumed from last.pt ends as the uninterrupted one, scale included."""
    def scaler(precision, device):
        return torch.amp.GradScaler(device.type, init_scale=2.0 ** 8, growth_interval=2)

    monkeypatch.setattr(runtime, "grad_scaler", scaler)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    straight = trainer(tmp_path / "a", 8)
    straight.fit()
    first = trainer(tmp_path / "b", 5)
    first.fit()
    saved = checkpoint.load(tmp_path / "b" / "last.pt")["scaler"]
    assert saved == first.scaler.state_dict() and saved["scale"] > 2.0 ** 8  # it grew
    resumed = trainer(tmp_path / "b", 8)
    assert resumed.scaler.get_scale() == 2.0 ** 8
    resumed.restore()
    assert resumed.scaler.state_dict() == saved
    resumed.fit()
    assert resumed.scaler.state_dict() == straight.scaler.state_dict()
    assert torch.equal(resumed.model.weight, straight.model.weight)


def test_the_scaler_is_a_pass_through_without_fp16(tmp_path, monkeypatch):
    """Scaling by a power of two and back changes no bit: the same weights with or without an
    enabled scaler; and without one, last.pt has no scaler state."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    plain = trainer(tmp_path / "a", 4)
    plain.fit()
    assert not plain.scaler.is_enabled()
    assert "scaler" not in checkpoint.load(tmp_path / "a" / "last.pt")
    monkeypatch.setattr(runtime, "grad_scaler", lambda precision, device: torch.amp.GradScaler(
        device.type, init_scale=2.0 ** 8))
    scaled = trainer(tmp_path / "b", 4)
    scaled.fit()
    assert torch.equal(plain.model.weight, scaled.model.weight)


# ------------------------------------------------------------------ the paths off the CPU


def _forbidden(*args, **kwargs):
    raise AssertionError("a CPU speed kernel ran on the path that other devices take")


@pytest.fixture
def off_cpu(monkeypatch):
    """What CUDA and MPS run, on the CPU: the kernels' switch off, and each CPU kernel made to
    fail if it is reached (oneDNN products, fused output loss, fused decoder, byte masks, the
    encoder's length groups). Returns a function that turns it on."""
    def on():
        monkeypatch.setattr(kernels, "ENABLED", False)
        monkeypatch.setattr(matmul, "_mm_nt", _forbidden)
        monkeypatch.setattr(output_loss._FusedOutputLoss, "apply", _forbidden)
        monkeypatch.setattr(output_loss, "_chunk_loss", _forbidden)
        monkeypatch.setattr(decoder, "input_feeding_recurrence", _forbidden)
        monkeypatch.setattr(regularization, "keep_mask", _forbidden)
        monkeypatch.setattr(encoder.LSTMEncoder, "_by_length", _forbidden)
    return on


def _run(fn, model):
    """fn() -> tensors; and the gradients of its first output's weighted sum."""
    model.zero_grad()
    outs = fn()
    (outs[0] * torch.linspace(-1, 1, outs[0].numel()).view_as(outs[0])).sum().backward()
    return [o.detach().clone() for o in outs], {n: p.grad.clone() for n, p in
                                                 model.named_parameters() if p.grad is not None}


def _same(a, b):
    (outs_a, grads_a), (outs_b, grads_b) = a, b
    for x, y in zip(outs_a, outs_b):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-5,
                                   msg=lambda m: f"{name}: {m}")


def translation_model(input_feeding: bool, dropout: float = 0.0) -> Seq2SeqModel:
    torch.manual_seed(0)
    return Seq2SeqModel(src_vocab=30, tgt_vocab=25, pad_id=0, emb_size=16, hidden_size=24,
                        enc_layers=1, dec_layers=1, bidirectional=True, attention="general",
                        input_feeding=input_feeding, dropout=dropout, tie_output=False,
                        share_embeddings=False)


def translation_batch():
    torch.manual_seed(1)
    src = [torch.randint(3, 30, (n,)).tolist() for n in (5, 3, 5, 1, 4, 7)]
    tgt = [torch.randint(3, 25, (n,)).tolist() for n in (4, 6, 2, 3, 5, 4)]
    return seq2seq_batch(src, tgt, 0, 1, 2)


def language_model(dropout: float = 0.0) -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(vocab_size=30, emb_size=16, hidden_size=20, layers=2, tie_weights=True,
                         init_range=0.1, locked_dropout=True, dropout=dropout,
                         dropout_input=dropout, dropout_hidden=dropout,
                         dropout_embedding=dropout, weight_drop=dropout)


def classifier(pooling: str, dropout: float = 0.0, head_hidden: int = 0) -> Classifier:
    """head_hidden > 0 adds batch norm, which on 3 texts turns rounding into 1e-4 gradients."""
    torch.manual_seed(0)
    return Classifier(vocab_size=30, classes=["a", "b", "c"], emb_size=16, hidden_size=20,
                      layers=2, bidirectional=True, tie_weights=False, pooling=pooling,
                      head_hidden=head_hidden, dropout=dropout, dropout_input=dropout,
                      dropout_hidden=dropout, dropout_embedding=dropout, weight_drop=dropout,
                      locked_dropout=True, long_text="head", max_tokens=50, chunk_tokens=10)


def class_batch():
    return collate([[1, 5, 6, 7, 8, 9, 4], [1, 4, 5], [1, 6, 7, 8, 9]], [0, 2, 1], 0)


@pytest.mark.parametrize("input_feeding", [True, False])
def test_translation_off_cpu_path_equals_the_kernels(input_feeding, off_cpu):
    model, batch = translation_model(input_feeding), translation_batch()

    def step():
        out = model.loss(batch, label_smoothing=0.1)
        return [out.loss, torch.tensor(float(out.n_correct))]

    def decode():
        with torch.no_grad():
            model.eval()
            loss = model.loss(batch).loss
            greedy = greedy_decode(model, batch.src, batch.src_lengths, 1, 2, 2.0)
            beams = beam_search(model, batch.src, batch.src_lengths, 1, 2, 3, 1.0, 2.0)
            model.train()
        return loss, greedy, beams

    kernel_step, kernel_decode = _run(step, model), decode()
    off_cpu()
    _same(kernel_step, _run(step, model))
    plain_decode = decode()
    torch.testing.assert_close(kernel_decode[0], plain_decode[0], rtol=1e-5, atol=1e-5)
    assert kernel_decode[1:] == plain_decode[1:]


def test_language_model_off_cpu_path_equals_the_kernels(off_cpu):
    model = language_model()
    torch.manual_seed(2)
    inputs, targets = torch.randint(1, 30, (9, 4)), torch.randint(1, 30, (9, 4))

    def step():
        out, state = model.loss(inputs, targets, model.init_state(4), 1.0, 1.0)
        return [out.objective(), *state[-1]]

    kernel = _run(step, model)
    off_cpu()
    _same(kernel, _run(step, model))


@pytest.mark.parametrize("pooling", ["concat", "attention"])
def test_classifier_off_cpu_path_equals_the_kernels(pooling, off_cpu):
    model, batch = classifier(pooling), class_batch()

    def step():
        logits = model(batch.ids, batch.lengths)
        return [F.cross_entropy(logits, batch.labels, reduction="sum"), logits]

    kernel = _run(step, model)
    off_cpu()
    _same(kernel, _run(step, model))


def test_off_cpu_path_creates_every_tensor_on_the_models_device(off_cpu):
    """With the default device set to 'meta', a tensor made without `device=` lands on meta and
    meets the CPU model's tensors in an error: the plain path (dropout on) trains, scores and
    decodes, so each tensor it makes is made where the model is, as on a GPU."""
    off_cpu()
    translation, batch = translation_model(True, dropout=0.3), translation_batch()
    lm = language_model(dropout=0.2)
    torch.manual_seed(2)
    inputs, targets, stream = (torch.randint(1, 30, (9, 4)), torch.randint(1, 30, (9, 4)),
                               torch.randint(1, 30, (80,)))
    classifiers = [classifier(p, dropout=0.3, head_hidden=8)
                   for p in ("concat", "attention", "mean", "last")]
    classes = class_batch()
    with torch.device("meta"):
        translation.loss(batch, 0.1, sampling_ratio=0.5).objective().backward()
        translation.eval()
        with torch.inference_mode():
            translation.loss(batch)
            greedy_decode(translation, batch.src, batch.src_lengths, 1, 2, 2.0)
            beam_search(translation, batch.src, batch.src_lengths, 1, 2, 3, 1.0, 2.0)
        out, state = lm.loss(inputs, targets, lm.init_state(4), 1.0, 1.0)
        out.objective().backward()
        lm.eval()
        with torch.inference_mode():
            stream_nll(lm, stream, 3, 10)
            lm.step(inputs[0], state)
        for model in classifiers:
            F.cross_entropy(model(classes.ids, classes.lengths), classes.labels).backward()


def test_the_cpu_uses_its_kernels():
    """The switch is on by default: CPU tensors take the kernels (test_kernels.py checks them)."""
    x = torch.randn(2, 3)
    assert kernels.ENABLED and kernels.use_cpu_kernels(x)
    assert not kernels.use_cpu_kernels(x, torch.empty(1, device="meta"))


# ------------------------------------------------------------------ no hard-coded CPU

# Files where "cpu" may be written: the device module and the CPU kernels themselves.
CPU_PLACES = {"lstm_nlp/training/devices.py": "names the CPU device once (devices.CPU)",
              "lstm_nlp/nn/kernels/": "the CPU speed kernels, which run on the CPU only",
              "lstm_nlp/training/threads.py": "reads the cpu0, cpu1 lines of /proc/stat"}


def test_no_cpu_literal_outside_the_device_module_and_the_cpu_kernels():
    found = []
    for path in sorted((ROOT / "lstm_nlp").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if any(rel.startswith(place) for place in CPU_PLACES):
            continue
        with open(path, "rb") as f:
            for token in tokenize.tokenize(f.readline):
                if token.type == tokenize.STRING and re.fullmatch(r"[rbu]?(['\"])cpu\1",
                                                                  token.string, re.I):
                    found.append(f"{rel}:{token.start[0]}")
    assert not found, f"'cpu' written outside the device module and the kernels: {found}"
