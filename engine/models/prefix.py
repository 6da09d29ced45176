"""What a decode on a CPU computed, kept in memory for the next decode of the same prompts by the same loaded
model: every distinct history's next-token logits and the keys and values of its last token (a trie per prompt,
vLLM's automatic prefix caching carried to the samples' own tokens).

Why: the cache keeps texts, so a top-up (n=16 cached, 64 asked) had to compute the histories of its 48 new
samples as a fresh run does, about 0.9x a fresh 64 (README, Performance). A new sample of a prompt whose trie is
here draws each token from the kept logits with its own uniform, as it would from computed ones, and gets a
decode row only where it leaves the trie (its row starts from the kept keys and values of its path). What stays
in memory is bounded (``TTC_PREFIX_MB``, per loaded model); a new process, the CLI's next command, starts empty.
"""
from __future__ import annotations

import os

import torch

# per loaded model; TTC_PREFIX_MB overrides it, 0 turns the pool off. Sized for the app's default: arith-xl's
# 500 problems x 64 samples at T=0.8 keep about 560 MB of nodes, arith-s's about 360 MB
BUDGET_MB = 1024
_ATTR = "_ttc_prefix_pool"


def budget() -> int:
    raw = os.environ.get("TTC_PREFIX_MB", "").strip() or str(BUDGET_MB)
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not mb >= 0 or mb == float("inf"):
        from ..errors import ConfigError
        raise ConfigError(f"TTC_PREFIX_MB={raw!r}: give the megabytes a loaded model may keep for top-ups, "
                          f"a number of at least 0 (0 turns keeping off; default {BUDGET_MB})")
    return int(mb * 2 ** 20)


class Pool:
    """Nodes of every prompt's trie: node i holds the logits after its history and the keys and values of the
    token fed at its step ([2 x layers, kv heads, head size]), and the key of its edge (parent node x vocabulary
    + token; negative for a root). ``roots`` maps a prompt's token ids to its first node."""

    def __init__(self, cap: int):
        self.cap, self.n, self.off = cap, 0, False
        self.logits: torch.Tensor | None = None
        self.kv: torch.Tensor | None = None
        self.edge = torch.empty(0, dtype=torch.long)
        self.roots: dict[tuple, int] = {}
        self._index = None  # the edges sorted, and their nodes: built at the first lookup after new nodes

    def record(self, parents: torch.Tensor, tokens: torch.Tensor, logits: torch.Tensor, fill_kv, kv_shape,
               dtype, root_keys: list[tuple] | None = None) -> int | None:
        """New nodes, one per row: their logits, their keys and values (``fill_kv(out)`` writes them into ``out``
        [rows, *kv_shape]), their parents (-1: a root, of ``root_keys`` in turn). The first one's id (the others
        follow it), or None once the budget is spent (recording then stops for the rest of the decode, which
        keeps every trie prefix-closed)."""
        k, vocab = len(parents), logits.shape[-1]
        if self.logits is None or self.logits.shape[-1] != vocab or self.kv.shape[1:] != kv_shape or \
                self.kv.dtype != dtype:  # new, or another model's memory
            self.logits = None
            self.node_bytes = vocab * 4 + kv_shape[0] * kv_shape[1] * kv_shape[2] * dtype.itemsize + 8
        if self.off or (self.n + k) * self.node_bytes > self.cap:
            self.off = True
            return None
        if self.logits is None or self.n + k > len(self.logits):
            size = min(max(1024, 2 * (self.n + k)), self.cap // self.node_bytes)  # doubling, up to the budget
            grown = [torch.empty(size, vocab), torch.empty(size, *kv_shape, dtype=dtype),
                     torch.empty(size, dtype=torch.long)]
            if self.logits is not None:
                grown[0][:self.n], grown[1][:self.n], grown[2][:self.n] = \
                    self.logits[:self.n], self.kv[:self.n], self.edge[:self.n]
            self.logits, self.kv, self.edge = grown
        n = self.n
        self.logits[n:n + k] = logits
        fill_kv(self.kv[n:n + k])
        # a root's parent is -1 (a row left behind: -2): its key is negative and matches no lookup
        torch.add(tokens, parents, alpha=vocab, out=self.edge[n:n + k])
        if root_keys is not None:
            for node, key in zip((parents < 0).nonzero()[:, 0].tolist(), root_keys):
                self.roots[key] = n + node
        self.n, self._index = n + k, None
        return n

    def next(self, nodes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The node after each (node, token), -1 where the trie has none."""
        if self._index is None:
            self._index = torch.sort(self.edge[:self.n])
        edges, order = self._index
        want = nodes * self.logits.shape[-1] + tokens
        at = torch.searchsorted(edges, want).clamp(max=max(self.n - 1, 0))
        found = edges[at] == want if self.n else torch.zeros_like(want, dtype=torch.bool)
        return torch.where(found, order[at], -1)


_spare: list[Pool] = []  # a dropped pool, emptied, for the next one of this process


def _new(cap: int) -> Pool:
    """An empty pool, in a dropped pool's memory when there is one: new memory is paid for in page faults at
    its first write (about 2 microseconds per 4 KiB), which had made keeping a fresh run's nodes cost 8% of it."""
    try:  # pop, not a check first: decodes of other models may run in other threads (the app's runs)
        pool = _spare.pop()
    except IndexError:
        pool = Pool(cap)
    pool.cap, pool.n, pool.off, pool.roots, pool._index = cap, 0, False, {}, None
    return pool


def _drop(pool: Pool | None) -> None:
    if pool is not None:
        _spare[:] = [pool]


def take(model, keys: list[tuple]) -> Pool | None:
    """The model's pool, taken out while a decode of prompts ``keys`` uses it (a concurrent decode gets a new,
    empty one). A full pool is read, not added to (a run larger than the budget keeps its first problems:
    throwing them out for later ones would leave a top-up, which takes the problems in the same order, nothing
    to read), unless it holds none of the prompts asked: then it is started again."""
    cap = budget()
    if cap <= 0:
        return None
    pool = model.__dict__.pop(_ATTR, None)
    if pool is None or pool.cap != cap or (pool.off and not any(k in pool.roots for k in keys)):
        _drop(pool)
        pool = _new(cap)
    return pool


def give_back(model, pool: Pool | None) -> None:
    if pool is not None:
        model.__dict__[_ATTR] = pool


def forget(model) -> None:
    """Drop what the model's decodes kept (a benchmark's fresh run, a test)."""
    _drop(model.__dict__.pop(_ATTR, None))


def held(model) -> int:
    """Nodes the model's pool holds now."""
    pool = model.__dict__.get(_ATTR)
    return pool.n if pool is not None else 0
