import math
from pathlib import Path

import pytest
import torch

from engine.errors import ConfigError, ModelError
from engine.models import SamplingParams, load_model, sample
from engine.tasks import get_task

PROMPT = "Q: Ann has 12 pens. She buys 3 more. How many pens now?\nA:\n"


@pytest.mark.parametrize("kw", [dict(n=0), dict(n=10**6), dict(temperature=-1), dict(temperature=float("nan")),
                                dict(top_p=0), dict(top_p=1.5), dict(max_new_tokens=0), dict(stop=("",)),
                                dict(seed=-3), dict(n=2.5)])
def test_params_validation(kw):
    with pytest.raises(ConfigError):
        SamplingParams(**kw)


def test_params_key_ignores_n_only():
    a = SamplingParams(n=4, temperature=0.8)
    assert a.key() == SamplingParams(n=64, temperature=0.8).key()
    assert a.key() != SamplingParams(n=4, temperature=0.7).key()
    assert a.key() != SamplingParams(n=4, temperature=0.8, seed=1).key()
    assert a.key() != SamplingParams(n=4, temperature=0.8, stop=("\n",)).key()
    assert hash(a) == hash(SamplingParams(n=4, temperature=0.8))


def test_sample_i_independent_of_batch(tiny_model):
    lm = load_model(tiny_model)
    sp = SamplingParams(n=8, temperature=1.0, max_new_tokens=24)
    full = {s.index: s for s in sample(lm, PROMPT, sp, list(range(8)), prompt_key="p1", max_batch=8)}
    part = sample(lm, PROMPT, sp, [6, 1, 3], prompt_key="p1", max_batch=2)
    for s in part:
        assert s.text == full[s.index].text
        assert s.completion_tokens == full[s.index].completion_tokens
        assert math.isclose(s.logprob, full[s.index].logprob, abs_tol=1e-3)
    assert len({s.text for s in full.values()}) > 4  # sampling, not a constant
    other = sample(lm, PROMPT, sp, list(range(8)), prompt_key="p2")
    assert [s.text for s in other] != [full[i].text for i in range(8)]  # different problem, different stream


def test_seed_changes_samples(tiny_model):
    lm = load_model(tiny_model)
    a = sample(lm, PROMPT, SamplingParams(temperature=1.0, max_new_tokens=16, seed=0), [0, 1, 2], "p")
    b = sample(lm, PROMPT, SamplingParams(temperature=1.0, max_new_tokens=16, seed=1), [0, 1, 2], "p")
    assert [s.text for s in a] != [s.text for s in b]


def test_greedy_is_deterministic_and_matches_argmax(tiny_model):
    lm = load_model(tiny_model)
    sp = SamplingParams(temperature=0, max_new_tokens=8)
    out = sample(lm, PROMPT, sp, [0, 1, 2], "p")
    assert len({s.text for s in out}) == 1
    # recompute greedy decoding by hand with full forward passes
    ids = lm.tokenizer(PROMPT, return_tensors="pt", add_special_tokens=False)["input_ids"]
    lp = 0.0
    with torch.no_grad():
        for _ in range(out[0].completion_tokens):
            logits = lm.model(input_ids=ids).logits[0, -1]
            nxt = int(logits.argmax())
            lp += float(torch.log_softmax(logits, -1)[nxt])
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
            if nxt == lm.tokenizer.eos_token_id:
                break
    expect = lm.tokenizer.decode(ids[0, -out[0].completion_tokens:], skip_special_tokens=True)
    assert out[0].text == expect
    assert math.isclose(out[0].logprob, lp, abs_tol=1e-3)


def test_stop_strings_and_token_limit(tiny_model):
    lm = load_model(tiny_model)
    stops = tuple("aeiost")
    sp = SamplingParams(temperature=1.0, max_new_tokens=40, stop=stops)
    out = sample(lm, PROMPT, sp, list(range(16)), "p")
    assert any(s.finish == "stop" for s in out)
    for s in out:
        assert not any(x in s.text for x in stops)
        assert 1 <= s.completion_tokens <= 40
        assert s.prompt_tokens == len(PROMPT)
        assert s.logprob <= 0 and s.prefill_s >= 0 and s.decode_s > 0
    unstopped = sample(lm, PROMPT, SamplingParams(temperature=1.0, max_new_tokens=5), [0, 1], "p")
    assert all(s.completion_tokens <= 5 for s in unstopped)


def test_model_loaded_once_and_params_counted(tiny_model):
    a, b = load_model(tiny_model), load_model(tiny_model)
    assert a is b
    assert a.spec.params == sum(p.numel() for p in a.model.parameters())
    assert a.spec.params > 0 and len(a.spec.fingerprint) == 16
    assert a.spec.device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_model_errors(tmp_path, tiny_model, monkeypatch):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        load_model(str(tmp_path / "empty"))
    nowt = tmp_path / "noweights"
    nowt.mkdir()
    (nowt / "config.json").write_text((Path(tiny_model) / "config.json").read_text())
    with pytest.raises(ModelError, match="no weight files"):
        load_model(str(nowt))
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in Path(tiny_model).iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="broken"):
        load_model(str(broken))
    notok = tmp_path / "notok"  # weights and config, no tokenizer: transformers' message was cut mid-sentence
    notok.mkdir()
    for f in Path(tiny_model).iterdir():
        if f.name.startswith(("config", "model")):
            (notok / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ModelError, match="has no tokenizer files"):
        load_model(str(notok))
    # a mistyped relative path whose first part is a directory here is a missing directory, not a hub id
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        load_model("notok/typo")


def test_unknown_hub_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="no-such-org/no-such-model"):
        load_model("no-such-org/no-such-model")


def test_task_grading_roundtrip():
    t = get_task("arith")
    p = t.problems[0]
    assert t.grade(p, p.solution) == (p.answer, True)
    assert t.grade(p, "1+1=2\n#### 99999")[1] is False


def test_a_sampled_pad_token_does_not_cut_the_completion():
    from engine.models.sampling import completion_length
    eos, pad = 3, 0
    assert completion_length([5, 0, 7, 8], eos, pad) == (4, "length")      # pad sampled mid-way: kept
    assert completion_length([5, 6, 0, 0], eos, pad) == (2, "length")      # trailing pads: a row stopped early
    assert completion_length([5, 0, 7, 3, 0], eos, pad) == (4, "eos")      # up to and including EOS
    assert completion_length([5, 6, 3, 3], eos, eos) == (3, "eos")
    assert completion_length([0, 0], eos, pad) == (0, "length")


# --- batched decoding across problems (engine.models.decode) -------------------------------------------------

PROMPTS = [PROMPT, "Q: Bo has 7 cards. He gives away 2. How many cards now?\nA:\n",
           "Q: Cy has 40 apples. She eats 1. She buys 13 more. She gives away 9. How many apples now?\nA:\n", ""]


def _by_generate(lm, monkeypatch, prompt, sp, idx, key):
    """The same samples through ``model.generate`` (the path for models the batched decoder does not take)."""
    from engine.models import decode
    with monkeypatch.context() as m:
        m.setattr(decode, "supports", lambda model: False)
        return sample(lm, prompt, sp, idx, key, max_batch=len(idx))


@pytest.mark.parametrize("kw", [dict(temperature=1.0), dict(temperature=0.7, top_p=0.8), dict(temperature=0),
                                dict(temperature=1.0, stop=("\n", "s"))])
@pytest.mark.parametrize("gqa", [False, True])
def test_batched_decode_matches_generate(tmp_path, monkeypatch, kw, gqa):
    """Many prompts of different lengths (one of a single token) decoded as one batch, rows leaving as they
    finish: the same tokens as ``model.generate`` one prompt at a time, log-probabilities to rounding."""
    from engine.models.sampling import sample_many
    from tests.conftest import make_tiny_model
    path = make_tiny_model(tmp_path / ("gqa" if gqa else "mha"), seed=3)
    if gqa:  # 4 query heads sharing 2 key/value heads
        import json
        cfg = json.loads((path / "config.json").read_text())
        cfg.update(num_attention_heads=4, num_key_value_heads=2, head_dim=8)
        (path / "config.json").write_text(json.dumps(cfg))
        from transformers import LlamaConfig, LlamaForCausalLM
        torch.manual_seed(3)
        LlamaForCausalLM(LlamaConfig(**{k: v for k, v in cfg.items() if k != "architectures"})).save_pretrained(path)
    lm = load_model(str(path))
    sp = SamplingParams(max_new_tokens=20, **kw)
    reqs = [(p, f"k{i}", list(range(6))) for i, p in enumerate(PROMPTS)]
    got = sample_many(lm, reqs, sp)
    assert {s.batch_size for out in got for s in out} == {24}
    for (prompt, key, idx), out in zip(reqs, got):
        ref = _by_generate(lm, monkeypatch, prompt, sp, idx, key)
        for a, b in zip(out, ref):
            # generate pads a row that stopped early, so its path drops trailing sampled pad tokens too
            # (completion_length); the batched decoder knows where each row stopped and keeps them
            n = len(b.tokens)
            assert a.tokens[:n] == b.tokens and set(a.tokens[n:]) <= {lm.tokenizer.pad_token_id}
            assert (a.text, a.finish) == (b.text, b.finish)
            assert a.token_logprobs[:n] == pytest.approx(b.token_logprobs, abs=1e-4)
    if "stop" in kw:
        assert {s.finish for out in got for s in out} >= {"stop"}


def test_batched_rows_do_not_depend_on_their_batch_mates(tiny_model):
    from engine.models.sampling import sample_many
    lm = load_model(tiny_model)
    sp = SamplingParams(temperature=1.0, max_new_tokens=24)
    together = sample_many(lm, [(PROMPTS[0], "a", [0, 1, 2, 3]), (PROMPTS[2], "c", [5, 6])], sp)
    alone_a = sample_many(lm, [(PROMPTS[0], "a", [3, 1])], sp)[0]
    alone_c = sample_many(lm, [(PROMPTS[1], "b", [9]), (PROMPTS[2], "c", [6])], sp)[1]
    assert [s.tokens for s in alone_a] == [together[0][3].tokens, together[0][1].tokens]
    assert alone_c[0].tokens == together[1][1].tokens


def test_a_model_the_batched_decoder_does_not_take_samples_through_generate(tmp_path):
    """A GPT-2 (learned positions, no cache.update registry path): sample_many falls back to generate."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from engine.models import decode
    from engine.models.sampling import sample_many
    from engine.train.tokenizer import build_tokenizer
    tok = build_tokenizer()
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=256,
                               bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    lm = load_model(str(tmp_path))
    assert not decode.supports(lm.model)
    sp = SamplingParams(temperature=1.0, max_new_tokens=12)
    many = sample_many(lm, [(PROMPTS[0], "a", [0, 1]), (PROMPTS[1], "b", [2])], sp)
    assert [s.tokens for s in many[0]] == [s.tokens for s in sample(lm, PROMPTS[0], sp, [0, 1], "a")]
    assert all(s.completion_tokens > 0 for out in many for s in out)


def test_thread_count_follows_free_cores_and_the_user(monkeypatch):
    from engine.models import threads
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("TTC_THREADS", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 8)
    assert threads.pick_threads(load=0.0) == 8
    assert threads.pick_threads(load=6.2) == 2          # a busy machine: only the free cores
    assert threads.pick_threads(load=20.0) == 1         # never below one
    assert threads.pick_threads(workers=4, load=0.0) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.pick_threads(load=0.0) == 3          # the user's choice stands
    monkeypatch.setenv("TTC_THREADS", "5")
    assert threads.pick_threads(load=0.0) == 5


def test_batched_decode_in_bfloat16_takes_the_unfused_path_and_agrees_with_generate(monkeypatch):
    """The path a GPU takes (bfloat16: plain matmul attention, no fused CPU kernel), run here on CPU with the
    shipped arith-s: rounding in bfloat16 flips a few near-ties, so most texts, not all, match generate's."""
    from engine.models import decode
    from engine.models.sampling import sample_many
    task = get_task("arith")
    lm = load_model("arith-s", dtype="bfloat16")
    sp = SamplingParams(temperature=0.8, max_new_tokens=64, stop=task.stop)
    reqs = [(task.prompt(p), f"arith/{p.id}", list(range(8))) for p in task.select(6, [1, 2, 3, 4, 5])]
    got = [s for out in sample_many(lm, reqs, sp) for s in out]
    with monkeypatch.context() as m:
        m.setattr(decode, "supports", lambda model: False)
        ref = [s for prompt, key, idx in reqs for s in sample(lm, prompt, sp, idx, key, max_batch=8)]
    same = sum(a.text == b.text for a, b in zip(got, ref))
    assert same >= 0.85 * len(ref), f"{same} of {len(ref)}"
    assert all(math.isfinite(s.logprob) and s.completion_tokens > 0 for s in got)


def _random_family_model(tmp_path, family):
    """A random-init GQA model of ``family`` with the arithmetic tokenizer, saved to and loaded from tmp_path. Its MLP
    width is not a multiple of 32: elementwise kernels then take their scalar tail on strided rows (other rounding),
    which the bit-for-bit tests must see."""
    import transformers

    from engine.train.tokenizer import build_tokenizer
    tok = build_tokenizer()
    name = {"llama": "Llama", "qwen2": "Qwen2", "qwen3": "Qwen3"}[family]
    torch.manual_seed(0)
    cfg = getattr(transformers, f"{name}Config")(
        vocab_size=len(tok), hidden_size=32, intermediate_size=72, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=256, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    getattr(transformers, f"{name}ForCausalLM")(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    return load_model(str(tmp_path))


@pytest.mark.parametrize("family", ["qwen2", "qwen3"])
def test_batched_decode_takes_qwen_models_too(tmp_path, monkeypatch, family):
    """The other families ``decode.supports`` names (random-init, GQA; qwen3 normalises q and k per head)."""
    from engine.models import decode
    from engine.models.sampling import sample_many
    lm = _random_family_model(tmp_path, family)
    assert decode.supports(lm.model)
    sp = SamplingParams(temperature=1.0, max_new_tokens=20)
    got = sample_many(lm, [(p, f"k{i}", list(range(4))) for i, p in enumerate(PROMPTS[:2])], sp)
    for i, p in enumerate(PROMPTS[:2]):
        ref = _by_generate(lm, monkeypatch, p, sp, list(range(4)), f"k{i}")
        assert [a.tokens[:len(b.tokens)] for a, b in zip(got[i], ref)] == [b.tokens for b in ref]


def test_the_gpu_path_without_per_step_host_syncs_gives_the_same_samples(tiny_model, monkeypatch):
    """Off a CPU the decoder reads how many rows finished only every SYNC_EVERY steps (each read waits for the
    device); taken here on CPU, rows that finished decode on until then and are cut where they ended."""
    from engine.models import decode
    from engine.models.sampling import sample_many
    lm = load_model(tiny_model)
    sp = SamplingParams(temperature=1.0, max_new_tokens=30, stop=("\n", "s"))
    reqs = [(p, f"k{i}", list(range(6))) for i, p in enumerate(PROMPTS)]
    eager = sample_many(lm, reqs, sp)
    monkeypatch.setattr(decode, "LAZY", True)
    monkeypatch.setattr(decode, "SYNC_EVERY", 3)
    lazy = sample_many(lm, reqs, sp)
    assert [[(s.tokens, s.text, s.finish) for s in out] for out in lazy] == \
           [[(s.tokens, s.text, s.finish) for s in out] for out in eager]
    assert "stop" in {s.finish for out in lazy for s in out}


def test_the_gpu_loops_fixed_shape_step_gives_the_same_samples(tiny_model, monkeypatch):
    """The step a GPU captures as a CUDA graph (decode._decode_static: continuation positions read up to the end of
    the step's span, those past the step masked; step number, outputs and finished rows kept on the device), taken
    here eagerly on a CPU: the same samples as the GPU's eager loop, stop strings, EOS and dropped rows included."""
    from engine.models import decode
    from engine.models.sampling import sample_many
    lm = load_model(tiny_model)
    sp = SamplingParams(temperature=1.0, max_new_tokens=30, stop=("\n", "s"))
    reqs = [(p, f"k{i}", list(range(6))) for i, p in enumerate(PROMPTS) if len(p) > 4]  # prompts longer than a stop
    monkeypatch.setattr(decode, "LAZY", True)
    monkeypatch.setattr(decode, "SYNC_EVERY", 2)
    eager = sample_many(lm, reqs, sp)
    dropped, real = [], decode._State.keep
    monkeypatch.setattr(decode._State, "keep", lambda self, idx: dropped.append(len(idx)) or real(self, idx))
    monkeypatch.setattr(decode, "STATIC", True)
    monkeypatch.setattr(decode, "SPAN", 8)  # positions read in spans of 8: the step moves through four
    static = sample_many(lm, reqs, sp)
    assert [[(s.tokens, s.text, s.finish) for s in out] for out in static] == \
           [[(s.tokens, s.text, s.finish) for s in out] for out in eager]
    assert {"stop", "eos"} <= {s.finish for out in static for s in out} and dropped  # rows did leave the batch
    gap = max(abs(a - b) for x, y in zip(static, eager) for s, t in zip(x, y) for a, b in zip(s.token_logprobs, t.token_logprobs))
    assert gap < 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graphs_replay_the_eager_step_exactly(monkeypatch):
    """On a GPU each decode step is a replayed CUDA graph: the same kernels as running that step eagerly, so the
    same samples bit for bit (and the same log-probabilities)."""
    from engine.models import decode
    from engine.models.sampling import sample_many
    task = get_task("arith")
    lm = load_model("arith-s", device="cuda")
    sp = SamplingParams(n=32, temperature=0.8, max_new_tokens=96, stop=task.stop)
    reqs = [(task.prompt(p), f"arith/{p.id}", list(range(32))) for p in task.select(16, [1, 3, 5])]
    graphs, real = [], torch.cuda.CUDAGraph.replay
    monkeypatch.setattr(torch.cuda.CUDAGraph, "replay", lambda self: graphs.append(1) or real(self))
    replayed = sample_many(lm, reqs, sp)
    assert len(graphs) > 20
    monkeypatch.setattr(decode, "CUDA_GRAPHS", False)
    monkeypatch.setattr(decode, "STATIC", True)
    eager = sample_many(lm, reqs, sp)
    assert [[(s.tokens, s.finish, s.token_logprobs) for s in out] for out in replayed] == \
           [[(s.tokens, s.finish, s.token_logprobs) for s in out] for out in eager]


@pytest.mark.parametrize("which", ["tiny", "arith-s"])
def test_the_lean_step_gives_the_models_own_logits_bit_for_bit(tiny_model, which):
    """decode._Step calls the model's modules one by one (on a CPU some as one matmul or torch's RMSNorm): the logits
    equal its Hugging Face forward's exactly."""
    from engine.models import decode
    lm = load_model(tiny_model if which == "tiny" else which)
    model = lm.model
    assert decode._Step.usable(model)
    jobs = [decode.Job(torch.tensor(lm.tokenizer(p, add_special_tokens=False)["input_ids"] or [2]), [0, 1, 2], [1, 2, 3])
            for p in PROMPTS]
    decode._install(model)
    with torch.inference_mode():
        layers, pad, _ = decode._prefill(model, jobs, torch.device("cpu"), decode._Step(model))
        rows = 3 * len(jobs)
        prompt = torch.arange(len(jobs)).repeat_interleave(3)
        inp = torch.cat([j.ids[-1:].expand(3) for j in jobs])[:, None]
        pos = torch.cat([torch.full((3,), len(j.ids) - 1) for j in jobs])[:, None]
        a = decode._State([(k.clone(), v.clone()) for k, v in layers], pad, prompt, rows, 4)
        b = decode._State([(k.clone(), v.clone()) for k, v in layers], pad, prompt, rows, 4)
        for t in range(3):
            a.s = b.s = t
            la = decode._Step(model)(inp, pos, a)[:, -1]
            lb = model(input_ids=inp, position_ids=pos, cache=b, use_cache=True,
                       attention_mask=decode._PLACEHOLDER_MASK).logits[:, -1]
            assert torch.equal(la, lb)
            inp, pos = la.argmax(-1)[:, None], pos + 1


def test_a_run_frees_the_decode_buffer_it_kept_between_batches(tmp_path):
    """Batches of one run reuse one continuation K/V buffer (a new one costs page faults on a CPU); when the run
    ends, the backend lets it go, so a long-lived process does not keep its largest batch's memory."""
    from engine.cache import SampleCache
    from engine.models import decode
    from engine.runner import run
    task = get_task("arith")
    seen = []
    real = decode._buffer

    def spy(*a, **k):
        seen.append(bool(decode._SPARE))
        return real(*a, **k)
    decode.free_buffers()
    decode._buffer, saved = spy, decode._buffer
    try:
        run("arith-s", task, task.problems[:6], SamplingParams(n=8, temperature=0.8), SampleCache(tmp_path / "c.duckdb"),
            max_batch=16)
    finally:
        decode._buffer = saved
    assert len(seen) == 3 and seen == [False, True, True]  # the 2nd and 3rd batches found the 1st one's buffer
    assert not decode._SPARE


def test_rows_with_the_same_tokens_so_far_are_computed_once_and_give_the_same_samples(monkeypatch):
    """On a CPU the decoder computes one batch row per distinct history (decode._decode_shared), branching rows
    off as samples draw different tokens. A shipped model at T=0.8 agrees with itself for long stretches: far
    fewer rows are computed than tokens generated, and every sample (tokens, end, log-probabilities to float
    rounding) is the one a batch row per sample gives (the GPU's loop, taken here with LAZY)."""
    from engine.models import decode
    from engine.models.sampling import sample_many
    task = get_task("arith")
    lm = load_model("arith-s")
    # "+1" ends some samples early (a stop string on a shared history ends all its rows), others run to EOS
    sp = SamplingParams(n=24, temperature=0.8, max_new_tokens=96, stop=("+1",))
    reqs = [(task.prompt(p), f"arith/{p.id}", list(range(24))) for p in task.select(6, [1, 3, 5])]
    computed, real = [], decode._Step.__call__

    def counting(self, ids, pos, state, **kw):
        if isinstance(state, decode._State):  # a decode step, not a prompt's prefill
            computed.append(ids.shape[0])
        return real(self, ids, pos, state, **kw)
    monkeypatch.setattr(decode._Step, "__call__", counting)
    shared = sample_many(lm, reqs, sp)
    rows_computed = sum(computed)
    monkeypatch.setattr(decode, "LAZY", True)
    computed.clear()
    each = sample_many(lm, reqs, sp)
    tokens = sum(s.completion_tokens for out in shared for s in out)
    assert rows_computed < 0.6 * tokens <= 0.6 * sum(computed)
    assert [[(s.tokens, s.text, s.finish) for s in out] for out in shared] == \
           [[(s.tokens, s.text, s.finish) for s in out] for out in each]
    assert len({s.text for out in shared for s in out}) > 2 * len(reqs)  # rows did branch
    assert {s.finish for out in shared for s in out} == {"stop", "eos"}
    gap = max(abs(a - b) for x, y in zip(shared, each) for s, t in zip(x, y) for a, b in zip(s.token_logprobs, t.token_logprobs))
    assert gap < 1e-4


@pytest.mark.parametrize("family", ["llama", "qwen3"])
def test_the_lean_prefill_gives_the_models_own_keys_and_values_bit_for_bit(tmp_path, family):
    """decode._prefill runs prompts through decode._Step, the long ones packed into one call (causal SDPA per
    prompt, as the model's forward calls it): its keys and values equal the Hugging Face forward's on each prompt
    alone exactly, for every layer (random-init GQA models)."""
    from engine.models import decode
    model = _random_family_model(tmp_path, family).model
    decode._install(model)
    prompts = ([5, 9, 11, 4, 7, 30, 2], list(range(4, 40)), list(range(60, 30, -1)), [8, 3], [6], list(range(5, 25)))
    jobs = [decode.Job(torch.tensor(ids), [0], [0]) for ids in prompts]
    calls, real_call = [], decode._Step.__call__

    def counting(self, ids, *a, **k):
        calls.append(ids.shape[1])
        return real_call(self, ids, *a, **k)
    with torch.inference_mode():
        decode._Step.__call__ = counting
        try:
            lean, _, _ = decode._prefill(model, jobs, torch.device("cpu"), decode._Step(model))
        finally:
            decode._Step.__call__ = real_call
        assert calls == [6, 35 + 29, 1, 19]  # the two long prompts in one call; short ones (few rows) alone
        hf, _, _ = decode._prefill(model, jobs, torch.device("cpu"), None)  # the model's own forward
    assert len(lean) == model.config.num_hidden_layers
    assert all(torch.equal(a, b) for (ka, va), (kb, vb) in zip(lean, hf) for a, b in ((ka, kb), (va, vb)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_prefill_keeps_cudnn_attention_out(tmp_path):
    """cuDNN's attention builds a plan for every new shape and stride, and each packed prompt brings new ones (an
    H200 ran arith-s's first 500 problems 4x slower with it): decode leaves it out of the prefill."""
    from engine.models import decode
    lm = _random_family_model(tmp_path, "llama")  # on the GPU: load_model's default where there is one
    assert lm.spec.device.startswith("cuda")
    seen, real, before = [], decode.sdpa_attention_forward, torch.backends.cuda.cudnn_sdp_enabled()

    def spy(*a, **k):
        seen.append(torch.backends.cuda.cudnn_sdp_enabled())
        return real(*a, **k)
    decode.sdpa_attention_forward = spy
    try:
        decode.decode(lm, [decode.Job(torch.arange(4, 40), [0, 1], [1, 2])], SamplingParams(n=2, max_new_tokens=4))
    finally:
        decode.sdpa_attention_forward = real
    assert seen and not any(seen)
    assert torch.backends.cuda.cudnn_sdp_enabled() == before  # restored after the prefill


def test_loading_a_model_leaves_no_garbage_collection_due(tmp_path):
    """Loading leaves many new long-lived objects, which makes Python's next full collection due (0.2 s with
    transformers imported). load_model collects them itself, so that pause does not land in the first run."""
    import gc

    from conftest import make_tiny_model
    path = make_tiny_model(tmp_path / "fresh")
    junk = [[i] for i in range(50_000)]  # pending objects, as imports leave them
    load_model(str(path))
    gen0, gen1, gen2 = gc.get_count()
    assert (gen1, gen2) == (0, 0) and gen0 < 200
    del junk


def test_a_large_model_on_cpu_still_gets_enough_rows_per_batch(monkeypatch):
    """Batches are sized by FLOPs so that one takes seconds, but below MIN_ROWS a CPU step costs reading the
    weights whatever its rows: a 135M-parameter model at 256 new tokens gets 32 rows, not the 3 its FLOPs give,
    and the KV memory budget still caps the rows."""
    import dataclasses

    from engine.backends import transformers as tb
    lm = load_model("arith-s")
    big = dataclasses.replace(lm, spec=dataclasses.replace(lm.spec, matmul_params=134_515_008))
    sp = SamplingParams(n=16, temperature=0.8, max_new_tokens=256)
    assert int(tb.BATCH_FLOPS["cpu"] // (2 * 134_515_008 * 256)) == 3
    assert tb.rows_per_batch(big, sp) == tb.MIN_ROWS["cpu"] == 32
    assert tb.rows_per_batch(lm, sp) > 32  # a small model: the FLOPs decide
    monkeypatch.setitem(tb.KV_BYTES, "cpu", 2 ** 16)
    assert tb.rows_per_batch(big, sp) < 32


@pytest.mark.parametrize("clean_up", [False, True])
def test_samples_decoded_together_read_as_each_decoded_alone(clean_up):
    """sampling.decode_all hands a fast tokenizer's backend every distinct sequence at once: the same texts as
    ``tokenizer.decode`` one by one, special tokens, unknown ids and empty sequences included (a tokenizer
    that cleans up spaces after decoding keeps its own ``decode``)."""
    import copy
    import random

    from engine.models.sampling import decode_all
    tok = copy.deepcopy(load_model("arith-s").tokenizer)
    tok.clean_up_tokenization_spaces = clean_up
    rng = random.Random(0)
    specials = [t for t in (tok.eos_token_id, tok.pad_token_id, tok.bos_token_id) if t is not None]
    seqs = [[rng.randrange(len(tok)) for _ in range(rng.randrange(0, 30))] + rng.sample(specials, k=1)
            for _ in range(300)] + [[], specials]
    got = decode_all(tok, seqs)
    assert len(got) == len({tuple(s) for s in seqs})
    assert all(got[tuple(s)] == tok.decode(s, skip_special_tokens=True) for s in seqs)
