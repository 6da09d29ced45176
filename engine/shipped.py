"""Precomputed sweeps that ship with the repository, so a new user sees every page full at once.

``data/sweeps/`` holds the shipped ladder's samples on the whole ``arith`` test set
(500 problems x 64 samples at temperature 0.8, the evaluation's setting) and every
shipped verifier's scores of them, as zstd Parquet, with ``manifest.json`` saying
what they are: each model's fingerprint and the cache's record of it, the
sampling config, the verifiers' fingerprints, and row counts.

``scorer_quality.json`` holds how well each scorer ranks those samples
(``analysis.scorer_quality``), which takes seconds to measure and never changes
while the sweeps and verifiers do not: ``quality()`` reads it back where it is of
the sweeps and verifiers here.

``gold_vs_corrupted.parquet`` holds, per scorer (and model, for self-likelihood), problem and kind of
mistake, whether the scorer rates a gold solution above a copy with that mistake put in
(``analysis.corruptions``): 25 s to score on the whole test set, so ``gold(task)`` reads it back where it
is of the task's gold solutions, the models and the verifiers here.

``import_into(cache)`` adds them to a cache in seconds. It is idempotent and never
overwrites: rows the cache already has (samples a user generated with the same
keys are the same samples, since sampling is seeded per index) are kept as they
are. Sweeps of a model whose files changed since they were written are skipped,
and ``stale()`` names them. ``write(cache)`` (``python -m engine.train ship``)
makes the files from a cache that holds the evaluation.
"""
from __future__ import annotations

import json
from pathlib import Path

from .cache import SampleCache
from .errors import EngineError
from .models.loader import MODELS_DIR, fingerprint, list_shipped
from .models.params import SamplingParams
from .planning import resolve_params
from .tasks import get_task
from .verifiers import VERIFIERS_DIR, shipped_verifiers

SWEEPS_DIR = MODELS_DIR.parent / "sweeps"
MANIFEST = SWEEPS_DIR / "manifest.json"
SAMPLES_FILE = "samples.parquet"
SCORES_FILE = "scores.parquet"
QUALITY_FILE = "scorer_quality.json"
GOLD_FILE = "gold_vs_corrupted.parquet"
TASK, N, TEMPERATURE = "arith", 64, 0.8
MODEL_COLS = ["name", "params", "matmul_params", "family", "dtype", "n_layers", "d_model", "training_flops",
              "training_tokens"]


def manifest() -> dict | None:
    try:
        return json.loads(MANIFEST.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _params() -> SamplingParams:
    return resolve_params(get_task(TASK), SamplingParams(n=N, temperature=TEMPERATURE))


def size(task: str) -> tuple[int, int] | None:
    """(problems, samples per problem) the shipped sweeps hold for each of their models on ``task``; None for
    another task, or where nothing ships."""
    return _size(manifest(), task)


def _size(man: dict | None, task: str) -> tuple[int, int] | None:
    if not man or task != man["task"] or not man["models"]:
        return None
    n = int(man["params"]["n"])
    return int(man["samples"]) // (n * len(man["models"])), n


def holds(exp) -> tuple[int, int] | None:
    """(problems, samples per problem) the shipped sweeps hold for every model of ``exp`` (an Experiment) at its
    sampling settings, whatever its n; None where they do not cover it (another task, model or temperature)."""
    man = manifest()
    held = _held(exp, man)
    return _size(man, exp.task) if held and all(held) else None  # the manifest already read, not read again


def overlaps(exp) -> bool:
    """Whether the shipped sweeps hold samples of any model of ``exp`` at its task and sampling settings (a
    sweep imports them first instead of sampling them again)."""
    return any(_held(exp, manifest()) or ())


def _held(exp, man: dict | None) -> list[bool] | None:
    """Per model of ``exp``: whether the sweeps in ``man`` hold it; None where they are of another task or
    sampling settings."""
    if not man or exp.task != man["task"] or resolve_params(exp.load_task(), exp.params).key() != man["config_key"]:
        return None
    fps = {m["model_fp"] for m in man["models"]}
    return [m.fingerprint in fps for m in exp.models]


def stale(man: dict | None = None) -> list[str]:
    """Shipped models whose files no longer match the sweeps (their samples would be of another model)."""
    man = man or manifest() or {"models": []}
    return [m["name"] for m in man["models"]
            if not (MODELS_DIR / m["name"] / "config.json").exists()
            or fingerprint(str(MODELS_DIR / m["name"])) != m["model_fp"]]


def write(cache: SampleCache, out: Path = SWEEPS_DIR) -> dict:
    """Write the shipped ladder's cached evaluation (and its verifier scores) to ``out``; fails if incomplete."""
    params = _params()
    task = get_task(TASK)
    models = cache.models()
    rows, fps = [], []
    for name in list_shipped():
        fp = fingerprint(str(MODELS_DIR / name))
        have = cache.count(model_fp=fp, task=task.name, config_key=params.key())
        if have < len(task.problems) * N:
            raise EngineError(f"{name}: {have} of {len(task.problems) * N} samples cached; run "
                              "`python -m engine.train evaluate` first")
        rec = json.loads(models.loc[models["model_fp"] == fp, MODEL_COLS].head(1).to_json(orient="records"))[0]
        rows.append({"model_fp": fp, **rec})  # via JSON: plain numbers, NaN as null
        fps.append(fp)
    verifiers = {v: fingerprint(str(VERIFIERS_DIR / v)) for v in shipped_verifiers()}
    out.mkdir(parents=True, exist_ok=True)
    n_samples = cache.export_rows("samples", out / SAMPLES_FILE, model_fp=fps, task=task.name,
                                  config_key=params.key())
    n_scores = cache.export_rows("scores", out / SCORES_FILE, verifier_fp=list(verifiers.values()), model_fp=fps,
                                 task=task.name, config_key=params.key())
    man = {"command": "python -m engine.train ship", "task": task.name, "config_key": params.key(),
           "params": params.identity() | {"n": N}, "models": rows, "verifiers": verifiers,
           "samples": n_samples, "scores": n_scores}
    (out / MANIFEST.name).write_text(json.dumps(man, indent=2) + "\n")
    return man


def _identity(man: dict) -> dict:
    """What a measurement of the sweeps depends on: their samples (models, config) and the verifiers' files."""
    return {"config_key": man["config_key"], "models": {m["name"]: m["model_fp"] for m in man["models"]},
            "verifiers": {v: fingerprint(str(VERIFIERS_DIR / v)) for v in shipped_verifiers()}}


def write_quality(rows: list[dict], out: Path = SWEEPS_DIR) -> None:
    """Write ``analysis.scorer_quality`` of the sweeps in ``out`` (as records), with what it was measured on."""
    man = json.loads((out / MANIFEST.name).read_text())
    (out / QUALITY_FILE).write_text(json.dumps({"command": "python -m engine.train ship", **_identity(man),
                                                "rows": rows}, indent=1) + "\n")


def _of_these_files(rec: dict, want: dict, man: dict) -> bool:
    """Whether a record written with the sweeps (``rec``) is of the files here: every key of ``want`` (what it
    depends on) as recorded, and no shipped model changed since."""
    return not stale(man) and {k: rec.get(k) for k in want} == want


def covers(exp) -> bool:
    """Whether ``exp`` (an Experiment) is exactly what the sweeps hold for its models: every problem, n samples."""
    held = holds(exp)
    return held is not None and exp.params.n == held[1] and len({p.id for p in exp.selected()}) == held[0]


def quality(sweeps: Path = SWEEPS_DIR):
    """``analysis.scorer_quality`` of the shipped sweeps as measured when they were written (a DataFrame), if
    that measurement is of the sweeps and verifiers here; else None (measure it)."""
    import pandas as pd
    try:
        man = json.loads((sweeps / MANIFEST.name).read_text())
        rec = json.loads((sweeps / QUALITY_FILE).read_text())
        if not _of_these_files(rec, _identity(man), man):
            return None
        return pd.DataFrame(rec["rows"]).astype({"step_auroc": float})
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _gold_identity(man: dict, task) -> dict:
    """What the gold-vs-corrupted record depends on: the verifiers and models (``_identity``) and the task's gold
    solutions, which the corrupted copies are made from."""
    import hashlib
    golds = [(p.id, p.difficulty, p.solution, (p.meta or {}).get("steps")) for p in task.problems]
    return {**_identity(man), "task": task.name,
            "task_fp": hashlib.sha256(json.dumps(golds, default=str).encode()).hexdigest()[:16]}


def write_gold(wins, task, out: Path = SWEEPS_DIR) -> None:
    """Write ``analysis.corruptions.wins`` of ``task`` (every problem) to ``out``, with what it was measured on."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    man = json.loads((out / MANIFEST.name).read_text())
    table = pa.Table.from_pandas(wins, preserve_index=False)
    meta = {"command": "python -m engine.train ship", **_gold_identity(man, task)}
    pq.write_table(table.replace_schema_metadata({b"ttc": json.dumps(meta).encode()}), out / GOLD_FILE,
                   compression="zstd")


def gold(task, sweeps: Path = SWEEPS_DIR):
    """The recorded ``corruptions.wins`` (a DataFrame) where they are of ``task``'s gold solutions and the
    models and verifiers here; else None (score them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        man = json.loads((sweeps / MANIFEST.name).read_text())
        table = pq.read_table(sweeps / GOLD_FILE)
        rec = json.loads(table.schema.metadata[b"ttc"])
        if not _of_these_files(rec, _gold_identity(man, task), man):
            return None
        out = table.to_pandas()
        out.attrs["models"] = rec["models"]  # self-likelihood's rows hold for these files only
        return out
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError, pa.ArrowException):
        return None


def import_into(cache: SampleCache, sweeps: Path = SWEEPS_DIR) -> dict:
    """Add the shipped sweeps to ``cache``: {"samples": new rows, "scores": new rows, "stale": [models]}.

    Nothing is imported while any shipped model's files differ from the sweeps (``stale``). Cheap when
    already done (two counts), so the app calls it on every start.
    """
    out = {"samples": 0, "scores": 0, "stale": []}
    try:
        man = json.loads((sweeps / MANIFEST.name).read_text())
    except (OSError, json.JSONDecodeError):
        return out
    out["stale"] = stale(man)
    if out["stale"]:
        return out
    keys = dict(model_fp=[m["model_fp"] for m in man["models"]], task=man["task"], config_key=man["config_key"])
    if (cache.count("samples", **keys) >= man["samples"]
            and cache.count("scores", verifier_fp=list(man["verifiers"].values()), **keys) >= man["scores"]):
        return out
    for m in man["models"]:
        cache.put_model_row({**m, "source": str(MODELS_DIR / m["name"])})
    cache.put_config(SamplingParams(**man["params"]))
    out["samples"] = cache.import_rows("samples", sweeps / SAMPLES_FILE)
    out["scores"] = cache.import_rows("scores", sweeps / SCORES_FILE)
    return out
