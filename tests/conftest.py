"""Shared fixtures: a tiny random-init Llama model with the project's real tokenizer."""
from __future__ import annotations

import os
import sys
from pathlib import Path

# Tests use tiny models: one thread each is as fast and leaves the other core free
# (two processes with two OpenMP threads each on two cores slow each other down many times over).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# App tests start from empty caches unless they ask for the shipped sweeps (tests/test_shipped.py does).
os.environ.setdefault("TTC_SHIPPED", "0")

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

torch.set_num_threads(1)


def make_tiny_model(path: Path, seed: int = 0, d_model: int = 32, n_layers: int = 2) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.train.tokenizer import build_tokenizer
    tok = build_tokenizer()
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=d_model, intermediate_size=2 * d_model,
                      num_hidden_layers=n_layers, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=512, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_tiny_classifier(path: Path, num_labels: int = 2, seed: int = 0) -> Path:
    """A random-init Llama sequence classifier (an ORM-shaped verifier) with the project's tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from engine.train.tokenizer import build_tokenizer
    tok = build_tokenizer()
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, num_labels=num_labels,
                      pad_token_id=tok.pad_token_id)
    LlamaForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> str:
    return str(make_tiny_classifier(tmp_path_factory.mktemp("verifiers") / "my-rm"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    return str(make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-a"))


@pytest.fixture(scope="session")
def tiny_model_b(tmp_path_factory) -> str:
    return str(make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-b", seed=1, d_model=48))


@pytest.fixture
def cache(tmp_path):
    from engine.cache import SampleCache
    return SampleCache(tmp_path / "samples.duckdb")
