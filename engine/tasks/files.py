"""Bring-your-own data: a JSONL, JSON or CSV file of questions with numeric answers.

GSM8K format (``question`` plus an ``answer`` whose text ends ``#### N``) is
detected by its column names; other names are mapped with ``question_col`` /
``answer_col``. Anything wrong with the data is a ``DatasetError`` naming the
file, the line and the problem, so the CLI and app can show it as is.
"""
from __future__ import annotations

import csv
import io
import hashlib
import json
import re
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Iterator

from ..errors import DatasetError
from .answers import _ANY, _PATTERNS, CHECKER_VERSION, clean, extract_answer, normalize_number
from .base import Problem, Task

SUFFIXES = (".jsonl", ".json", ".csv")
MAX_QUESTION_CHARS = 50_000  # far beyond any model's context here; a longer "question" is a broken file
MAX_STEM = 100                # file names stay well inside the 255 bytes a file system allows
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")  # JSON can spell a lone surrogate; UTF-8 cannot
_MAGIC = {b"\x1f\x8b": "a gzip archive", b"PK\x03\x04": "a zip archive", b"BZh": "a bzip2 archive",
          b"\xfd7zXZ": "an xz archive", b"\x28\xb5\x2f\xfd": "a zstd archive", b"SQLite format 3": "a SQLite database"}
_BOMS = [(b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
         (b"\xfe\xff", "UTF-16")]
STOP = ("\n\nQuestion:", "\n\n\n")

Rows = Iterator[tuple[int, dict]]  # (1-based line the row starts on, raw row)


def prompt(p: Problem) -> str:
    return f"Question: {p.question}\nAnswer:"


def safe_name(filename: str) -> str:
    """The name an uploaded file is stored under, and the stem of every file's task id (so the app and
    the CLI give one file one id): letters, digits, '.', '_', '-'; the stem cut to ``MAX_STEM``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(filename)).name).lstrip(".") or "dataset"
    p = Path(name)
    suffix = p.suffix if len(p.suffix) <= 8 else ""
    return (name[:len(name) - len(suffix)][:MAX_STEM] or "dataset") + suffix


# ---------------------------------------------------------------- reading


def _read_text(path: Path) -> str:
    if not path.exists():
        raise DatasetError(path, "file not found")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DatasetError(path, f"cannot read file ({e.strerror or e})") from None
    for magic, what in _MAGIC.items():
        if raw.startswith(magic):  # never unpacked: a renamed archive is refused, whatever it would expand to
            raise DatasetError(path, f"this is {what}, not text; extract the {path.suffix} file from it first")
    for bom, enc in _BOMS:
        if raw.startswith(bom):
            raise DatasetError(path, f"the file is {enc} text; save it with UTF-8 encoding")
    if b"\x00" in raw:
        line = raw[:raw.index(b"\x00")].count(b"\n") + 1
        hint = "UTF-16 text without a byte-order mark? save it with UTF-8 encoding" \
            if raw[:200].count(b"\x00") * 3 > min(len(raw), 200) else "a binary file?"
        raise DatasetError(path, f"the file contains NUL bytes ({hint})", line)
    try:
        # utf-8-sig: spreadsheet exports often start with a BOM that would otherwise
        # stick to the first column name
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = e.object[:e.start].count(b"\n") + 1
        raise DatasetError(path, f"not UTF-8 text (byte 0x{e.object[e.start]:02x}); "
                                 "save the file with UTF-8 encoding", line) from None
    if not text.strip():
        raise DatasetError(path, "file is empty")
    return text


def _kind(v) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(v), "a number")


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    keys = Counter(k for k, _ in pairs)
    dup = next((k for k, c in keys.items() if c > 1), None)
    if dup is not None:
        raise _DuplicateKey(dup)
    return dict(pairs)


# integers too long for int64 stay text: exact, shown as written, and never past Python's digit limit;
# NaN and Infinity stay the words they are
_OPTS = dict(parse_constant=str, parse_int=lambda s: int(s) if len(s) < 19 else s)
_DECODER, _SYNTAX = json.JSONDecoder(object_pairs_hook=_no_duplicates, **_OPTS), json.JSONDecoder(**_OPTS)


def _decode(path: Path, text: str, line: int | None, start: int = 0, hint: str = "", syntax_only: bool = False):
    """One JSON value at ``start``: (value, end); every way it can be wrong is a DatasetError."""
    try:
        value, end = (_SYNTAX if syntax_only else _DECODER).raw_decode(text, start)
    except json.JSONDecodeError as e:
        raise DatasetError(path, f"invalid JSON ({e.msg}, column {e.colno}){hint}",
                           line if line is not None else e.lineno) from None
    except _DuplicateKey as e:
        raise DatasetError(path, f"duplicate key {str(e)!r} in one object (JSON keeps only the last)", line) from None
    except RecursionError:
        raise DatasetError(path, "JSON nested too deeply; a row is one flat object", line) from None
    if not syntax_only and _SURROGATE.search(text, start, end):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            raise DatasetError(path, f"invalid Unicode: an unpaired surrogate \\u{ord(e.object[e.start]):04x} "
                                     "(an escape such as \\ud83d must come in a pair)", line) from None
    return value, end


def _jsonl(path: Path, text: str) -> Rows:
    hint = "; a .json file must be one JSON array or one object per line" if path.suffix.lower() == ".json" else ""
    # split on "\n" only: str.splitlines also breaks on U+2028 and friends, which
    # JSON strings may contain unescaped
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        row, end = _decode(path, line, n, len(line) - len(line.lstrip()), hint)
        if line[end:].strip():
            raise DatasetError(path, f"invalid JSON (Extra data, column {end + 1}){hint}", n)
        if not isinstance(row, dict):
            raise DatasetError(path, f"expected a JSON object {{...}}, got {_kind(row)}", n)
        yield n, row


def _json_array(path: Path, text: str) -> Rows:
    first = len(text) - len(text.lstrip())
    _, end = _decode(path, text, None, first, syntax_only=True)  # up front, so a syntax error names its line
    if text[end:].strip():
        raise DatasetError(path, "invalid JSON (Extra data after the array)", text.count("\n", 0, end) + 1)
    # walk the items one by one to know the line each starts on
    skip = re.compile(r"[\s,]*")
    i = skip.match(text, first + 1).end()
    line, counted = 1, 0
    while text[i] != "]":
        line, counted = line + text.count("\n", counted, i), i
        row, end = _decode(path, text, line, i)
        if not isinstance(row, dict):
            raise DatasetError(path, f"expected a JSON object {{...}}, got {_kind(row)}", line)
        yield line, row
        i = skip.match(text, end).end()


def _csv(path: Path, text: str) -> tuple[list[str], Rows]:
    # a tab-separated file saved as .csv would otherwise read as one column named "question\tanswer"
    head = text.lstrip("\n").split("\n", 1)[0]
    delimiter = "\t" if "\t" in head and "," not in head else ","
    # strict: an unclosed quote is an error, not a field that swallows the rest of the file
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True, strict=True)
    try:
        header = next((r for r in reader if r), [])
    except csv.Error as e:
        raise DatasetError(path, f"malformed CSV ({e}); check the quoting", reader.line_num) from None
    dupes = sorted(h for h, c in Counter(header).items() if c > 1)
    if dupes:
        raise DatasetError(path, f"duplicate column name(s) in header: {', '.join(map(repr, dupes))}",
                           reader.line_num)

    def records() -> Rows:
        start = reader.line_num + 1
        try:
            for rec in reader:
                if rec:  # csv yields [] for a blank line
                    if len(rec) != len(header):
                        raise DatasetError(path, f"row has {len(rec)} fields but the header has "
                                                 f"{len(header)}; quote values that contain commas", start)
                    yield start, dict(zip(header, rec))
                start = reader.line_num + 1  # a quoted value can span lines
        except csv.Error as e:
            raise DatasetError(path, f"malformed CSV ({e}); check the quoting", start) from None

    return header, records()


def _rows(path: Path) -> Rows:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DatasetError(path, f"unsupported file type {suffix or '(none)'!r}; use .jsonl, .json or .csv")
    text = _read_text(path)
    if suffix == ".csv":
        return _csv(path, text)[1]
    if suffix == ".json" and text.lstrip().startswith("["):
        return _json_array(path, text)
    return _jsonl(path, text)


def preview_file(path, limit: int = 5) -> list[dict]:
    """The first ``limit`` rows as read (CSV values stay strings), for an upload preview."""
    return [row for _, row in islice(_rows(Path(path)), limit)]


def columns_of(path, scan: int = 100) -> list[str]:
    """Column names: the CSV header, or the keys seen in the first ``scan`` JSON rows."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return _csv(path, _read_text(path))[0]
    cols: dict[str, None] = {}
    for row in preview_file(path, scan):
        cols.update(dict.fromkeys(row))
    return list(cols)


# ---------------------------------------------------------------- fields


def _field(path: Path, row: dict, col: str, line: int, hint: str = "") -> str:
    if col not in row:
        have = ", ".join(map(repr, row)) or "none"
        raise DatasetError(path, f"missing column {col!r}; columns found: {have}{hint}", line)
    v = row[col]
    if isinstance(v, (dict, list)):
        raise DatasetError(path, f"column {col!r} must be text or a number, got {_kind(v)}", line)
    return "" if v is None else str(v).strip()


def _gold(path: Path, text: str, col: str, line: int) -> str:
    text = clean(text)
    plain = normalize_number(text)
    if plain is not None:
        return plain
    gold = extract_answer(text)
    if gold is None:
        raise DatasetError(path, f"no number found in answer {text[:80]!r} (column {col!r})", line)
    # without a final-answer marker extract_answer would take the *last* number,
    # silently turning a gold like "3/4" into 4
    if not any(p.search(text) for p in _PATTERNS) and len(_ANY.findall(text)) > 1:
        raise DatasetError(path, f"ambiguous answer {text[:80]!r}: several numbers and no final-answer "
                                 "marker; end it with '#### N'", line)
    return gold


def _difficulty(path: Path, v: str, col: str, line: int) -> int | None:
    if v == "":
        return None  # unknown for this row; selecting by level simply skips it
    try:
        f = float(v)
    except ValueError:
        f = None
    if f is None or not f.is_integer():
        raise DatasetError(path, f"difficulty {v!r} (column {col!r}) is not an integer", line)
    return int(f)


# ---------------------------------------------------------------- loading


def load_task_file(path, question_col: str | None = None, answer_col: str | None = None,
                   id_col: str | None = None, difficulty_col: str | None = None,
                   name: str | None = None) -> Task:
    """A Task from a GSM8K-format or column-mapped JSONL/JSON/CSV file.

    The gold answer is the normalised final number of the answer column (after
    ``####`` when present; the text before it becomes ``Problem.solution``).
    Ids come from ``id_col``, else ``<name>-<line>``.
    """
    path = Path(path)
    stem = Path(safe_name(path.name)).stem
    id_prefix = name or stem
    qcol, acol = question_col or "question", answer_col or "answer"
    if qcol == acol:
        raise DatasetError(path, f"the question and the answer are the same column ({qcol!r}): the prompt "
                                 "would contain the answer")
    if name is None and path.is_file():
        # the task name is part of the cache key: include the content, the mapping as used (the app names
        # the default columns, the CLI leaves them out) and the answer checker's version, so two files
        # called test.jsonl, one file edited in place, or samples graded by another checker never mix
        h = hashlib.sha256(path.read_bytes())
        h.update(repr((qcol, acol, id_col, difficulty_col, CHECKER_VERSION)).encode())
        name = f"{stem}@{h.hexdigest()[:8]}"
    name = name or stem
    hint = "" if (question_col or answer_col) else \
        "; name the question and answer columns with question_col=... and answer_col=..."
    problems, seen = [], {}
    for line, row in _rows(path):
        question = _field(path, row, qcol, line, hint)
        answer_text = _field(path, row, acol, line, hint)
        if not question:
            raise DatasetError(path, f"empty question (column {qcol!r})", line)
        if len(question) > MAX_QUESTION_CHARS:
            raise DatasetError(path, f"question of {len(question):,} characters (column {qcol!r}); the limit is "
                                     f"{MAX_QUESTION_CHARS:,}", line)
        if not answer_text:
            raise DatasetError(path, f"empty answer (column {acol!r}); no number to grade against", line)
        gold = _gold(path, answer_text, acol, line)
        solution = None
        if "####" in answer_text:  # GSM8K: worked solution, then "#### N"
            solution = answer_text.rsplit("####", 1)[0].strip() or None
        if id_col:
            pid = _field(path, row, id_col, line)
            if not pid:
                raise DatasetError(path, f"empty id (column {id_col!r})", line)
        else:
            pid = f"{id_prefix}-{line}"
        if pid in seen:
            raise DatasetError(path, f"duplicate id {pid!r} (lines {seen[pid]} and {line})", line)
        seen[pid] = line
        diff = _difficulty(path, _field(path, row, difficulty_col, line), difficulty_col, line) \
            if difficulty_col else None
        problems.append(Problem(id=pid, question=question, answer=gold, difficulty=diff,
                                solution=solution, meta={"line": line}))
    if not problems:
        raise DatasetError(path, "no data rows (only a header?)")
    return Task(name, problems, prompt, stop=STOP, source=str(path))


__all__ = ["DatasetError", "STOP", "columns_of", "load_task_file", "preview_file", "prompt", "safe_name"]
