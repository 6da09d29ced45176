"""Everything the app plots, as DataFrames, one module per concept:

- ``curves``: accuracy vs k (and its costs) per model and selection strategy;
- ``frontier``: Pareto frontiers, FLOPs-matched and equal-compute comparisons of two sizes;
- ``planner``: the cheapest measured configuration that meets a target;
- ``verdict``: who wins at equal compute, in words;
- ``problem``: one problem's samples, the vote and a strategy's pick;
- ``allocation``, ``stopping``, ``ensembles``, ``fits``: spending compute where it pays (per-difficulty
  allocation, adaptive stopping, ensembles of sizes, coverage scaling laws), all from ``curves.blocks``.
"""
from .curves import curves, powers_of_two, with_pretraining
from .frontier import crossover, equal_compute, flops_matched, frontier
from .planner import candidates, recommend
from .problem import problem_view, telling_problem
from .verdict import Paired, deployable, verdict

__all__ = ["curves", "powers_of_two", "with_pretraining", "frontier", "flops_matched", "equal_compute", "crossover",
           "candidates", "recommend", "problem_view", "telling_problem", "deployable", "verdict", "Paired"]
