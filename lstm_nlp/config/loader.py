"""Recipes: YAML -> typed, frozen, strict configuration.

The `task` key picks the recipe class (TranslateRecipe, LMRecipe, ClassifyRecipe, ChainRecipe),
and with it the sections and keys that are valid. Every section is a frozen pydantic model that
declares its keys, types, ranges and cross-field rules. `load_recipe` refuses unknown keys
(naming the key path and the nearest valid key), checks every type and range, and applies
`--set a.b=c` overrides through the very same checks; pydantic's errors become one line in a
recipe author's words. Priority: --set > recipe file > default.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from lstm_nlp.errors import ConfigError
from lstm_nlp.filesystem import refused, size_text
from lstm_nlp.tasks import registry

MAX_RECIPE_BYTES = 1_000_000  # the largest shipped recipe is a few kB
MAX_RECIPE_VALUES = 100_000  # keys, values and list items, YAML aliases expanded
Recipe = Any  # an instance of one task's recipe class (see lstm_nlp.tasks.registry)

# pydantic error type -> what the key expects, for "model.dropout: expected a number, got 'high'"
_EXPECTED = {"bool_type": "true or false", "int_type": "an integer", "float_type": "a number",
             "string_type": "a string", "list_type": "a list",
             "model_type": "a section (mapping)", "dict_type": "a section (mapping)"}
_RANGE = ("greater_than", "greater_than_equal", "less_than_equal")  # Field(gt=, ge=, le=)
_UNKNOWN = ("extra_forbidden", "invalid_key")  # invalid_key: a key that is not text (`1: x`)


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Read a YAML recipe, apply `key.path=value` overrides, validate; name defaults to the stem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe not found: {path}")
    try:
        raw = yaml.safe_load(_read_recipe(path))
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply for a recipe") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML: {getattr(e, 'problem', e)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of keys, got {type(raw).__name__}")
    _check_aliases(raw, path)
    if raw.get("task") != "chain":  # a chain's overrides belong to its stages (tasks/chain.py)
        raw = apply_overrides(raw, overrides)
    raw.setdefault("name", path.stem)
    if not raw["name"]:
        raw["name"] = path.stem
    return recipe_from_dict(raw)


def _read_recipe(path: Path) -> str:
    """The recipe's text; one above MAX_RECIPE_BYTES is refused unread, as PyYAML would take a
    minute and gigabytes of memory to parse a few megabytes before any key could be refused."""
    with refused("cannot read recipe", path):
        size = path.stat().st_size
        if size > MAX_RECIPE_BYTES:
            raise ConfigError(f"{path}: {size_text(size)} is too large for a recipe (at most "
                              f"{size_text(MAX_RECIPE_BYTES)}); is it the right file?")
        return path.read_text(encoding="utf-8")


def _check_aliases(raw: Any, path: Path) -> None:
    """YAML aliases may make a short file a huge or endless recipe (`&a [*a]`, or nested lists
    of aliases: a few hundred bytes that expand to billions of values when copied)."""
    try:
        n_values = _count_values(raw, {})
    except ValueError:
        raise ConfigError(f"{path}: a YAML alias refers to the section that holds it") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply for a recipe") from None
    if n_values > MAX_RECIPE_VALUES:
        raise ConfigError(f"{path}: its YAML aliases expand to {n_values:,} values, too many for "
                          f"a recipe (at most {MAX_RECIPE_VALUES:,})")


def _count_values(node: Any, counted: dict[int, int]) -> int:
    """Values in `node` with aliases expanded; a node shared by aliases is walked once."""
    if not isinstance(node, (dict, list)):
        return 1
    if counted.get(id(node)) == -1:
        raise ValueError("an alias holds itself")
    if id(node) not in counted:
        counted[id(node)] = -1  # being counted: met again inside itself, it holds itself
        items = node.values() if isinstance(node, dict) else node
        counted[id(node)] = 1 + sum(_count_values(item, counted) for item in items)
    return counted[id(node)]


def recipe_from_dict(raw: dict[str, Any]) -> Recipe:
    """The `task` key picks the recipe class, and with it the valid sections and keys."""
    tasks = ", ".join(registry.recipe_classes())
    if "task" not in raw:
        raise ConfigError(f"task: missing; the recipe must name its task ({tasks})")
    cls = registry.recipe_classes().get(raw["task"]) if isinstance(raw["task"], str) else None
    if cls is None:
        raise ConfigError(f"task: must be one of {tasks}; got {_show(raw['task'])}")
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_explain(cls, e)) from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`a.b=c` with c parsed as YAML (so 3 is an int, true a bool, [1,2] a list)."""
    raw = _deep_copy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. train.lr=0.0005")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
            node = nxt
        node[parts[-1]] = parsed
    return raw


def check_override(raw: dict[str, Any], item: str) -> None:
    """The error `--set item` gives on the valid recipe `raw` (a plain dict, e.g. `to_dict()`),
    for its own key: an unknown key (and the nearest valid one), a wrong type, a value out of
    range or not among the choices. Rules across keys are left out: a value may only fit some
    values of other keys (a search checks its space this way before any trial)."""
    cls = recipe_from_dict(raw).__class__
    key = tuple(item.partition("=")[0].strip().split("."))
    try:
        cls.model_validate(apply_overrides(raw, [item]))
    except ValidationError as e:
        own = [err for err in e.errors()
               if err["type"] in _UNKNOWN or tuple(err["loc"][:len(key)]) == key]
        if own:
            raise ConfigError(_message(cls, _first(own))) from None


def save_recipe(recipe: Recipe, path: Path) -> None:
    path.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False), encoding="utf-8")


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


def _explain(cls: type[BaseModel], error: ValidationError) -> str:
    """One error is enough to fix; an unknown key goes first, as a typo explains the others."""
    return _message(cls, _first(error.errors()))


def _first(errors: list[ErrorDetails]) -> ErrorDetails:
    return min(errors, key=lambda e: e["type"] not in _UNKNOWN)


def _message(cls: type[BaseModel], error: ErrorDetails) -> str:
    """One pydantic error in the words of the recipe: its key path, what it expects, the value."""
    kind, loc, value = error["type"], error["loc"], error.get("input")
    path = _key_path(loc)
    if kind == "value_error":  # a cross-field rule: its message names its keys
        return str(error["ctx"]["error"])
    if kind in _UNKNOWN:
        return _unknown_key(_section(cls, loc[:-1]), loc)
    if kind == "literal_error":
        choices = ", ".join(map(str, typing.get_args(_field(cls, loc).annotation)))
        return f"{path}: must be one of {choices}; got {_show(value)}"
    if kind in _EXPECTED:
        return f"{path or 'recipe'}: expected {_EXPECTED[kind]}, got {_show(value)}"
    if kind in _RANGE:
        return f"{path}: {_range(_field(cls, loc))}, got {value}"
    return f"{path or 'recipe'}: {error['msg']}"


def _unknown_key(section: type[BaseModel], loc: tuple) -> str:
    prefix = "".join(f"{key}." for key in loc[:-1])
    names = list(section.model_fields)
    near = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.5)
    hint = f"did you mean '{prefix}{near[0]}'?" if near else f"valid keys: {', '.join(names)}"
    return f"unknown key '{prefix}{loc[-1]}'; {hint}"


def _range(field: FieldInfo) -> str:
    """Both bounds when the key has both ("between 0.0 and 0.99"), else the one it has."""
    bound = {op: getattr(m, op) for m in field.metadata for op in ("gt", "ge", "le")
             if hasattr(m, op)}
    if "ge" in bound and "le" in bound:
        return f"must be between {bound['ge']} and {bound['le']}"
    if "gt" in bound:
        return f"must be > {bound['gt']}"
    if "ge" in bound:
        return f"must be >= {bound['ge']}"
    return f"must be <= {bound['le']}"


def _section(cls: type[BaseModel], keys: tuple) -> type[BaseModel]:
    """The section class at a key path (`('model',)` -> the recipe's model section class)."""
    for key in keys:
        cls = cls.model_fields[key].annotation
    return cls


def _field(cls: type[BaseModel], loc: tuple) -> FieldInfo:
    """The declaration of the key at `loc`: its choices, its bounds."""
    return _section(cls, loc[:-1]).model_fields[loc[-1]]


def _key_path(loc: tuple) -> str:
    """('eval', 'prompts', 1) -> 'eval.prompts[1]'."""
    return "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in loc).lstrip(".")


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a {type(value).__name__}"
    return repr(value)
