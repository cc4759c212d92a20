"""transformers + torch (CPU) as a bench peer for the f16/bf16 rows: the same HF checkpoint loaded as
GPTNeoXForCausalLM in bf16 (or f32), run with torch.set_num_threads(<threads>) under inference_mode.

Timings, matched to the other engines:
  pp(tokens)  one forward of the whole prompt with use_cache=True from an empty cache, logits of the last
              position only (logits_to_keep=1).
  tg(tokens)  a forward of tokens[0] with use_cache=True, then len(tokens) - 1 single-token forwards with
              the returned past: len(tokens) forward passes, like len(tokens) single-token decodes.

It runs in a worker process of its own (bench/worker.py), so its memory goes away when the row is done.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checkpoint  # noqa: E402

DTYPES = ("bfloat16", "float32", "float16")


def weight_bytes_per_token(shape: checkpoint.Shape, dtype: str) -> int:
    """Bytes of weights read per generated token in `dtype`: every parameter but the input embedding."""
    size = {"bfloat16": 2, "float16": 2, "float32": 4}[dtype]
    skip = "gpt_neox.embed_in.weight"
    n = sum(int(np.prod(s)) for name, s in checkpoint.tensor_shapes(shape) if name != skip)
    return n * size


class TorchRunner:
    name = "torch"

    def __init__(self, hf_dir: Path, dtype: str, n_threads: int) -> None:
        import torch
        from transformers import GPTNeoXForCausalLM

        if dtype not in DTYPES:
            raise ValueError(f"dtype {dtype!r} is not one of {DTYPES}")
        torch.set_num_threads(n_threads)
        self._torch = torch
        self.dtype = dtype
        self._model: Any = GPTNeoXForCausalLM.from_pretrained(
            str(hf_dir), dtype=getattr(torch, dtype), low_cpu_mem_usage=True
        )
        self._model.eval()

    def kernel_info(self) -> str:
        torch = self._torch
        return f"torch {torch.__version__}, {self.dtype}, isa {torch.backends.cpu.get_cpu_capability()}"

    def _ids(self, tokens: Sequence[int]) -> Any:
        return self._torch.tensor([list(map(int, tokens))], dtype=self._torch.long)

    def pp(self, tokens: Sequence[int]) -> float:
        ids = self._ids(tokens)
        with self._torch.inference_mode():
            t = time.perf_counter()
            self._model(input_ids=ids, use_cache=True, logits_to_keep=1)
            return time.perf_counter() - t

    def tg(self, tokens: Sequence[int]) -> float:
        ids = self._ids(tokens)
        with self._torch.inference_mode():
            t = time.perf_counter()
            out = self._model(input_ids=ids[:, :1], use_cache=True, logits_to_keep=1)
            # transformers 5 returns (and takes) the cache as `cache`; older ones as `past_key_values`
            key = "cache" if "cache" in out else "past_key_values"
            for i in range(1, ids.shape[1]):
                out = self._model(input_ids=ids[:, i:i + 1], use_cache=True, logits_to_keep=1,
                                  **{key: out[key]})
            return time.perf_counter() - t

    def close(self) -> None:
        self._model = None
