"""``SamplingParams``: the one typed generation config that flows through the engine."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

from ..errors import ConfigError

MAX_N = 4096
MAX_NEW_TOKENS = 4096


@dataclass(frozen=True)
class SamplingParams:
    """How to sample, modelled on vLLM's SamplingParams.

    ``n`` is how many samples to have; every other field changes *what* a sample
    is and so goes into ``key()``. Sample ``i`` of a config is the same text
    whether 1 or 256 samples were asked for, which is what lets the cache top up.
    """

    n: int = 1
    temperature: float = 0.8
    top_p: float = 1.0
    max_new_tokens: int = 128
    stop: tuple[str, ...] = field(default_factory=tuple)
    seed: int = 0
    prompt_format: str = "auto"  # engine.tasks.prompts: auto, plain or chat

    def __post_init__(self):
        if isinstance(self.stop, (list, str)):
            object.__setattr__(self, "stop", (self.stop,) if isinstance(self.stop, str) else tuple(self.stop))
        checks = [
            (isinstance(self.n, int) and 1 <= self.n <= MAX_N, f"n must be an integer in 1..{MAX_N}, got {self.n!r}"),
            (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature) and 0 <= self.temperature <= 5,
             f"temperature must be in [0, 5], got {self.temperature!r}"),
            (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p!r}"),
            (isinstance(self.max_new_tokens, int) and 1 <= self.max_new_tokens <= MAX_NEW_TOKENS,
             f"max_new_tokens must be an integer in 1..{MAX_NEW_TOKENS}, got {self.max_new_tokens!r}"),
            (all(isinstance(s, str) and s for s in self.stop), f"stop strings must be non-empty strings, got {self.stop!r}"),
            (isinstance(self.seed, int) and 0 <= self.seed < 2**63, f"seed must be a non-negative integer, got {self.seed!r}"),
            (self.prompt_format in ("auto", "plain", "chat"),
             f"prompt format must be auto, plain or chat, got {self.prompt_format!r}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def identity(self) -> dict:
        d = asdict(self)
        d.pop("n")
        d["temperature"] = float(self.temperature)
        d["top_p"] = float(self.top_p)
        d["stop"] = list(self.stop)
        if self.prompt_format == "auto":  # left out so keys made before prompt formats existed stay as they were
            d.pop("prompt_format")
        return d

    def key(self) -> str:
        """Hash of everything but ``n``: the cache key of this config."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]

    def with_n(self, n: int) -> "SamplingParams":
        return SamplingParams(n=n, **{k: v for k, v in asdict(self).items() if k != "n"})
