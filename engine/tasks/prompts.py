"""Prompt formats: what text a model is given for a problem.

* ``plain``: the task's own prompt (``Task.prompt``): the ladder's trained format for ``arith``, a few-shot
  prompt of worked examples for ``gsm``, ``Question: ...\\nAnswer:`` for dataset files. What base models get.
* ``chat``: the model's tokenizer chat template around one user turn (``Task.chat``: the question and how to
  end the answer). What instruct models get.
* ``auto`` (the default): ``chat`` when the model's tokenizer has a chat template, else ``plain``.

The format is part of the cache key: ``plain`` and ``chat`` go into ``SamplingParams.key()``; under ``auto``
the choice follows from the model, and a model's fingerprint covers its chat template when it has one
(``loader.fingerprint``), so editing a template never reuses samples made with the old one. ``auto`` is left
out of the key, which keeps every key made before formats existed (the shipped sweeps) as it was.
"""
from __future__ import annotations

from ..errors import ConfigError

FORMATS = ("auto", "plain", "chat")
CHAT_INSTRUCTION = "Solve it step by step, then give the final answer on the last line as '#### N'."


def chat_message(p) -> str:
    return f"{p.question}\n\n{CHAT_INSTRUCTION}"


def has_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def resolve(fmt: str, tokenizer=None) -> str:
    """``plain`` or ``chat`` for a model whose tokenizer is ``tokenizer`` (None: a model with no tokenizer
    here, such as one on a server, whose completions endpoint takes raw text)."""
    if fmt not in FORMATS:
        raise ConfigError(f"prompt format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "auto":
        return "chat" if has_template(tokenizer) else "plain"
    if fmt == "chat" and not has_template(tokenizer):
        raise ConfigError("prompt format 'chat' needs a chat template, and this model has none here "
                          "(a base model, or a model on a server); use 'plain' or 'auto'")
    return fmt


def render(task, problem, fmt: str = "auto", tokenizer=None) -> str:
    if resolve(fmt, tokenizer) == "plain":
        return task.prompt(problem)
    return tokenizer.apply_chat_template([{"role": "user", "content": task.chat(problem)}], tokenize=False,
                                         add_generation_prompt=True)
