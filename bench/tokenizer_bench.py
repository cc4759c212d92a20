"""Tokenizer speed: tokens/s of neox_cpp's engine vs `sentencepiece` and HF `tokenizers` on ~1 MB of
Japanese (wagahaiwa_nekodearu) and ~1 MB of English (tinyshakespeare), one thread, whole text per call.

Tokenizers: a sentencepiece unigram (rinna-like, byte fallback, <NL>) trained by the tests, and
GPT-NeoX-20B's byte-level BPE. Run from the repo root: python bench/tokenizer_bench.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_tokenizer_support import (  # noqa: E402
    NEOX_JSON,
    Engine,
    en_text,
    hf_dir_for,
    ja_text,
    train_spm,
    write_vocab_gguf,
)


def rate(fn: Callable[[str], List[int]], text: str, repeat: int = 3) -> tuple[float, int]:
    best = float("inf")
    n = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = len(fn(text))
        best = min(best, time.perf_counter() - t0)
    return n / best, n


def main() -> None:
    import sentencepiece as spm
    from tokenizers import Tokenizer

    texts = {"ja (wagahaiwa_nekodearu)": ja_text(), "en (tinyshakespeare)": en_text()[:1_000_000]}
    tmp = Path(tempfile.mkdtemp())
    spm_dir = train_spm("unigram", "identity")
    spm_eng = Engine(write_vocab_gguf(spm_dir, tmp / "spm.gguf"))
    sp = spm.SentencePieceProcessor(model_file=str(spm_dir / "spiece.model"))
    bpe_eng = Engine(write_vocab_gguf(hf_dir_for(NEOX_JSON, "tokenizer.json"), tmp / "neox.gguf", 50432))
    hf = Tokenizer.from_file(str(NEOX_JSON))
    print(f"{'tokenizer':28s} {'text':26s} {'MB':>5s} {'ours tok/s':>12s} {'ref tok/s':>12s} {'ratio':>6s}")
    for name, text in texts.items():
        mb = len(text.encode()) / 1e6
        rows = [
            ("sentencepiece unigram", lambda s: spm_eng.encode(s), lambda s: sp.encode(s)),
            ("gpt-neox-20b byte BPE", lambda s: bpe_eng.encode(s, parse_special=True),
             lambda s: hf.encode(s, add_special_tokens=False).ids),
        ]
        for label, ours, ref in rows:
            r_ours, n1 = rate(ours, text)
            r_ref, n2 = rate(ref, text)
            same = "" if n1 == n2 else f"  (token counts differ: {n1} vs {n2})"
            ratio = r_ours / r_ref
            print(f"{label:28s} {name:26s} {mb:5.2f} {r_ours:12,.0f} {r_ref:12,.0f} {ratio:6.2f}{same}")


if __name__ == "__main__":
    main()
