"""Final-answer extraction and comparison for numeric answers.

Handles the formats models and datasets actually use: ``#### 42``,
``\\boxed{42}``, ``The answer is 42.``, thousands separators, currency signs,
trailing units, and falls back to the last number in the text.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_NUM = r"-?\$?\s*(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_PATTERNS = [
    re.compile(r"####\s*(" + _NUM + ")"),
    re.compile(r"\\boxed\{\s*(" + _NUM + r")[^}]*\}"),
    re.compile(r"answer\s*(?:is|:|=)?\s*[:=]?\s*(" + _NUM + ")", re.IGNORECASE),
]
_ANY = re.compile(_NUM)


def normalize_number(s: str) -> str | None:
    """Canonical string for a number: no commas/$/spaces, no trailing zeros."""
    s = s.replace(",", "").replace("$", "").replace(" ", "").strip()
    try:
        d = Decimal(s)
    except InvalidOperation:
        return None
    if not d.is_finite():  # "inf"/"nan" parse as Decimals but are not answers (and int() would raise)
        return None
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def extract_answer(text: str) -> str | None:
    """The final numeric answer in ``text``, normalised, or None if there is none."""
    if not text:
        return None
    for pat in _PATTERNS:
        m = pat.findall(text)
        if m:
            return normalize_number(m[-1])
    m = _ANY.findall(text)
    return normalize_number(m[-1]) if m else None


def answers_equal(predicted: str | None, gold: str) -> bool:
    if predicted is None:
        return False
    a, b = normalize_number(str(predicted)), normalize_number(str(gold))
    if a is None or b is None:
        return str(predicted).strip() == str(gold).strip()
    return Decimal(a) == Decimal(b)
