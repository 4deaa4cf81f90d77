"""Recipes: YAML -> typed, frozen, strict configuration (loader), sections shared by every task
(sections); each task's own sections live in its folder (lstm_nlp/tasks/<task>/config.py)."""

from lstm_nlp.config.loader import (Recipe, apply_overrides, load_recipe, recipe_from_dict,
                                    save_recipe)
from lstm_nlp.config.sections import TokenizerConfig, TrainConfig

__all__ = ["Recipe", "TokenizerConfig", "TrainConfig", "apply_overrides", "load_recipe",
           "recipe_from_dict", "save_recipe"]
