"""Shared pytest fixtures. Keep this file small: model-building helpers live in tests/models.py.

``tiny_gguf``: a valid tiny random gptneox GGUF written directly with the ``gguf`` package (2 layers,
n_embd 64, 4 heads, a byte-level "gpt2" vocabulary of 256 byte symbols + 2 specials + a few merges), for
tests of the Python layers that need a loadable model but no Hugging Face reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

TINY_MERGES = [
    ("Ġ", "t"),
    ("h", "e"),
    ("Ġt", "he"),
    ("Ġ", "a"),
    ("i", "n"),
    ("e", "r"),
    ("o", "n"),
    ("Ġ", "s"),
    ("r", "e"),
    ("a", "t"),
]


def _byte_symbols() -> List[str]:
    """GPT-2's printable stand-ins for the 256 byte values, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table: Dict[int, str] = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def write_tiny_gguf(path: Path, seed: int = 0, n_layer: int = 2, n_embd: int = 64, n_head: int = 4) -> Path:
    import gguf

    rng = np.random.default_rng(seed)
    tokens = ["<|endoftext|>", "<|padding|>", *_byte_symbols(), *(a + b for a, b in TINY_MERGES)]
    types = [3, 3] + [1] * (len(tokens) - 2)
    n_vocab, n_ff, n_ctx = len(tokens), 4 * n_embd, 128

    w = gguf.GGUFWriter(str(path), "gptneox")
    w.add_string("general.name", "tiny-random-gptneox")
    w.add_uint32("general.file_type", 0)
    w.add_uint32("gptneox.context_length", n_ctx)
    w.add_uint32("gptneox.embedding_length", n_embd)
    w.add_uint32("gptneox.block_count", n_layer)
    w.add_uint32("gptneox.feed_forward_length", n_ff)
    w.add_uint32("gptneox.attention.head_count", n_head)
    w.add_uint32("gptneox.rope.dimension_count", (n_embd // n_head) // 2)
    w.add_float32("gptneox.attention.layer_norm_epsilon", 1e-5)
    w.add_bool("gptneox.use_parallel_residual", True)
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_string("tokenizer.ggml.pre", "gpt-2")
    w.add_array("tokenizer.ggml.tokens", tokens)
    w.add_array("tokenizer.ggml.token_type", types)
    w.add_array("tokenizer.ggml.merges", [f"{a} {b}" for a, b in TINY_MERGES])
    w.add_uint32("tokenizer.ggml.bos_token_id", 0)
    w.add_uint32("tokenizer.ggml.eos_token_id", 0)
    w.add_uint32("tokenizer.ggml.padding_token_id", 1)
    w.add_bool("tokenizer.ggml.add_bos_token", False)
    w.add_bool("tokenizer.ggml.add_eos_token", False)

    def mat(rows: int, cols: int, scale: float = 0.08) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)

    def vec(n: int, center: float = 0.0, scale: float = 0.05) -> np.ndarray:
        return (center + rng.standard_normal(n) * scale).astype(np.float32)

    w.add_tensor("token_embd.weight", mat(n_vocab, n_embd, 0.5))
    for i in range(n_layer):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", vec(n_embd, 1.0))
        w.add_tensor(b + "attn_norm.bias", vec(n_embd))
        w.add_tensor(b + "attn_qkv.weight", mat(3 * n_embd, n_embd))
        w.add_tensor(b + "attn_qkv.bias", vec(3 * n_embd))
        w.add_tensor(b + "attn_output.weight", mat(n_embd, n_embd))
        w.add_tensor(b + "attn_output.bias", vec(n_embd))
        w.add_tensor(b + "ffn_norm.weight", vec(n_embd, 1.0))
        w.add_tensor(b + "ffn_norm.bias", vec(n_embd))
        w.add_tensor(b + "ffn_up.weight", mat(n_ff, n_embd))
        w.add_tensor(b + "ffn_up.bias", vec(n_ff))
        w.add_tensor(b + "ffn_down.weight", mat(n_embd, n_ff))
        w.add_tensor(b + "ffn_down.bias", vec(n_embd))
    w.add_tensor("output_norm.weight", vec(n_embd, 1.0))
    w.add_tensor("output_norm.bias", vec(n_embd))
    w.add_tensor("output.weight", mat(n_vocab, n_embd, 0.5))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny-gptneox-f32.gguf")
