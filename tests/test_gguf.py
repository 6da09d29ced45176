"""`python -m engine models import-gguf` on a GGUF file the test writes itself: a tiny random Llama with a
byte-level vocabulary, its tensors laid out the way llama.cpp's converter does. The imported directory must
load like any model and give the logits of the model the file was written from."""
import hashlib
import json

import numpy as np
import pytest
import torch

PROMPT = "Q: 2 + 3 = ?\nA:"


def write_gguf(path):
    import gguf
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)] + ["<|endoftext|>", "Q:"]
    d, layers, heads = 32, 2, 2
    cfg = LlamaConfig(vocab_size=len(tokens), hidden_size=d, intermediate_size=2 * d, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=128,
                      tie_word_embeddings=False, bos_token_id=256, eos_token_id=256)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-gguf")
    w.add_license("apache-2.0")
    w.add_context_length(128)
    w.add_embedding_length(d)
    w.add_block_count(layers)
    w.add_feed_forward_length(2 * d)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_rope_dimension_count(d // heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([1] * 256 + [3, 1])
    w.add_token_merges(["Q :"])
    w.add_bos_token_id(256)
    w.add_eos_token_id(256)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    for i in range(layers):
        for hf, gg in [("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"),
                       ("self_attn.o_proj", "attn_output"), ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"),
                       ("mlp.down_proj", "ffn_down"), ("input_layernorm", "attn_norm"),
                       ("post_attention_layernorm", "ffn_norm")]:
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    for k, v in model.state_dict().items():
        t = v.numpy()
        if "q_proj" in k or "k_proj" in k:  # llama.cpp's rotary layout; transformers permutes it back on load
            t = t.reshape(heads, 2, t.shape[0] // heads // 2, *t.shape[1:]).swapaxes(1, 2).reshape(t.shape)
        w.add_tensor(names[k], np.ascontiguousarray(t, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return model


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TTC_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def test_import_gguf_once_then_load_and_sample(tmp_path, models_dir, capsys):
    from engine.cli import main
    from engine.models import SamplingParams, load_model, sample
    path = tmp_path / "tiny.gguf"
    ref = write_gguf(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert main(["models", "import-gguf", str(path)]) == 0
    d = models_dir / f"tiny-gguf-{digest[:12]}"
    assert f"imported: {d}" in capsys.readouterr().out
    assert (d / "model.safetensors").is_file() and (d / "tokenizer.json").is_file()
    rec = json.loads((d / "training_record.json").read_text())
    assert rec["source"]["sha256"] == digest and rec["source"]["file"] == str(path.resolve())
    assert rec["license"] == "apache-2.0" and rec["family"] == "llama"
    assert main(["models", "import-gguf", str(path), "--name", "other"]) == 0  # keyed by content: once
    assert "already imported" in capsys.readouterr().out and [p.name for p in models_dir.iterdir()] == [d.name]
    assert main(["models"]) == 0 and f"{d.name}" in capsys.readouterr().out
    lm = load_model(d.name, device="cpu")  # by its name, like a shipped model
    ids = lm.tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(lm.model(ids).logits, ref(ids).logits, atol=1e-5)
    assert len(sample(lm, PROMPT, SamplingParams(n=2, max_new_tokens=4), [0, 1])) == 2


def test_import_gguf_refuses_bad_files_in_one_line(tmp_path, models_dir, capsys):
    from engine.cli import main
    for data, says in [(b"PK\x03\x04 a zip", "not a GGUF file"), (b"GGUF\x03\x00\x00\x00", "unreadable GGUF file")]:
        bad = tmp_path / "bad.gguf"
        bad.write_bytes(data)
        assert main(["models", "import-gguf", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and "\n" not in err
    assert main(["models", "import-gguf", str(tmp_path / "missing.gguf")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not models_dir.exists() or not any(models_dir.iterdir())
