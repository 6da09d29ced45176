"""Tasks: the arith generator, answer extraction, selection, and bring-your-own files."""
from __future__ import annotations

import json
from collections import Counter
from itertools import islice

import pytest

from engine.errors import DatasetError, EngineError
from engine.tasks import arith, files, get_task
from engine.tasks.answers import answers_equal, extract_answer, normalize_number


@pytest.fixture(scope="module")
def arith_task():
    return get_task("arith")


# ---------------------------------------------------------------- arith generator


def _steps(ps):
    return [p.meta["steps"] for p in ps]


def test_generate_is_deterministic_per_seed():
    a, b = arith.generate(7, 5), arith.generate(7, 5)
    assert a == b and _steps(a) == _steps(b)
    c = arith.generate(8, 5)
    assert [p.question for p in a] != [p.question for p in c]


def test_arith_task_has_100_per_level_and_unique_ids(arith_task):
    assert Counter(p.difficulty for p in arith_task.problems) == {lvl: 100 for lvl in arith.LEVELS}
    assert len({p.id for p in arith_task.problems}) == 500


def test_difficulty_is_number_of_steps(arith_task):
    for p in arith_task.problems:
        assert len(arith.gold_steps(p)) == arith.LEVEL_SPECS[p.difficulty].ops
    ops = [arith.LEVEL_SPECS[lvl].ops for lvl in arith.LEVELS]
    assert ops == sorted(set(ops))  # strictly increasing


def test_gold_steps_parse_from_solution_text(arith_task):
    p = arith_task.problems[-1]
    bare = type(p)(id=p.id, question=p.question, answer=p.answer, difficulty=p.difficulty, solution=p.solution)
    assert arith.gold_steps(bare) == arith.gold_steps(p)


def test_check_steps_accepts_gold_solutions(arith_task):
    for p in arith_task.problems:
        labels = arith.check_steps(p, p.solution)
        assert labels == [True] * p.difficulty


def test_check_steps_flags_corrupted_step_and_all_later(arith_task):
    p = next(p for p in arith_task.problems if p.difficulty == 5)
    steps = arith.gold_steps(p)
    for k in range(len(steps)):
        lines = [f"{a}{op}{b}={c + 1 if i == k else c}" for i, (a, op, b, c) in enumerate(steps)]
        labels = arith.check_steps(p, "\n".join(lines + [f"#### {p.answer}"]))
        assert labels == [True] * k + [False] * (len(steps) - k)
    # a later step that is arithmetically right but starts from a wrong result is still wrong
    a, op, b, c = steps[0]
    wrong = c + 1
    a1, op1, b1, _ = steps[1]
    lines = [f"{a}{op}{b}={wrong}", f"{wrong}{op1}{b1}={arith.apply_op(wrong, op1, b1)}"]
    assert arith.check_steps(p, "\n".join(lines)) == [False, False]


def test_train_stream_never_yields_a_test_question(arith_task):
    test_qs = {p.question for p in arith_task.problems}
    train = list(islice(arith.train_stream(seed=0), 3000))
    assert not test_qs & {p.question for p in train}
    assert {p.difficulty for p in train} == set(arith.LEVELS)
    # the exclusion really filters: exclude what an unfiltered stream yields first
    first = {p.question for p in islice(arith.train_stream(seed=0, exclude=set()), 20)}
    assert not first & {p.question for p in islice(arith.train_stream(seed=0, exclude=first), 500)}


def test_shipped_test_file_is_reproducible_from_seed(tmp_path):
    regenerated = tmp_path / "arith_test.jsonl"
    arith.write_test_set(regenerated)
    assert regenerated.read_bytes() == arith.TEST_FILE.read_bytes()
    shipped, fresh = arith.load_test(), arith.generate(arith.TEST_SEED, 100)
    assert shipped == fresh and _steps(shipped) == _steps(fresh)


# ---------------------------------------------------------------- answers


@pytest.mark.parametrize("text, expected", [
    ("#### 42", "42"),
    ("#### 1,234", "1234"),
    ("\\boxed{42}", "42"),
    ("\\boxed{42 apples}", "42"),
    ("The answer is 42.", "42"),
    ("the answer is $1,000.50", "1000.5"),
    ("answer: -7", "-7"),
    ("42 apples", "42"),
    ("She had 3, bought 5, so 8 in all", "8"),           # last number fallback
    ("#### 3\nwait, no\n#### 5", "5"),                   # several ####: the last
    ("7+5=12\n#### 12\nThe answer is 13", "12"),         # #### beats 'answer is'
    ("#### 2.50", "2.5"),
    ("no number here", None),
    ("", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("pred, gold, ok", [
    ("42.0", "42", True), ("1,000", "1000", True), ("$5", "5", True), ("0.50", "0.5", True),
    ("41", "42", False), ("-42", "42", False), (None, "42", False), (None, "", False),
    ("inf", "42", False),
])
def test_answers_equal(pred, gold, ok):
    assert answers_equal(pred, gold) is ok


def test_normalize_number_rejects_non_finite():
    assert normalize_number("1,000.00") == "1000"
    assert [normalize_number(s) for s in ("inf", "-Infinity", "nan", "sNaN", "abc")] == [None] * 5


# ---------------------------------------------------------------- Task.select


def test_select_prefix_and_levels(arith_task):
    ps = arith_task.problems
    assert arith_task.select() == list(ps)
    # no levels given: all five levels take turns, so a small selection is a mix
    assert [p.difficulty for p in arith_task.select(10)] == [1, 2, 3, 4, 5] * 2
    assert arith_task.select(10) == arith_task.select(10, [1, 2, 3, 4, 5])
    lvl3 = [p for p in ps if p.difficulty == 3]
    assert arith_task.select(10, [3]) == lvl3[:10]
    assert arith_task.select(None, [2, 4]) == [p for p in ps if p.difficulty in (2, 4)]


def test_select_balances_levels_round_robin(arith_task):
    sel = arith_task.select(9, [1, 3, 5])
    assert [p.difficulty for p in sel] == [1, 3, 5] * 3
    by_level = {d: [p for p in arith_task.problems if p.difficulty == d] for d in (1, 3, 5)}
    assert [p for p in sel if p.difficulty == 5] == by_level[5][:3]


@pytest.mark.parametrize("levels", [None, [2], [1, 2, 5]])
def test_larger_selection_is_superset(arith_task, levels):
    available = len(arith_task.select(None, levels))
    prev = []
    for n in (1, 4, 7, 30, 120, 600):
        cur = arith_task.select(n, levels)
        assert len(cur) == min(n, available) and cur[:len(prev)] == prev
        prev = cur


# ---------------------------------------------------------------- files.py: good input


def _jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_gsm8k_jsonl_roundtrip(tmp_path):
    path = _jsonl(tmp_path / "mini_gsm.jsonl", [
        {"question": "Ann has 1,000 pens and buys 234 more. How many?",
         "answer": "1,000 + 234 = <<1000+234=1234>>1,234\n#### 1,234"},
        "",  # blank line: skipped
        {"question": "Bob has 3 eggs. He eats 1. How many?", "answer": "3 - 1 = 2\n#### 2"},
        {"question": "Half of 5?", "answer": "5 / 2 = 2.5\n#### 2.50"},
    ])
    task = files.load_task_file(path)
    assert task.name.startswith("mini_gsm@") and task.source == str(path) and task.stop == files.STOP
    assert [p.answer for p in task.problems] == ["1234", "2", "2.5"]
    assert [p.id for p in task.problems] == ["mini_gsm-1", "mini_gsm-3", "mini_gsm-4"]
    assert task.problems[0].solution == "1,000 + 234 = <<1000+234=1234>>1,234"
    assert all(p.difficulty is None for p in task.problems)
    p = task.problems[1]
    assert task.prompt(p) == "Question: Bob has 3 eggs. He eats 1. How many?\nAnswer:"
    assert task.grade(p, " 3 - 1 = 2\n#### 2") == ("2", True)
    assert task.grade(task.problems[0], "The answer is 1234.") == ("1234", True)


def test_csv_with_column_mapping(tmp_path):
    path = tmp_path / "quiz.csv"
    path.write_text('prompt,target\n"What is 6, times 7?",42\n\n"Two\nlines?",$1,000\n', encoding="utf-8")
    with pytest.raises(DatasetError):
        files.load_task_file(path)  # "$1,000" unquoted makes 3 fields
    path.write_text('\ufeffprompt,target\n"What is 6, times 7?",42 apples\n\n"Two\nlines?","$1,000"\nx,7\n',
                    encoding="utf-8")
    task = files.load_task_file(path, question_col="prompt", answer_col="target", name="q")
    assert [(p.id, p.question, p.answer) for p in task.problems] == [
        ("q-2", "What is 6, times 7?", "42"), ("q-4", "Two\nlines?", "1000"), ("q-6", "x", "7")]
    assert files.columns_of(path) == ["prompt", "target"]


def test_jsonl_with_mapping_id_and_difficulty(tmp_path):
    path = _jsonl(tmp_path / "mapped.jsonl", [
        {"uid": "a", "q": "One?", "gold": 1, "level": 2},
        {"uid": 7, "q": "Two?", "gold": "2.0", "level": "3"},
        {"uid": "c", "q": "Three?", "gold": "three is 3", "level": 4.0, "extra": [1]},
        {"uid": "d", "q": "Four?", "gold": "4", "level": None},
    ])
    task = files.load_task_file(path, question_col="q", answer_col="gold", id_col="uid", difficulty_col="level")
    assert [(p.id, p.answer, p.difficulty) for p in task.problems] == [
        ("a", "1", 2), ("7", "2", 3), ("c", "3", 4), ("d", "4", None)]
    assert task.select(None, [3, 4]) == task.problems[1:3]
    # the unlevelled problem is its own bucket, after the levelled ones
    assert [p.id for p in task.select(4)] == ["a", "7", "c", "d"]
    assert [p.id for p in task.select(3, [3, 4])] == ["7", "c"]


def test_json_array_file(tmp_path):
    path = tmp_path / "arr.json"
    path.write_text('[\n  {"question": "a?", "answer": "#### 1"},\n\n  {"question": "b?",\n   "answer": 2}\n]')
    assert [(p.id, p.answer) for p in files.load_task_file(path).problems] == [("arr-2", "1"), ("arr-4", "2")]


def test_preview_and_columns(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [{"question": f"q{i}", "answer": i, **({"x": 1} if i == 2 else {})}
                                          for i in range(8)] + ["not json"])
    rows = files.preview_file(path)
    assert rows[0] == {"question": "q0", "answer": 0} and len(rows) == 5  # line 9 is never read
    assert files.preview_file(path, limit=2) == rows[:2]
    assert files.columns_of(path, scan=8) == ["question", "answer", "x"]
    with pytest.raises(DatasetError, match="line 9"):
        files.columns_of(path)  # the default scan reaches the bad line
    csv_path = tmp_path / "h.csv"
    csv_path.write_text("a,b\n")
    assert files.preview_file(csv_path) == [] and files.columns_of(csv_path) == ["a", "b"]
    with pytest.raises(DatasetError, match="not found"):
        files.preview_file(tmp_path / "missing.csv")


def test_get_task_routes_paths_to_files(tmp_path):
    path = _jsonl(tmp_path / "routed.jsonl", [{"prompt": "One?", "target": "1"}])
    task = get_task(str(path), question_col="prompt", answer_col="target")
    assert task.name.startswith("routed@") and task.stop == files.STOP and task.problems[0].answer == "1"
    with pytest.raises(DatasetError):
        get_task(str(tmp_path / "nope.jsonl"))


@pytest.mark.parametrize("name", ["nope", "arith2", "data.txt", ""])
def test_unknown_task_name(name):
    with pytest.raises(EngineError, match="unknown task"):
        get_task(name)


# ---------------------------------------------------------------- files.py: bad input


Q = {"question": "Q?", "answer": "#### 1"}


def _err(path, **kw) -> DatasetError:
    with pytest.raises(DatasetError) as ei:
        files.load_task_file(path, **kw)
    e = ei.value
    assert path.name in str(e)
    return e


def _assert_err(path, line, *words, **kw):
    e = _err(path, **kw)
    msg = str(e)
    assert e.line == line and (line is None or f"line {line}:" in msg), msg
    for w in words:
        assert w.lower() in msg.lower(), msg
    return msg


def test_missing_and_empty_files(tmp_path):
    _assert_err(tmp_path / "absent.jsonl", None, "not found")
    for name, content in [("empty.jsonl", ""), ("blank.jsonl", "\n \n\n"), ("empty.csv", "")]:
        (tmp_path / name).write_text(content)
        _assert_err(tmp_path / name, None, "empty")
    (tmp_path / "header_only.csv").write_text("question,answer\n")
    _assert_err(tmp_path / "header_only.csv", None, "no data rows")
    (tmp_path / "data.txt").write_text("question,answer\n")
    _assert_err(tmp_path / "data.txt", None, "unsupported")
    (tmp_path / "dir.jsonl").mkdir()
    _assert_err(tmp_path / "dir.jsonl", None, "cannot read")


def test_non_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    latin1 = '{"question": "caf\u00e9?", "answer": "1"}\n'.encode("latin-1")
    path.write_bytes(json.dumps(Q).encode() + b"\n\n" + latin1)
    _assert_err(path, 3, "utf-8", "0xe9")
    csv_path = tmp_path / "latin1.csv"
    csv_path.write_bytes("question,answer\ncaf\u00e9,1\n".encode("cp1252"))
    _assert_err(csv_path, 2, "utf-8")


@pytest.mark.parametrize("line2, words", [
    ('{"question": "Q?", "answer": ', ["invalid json"]),
    ("{'question': 'Q?', 'answer': '1'}", ["invalid json"]),
    ('["Q?", "1"]', ["object", "array"]),
    ('"just a string"', ["object", "string"]),
    ('{"question": "", "answer": "1"}', ["empty question"]),
    ('{"question": "   ", "answer": "1"}', ["empty question"]),
    ('{"question": null, "answer": "1"}', ["empty question"]),
    ('{"question": "Q?", "answer": "#### none"}', ["no number"]),
    ('{"question": "Q?", "answer": "seven"}', ["no number"]),
    ('{"question": "Q?", "answer": ""}', ["empty answer"]),
    ('{"question": "Q?", "answer": "3 or 4"}', ["ambiguous"]),
    ('{"question": {"text": "Q?"}, "answer": "1"}', ["must be text", "object"]),
    ('{"question": "Q?"}', ["missing column 'answer'", "'question'"]),
])
def test_bad_jsonl_rows(tmp_path, line2, words):
    path = _jsonl(tmp_path / "bad.jsonl", [Q, line2, Q])
    _assert_err(path, 2, *words)


def test_no_question_answer_columns_lists_columns_and_how_to_map(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("prompt,target\nOne?,1\n")
    _assert_err(path, 2, "missing column 'question'", "'prompt', 'target'", "question_col=", "answer_col=")
    path = _jsonl(tmp_path / "other.jsonl", [{"prompt": "One?", "target": "1"}])
    _assert_err(path, 1, "missing column 'question'", "'prompt'", "question_col=")


def test_missing_mapped_column_on_a_later_row(tmp_path):
    path = _jsonl(tmp_path / "ragged.jsonl", [{"p": "a", "t": 1}, {"p": "b", "t": 2}, {"p": "c", "target": 3}])
    _assert_err(path, 3, "missing column 't'", "'target'", question_col="p", answer_col="t")
    path = _jsonl(tmp_path / "noid.jsonl", [{"question": "a", "answer": 1}])
    _assert_err(path, 1, "missing column 'uid'", id_col="uid")


def test_duplicate_ids_name_id_and_both_lines(tmp_path):
    path = _jsonl(tmp_path / "dupes.jsonl", [{**Q, "id": "x1"}, {**Q, "id": "x2"}, "", {**Q, "id": "x1"}])
    _assert_err(path, 4, "duplicate id 'x1'", "lines 1 and 4", id_col="id")
    path = _jsonl(tmp_path / "dupes_num.jsonl", [{**Q, "id": 5}, {**Q, "id": "5"}])
    _assert_err(path, 2, "duplicate id '5'", id_col="id")
    path = _jsonl(tmp_path / "empty_id.jsonl", [{**Q, "id": ""}])
    _assert_err(path, 1, "empty id", id_col="id")


@pytest.mark.parametrize("level, words", [
    ('"hard"', ["difficulty 'hard'", "not an integer"]), ("2.5", ["not an integer"]),
    ("true", ["not an integer"]), ('"inf"', ["not an integer"]), ("[1]", ["must be text"]),
])
def test_non_integer_difficulty(tmp_path, level, words):
    path = _jsonl(tmp_path / "diff.jsonl", [{**Q, "d": 1}, f'{{"question": "Q?", "answer": "1", "d": {level}}}'])
    _assert_err(path, 2, *words, difficulty_col="d")


@pytest.mark.parametrize("body, line, words", [
    ("question,answer\nOne?,1\nTwo?,2,extra\n", 3, ["3 fields", "header has 2"]),
    ("question,answer\nOne?,1\nTwo?\n", 3, ["1 fields"]),
    ('question,answer\nOne?,1\n"Two?,2\nThree?,3\n', 3, ["malformed csv", "quot"]),
    ("question,answer\nOne?,1\n,2\n", 3, ["empty question"]),
    ("question,answer\nOne?,1\nTwo?,n/a\n", 3, ["no number"]),
    ("question,answer,question\nOne?,1,x\n", 1, ["duplicate column", "'question'"]),
    ('question,answer\n"Multi\nline",1\nTwo?,\n', 4, ["empty answer"]),
])
def test_bad_csv_rows(tmp_path, body, line, words):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    _assert_err(path, line, *words)


def test_bad_csv_difficulty_and_ids(tmp_path):
    path = tmp_path / "levels.csv"
    path.write_text("id,question,answer,level\na,One?,1,1\nb,Two?,2,\nc,Three?,3,x\n")
    _assert_err(path, 4, "difficulty 'x'", "not an integer", id_col="id", difficulty_col="level")
    path.write_text("id,question,answer,level\na,One?,1,1\nb,Two?,2,\na,Three?,3,3\n")
    _assert_err(path, 4, "duplicate id 'a'", "lines 2 and 4", id_col="id", difficulty_col="level")


def test_bad_json_array(tmp_path):
    path = tmp_path / "arr.json"
    path.write_text('[\n  {"question": "a?", "answer": 1},\n  {"question": "b?" "answer": 2}\n]')
    _assert_err(path, 3, "invalid json")
    path.write_text('[\n  {"question": "a?", "answer": 1},\n\n  7\n]')
    _assert_err(path, 4, "object", "number")
    path.write_text('{\n  "question": "a?", "answer": 1\n}')
    _assert_err(path, 1, "invalid json", "one json array")


def test_file_task_name_tracks_content_and_mapping(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    a = _jsonl(tmp_path / "a" / "test.jsonl", [{"question": "One?", "answer": "1"}])
    b = _jsonl(tmp_path / "b" / "test.jsonl", [{"question": "Two?", "answer": "2"}])
    ta, tb = files.load_task_file(a), files.load_task_file(b)
    assert ta.name != tb.name  # same stem, different content: separate cache keys
    assert ta.name == files.load_task_file(a).name  # stable for the same file
    assert ta.problems[0].id == "test-1"
