"""`lstm-nlp eval` for a model of any task: load the first model, hand the request to its task."""

from __future__ import annotations

from lstm_nlp.tasks import registry
from lstm_nlp.tasks.base import EvalRequest
from lstm_nlp.training import checkpoint, runtime


def evaluate(request: EvalRequest) -> dict:
    runtime.tune_allocator()
    first = checkpoint.load_model(request.models[0])
    return registry.get(first[2].task).api().evaluate(request, first)
