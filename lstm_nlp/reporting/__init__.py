"""What the user sees: the console (progress, tables, errors), metrics.jsonl and the reports."""
