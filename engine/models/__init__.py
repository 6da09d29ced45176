from .loader import LoadedModel, ModelSpec, list_shipped, load_model, resolve_source
from .params import SamplingParams

__all__ = ["LoadedModel", "ModelSpec", "SamplingParams", "RawSample", "list_shipped", "load_model",
           "resolve_source", "sample"]


def __getattr__(name):
    # sampling brings torch and transformers (3 s to import): reading cached results, what every page does on
    # its first render, needs neither, so they load when something samples
    if name in ("RawSample", "sample"):
        from . import sampling
        return getattr(sampling, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
