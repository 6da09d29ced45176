"""What a CPU decode keeps in memory for the next decode of the same prompts (engine/models/prefix.py): a top-up
in the same process reads the first run's logits, keys and values instead of computing them again, and gives
the same samples as one fresh run."""
from __future__ import annotations

import pytest

from engine.models import SamplingParams, load_model
from engine.tasks import get_task


def _counting(monkeypatch):
    """Rows the decode steps compute (not the prompts' prefill)."""
    from engine.models import decode
    computed, real = [], decode._Step.__call__

    def counting(self, ids, pos, state, **kw):
        if isinstance(state, decode._State):
            computed.append(ids.shape[0])
        return real(self, ids, pos, state, **kw)
    monkeypatch.setattr(decode._Step, "__call__", counting)
    return computed


def _samples(out):
    return [[(s.tokens, s.text, s.finish) for s in per] for per in out]


@pytest.mark.parametrize("temperature", [0.8, 0.0])
def test_a_top_up_reads_what_the_first_run_kept_and_gives_a_fresh_runs_samples(monkeypatch, temperature):
    from engine.models import prefix
    from engine.models.sampling import sample_many
    task = get_task("arith")
    lm = load_model("arith-s")
    # "+1" ends some samples on a kept trie, as a stop string, and others off it
    sp = SamplingParams(n=24, temperature=temperature, max_new_tokens=64, stop=("+1",) + tuple(task.stop))
    probs = task.select(8, [1, 3, 5])

    def reqs(lo, hi):
        return [(task.prompt(p), f"arith/{p.id}", list(range(lo, hi))) for p in probs]
    computed = _counting(monkeypatch)
    prefix.forget(lm.model)
    fresh = sample_many(lm, reqs(0, 24), sp)
    prefix.forget(lm.model)
    sample_many(lm, reqs(24, 48), sp)          # other indices of the same prompts: what a top-up finds kept
    held = prefix.held(lm.model)
    assert held > 0
    computed.clear()
    top = sample_many(lm, reqs(0, 24), sp)
    kept_rows = sum(computed)
    # the top-up kept the branches it computed too: drawing its samples again computes nothing
    assert prefix.held(lm.model) == held + kept_rows
    computed.clear()
    assert _samples(sample_many(lm, reqs(0, 24), sp)) == _samples(fresh) and sum(computed) == 0
    prefix.forget(lm.model)
    computed.clear()
    alone = sample_many(lm, reqs(0, 24), sp)    # as in a new process: nothing kept
    assert _samples(top) == _samples(fresh) == _samples(alone)
    if temperature:
        assert {s.finish for per in top for s in per} >= {"stop", "eos"}
        assert kept_rows < 0.8 * sum(computed), (kept_rows, sum(computed))  # the first run's histories are read, not computed again
    else:  # greedy: every sample of a prompt is the one the first run drew, all read from its trie
        assert kept_rows == 0


def test_a_pool_over_its_budget_stops_keeping_and_the_samples_stay_the_same(monkeypatch):
    from engine.models import prefix
    from engine.models.sampling import sample_many
    task = get_task("arith")
    lm = load_model("arith-s")
    sp = SamplingParams(n=16, temperature=0.8, max_new_tokens=64, stop=tuple(task.stop))
    reqs = [(task.prompt(p), f"arith/{p.id}", list(range(16))) for p in task.select(6, [2, 4])]
    prefix.forget(lm.model)
    ref = sample_many(lm, reqs, sp)
    monkeypatch.setenv("TTC_PREFIX_MB", "0.2")  # a few hundred nodes: the budget runs out within the run
    prefix.forget(lm.model)
    first = sample_many(lm, [(a, b, c[:4]) for a, b, c in reqs], sp)
    held = prefix.held(lm.model)
    assert 0 < held and held * 900 <= 0.2 * 2 ** 20
    assert _samples(sample_many(lm, reqs, sp)) == _samples(ref)
    assert _samples(first) == [per[:4] for per in _samples(ref)]
    monkeypatch.setenv("TTC_PREFIX_MB", "0")   # off: nothing kept
    prefix.forget(lm.model)
    assert _samples(sample_many(lm, reqs, sp)) == _samples(ref) and prefix.held(lm.model) == 0


def test_a_full_pool_is_started_again_for_other_prompts_and_read_for_its_own():
    from engine.models import prefix
    pool = prefix.Pool(cap=1)
    pool.roots = {(1, 2): 0}
    pool.off = True

    class Model:
        pass
    m = Model()
    prefix.give_back(m, pool)
    assert prefix.take(m, [(1, 2), (3, 4)]) is pool       # half of the prompts asked are kept: read it
    prefix.give_back(m, pool)
    fresh = prefix.take(m, [(3, 4), (5, 6)])
    assert fresh.n == 0 and not fresh.off and not fresh.roots


def test_the_app_tops_up_through_the_cache_with_the_same_samples_as_a_fresh_run(tmp_path):
    """The runner's top-up (16 cached, 40 asked) in one process, as the app does it: the cache then holds the
    samples a fresh run of 40 writes."""
    from engine.cache import SampleCache
    from engine.experiment import Experiment
    from engine.models import prefix
    from engine.runner import run
    exp = Experiment.build(["arith-xl"], "arith", SamplingParams(n=40, temperature=0.8), problems=6)
    task, probs = exp.load_task(), exp.selected()
    lm = load_model("arith-xl")
    prefix.forget(lm.model)
    run(exp.models[0], task, probs, exp.params, SampleCache(tmp_path / "fresh.duckdb"))
    prefix.forget(lm.model)
    cache = SampleCache(tmp_path / "topped.duckdb")
    run(exp.models[0], task, probs, exp.params.with_n(16), cache)
    assert prefix.held(lm.model) > 0
    run(exp.models[0], task, probs, exp.params, cache)

    def texts(path):
        df = SampleCache(path).samples()
        return sorted(zip(df.problem_id, df.idx, df.text))
    assert texts(tmp_path / "topped.duckdb") == texts(tmp_path / "fresh.duckdb")
    assert len(texts(tmp_path / "fresh.duckdb")) == 6 * 40


def test_the_prompt_attention_cut_in_two_runs_gives_the_same_samples(monkeypatch):
    """decode._State._split: prompts whose samples branch a lot and prompts whose samples agree attend in two
    grids, each as tall as its own tallest prompt, instead of one padded to the tallest of all (2.4-2.8x the
    queries there were). The same tokens, log-probabilities to float rounding (the attention kernel's blocks
    depend on the grid's height), with fewer queries."""
    from engine.models import decode, prefix
    from engine.models.sampling import sample_many
    task = get_task("arith")
    lm = load_model("arith-xl")
    sp = SamplingParams(n=32, temperature=0.8, max_new_tokens=64, stop=tuple(task.stop))
    reqs = [(task.prompt(p), f"arith/{p.id}", list(range(32))) for p in task.select(12, [1, 2, 3, 4, 5])]
    grids, real = [], decode._Layer.attend

    def attend(self, q, scale):
        st = self.state
        if self is st.layers[0] and st.problems:
            a = st.split
            grids.append((q.shape[0], st.problems * st.nmax if a is None else a[0] * a[1] + (st.problems - a[0]) * a[2]))
        return real(self, q, scale)
    monkeypatch.setattr(decode._Layer, "attend", attend)
    out = {}
    for split in (False, True):
        monkeypatch.setattr(decode, "SPLIT", split)
        prefix.forget(lm.model)
        grids.clear()
        res = sample_many(lm, reqs, sp)
        out[split] = ([[(s.tokens, s.finish) for s in per] for per in res],
                      sum(g for _, g in grids), sum(r for r, _ in grids),
                      [lp for per in res for s in per for lp in s.token_logprobs])
    assert out[True][0] == out[False][0]
    assert max(abs(a - b) for a, b in zip(out[True][3], out[False][3])) < 1e-5
    assert out[True][2] == out[False][2]  # the same rows
    assert out[True][1] < 0.8 * out[False][1]


@pytest.mark.parametrize("value", ["lots", "-5", "nan", "inf"])
def test_a_bad_pool_budget_is_one_clear_message(monkeypatch, value):
    from engine.errors import ConfigError
    from engine.models import prefix
    monkeypatch.setenv("TTC_PREFIX_MB", value)
    with pytest.raises(ConfigError, match="TTC_PREFIX_MB"):
        prefix.budget()


def test_decodes_of_one_model_in_two_threads_each_get_their_own_samples():
    """Two app sessions may sample the same loaded model at once: each decode takes the model's pool out while
    it runs (the other gets an empty one), so neither reads nodes the other is writing."""
    import threading

    from engine.models import prefix
    from engine.models.sampling import sample_many
    task = get_task("arith")
    lm = load_model("arith-s")
    sp = SamplingParams(n=16, temperature=0.8, max_new_tokens=64, stop=tuple(task.stop))
    probs = task.select(8, [1, 2, 3, 4, 5])
    halves = [[(task.prompt(p), f"arith/{p.id}", list(range(16))) for p in part] for part in (probs[:4], probs[4:])]
    prefix.forget(lm.model)
    alone = [_samples(sample_many(lm, reqs, sp)) for reqs in halves]
    prefix.forget(lm.model)
    got, errors = [None, None], []

    def work(i):
        try:
            for _ in range(3):  # the second and third rounds read what some decode kept
                got[i] = _samples(sample_many(lm, halves[i], sp))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and got == alone
