"""The built-in gsm task, the official GSM8K file format, and prompt formats (chat template vs plain)."""
import json

import pytest

from engine.cache import SampleCache
from engine.errors import ConfigError
from engine.models import SamplingParams
from engine.models.loader import fingerprint
from engine.models.ref import resolve_model
from engine.runner import run
from engine.shipped import manifest
from engine.tasks import get_task, gsm
from engine.tasks.prompts import render

# The first three problems of the official GSM8K test file (openai/grade-school-math, test.jsonl), byte for byte
# as that file writes them: ASCII-escaped JSON, calculator annotations, thousands separators, "#### N".
GSM8K_LINES = [
    '{"question": "Janet\\u2019s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes '
    'muffins for her friends every day with four. She sells the remainder at the farmers\' market daily for $2 per '
    'fresh duck egg. How much in dollars does she make every day at the farmers\' market?", "answer": "Janet sells '
    '16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\\nShe makes 9 * 2 = $<<9*2=18>>18 every day at the farmer\\u2019s '
    'market.\\n#### 18"}',
    '{"question": "A robe takes 2 bolts of blue fiber and half that much white fiber.  How many bolts in total '
    'does it take?", "answer": "It takes 2/2=<<2/2=1>>1 bolt of white fiber\\nSo the total amount of fabric is '
    '2+1=<<2+1=3>>3 bolts of fabric\\n#### 3"}',
    '{"question": "Josh decides to try flipping a house.  He buys a house for $80,000 and then puts in $50,000 in '
    'repairs.  This increased the value of the house by 150%.  How much profit did he make?", "answer": "The cost '
    'of the house and repairs came out to 80,000+50,000=$<<80000+50000=130000>>130,000\\nHe increased the value of '
    'the house by 80,000*1.5=<<80000*1.5=120000>>120,000\\nSo the new value of the house is '
    '120,000+80,000=$<<120000+80000=200000>>200,000\\nSo he made a profit of '
    '200,000-130,000=$<<200000-130000=70000>>70,000\\n#### 70000"}',
]


def test_gsm_is_300_problems_in_five_levels_and_its_worked_answers_grade_correct():
    task = get_task("gsm")
    assert len(task.problems) == 300 and len({p.id for p in task.problems}) == 300
    assert {lv: sum(p.difficulty == lv for p in task.problems) for lv in range(1, 6)} == dict.fromkeys(range(1, 6), 60)
    for p in task.problems:
        steps = len([s for s in p.solution.rsplit("####", 1)[0].split("\n") if s.strip()])
        assert gsm.level(steps) == p.difficulty
        assert task.grade(p, p.solution) == (p.answer, True)
        assert task.check(str(int(p.answer.split(".")[0]) + 1), p.answer) is False  # exact, not within a tolerance
    shots = {s.question for s in gsm._load(gsm.SHOTS_FILE)}
    assert len(shots) == gsm.N_SHOTS and not shots & {p.question for p in task.problems}
    assert [p.id for p in task.select(10)] == [f"gsm-L{lv}-{i:03d}" for i in range(2) for lv in range(1, 6)]


def test_gsm_checks_answers_through_the_shared_checker():
    task, p = get_task("gsm"), get_task("gsm").problems[0]
    assert task.grade(p, f"... so the answer is \\boxed{{{p.answer}}}") == (p.answer, True)
    assert task.grade(p, f"#### {p.answer}.0") == (p.answer, True)
    assert task.grade(p, "I do not know")[1] is False


def test_official_gsm8k_test_file_format_loads(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text("\n".join(GSM8K_LINES) + "\n")
    task = get_task(str(path))
    assert [p.answer for p in task.problems] == ["18", "3", "70000"]
    assert task.problems[0].question.startswith("Janet\u2019s ducks")
    assert task.problems[2].solution.endswith("=$<<200000-130000=70000>>70,000")
    assert task.grade(task.problems[2], "He made $70,000.\n#### 70,000") == ("70000", True)


def test_plain_prompt_is_few_shot_for_gsm_and_unchanged_for_the_ladder():
    gsm_task, arith_task = get_task("gsm"), get_task("arith")
    p = gsm_task.problems[0]
    text = render(gsm_task, p)  # no tokenizer: a base model or a server
    assert text.count("Question:") == gsm.N_SHOTS + 1 and text.endswith(f"Question: {p.question}\nAnswer:")
    assert text.count("####") == gsm.N_SHOTS
    a = arith_task.problems[0]
    assert render(arith_task, a, "auto") == render(arith_task, a, "plain") == f"Q: {a.question}\nA:\n"
    with pytest.raises(ConfigError, match="chat template"):
        render(arith_task, a, "chat")


def test_prompt_format_is_in_the_cache_key_and_the_shipped_key_is_unchanged():
    man = manifest()
    base = SamplingParams(n=64, temperature=0.8, stop=get_task("arith").stop)
    if man is not None:
        assert base.key() == man["config_key"]
    keys = {SamplingParams(prompt_format=f).key() for f in ("auto", "plain", "chat")}
    assert len(keys) == 3
    with pytest.raises(ConfigError, match="prompt format"):
        SamplingParams(prompt_format="fancy")


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory):
    """A copy of arith-s whose tokenizer has a chat template: an 'instruct' model in miniature."""
    import shutil

    from engine.models.loader import MODELS_DIR
    d = tmp_path_factory.mktemp("m") / "arith-s-chat"
    shutil.copytree(MODELS_DIR / "arith-s", d)
    (d / "chat_template.jinja").write_text(
        "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant> {% endif %}")
    return d


def test_chat_models_get_their_template_and_it_is_part_of_the_fingerprint(chat_model, tmp_path):
    from engine.models.loader import MODELS_DIR
    plain_fp = fingerprint(str(MODELS_DIR / "arith-s"))
    assert fingerprint(str(chat_model)) != plain_fp  # same weights: the template alone changes the key
    task, cache = get_task("arith"), SampleCache(tmp_path / "c.duckdb")
    probs = task.problems[:2]
    ref = resolve_model(str(chat_model))
    params = SamplingParams(n=2, temperature=0.8, max_new_tokens=8)
    run(ref, task, probs, params, cache)
    run(ref, task, probs, SamplingParams(**{**params.__dict__, "prompt_format": "plain"}), cache)
    from engine.backends import open_backend
    tok = open_backend(ref).lm.tokenizer
    assert render(task, probs[0], "auto", tok).startswith(f"<user> {probs[0].question}\n")
    assert render(task, probs[0], "auto", tok).endswith("<assistant> ")
    got = cache.samples(model_fp=ref.fingerprint)
    assert len(got) == 8 and got.config_key.nunique() == 2  # chat and plain samples never share a key
    before = ref.fingerprint
    (chat_model / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")
    assert resolve_model(str(chat_model)).fingerprint != before
