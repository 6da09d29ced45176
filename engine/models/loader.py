"""Model specs and loading. Every model, shipped or not, goes through
``AutoModelForCausalLM.from_pretrained(<local dir or hub id>)``."""
from __future__ import annotations

import gc
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError

MODELS_DIR = Path(__file__).resolve().parents[2] / "data" / "models"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model",
                   "tokenizer_config.json")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str            # local dir or hub id
    params: int            # counted from the weights
    matmul_params: int     # params that do a multiply per token (input embedding excluded, tied head included)
    family: str
    dtype: str
    device: str
    fingerprint: str       # config + weights hash: the cache key of this model
    n_layers: int | None
    d_model: int | None
    training: dict | None  # training record when the model dir has one


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: object
    tokenizer: object


def default_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


NVIDIA_SIGNS = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/usr/lib/wsl/lib/libcuda.so")


def nvidia_visible() -> bool:
    """Whether this machine shows any sign of an NVIDIA driver (without importing torch, 1.4 s): where it shows
    none, torch finds no CUDA device either, and a page that only reads the cache need not import it."""
    import shutil
    return any(os.path.exists(p) for p in NVIDIA_SIGNS) or shutil.which("nvidia-smi") is not None


def import_dir() -> Path:
    """Where ``models import-gguf`` writes converted models (git-ignored)."""
    return Path(os.environ.get("TTC_MODELS_DIR") or MODELS_DIR.parents[1] / "models")


def resolve_source(name_or_path: str) -> str:
    """A shipped model name (``arith-s``), a local dir, or (else) a hub id."""
    shipped = MODELS_DIR / name_or_path
    if (shipped / "config.json").exists():
        return str(shipped)
    for sub in ("verifiers",):
        if (MODELS_DIR / sub / name_or_path / "config.json").exists():
            return str(MODELS_DIR / sub / name_or_path)
    # models imported from GGUF files answer to their directory's name
    if name_or_path and (import_dir() / name_or_path / "config.json").exists():
        return str(import_dir() / name_or_path)
    return name_or_path


RECORD_FILE = "training_record.json"


def training_record(path: str | Path) -> dict:
    """The training record a model directory ships with ({} when it has none or it is unreadable)."""
    rec = Path(path) / RECORD_FILE
    try:
        return json.loads(rec.read_text()) if rec.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def shipped_dir(name: str, kind: str = "lm") -> Path:
    return (MODELS_DIR / "verifiers" if kind == "verifier" else MODELS_DIR) / name


def list_shipped(kind: str = "lm") -> list[str]:
    """Names of the shipped ladder models (or verifiers), smallest first."""
    base = shipped_dir("", kind)
    out = [(training_record(d.parent).get("params", 0), d.parent.name) for d in base.glob("*/config.json")]
    return [n for _, n in sorted(out)]


_fp_cache: dict[tuple, str] = {}


def chat_template(path: str | Path) -> str | None:
    """The chat template a model directory's tokenizer carries (transformers 5 writes ``chat_template.jinja``,
    older versions a ``chat_template`` entry in ``tokenizer_config.json``), or None."""
    p = Path(path)
    try:
        if (p / "chat_template.jinja").is_file():
            return (p / "chat_template.jinja").read_text()
        cfg = json.loads((p / "tokenizer_config.json").read_text()) if (p / "tokenizer_config.json").is_file() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    tpl = cfg.get("chat_template") if isinstance(cfg, dict) else None
    return json.dumps(tpl, sort_keys=True) if isinstance(tpl, list) else tpl or None


def fingerprint(path: str) -> str:
    """sha256 over config.json and the weight files, and the chat template when there is one (it decides the
    prompt under the ``auto`` format): changes whenever the model or its prompt does. Models without a
    template (the ladder) keep the fingerprint they had before templates counted."""
    p = Path(path)
    files = [p / "config.json"] + sorted(f for f in p.iterdir() if f.suffix in WEIGHT_SUFFIXES)
    tpl = chat_template(p)
    key = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.exists()) + (tpl,)
    if key not in _fp_cache:
        h = hashlib.sha256()
        for f in files:
            if f.exists():
                h.update(f.name.encode())
                with open(f, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
        if tpl is not None:
            h.update(b"chat_template" + tpl.encode())
        _fp_cache[key] = h.hexdigest()[:16]
    return _fp_cache[key]


def check_local(path: Path, name: str) -> None:
    if not path.exists():
        raise ModelError(f"model {name!r}: directory {path} does not exist, so it is not a local directory. "
                         "Pass a directory with config.json and weights, or a shipped model name "
                         "(see `python -m engine models`).")
    if not path.is_dir():
        raise ModelError(f"model {name!r}: {path} is a file; pass the model directory that contains it.")
    if not (path / "config.json").exists():
        raise ModelError(f"model {name!r}: {path} has no config.json, so it is not a Hugging Face model directory.")
    if not any(f.suffix in WEIGHT_SUFFIXES for f in path.iterdir()):
        raise ModelError(f"model {name!r}: {path} has no weight files (*.safetensors or *.bin).")
    # transformers' own message here is cut to "Couldn't instantiate the backend tokenizer from one of:"
    if not any(f.suffix == ".gguf" for f in path.iterdir()) and not any((path / f).exists() for f in TOKENIZER_FILES):
        raise ModelError(f"model {name!r}: {path} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...): "
                         "copy in the tokenizer the model was trained with (save_pretrained writes them).")


_models: dict[tuple, LoadedModel] = {}
_lock = threading.Lock()


def load_model(name_or_path: str, device: str | None = None, dtype: str | None = None) -> LoadedModel:
    """Load once per process and reuse; errors say which model and what to do."""
    device = device or default_device()
    if str(device).startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise ModelError(f"device {device!r}: no CUDA GPU is visible to this torch build; use device cpu")
    source = resolve_source(name_or_path)
    key = (source, device, dtype)
    with _lock:
        if key in _models:
            return _models[key]
        _models[key] = lm = _load(name_or_path, source, device, dtype)
        # Loading leaves hundreds of thousands of new long-lived objects (transformers, torch) behind, which makes
        # Python's next full collection due: collected now, not 0.2 s into the first run's decode.
        gc.collect()
        return lm


def _load(name: str, source: str, device: str, dtype: str | None) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = Path(source)
    is_local = is_local_source(source)
    if is_local:
        check_local(local, name)
    torch_dtype = getattr(torch, dtype) if dtype else (torch.float32 if device == "cpu" else torch.bfloat16)
    try:
        tok = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
    except OSError as e:
        if is_local:
            raise ModelError(f"model {name!r}: could not read {source}: {str(e).splitlines()[0]}") from None
        raise ModelError(f"model {name!r}: no directory {source} here (check the path if you meant one), and it "
                         "could not be fetched as a hub id (this machine may be offline). Download it where you "
                         "have a network and pass the local directory instead.") from None
    except Exception as e:  # corrupt weights, unknown architecture, ...
        raise ModelError(f"model {name!r}: failed to load from {source}: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None
    try:
        model.to(device)
    except RuntimeError as e:
        raise ModelError(f"model {name!r}: could not move to {device}: {str(e).splitlines()[0]}. "
                         "Try device='cpu' or a smaller dtype.") from None
    model.eval()
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings().weight.numel()
    tied = getattr(cfg, "tie_word_embeddings", False)
    matmul = params - emb + (emb if tied else 0)
    record = (training_record(local) or None) if is_local else None
    spec = ModelSpec(
        name=Path(source).name if is_local else source, source=source, params=params, matmul_params=matmul,
        family=(record or {}).get("family", cfg.model_type), dtype=str(torch_dtype).replace("torch.", ""),
        device=device, fingerprint=fingerprint(source) if is_local else hub_fingerprint(source),
        n_layers=getattr(cfg, "num_hidden_layers", None), d_model=getattr(cfg, "hidden_size", None),
        training=record)
    return LoadedModel(spec, model, tok)


def hub_fingerprint(source: str) -> str:
    """A hub id's cache key: its name (a hub revision is not pinned offline, so the name is what we know),
    and its chat template when the local hub cache holds one (it decides the prompt, as for a directory)."""
    tpl = None
    try:
        from huggingface_hub import snapshot_download
        tpl = chat_template(snapshot_download(source, local_files_only=True))
    except Exception:  # not downloaded yet (or no hub library): the name alone
        pass
    return hashlib.sha256(source.encode() + (b"" if tpl is None else b"chat_template" + tpl.encode())).hexdigest()[:16]


def is_local_source(source: str) -> bool:
    """A path on disk, or written like one (its first part is a directory here, as in a mistyped
    ``mymodels/my_model``); anything else ("org/name") is taken as a hub id."""
    first = Path(str(source).split("/")[0])
    return (Path(source).exists() or str(source).startswith((".", "/", "~"))
            or ("/" in str(source) and first.is_dir()))
