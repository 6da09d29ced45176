"""Everything the app plots, as DataFrames, one module per concept:

- ``curves``: accuracy vs k (and its costs) per model and selection strategy;
- ``frontier``: Pareto frontiers and FLOPs-matched comparisons of two sizes;
- ``planner``: the cheapest measured configuration that meets a target;
- ``problem``: one problem's samples, the vote and a strategy's pick.
"""
from .curves import curves, powers_of_two, with_pretraining
from .frontier import flops_matched, frontier
from .planner import recommend
from .problem import problem_view

__all__ = ["curves", "powers_of_two", "with_pretraining", "frontier", "flops_matched", "recommend", "problem_view"]
