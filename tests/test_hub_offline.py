"""Hub ids offline: a model in a populated Hugging Face cache resolves and samples with HF_HUB_OFFLINE=1."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine.cache import SampleCache
from engine.models.loader import MODELS_DIR, hub_fingerprint

ROOT = Path(__file__).resolve().parents[1]


def _hub_cache(root: Path, repo: str, files: dict[str, Path]) -> str:
    """The layout huggingface_hub writes: blobs named by hash, a snapshot of relative links, refs/main."""
    rev = hashlib.sha1(repo.encode()).hexdigest()
    base = root / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / rev
    (base / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    for name, src in files.items():
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        shutil.copyfile(src, base / "blobs" / digest)
        (snap / name).symlink_to(Path("..", "..", "blobs", digest))
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(rev)
    return rev


def test_a_hub_id_in_a_local_hub_cache_samples_offline(tmp_path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    src = tmp_path / "made"
    torch.manual_seed(0)
    cfg = AutoConfig.from_pretrained(MODELS_DIR / "arith-s")
    AutoModelForCausalLM.from_config(cfg).save_pretrained(src)  # random init: a new model, not the ladder's
    files = {"config.json": src / "config.json", "model.safetensors": src / "model.safetensors",
             **{f: MODELS_DIR / "arith-s" / f for f in ("tokenizer.json", "tokenizer_config.json")}}
    hub = tmp_path / "hf" / "hub"
    _hub_cache(hub, "ttc-test/tiny-random", files)
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    db = tmp_path / "c.duckdb"
    cmd = [sys.executable, "-m", "engine", "sweep", "--models", "ttc-test/tiny-random", "--problems", "2", "--n", "3",
           "--max-new-tokens", "8", "--cache", str(db)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ttc-test/tiny-random: generated 6" in r.stdout
    models = SampleCache(db).models()
    row = models[models.name == "ttc-test/tiny-random"].iloc[0]
    assert len(SampleCache(db).samples(model_fp=row.model_fp)) == 6
    assert row.model_fp == hub_fingerprint("ttc-test/tiny-random")  # keyed by the id (no template in this one)

    # an id the cache lacks: one line saying so, offline, no traceback
    r = subprocess.run(cmd[:5] + ["ttc-test/not-there"] + cmd[6:], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "could not be fetched as a hub id" in r.stderr.strip().splitlines()[-1]
