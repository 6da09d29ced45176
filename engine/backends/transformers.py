"""In-process Hugging Face transformers (CPU or GPU): the default backend.

Loading and sampling live in ``engine.models`` (loaded once per process,
per-index seeded sampling); this module only plugs them into the registry.
"""
from __future__ import annotations

from ..errors import ConfigError
from ..models.decode import free_buffers, kv_shape
from ..models.loader import load_model
from ..models.sampling import sample, sample_many
from ..models.threads import pick_threads
from ..tasks.prompts import render
from . import register


class TransformersBackend:
    def __init__(self, ref, device: str | None = None):
        self.lm = load_model(ref.source, device=device)
        self.spec = self.lm.spec
        if self.spec.device == "cpu":
            import torch
            torch.set_num_threads(pick_threads())

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

    def generate_many(self, requests, params):
        """``[(prompt, prompt_key, indices)]`` decoded together: many problems' rows in one batch."""
        return sample_many(self.lm, [(p, k, list(i)) for p, k, i in requests], params)

    def rows_per_batch(self, params) -> int:
        return rows_per_batch(self.lm, params)

    def finish(self) -> None:
        """The run is over: free what was kept to speed up its next batch."""
        free_buffers()


# A batch is the unit of saving, progress and Stop, so it is sized to take seconds, not minutes: about this many
# FLOPs of new tokens at max_new_tokens (most samples stop sooner), and within the memory its KV cache takes.
BATCH_FLOPS = {"cpu": 2.5e11, "cuda": 2e14}
MAX_ROWS = {"cpu": 2048, "cuda": 16384}   # past this, more rows stopped paying on this project's machines
# below this a step costs reading the weights, whatever its rows: on one CPU thread, SmolLM2-135M at 3 rows a batch
# (what the FLOPs alone give it at 256 new tokens) ran at 33 tokens/s, at 32 rows 158 (the KV memory still caps it)
MIN_ROWS = {"cpu": 32, "cuda": 64}
KV_BYTES = {"cpu": 2 * 2**30, "cuda": None}  # cuda: a quarter of the free memory


def rows_per_batch(lm, params) -> int:
    """Rows to decode together for ``params`` on this model and device."""
    import torch
    dev = "cuda" if lm.spec.device.startswith("cuda") else "cpu"
    c = lm.model.config
    per_row_flops = 2 * max(1, lm.spec.matmul_params) * params.max_new_tokens
    rows = max(MIN_ROWS[dev], int(BATCH_FLOPS[dev] // per_row_flops))
    hkv, d = kv_shape(c)
    kv_row = 2 * getattr(c, "num_hidden_layers", 1) * hkv * d * params.max_new_tokens * lm.model.dtype.itemsize
    budget = KV_BYTES[dev] if dev == "cpu" else torch.cuda.mem_get_info()[0] // 4
    return max(1, min(rows, MAX_ROWS[dev], int(budget // max(1, kv_row))))


register("transformers")(TransformersBackend)
