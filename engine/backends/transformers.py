"""In-process Hugging Face transformers (CPU or GPU): the default backend.

Loading and sampling live in ``engine.models`` (loaded once per process,
per-index seeded sampling); this module only plugs them into the registry.
"""
from __future__ import annotations

from ..errors import ConfigError
from ..models.loader import load_model
from ..models.sampling import sample
from ..tasks.prompts import render
from . import register


class TransformersBackend:
    def __init__(self, ref, device: str | None = None):
        self.lm = load_model(ref.source, device=device)
        self.spec = self.lm.spec

    def prompt(self, task, problem, params) -> str:
        return render(task, problem, params.prompt_format, self.lm.tokenizer)

    def check_prompt(self, prompt, params, problem_id):
        """Refuse a prompt that, with the new tokens, would run past the model's positions (a model there
        produces noise or fails): before a sweep starts, not minutes into it."""
        limit = getattr(self.lm.model.config, "max_position_embeddings", None)
        if not limit or len(prompt.encode("utf-8", "surrogatepass")) + params.max_new_tokens < limit:
            return  # fits even at a token per byte plus a leading one (the finest a tokenizer splits text)
        n = len(self.lm.tokenizer(prompt, add_special_tokens=False, verbose=False)["input_ids"])
        if n + params.max_new_tokens > limit:
            fix = f"lower max_new_tokens to at most {limit - n}" if n < limit else "shorten the question"
            raise ConfigError(f"problem {problem_id!r}: its prompt is {n:,} tokens and max_new_tokens "
                              f"{params.max_new_tokens} more would follow, past the {limit} positions of "
                              f"{self.spec.name}; {fix}")

    def generate(self, prompt, params, indices, prompt_key, max_batch=64):
        return sample(self.lm, prompt, params, list(indices), prompt_key=prompt_key, max_batch=max_batch)


register("transformers")(TransformersBackend)
