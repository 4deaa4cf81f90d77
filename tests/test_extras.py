"""The one-line error for a missing optional extra."""

import sys

import pytest

from lstm_nlp.extras import MissingExtra, require


def test_require_returns_the_module():
    assert require("json", "plots", "figures").dumps([1]) == "[1]"


def test_missing_module_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "matplotlib.pyplot", raising=False)
    with pytest.raises(MissingExtra) as err:
        require("matplotlib.pyplot", "plots", "plots in reports")
    assert str(err.value) == ("plots in reports needs matplotlib, which is not installed: "
                              "pip install 'lstm-nlp[plots]'")
