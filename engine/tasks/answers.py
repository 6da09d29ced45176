"""Final-answer extraction and exact comparison of numeric answers.

The answer is the number after the last ``####``, else in the last ``\\boxed{}``, else after "the answer is",
else the last number in the text. A number is an integer, a decimal (``.5`` too), a fraction (``3/4``) or a
mixed number (``2 1/2``), with thousands separators (``1,000`` or LaTeX ``1{,}000``), a currency sign, and
``+``, ``-`` or the Unicode minus; zero-width characters are ignored. LaTeX (``\\frac{1}{2}``,
``2\\frac{1}{2}``, a boxed expression) is read by math-verify. Its ``verify`` is not used: it compares within
a float tolerance, and its plain-text reading differs where ours must (it reads ``2 1/2`` as 1, and finds
nothing in ``#### +5`` or ``−5``). Answers compare as exact rationals (``0.75 == 3/4``); a number with more
digits than Python converts (or that is not rational) is kept as text and compared as text.

Canonical answers (what the cache stores and votes count): ``42``, ``-0.75``, ``1/3``.
"""
from __future__ import annotations

import functools
import logging
import re
from fractions import Fraction

# Part of a dataset file's task id (engine.tasks.files): samples graded by an older checker live under
# another id, so they are never mixed with these. The arith task keeps its id: on its answers (integers)
# this checker agrees with the old one on every shipped sample (tests/test_answers.py).
CHECKER_VERSION = 2
MAX_DIGITS = 4000  # Python refuses int(str) beyond 4300 digits; longer numbers stay text
_MAX_BITS = 14_000  # about 4,200 digits: the most a number may have and still be printed
MAX_TEX = 200      # LaTeX handed to math-verify is this short, so its parser cannot run long

_CLEAN = {**dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None),
          **dict.fromkeys(map(ord, "\u2212\ufe63\uff0d"), "-")}
_TEX_SEP = re.compile(r"(?<=\d)(?:\{,\}|\\,)(?=\d)")  # 1{,}000 and 1\,000
_INT = r"(?:\d{1,3}(?:,\d{3})+|\d+)"
# whitespace only after a sign or "$": a bare \s* before the digits would make a run of spaces quadratic
_LEAD = r"(?:(?:-|\+(?=[^-+*/=\n]*(?:\n|\Z)))\$?\s*|\$\s*)?"  # "+5" is signed, "+1-1=10" the start of a sum
_PLAIN = _LEAD + r"(?:(?<![/\d])\d+ \d+/\d+(?![/\d])|(?<![/\d])\d+/\d+(?![/\d])|" + _INT + r"(?:\.\d+)?|\.\d+)"
_TEX = _LEAD + r"(?:\d+\s*)?\\[dt]?frac\s*(?:\{\s*-?[\d.]+\s*\}\s*\{\s*[\d.]+\s*\}|\d\s*\d)"
_NUM = f"(?:{_TEX}|{_PLAIN})"
_ANY = re.compile(_NUM)
_PATTERNS = [re.compile(r"####\s*(" + _NUM + ")"),
             re.compile(r"\\boxed\{"),
             re.compile(r"answer\s*(?:is|:|=)?\s*[:=]?\s*(" + _NUM + ")", re.IGNORECASE)]


def clean(text: str) -> str:
    """Invisible characters out, minus signs and LaTeX thousands separators made plain."""
    return _TEX_SEP.sub(",", text.translate(_CLEAN).replace("\\$", "$"))


def _latex(s: str):
    """A LaTeX number or expression through math-verify: a Fraction, its text when not rational, or None."""
    if len(s) > MAX_TEX:
        return None
    from math_verify import parse  # imports sympy (a second): only once LaTeX shows up
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns that no timeout is set: see MAX_TEX
    got = parse(f"${s}$", parsing_timeout=None)  # no SIGALRM: it would fail off the main thread
    if not got:
        return None
    v = got[0]
    if getattr(v, "is_Relational", False):  # \boxed{x = 5}
        v = v.rhs
    if getattr(v, "is_Rational", False):
        p, q = int(v.p), int(v.q)
        return Fraction(p, q) if max(abs(p), q).bit_length() <= _MAX_BITS else s
    if getattr(v, "is_Float", False):
        try:
            return Fraction(str(v))
        except (ValueError, ZeroDivisionError):
            pass
    return str(v)


def _value(tok: str):
    """A number token as a Fraction; text for one too long to convert; None if it is no number."""
    if "\\" in tok:
        return _latex(tok)
    s = tok.replace(",", "").replace("$", "").strip()
    neg = s.startswith("-")
    s = s.lstrip("+-").strip()
    if sum(c.isdigit() for c in s) > MAX_DIGITS:
        return ("-" if neg else "") + (s.lstrip("0") or "0")
    whole, _, frac = s.rpartition(" ")  # a mixed number: "2 1/2"
    try:
        v = Fraction(frac) + (int(whole) if whole else 0)
    except (ValueError, ZeroDivisionError):
        return None
    return -v if neg else v


def _canon(v) -> str | None:
    """``42``, ``0.75`` (a terminating decimal), ``1/3``; text answers as they are."""
    if not isinstance(v, Fraction):
        return v
    n, d = v.numerator, v.denominator
    if max(abs(n), d).bit_length() > _MAX_BITS:  # 1e100000 and the like: too long to print
        return None
    if d == 1:
        return str(n)
    k, r = 0, d
    for p in (2, 5):
        e = 0
        while r % p == 0:
            r, e = r // p, e + 1
        k = max(k, e)
    if r != 1:
        return f"{n}/{d}"
    if k > MAX_DIGITS:  # 1/2**13000 as a decimal: too many digits to print
        return f"{n}/{d}"
    s = str(abs(n) * 10 ** k // d).rjust(k + 1, "0")
    return ("-" if n < 0 else "") + s[:-k] + "." + s[-k:]


def _boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}``, braces balanced."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 1, start + 7
    for j in range(i, min(len(text), i + 10 * MAX_TEX)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


@functools.lru_cache(maxsize=2 ** 16)
def normalize_number(s: str) -> str | None:
    """The canonical form of ``s`` when all of it is one number, else None (remembered: grading compares each
    sample's answer with the same gold, and samples repeat answers)."""
    s = clean(str(s)).strip()
    m = re.fullmatch(_NUM, s)
    if m:
        return _canon(_value(s))
    try:  # 1e3, 2.5E-2
        return _canon(Fraction(s.replace(",", "")))
    except (ValueError, ZeroDivisionError):
        return None


def extract_answer(text: str) -> str | None:
    """The final answer in ``text``, canonical, or None if there is none."""
    if not text:
        return None
    text = clean(text)
    hits = _PATTERNS[0].findall(text)
    if not hits:
        box = _boxed(text)
        if box is not None:
            m = re.match(r"\s*\$?\s*(" + _NUM + ")", box)
            v = _value(m.group(1)) if m else _latex(f"\\boxed{{{box}}}")
            if v is not None:
                return _canon(v)
        hits = _PATTERNS[2].findall(text)
    hits = hits or _ANY.findall(text)
    for tok in reversed(hits):
        v = _value(tok)
        if v is not None:
            return _canon(v)
    return None


def answers_equal(predicted: str | None, gold: str) -> bool:
    """Equal as exact rationals (canonical forms are unique, so that is equal canonical text); else equal text."""
    if predicted is None:
        return False
    a, b = normalize_number(str(predicted)), normalize_number(str(gold))
    if a is not None and b is not None:
        return a == b
    return str(predicted).strip() == str(gold).strip()
