"""Import a GGUF file once as a Hugging Face directory (safetensors), so it loads like any other model.

transformers reads GGUF (``gguf_file=``, with the ``gguf`` package) by dequantizing every tensor on every
load, and cannot write GGUF back; converting once makes later loads a plain safetensors read. Weights are
saved in float32 (a dequantized block can need more bits than float16 keeps). The directory is named
``NAME-<first 12 hex of the file's SHA-256>`` under ``models/`` (git-ignored; ``TTC_MODELS_DIR`` moves it):
importing the same file again returns it, and its ``training_record.json`` records the file, the checksum
and the license the file declares.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ModelError
from .loader import RECORD_FILE, import_dir


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _metadata(path: Path) -> dict:
    """The GGUF's general.* strings (name, license, source url...), which say where the weights came from."""
    from gguf import GGUFReader
    out = {}
    for key, field in GGUFReader(path).fields.items():
        if key.startswith("general.") and field.types and field.types[0].name == "STRING":
            out[key] = bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
    return out


def imported() -> list[Path]:
    """Directories of the imported models (those whose import finished)."""
    d = import_dir()
    return sorted(p.parent for p in d.glob(f"*/{RECORD_FILE}")) if d.is_dir() else []


def import_gguf(path: str | Path, name: str | None = None) -> tuple[Path, bool]:
    """(the model directory, whether it was converted now) for a GGUF file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{path}: not a GGUF file (it does not start with the GGUF magic bytes)")
    try:
        meta = _metadata(path)
    except ImportError:
        raise ModelError("importing GGUF needs the gguf package: pip install gguf==0.19.0") from None
    except Exception as e:
        raise ModelError(f"{path}: unreadable GGUF file: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    digest = sha256_file(path)
    for d in imported():  # keyed by content: the same file is converted once, whatever it is called
        if d.name.endswith(f"-{digest[:12]}"):
            return d, False
    name = name or meta.get("general.name") or path.stem
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"
    target = import_dir() / f"{safe}-{digest[:12]}"
    tmp = target.with_name(f".{target.name}.partial")  # renamed into place only when complete
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        # the tensors are already dequantized; only the GGUF "quantizer" marker refuses to save them
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(f"{path}: transformers could not convert it: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None
    record = {"name": name, "family": model.config.model_type, "params": sum(p.numel() for p in model.parameters()),
              "license": meta.get("general.license") or "unknown (the file declares none)",
              "source": {"kind": "gguf", "file": str(path.resolve()), "sha256": digest,
                         "bytes": path.stat().st_size, "url": meta.get("general.source.url")},
              "gguf_metadata": meta, "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2))
    tmp.rename(target)
    return target, True
