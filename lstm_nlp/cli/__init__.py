"""The `lstm-nlp` command: the shared verbs (train, eval) and each task's inference verbs, as the
task registry lists them, on one Typer app (cli/app.py: options, error boundary)."""

from lstm_nlp.cli import average, evaluate, export, inspect, search, train
from lstm_nlp.cli.app import app, boundary, main
from lstm_nlp.tasks import registry

app.command("train")(boundary(train.train))
for _spec in registry.TASKS.values():
    for _command in _spec.commands():
        app.command(_command.__name__)(boundary(_command))
app.command("eval")(boundary(evaluate.eval_))
app.command("average")(boundary(average.average))
app.command("inspect")(boundary(inspect.inspect))
app.command("search")(boundary(search.search))
app.command("export")(boundary(export.export))

__all__ = ["app", "main"]
