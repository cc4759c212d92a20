"""Tokenizer speed: tokens/s of neox_cpp's engine vs `sentencepiece` and HF `tokenizers` on ~1 MB of
Japanese (wagahaiwa_nekodearu) and ~1 MB of English (tinyshakespeare), one thread, whole text per call.

Tokenizers: a sentencepiece unigram (rinna-like, byte fallback, <NL>) trained by the tests, and
GPT-NeoX-20B's byte-level BPE. Both sides return a Python list of ids ("ours" goes through the ctypes
binding the tests use); "ours C" is the bare gptneox_vocab_tokenize call into a preallocated buffer.
Runs of the two sides are interleaved and the best of `--repeat` is kept, so load on the machine hits
both alike. Run from the repo root: python bench/tokenizer_bench.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one thread on every side
os.environ.setdefault("RAYON_NUM_THREADS", "1")

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


def best_times(fns: Dict[str, Callable[[], int]], repeat: int) -> Dict[str, tuple[float, int]]:
    """Best wall time and result size of each function, the functions run in turn `repeat` times."""
    best = {k: (float("inf"), 0) for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            n = fn()
            dt = time.perf_counter() - t0
            if dt < best[k][0]:
                best[k] = (dt, n)
    return best


def c_call(eng: Engine, text: str, parse_special: bool) -> Callable[[], int]:
    data = text.encode("utf-8")
    eng.encode(text, parse_special=parse_special)  # sizes the engine's buffer
    buf = eng._buf
    lib = eng.lib

    def run() -> int:
        n = lib.gptneox_vocab_tokenize(eng.vocab, data, len(data), buf, len(buf), False, parse_special)
        return int(n)

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    import sentencepiece as spm
    from tokenizers import Tokenizer

    texts = {"ja (wagahaiwa_nekodearu)": ja_text(), "en (tinyshakespeare)": en_text()[:1_000_000]}
    tmp = Path(tempfile.mkdtemp())
    spm_dir = train_spm("unigram", "identity")
    spm_eng = Engine(write_vocab_gguf(spm_dir, tmp / "spm.gguf"))
    sp = spm.SentencePieceProcessor(model_file=str(spm_dir / "spiece.model"))
    bpe_eng = Engine(write_vocab_gguf(hf_dir_for(NEOX_JSON, "tokenizer.json"), tmp / "neox.gguf", 50432))
    hf = Tokenizer.from_file(str(NEOX_JSON))
    print(f"{'tokenizer':24s} {'text':26s} {'MB':>5s} {'ours tok/s':>12s} {'ours C tok/s':>13s} "
          f"{'ref tok/s':>12s} {'ratio':>6s} {'C ratio':>7s}")
    for name, text in texts.items():
        mb = len(text.encode()) / 1e6
        rows: List[tuple[str, Engine, bool, Callable[[str], List[int]]]] = [
            ("sentencepiece unigram", spm_eng, False, lambda s: sp.encode(s)),
            ("gpt-neox-20b byte BPE", bpe_eng, True, lambda s: hf.encode(s, add_special_tokens=False).ids),
        ]
        for label, eng, special, ref in rows:
            fns = {
                "ours": lambda e=eng, p=special, s=text: len(e.encode(s, parse_special=p)),
                "ours_c": c_call(eng, text, special),
                "ref": lambda r=ref, s=text: len(r(s)),
            }
            t = best_times(fns, args.repeat)
            n_ours, n_ref = t["ours"][1], t["ref"][1]
            r_ours, r_c, r_ref = n_ours / t["ours"][0], n_ours / t["ours_c"][0], n_ref / t["ref"][0]
            same = "" if n_ours == n_ref else f"  (token counts differ: {n_ours} vs {n_ref})"
            print(f"{label:24s} {name:26s} {mb:5.2f} {r_ours:12,.0f} {r_c:13,.0f} {r_ref:12,.0f} "
                  f"{r_ours / r_ref:6.2f} {r_c / r_ref:7.2f}{same}")


if __name__ == "__main__":
    main()
