"""An example promptopt plugin: the ``greedy-score`` selector."""

from promptopt_example_selector.selector import GreedyScoreSelector

__all__ = ["GreedyScoreSelector"]
