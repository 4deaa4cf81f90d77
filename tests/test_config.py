from pathlib import Path

import pytest

from lstm_nlp.config import load_recipe
from lstm_nlp.errors import ConfigError
from conftest import tiny_recipe, write_recipe

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("path", sorted((ROOT / "recipes").rglob("*.yaml")), ids=lambda p: p.name)
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
