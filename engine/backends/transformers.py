"""In-process Hugging Face transformers (CPU or GPU): the default backend.

Loading and sampling live in ``engine.models`` (loaded once per process,
per-index seeded sampling); this module only plugs them into the registry.
"""
from __future__ import annotations

from ..models.loader import load_model
from ..models.sampling import sample
from . import register


class TransformersBackend:
    def __init__(self, ref, device: str | None = None):
        self.lm = load_model(ref.source, device=device)
        self.spec = self.lm.spec

    def generate(self, prompt, params, indices, prompt_key, max_batch=64):
        return sample(self.lm, prompt, params, list(indices), prompt_key=prompt_key, max_batch=max_batch)


register("transformers")(TransformersBackend)
