from .loader import LoadedModel, ModelSpec, list_shipped, load_model, resolve_source
from .params import SamplingParams
from .sampling import RawSample, sample

__all__ = ["LoadedModel", "ModelSpec", "SamplingParams", "RawSample", "list_shipped", "load_model",
           "resolve_source", "sample"]
