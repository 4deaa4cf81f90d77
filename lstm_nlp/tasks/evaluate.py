"""`lstm-nlp eval` for a model of any task: load the first model, hand the request to its task."""

from __future__ import annotations

from lstm_nlp.data.textio import report_folder
from lstm_nlp.tasks import registry
from lstm_nlp.tasks.base import EvalRequest
from lstm_nlp.training import checkpoint, runtime


def evaluate(request: EvalRequest) -> dict:
    """The task evaluates on the device the first model was loaded to (device_of(model))."""
    device = runtime.prepare_inference(request.device, request.precision)
    checkpoint.resolve(request.models[0])  # a missing model is named first,
    report_folder(request.models[0], request.out_dir)  # then a report folder it cannot write
    first = checkpoint.load_model(request.models[0], device)
    return registry.get(first[2].task).api().evaluate(request, first)
