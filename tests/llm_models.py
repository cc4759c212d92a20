"""Converted tiny models for the Llama-level tests (chat, streaming, embeddings, cache, patch, server, CLI).

converted(kind) builds a random Hugging Face GPTNeoX checkpoint with tests/models.py (tokenizer "bpe":
byte-level BPE; "spm": sentencepiece with byte fallback and <NL>) and converts it with neox_cpp's converter
to f32; both are cached in models.cache_dir() (keyed by the options), so a test session builds each once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Tuple

from models import cache_dir, convert_model, make_hf_model

SHAPES: Dict[str, Dict[str, Any]] = {
    "bpe": dict(hidden=64, layers=2, heads=4, rotary_pct=0.25, tokenizer="bpe", seed=11, max_pos=512),
    "spm": dict(hidden=64, layers=2, heads=4, rotary_pct=0.25, tokenizer="spm", seed=12, max_pos=512),
}
_VERSION = "1"


def converted(kind: str, name: str = "") -> Tuple[Path, Path]:
    """(hf_dir, gguf_path) of the cached tiny model of this tokenizer kind. `name` (if given) is the
    checkpoint directory's name, which becomes general.name in the GGUF."""
    shape = SHAPES[kind]
    folder = name or f"tiny-{kind}"
    key = f"llm-{_VERSION}-{kind}-{folder}"
    final = cache_dir() / key
    gguf_path = final / f"{folder}-f32.gguf"
    if gguf_path.is_file():
        return final / folder, gguf_path
    tmp = Path(tempfile.mkdtemp(prefix=key + "-", dir=cache_dir()))
    try:
        hf_dir = make_hf_model(tmp / folder, **shape)
        convert_model(hf_dir, tmp, "f32", name=folder)
        try:
            os.rename(tmp, final)
        except OSError:  # built concurrently by another process
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final / folder, gguf_path

