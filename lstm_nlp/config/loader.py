"""Recipes: YAML -> typed, frozen, strict configuration.

The `task` key picks the recipe class (TranslateRecipe, LMRecipe, ClassifyRecipe, ChainRecipe),
and with it the sections and keys that are valid. Every section is a frozen dataclass that owns
its defaults. `load_recipe` refuses unknown keys (naming the key path and the nearest valid key),
checks every type and range, and applies `--set a.b=c` overrides through the very same checks.
Priority: --set > recipe file > default.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from lstm_nlp.errors import ConfigError

Recipe = Any  # an instance of one task's recipe class (see lstm_nlp.tasks.registry)


def recipe_classes() -> dict[str, type]:
    """task name -> recipe class, from the task registry (imported here: it imports us)."""
    from lstm_nlp.tasks.registry import RECIPES

    return RECIPES


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Read a YAML recipe, apply `key.path=value` overrides, validate; name defaults to the stem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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
    if raw.get("task") != "chain":  # a chain's overrides belong to its stages (pipeline)
        raw = apply_overrides(raw, overrides)
    raw.setdefault("name", path.stem)
    if not raw["name"]:
        raw["name"] = path.stem
    return recipe_from_dict(raw)


def recipe_from_dict(raw: dict[str, Any]) -> Recipe:
    """The `task` key picks the recipe class, and with it the valid sections and keys."""
    tasks = ", ".join(recipe_classes())
    if "task" not in raw:
        raise ConfigError(f"task: missing; the recipe must name its task ({tasks})")
    cls = recipe_classes().get(raw["task"]) if isinstance(raw["task"], str) else None
    if cls is None:
        raise ConfigError(f"task: must be one of {tasks}; got {_show(raw['task'])}")
    return _build(cls, raw, "")


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


def save_recipe(recipe: Recipe, path: Path) -> None:
    path.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False), encoding="utf-8")


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


def _build(cls: type, raw: Any, prefix: str) -> Any:
    section = prefix.rstrip(".") or "recipe"
    if not isinstance(raw, dict):
        raise ConfigError(f"{section}: expected a section (mapping), got {_show(raw)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f"; did you mean '{prefix}{near[0]}'?" if near else \
                f"; valid keys: {', '.join(names)}"
            raise ConfigError(f"unknown key '{prefix}{key}'{hint}")
    values = {}
    for name in names:
        if name in raw:
            values[name] = _convert(hints[name], raw[name], prefix + name)
    try:
        obj = cls(**values)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{section}: {e}") from None
    obj.check(prefix)
    return obj


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, path + ".")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{path}: must be one of {', '.join(map(str, choices))}; "
                              f"got {_show(value)}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _convert(args[0], value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {_show(value)}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {_show(value)}")
        return float(value)
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {_show(value)}")
        return value
    raise TypeError(f"unsupported recipe type {tp} at {path}")  # programming error


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a {type(value).__name__}"
    return repr(value)
