"""What the app can offer: shipped models, models and datasets users added.

Added models live in ``added_models.json`` and uploaded datasets under
``datasets/`` next to the cache file (``cache/`` by default), so a temporary
cache (``TTC_CACHE``) gets its own registry too. No SQL here.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from .cache import DEFAULT_PATH
from .errors import DatasetError, EngineError, ModelError
from .models.loader import MODELS_DIR, fingerprint, list_shipped, load_model, training_record
from .models.ref import ModelRef, parse_count, resolve_model
from .tasks import Task, get_task

ADDED_FILE = "added_models.json"
DATASET_SUFFIXES = (".jsonl", ".json", ".csv")
MAX_UPLOAD_BYTES = 20 << 20  # as server.maxUploadSize in .streamlit/config.toml, for callers that bypass it


def root_of(cache_path: str | Path | None = None) -> Path:
    """The folder holding the cache file, the added-model list and uploaded datasets."""
    return Path(cache_path or DEFAULT_PATH).parent


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


MODEL_COLUMNS = ["name", "kind", "origin", "params", "matmul_params", "training_flops", "training_tokens",
                 "family", "disk_bytes", "source"]


def _row(name, kind, source, origin, rec, params=None, matmul_params=None):
    return {"name": name, "kind": kind, "origin": origin, "params": params or rec.get("params"),
            "matmul_params": matmul_params, "training_flops": rec.get("training_flops"),
            "training_tokens": rec.get("training_tokens"), "family": rec.get("family"),
            "disk_bytes": _dir_bytes(Path(source)), "source": str(source)}


# ---- measured quality of what ships ----------------------------------------------
def verifier_quality() -> list[dict]:
    """Held-out AUROC of each shipped verifier, overall and per sample source (from its training record)."""
    rows = []
    ladder = {m: i for i, m in enumerate(list_shipped())}  # sources in the ladder's order, smallest first
    for name in list_shipped("verifier"):
        held = training_record(MODELS_DIR / "verifiers" / name).get("held_out") or {}
        if not held:
            continue
        per_source = held.get("per_source") or {}
        gold = held.get("gold_beats_corrupted")  # v1 records: {"all": rate, ...}; v2: the rate
        rows.append({"verifier": name, "unit": held.get("unit"), "source": "all held-out",
                     "auroc": held.get("auroc"), "within_problem_auroc": held.get("within_problem_auroc"),
                     "n": held.get("n") or sum(v.get("n") or 0 for v in per_source.values()) or None,
                     "positive_rate": None, "gold_beats_nudged": gold.get("all") if isinstance(gold, dict) else gold})
        for src, v in sorted(per_source.items(), key=lambda kv: (ladder.get(kv[0], len(ladder)), kv[0])):
            if v.get("auroc") is None:  # one class only (gold, corrupted copies): nothing to rank
                continue
            rows.append({"verifier": name, "unit": held.get("unit"), "source": src, "auroc": v.get("auroc"),
                         "within_problem_auroc": v.get("within_problem_auroc"),
                         "n": v.get("n"), "positive_rate": v.get("positive_rate")})
    return rows


EVAL_FILE = MODELS_DIR / "ladder_eval.json"


def stale_models(result: dict) -> list[str]:
    """Shipped models whose files changed since ``result`` was measured (or that it lacks)."""
    have = {m["name"]: m["fingerprint"] for m in result["models"]}
    return [n for n in list_shipped() if have.get(n) != fingerprint(str(MODELS_DIR / n))]


def ladder_evaluation() -> dict | None:
    """The shipped ladder measured on the test set (``python -m engine.train evaluate``), if present.

    ``stale`` lists models whose files changed since it was measured.
    """
    try:
        result = json.loads(EVAL_FILE.read_text())
        result["stale"] = stale_models(result)
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return None
    return result


# ---- models -------------------------------------------------------------------
def shipped_models() -> list[dict]:
    """The shipped ladder (smallest first) then the shipped verifiers; nothing is loaded."""
    rows = []
    for kind, base in (("lm", MODELS_DIR), ("verifier", MODELS_DIR / "verifiers")):
        for name in list_shipped(kind):
            rows.append(_row(name, kind, base / name, "shipped", training_record(base / name)))
    return rows


def _added_path(root: Path) -> Path:
    return Path(root) / ADDED_FILE


def added_models(root: str | Path) -> list[dict]:
    p = _added_path(Path(root))
    if not p.exists():
        return []
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        raise EngineError(f"{p} is not valid JSON; fix or delete it to reset the list of added models") from None


def _save_added(root: Path, rows: list[dict]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = _added_path(root).with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=2))
    tmp.replace(_added_path(root))


KINDS = ("lm", "verifier")


def add_model(path: str, root: str | Path, kind: str = "lm") -> dict:
    """Validate a local model directory by loading it (on CPU) and remember it.

    ``kind="lm"``: a causal language model to sample from. ``kind="verifier"``: a Hugging Face
    sequence-classification (ORM-like) or token-classification (PRM-like) model, offered as a scorer.
    """
    if kind not in KINDS:
        raise ModelError(f"add model: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not str(path).strip():
        raise ModelError("add model: enter the path of a local model directory")
    src = Path(str(path).strip()).expanduser().resolve()
    # loading is the check: a ModelError says what is wrong with the directory
    if kind == "verifier":
        from .models.loader import check_local
        from .verifiers import load_verifier
        check_local(src, src.name)
        v = load_verifier(str(src), device="cpu")
        record, params, matmul = v.record, int(sum(p.numel() for p in v.model.parameters())), None
    else:
        spec = load_model(str(src), device="cpu").spec
        record, params, matmul = spec.training or {}, spec.params, spec.matmul_params
    if not re.fullmatch(r"[A-Za-z0-9._@+-]{1,100}", src.name):
        # the name is shown in verdicts and tables: nothing in it may read as markup or a formula
        raise ModelError(f"model directory name {src.name!r}: use letters, digits and . _ - @ + only (at most "
                         "100), then add it again")
    root = Path(root)
    rows = added_models(root)
    taken = {r["name"]: r["source"] for r in shipped_models() + rows}
    if src.name in taken:
        if taken[src.name] == str(src):
            raise ModelError(f"model {src.name!r} is already in the list")
        raise ModelError(f"a model named {src.name!r} is already listed (from {taken[src.name]}); "
                         "rename the directory to add this one")
    row = _row(src.name, kind, src, "added", record, params, matmul)
    _save_added(root, rows + [row])
    return row


def import_gguf_model(path: str, root: str | Path) -> dict:
    """Convert a GGUF file once (``models/``, as ``python -m engine models import-gguf``) and list the result."""
    from .models.gguf import import_gguf
    if not str(path).strip():
        raise ModelError("import GGUF: enter the path of a .gguf file on this machine")
    target, _ = import_gguf(str(path).strip())
    if any(r["source"] == str(target) for r in added_models(root)):
        raise ModelError(f"model {target.name!r} is already in the list")
    return add_model(str(target), root)


def add_endpoint(url: str, model: str, root: str | Path, key_env: str = "", params: str = "",
                 revision: str = "") -> dict:
    """Check a model on an OpenAI-compatible server (it must answer and serve ``model``) and list it.

    Stored as its spec (``URL#MODEL?...``, README "Scaling out"): the key's variable *name* at most, never a key.
    """
    from urllib.parse import urlencode, urlparse

    from .backends.http import HttpBackend, http_ref
    url, model, key_env, params, revision = (str(v or "").strip() for v in (url, model, key_env, params, revision))
    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.netloc or any(c in url for c in "#?+ "):
        raise ModelError(f"endpoint URL {url!r}: write the API base, e.g. http://127.0.0.1:8000/v1")
    if not model:
        raise ModelError("endpoint: enter the model id the server serves (its /v1/models lists them)")
    if key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_env):
        raise ModelError(f"key variable {key_env!r}: enter the NAME of an environment variable (e.g. VLLM_KEY), "
                         "never the key itself")
    if params:
        try:
            params = str(parse_count(params))
        except ValueError:
            raise ModelError(f"parameter count {params!r}: write a number of at least 1, e.g. 135M, 1.5B or "
                             "1.35e8") from None
    opts = {k: v for k, v in (("key_env", key_env), ("params", params), ("revision", revision)) if v}
    spec = f"{url.rstrip('/')}#{model}" + (f"?{urlencode(opts)}" if opts else "")
    ref = http_ref(spec)
    # one quick try for the check, so a wrong address is one message in seconds, not after the sweep's retries
    backend = HttpBackend(ModelRef(ref.name, spec + ("&" if opts else "?") + "retries=0&timeout=10",
                                   ref.fingerprint, "http"))
    backend._pool.shutdown(wait=False)
    rows = added_models(root)
    if ref.name in {r["name"] for r in shipped_models() + rows}:
        raise ModelError(f"model {ref.name!r} is already in the list")
    row = _row(ref.name, "lm", spec, "server", {"family": backend.spec.family}, backend.spec.params,
               backend.spec.matmul_params)
    _save_added(Path(root), rows + [row])
    return row


def remove_model(name: str, root: str | Path) -> None:
    rows = added_models(root)
    _save_added(Path(root), [r for r in rows if r["name"] != name])


def added_verifiers(root: str | Path | None) -> list[str]:
    """Directories of the verifiers a user added (offered as scorers next to the shipped ones)."""
    return [r["source"] for r in (added_models(root) if root is not None else []) if r["kind"] == "verifier"]


def all_models(root: str | Path) -> list[dict]:
    return shipped_models() + added_models(root)


def model_ref(name: str, root: str | Path | None = None) -> ModelRef:
    """A listed name (shipped, or added under ``root``), a directory or a hub id, resolved once."""
    for r in (added_models(root) if root is not None else []):
        if r["name"] == name:
            if r.get("origin") == "server":
                from .backends.http import http_ref
                return ModelRef(name, r["source"], http_ref(r["source"]).fingerprint, "http")
            return ModelRef(name, r["source"], fingerprint(r["source"]))
    return resolve_model(name)


# ---- datasets -----------------------------------------------------------------
def datasets_dir(root: str | Path) -> Path:
    return Path(root) / "datasets"


def save_dataset(filename: str, data: bytes, root: str | Path) -> Path:
    """Store an uploaded file under ``datasets/`` with a safe name; returns its path."""
    from .tasks.files import safe_name
    name = safe_name(filename)
    if Path(name).suffix.lower() not in DATASET_SUFFIXES:
        raise DatasetError(name, f"unsupported file type; upload {', '.join(DATASET_SUFFIXES)}")
    if len(data) > MAX_UPLOAD_BYTES:
        raise DatasetError(name, f"{len(data) / 2**20:.0f} MB is over the {MAX_UPLOAD_BYTES >> 20} MB upload limit")
    if not data.strip():
        raise DatasetError(name, "the file is empty")
    d = datasets_dir(root)
    d.mkdir(parents=True, exist_ok=True)
    out = d / name
    out.write_bytes(data)
    return out


def list_datasets(root: str | Path) -> list[Path]:
    d = datasets_dir(root)
    return sorted(p for p in d.glob("*") if p.suffix.lower() in DATASET_SUFFIXES) if d.is_dir() else []


def _mapped(p: Path) -> bool:
    try:
        return _mapping_path(p).exists()
    except OSError:  # a name the file system refuses once ".mapping.json" is added: not a task, never a crash
        return False


def columns_of(path: str | Path) -> list[str]:
    from .tasks.files import columns_of
    return list(columns_of(str(path)))


def preview_dataset(path: str | Path, n: int = 5):
    """The first rows as read, as a DataFrame (a malformed file raises ``DatasetError``)."""
    import pandas as pd
    from .tasks.files import preview_file
    return pd.DataFrame(preview_file(str(path), n))


MAPPING_KEYS = ("question_col", "answer_col", "id_col", "difficulty_col")


def _mapping_path(path: Path) -> Path:
    return path.with_name(path.name + ".mapping.json")


def save_mapping(path: str | Path, mapping: dict) -> Task:
    """Check a column mapping by loading the task with it, then keep it beside the file."""
    mapping = {k: v for k, v in mapping.items() if v and k in MAPPING_KEYS}
    task = get_task(str(path), **mapping)
    _mapping_path(Path(path)).write_text(json.dumps(mapping))
    return task


def load_mapping(path: str | Path) -> dict:
    p = _mapping_path(Path(path))
    return json.loads(p.read_text()) if p.exists() else {}


def task_names(root: str | Path) -> list[str]:
    """Built-in tasks, then uploaded datasets that have a saved column mapping."""
    from .tasks import list_tasks
    return list_tasks() + [p.name for p in list_datasets(root) if _mapped(p)]


def task_version(name: str, root: str | Path | None) -> float:
    """Changes when an uploaded dataset's column mapping does (0 for built-in tasks)."""
    if root is None:
        return 0.0
    p = datasets_dir(root) / name
    return _mapping_path(p).stat().st_mtime if _mapped(p) else 0.0


def load_task(name: str, root: str | Path | None = None) -> Task:
    """A built-in task by name, a dataset file by path, or an uploaded dataset (by file name) with its mapping."""
    return _load_task(name, None if root is None else str(root), task_version(name, root))


@lru_cache(maxsize=32)
def _load_task(name: str, root: str | None, version: float) -> Task:
    p = datasets_dir(root) / name if root is not None else None
    if p is not None and p.exists():
        return get_task(str(p), **load_mapping(p))
    return get_task(name)
