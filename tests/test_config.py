from pathlib import Path

import pytest

from lstm_nlp.config import load_recipe
from lstm_nlp.errors import ConfigError
from lstm_nlp.tasks.translate.config import TranslateModelConfig

from conftest import tiny_recipe, write_recipe

ROOT = Path(__file__).resolve().parent.parent


RECIPES = [p for p in sorted((ROOT / "recipes").rglob("*.yaml"))
           if p.parent.name != "search"]  # recipes/search: spaces (tests/test_search.py)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_load_and_comment_every_key(path):
    recipe = load_recipe(path)
    assert recipe.name == path.stem
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and not line.endswith(":"):
            assert "#" in line, f"{path.name}: key without a comment: {line!r}"


@pytest.mark.parametrize("change, message", [
    ({"model": {"hiden_size": 4}}, "unknown key 'model.hiden_size'; did you mean 'model.hidden_size'?"),
    ({"trian": {}}, "unknown key 'trian'; did you mean 'train'?"),
    ({"model": {"dropout": "high"}}, "model.dropout: expected a number, got 'high'"),
    ({"model": {"dropout": 1.5}}, "model.dropout: must be between 0.0 and 0.99, got 1.5"),
    ({"model": {"attention": "luong"}}, "model.attention: must be one of dot, general, bahdanau; got 'luong'"),
    ({"model": {"enc_layers": 1.5}}, "model.enc_layers: expected an integer, got 1.5"),
    ({"model": {"bidirectional": "yes"}}, "model.bidirectional: expected true or false, got 'yes'"),
    ({"model": {"tie_output": True}}, "model.tie_output: needs model.emb_size == model.hidden_size"),
    ({"train": {"max_steps": 0}}, "set at least one limit"),
    ({"task": "summarize"}, "task: must be one of translate, lm, classify, chain; got 'summarize'"),
    ({"model": 3}, "model: expected a section (mapping), got 3"),
    ({"train": {"lr": 0}}, "train.lr: must be > 0"),
    ({"train": {"max_steps": -1}}, "train.max_steps: must be >= 0, got -1"),
    ({"train": {"cut_frac": 1.5}}, "train.cut_frac: must be between 0.0 and 0.99, got 1.5"),
    ({"tokenizer": {"vocab_size": 8}}, "tokenizer.vocab_size: must be >= 16, got 8"),
    ({"tokenizer": {"type": "word", "vocab_size": -1}}, "tokenizer.vocab_size: must be >= 0"),
    ({"decode": {"max_len_ratio": 0}}, "decode.max_len_ratio: must be > 0.0, got 0.0"),
    ({"model": {"bidirectional": 1}}, "model.bidirectional: expected true or false, got 1"),
    ({"model": {"enc_layers": True}}, "model.enc_layers: expected an integer, got True"),
    ({"data": {"src_lang": None}}, "data.src_lang: expected a string, got None"),
    ({"model": {"zzz": 1}}, "unknown key 'model.zzz'; valid keys: emb_size, hidden_size"),
    ({"train": {"average_decay": 1e-4}}, "train.average_decay: 0.0001 keeps almost only the "
     "latest weights; this is the decay d of avg <- d*avg + (1-d)*w (0.999-0.9999 typical); "
     "OpenNMT-py's average_decay 0.0001 is 1 - d, i.e. 0.9999 here"),
])
def test_bad_recipe_values_name_the_key(tmp_path, change, message):
    recipe = tiny_recipe(tmp_path)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            recipe[key].update(value)
        else:
            recipe[key] = value
    with pytest.raises(ConfigError) as e:
        load_recipe(write_recipe(tmp_path / "r.yaml", recipe))
    assert message in str(e.value)


@pytest.mark.parametrize("decay", [0, 0.999])
def test_average_decay_off_or_a_decay_loads(tmp_path, decay):
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe(tmp_path, train={"average_decay": decay}))
    assert load_recipe(path).train.average_decay == decay


def test_yaml_values_read_as_the_key_expects(tmp_path):
    recipe = tiny_recipe(tmp_path, train={"lr": "1e-3", "max_minutes": 2}, data={"src_lang": 1})
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", {**recipe, "model": None}))
    assert recipe.train.lr == 0.001 and recipe.train.max_minutes == 2.0
    assert isinstance(recipe.train.max_minutes, float) and recipe.data.src_lang == "1"
    assert recipe.model == TranslateModelConfig()  # `model:` with every key commented out


def test_a_missing_section_meets_the_rules_of_an_empty_one(tmp_path):
    recipe = tiny_recipe(tmp_path)
    del recipe["train"]
    with pytest.raises(ConfigError, match="set at least one limit"):
        load_recipe(write_recipe(tmp_path / "r.yaml", recipe))


def test_overrides_go_through_the_same_checks(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", tiny_recipe(tmp_path))
    recipe = load_recipe(path, ["train.lr=0.5", "model.attention=bahdanau", "train.lr=1e-3"])
    assert recipe.train.lr == 0.001 and recipe.model.attention == "bahdanau"
    with pytest.raises(ConfigError, match="unknown key 'train.lrr'; did you mean 'train.lr'"):
        load_recipe(path, ["train.lrr=3"])
    with pytest.raises(ConfigError, match="train.batch_tokens: expected an integer"):
        load_recipe(path, ["train.batch_tokens=big"])
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        load_recipe(path, ["train.lr"])


def test_missing_task_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("task: translate\nmodel: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_recipe(tmp_path / "bad.yaml")
    (tmp_path / "notask.yaml").write_text("seed: 1\n")
    with pytest.raises(ConfigError, match="task: missing"):
        load_recipe(tmp_path / "notask.yaml")
    (tmp_path / "latin1.yaml").write_bytes("task: translate # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_recipe(tmp_path / "latin1.yaml")


def test_name_defaults_to_file_stem(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "my-run.yaml", tiny_recipe(tmp_path)))
    assert recipe.name == "my-run"


@pytest.mark.parametrize("name", ["demo-translate", "demo-lm", "demo-sentiment"])
def test_demo_recipes_train_the_same_model_on_any_machine(name):
    """A demo stops on epochs or steps, never on a time budget: a busy machine takes longer
    but reaches the scores the README promises."""
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    assert recipe.train.max_minutes == 0
    assert recipe.train.max_epochs > 0 or recipe.train.max_steps > 0
