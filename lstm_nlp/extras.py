"""Optional extras (pyproject.toml `[project.optional-dependencies]`): heavier libraries that
only some features need, imported inside the code that uses them. `require` imports one and, when
it is missing, raises the one-line error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from lstm_nlp.errors import LstmNlpError


class MissingExtra(LstmNlpError):
    """A feature's optional library is not installed."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import `module` (e.g. "matplotlib.pyplot") for `feature` (e.g. "plots in reports"), or
    raise MissingExtra naming the extra (pip install 'lstm-nlp[<extra>]')."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        raise MissingExtra(f"{feature} needs {top}, which is not installed: "
                           f"pip install 'lstm-nlp[{extra}]'") from err
