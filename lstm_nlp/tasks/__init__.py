"""One folder per task (translate/, lm/, classify/), the registry that lists them, what they share
with the trainer (base.py), chains of recipes and the eval dispatch."""
