"""The search space file: recipe key paths -> distributions, read and checked against the recipe
before any trial starts (each key and value exactly as `--set` would check it), then drawn for
each trial through Optuna's suggest_* calls, or spelt out point by point for a grid.

    train.lr: {log_uniform: [1.0e-4, 1.0e-2]}   # a number between, uniform in its logarithm
    model.dropout: {uniform: [0.1, 0.5]}        # a number between
    model.layers: {int: [1, 3]}                 # an integer between, both ends included
    model.pooling: {choice: [max, mean]}        # one of these
    train.batch_size: [32, 64]                  # a list: the same as choice (a grid's axis)
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lstm_nlp.config.loader import MAX_RECIPE_BYTES, check_override
from lstm_nlp.errors import ConfigError
from lstm_nlp.filesystem import refused, size_text

RANGES = ("log_uniform", "uniform", "int")
KINDS = (*RANGES, "choice")


class _SpaceLoader(yaml.SafeLoader):
    """YAML that reads 1e-4 as a number: YAML 1.1 (PyYAML) wants a dot in a float, and a
    space's learning rates are written without one."""


_SpaceLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def override(key: str, value: Any) -> str:
    """`--set`'s form of a recipe value: key=value, the value as JSON (which YAML reads back as
    the same value: a text that looks like a number or `yes` stays a text)."""
    return f"{key}={json.dumps(value)}"


@dataclass(frozen=True)
class Param:
    """One key of the space: its recipe key path (also its name in Optuna's study and figures),
    its kind (log_uniform, uniform, int, choice), and (low, high) or the choices."""
    key: str
    kind: str
    values: tuple

    def suggest(self, trial: Any) -> Any:
        """This trial's value, drawn by the study's sampler (or fixed by the queue)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.values))
        low, high = self.values
        if self.kind == "int":
            return trial.suggest_int(self.key, low, high)
        return trial.suggest_float(self.key, low, high, log=self.kind == "log_uniform")

    def shown(self) -> str:
        return f"{self.kind}: {json.dumps(list(self.values))}"


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]

    def suggest(self, trial: Any) -> dict[str, Any]:
        return {p.key: p.suggest(trial) for p in self.params}

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the lists, the first key varying slowest."""
        return [dict(zip([p.key for p in self.params], values))
                for values in itertools.product(*(p.values for p in self.params))]

    def to_dict(self) -> dict[str, dict[str, list]]:
        """What the study keeps (a study continues with the space it began with)."""
        return {p.key: {p.kind: list(p.values)} for p in self.params}

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, list]]) -> Space:
        return cls(tuple(Param(key, *_only_item(spec)) for key, spec in data.items()))


def _only_item(spec: dict[str, list]) -> tuple[str, tuple]:
    (kind, values), = spec.items()
    return kind, tuple(values)


def load_space(path: Path, recipe: dict[str, Any], grid: bool = False) -> Space:
    """Read the space at `path` and check it against the (resolved, valid) `recipe`: every key
    and value as `--set` would check it; with `grid`, every key must be a list of values."""
    raw = _read(path)
    params = tuple(_param(path, key, spec) for key, spec in raw.items())
    for param in params:
        _check_values(path, param, recipe)
        if grid and param.kind != "choice":
            raise ConfigError(f"{path}: {param.key}: --sampler grid needs a list of values for "
                              f"every key, got {param.shown()}")
    return Space(params)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"search space not found: {path}")
    with refused("cannot read search space", path):
        if (size := path.stat().st_size) > MAX_RECIPE_BYTES:
            raise ConfigError(f"{path}: {size_text(size)} is too large for a search space")
        text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.load(text, Loader=_SpaceLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: a search space maps recipe keys to distributions, e.g. "
                          "'train.lr: {log_uniform: [1.0e-4, 1.0e-2]}'")
    return raw


def _param(path: Path, key: Any, spec: Any) -> Param:
    """One entry of the file as a Param; a malformed one is one line naming it."""
    where = f"{path}: {key}"
    if not isinstance(key, str) or key == "task":
        raise ConfigError(f"{where}: not a key a search can vary (a recipe key path such as "
                          "train.lr)")
    if isinstance(spec, list):
        spec = {"choice": spec}
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"{where}: expected one distribution ({{log_uniform: [low, high]}}, "
                          f"uniform, int or choice) or a list of values, got {spec!r}")
    (kind, values), = spec.items()
    if kind not in KINDS:
        near = difflib.get_close_matches(str(kind), KINDS, n=1, cutoff=0.5)
        hint = f"did you mean '{near[0]}'? " if near else ""
        raise ConfigError(f"{where}: unknown distribution '{kind}'; {hint}(one of "
                          f"{', '.join(KINDS)})")
    if kind == "choice":
        return Param(key, kind, _choices(where, values))
    return Param(key, kind, _range(where, kind, values))


def _choices(where: str, values: Any) -> tuple:
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: choice needs a list of values, got {values!r}")
    for value in values:
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise ConfigError(f"{where}: a choice is a number, a text, true/false or null, "
                              f"got {value!r}")
    if len(set(map(json.dumps, values))) < len(values):
        raise ConfigError(f"{where}: a value is listed twice in {values!r}")
    return tuple(values)


def _range(where: str, kind: str, values: Any) -> tuple:
    """(low, high): two finite numbers, low below high; integers for int, low above 0 for
    log_uniform."""
    number = int if kind == "int" else (int, float)
    if (not isinstance(values, list) or len(values) != 2
            or not all(isinstance(v, number) and not isinstance(v, bool) for v in values)):
        what = "integers" if kind == "int" else "numbers"
        raise ConfigError(f"{where}: {kind} needs [low, high], two {what}, got {values!r}")
    low, high = values
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ConfigError(f"{where}: {kind}: low must be below high, got [{low}, {high}]")
    if kind == "log_uniform" and low <= 0:
        raise ConfigError(f"{where}: log_uniform: low must be above 0, got {low}")
    return (low, high) if kind == "int" else (float(low), float(high))


def _check_values(path: Path, param: Param, recipe: dict[str, Any]) -> None:
    """The key and each value a trial may get, through the recipe loader's own checks: every
    choice, both ends of a range (what lies between is then in range too)."""
    for value in param.values:
        try:
            check_override(recipe, override(param.key, value))
        except ConfigError as e:
            hint = ("; int: [low, high] draws integers"
                    if "expected an integer" in str(e) and param.kind != "int" else "")
            raise ConfigError(f"{path}: {e} (from {param.shown()}{hint})") from None
