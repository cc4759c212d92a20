"""Random-weight Hugging Face GPT-NeoX checkpoints with the exact shape of real models, for the bench.

Written straight to sharded safetensors with numpy, one tensor at a time: the rinna-3.6B shape is
3.6e9 weights (7.2 GB in f16), which is never held in memory, nor ever materialized in torch.
The tokenizer files are real ones from ../shared/artifacts (rinna's 32000-piece sentencepiece model for
the 32000-token shapes, GPT-NeoX-20B's tokenizer.json for the 50304-token Pythia shape), so every
converter sees a complete, ordinary checkpoint.
"""

from __future__ import annotations

import json
import shutil
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np

ARTIFACTS = Path(__file__).resolve().parents[2] / "shared" / "artifacts"
SPM_MODEL = ARTIFACTS / "tokenizers" / "rinna-japanese-gpt2" / "google_sp.model"
BPE_JSON = ARTIFACTS / "tokenizers" / "gpt-neox-20b" / "20B_tokenizer.json"


@dataclass(frozen=True)
class Shape:
    name: str
    n_layer: int
    n_embd: int
    n_head: int
    n_ff: int
    n_vocab: int
    rotary_pct: float
    parallel_residual: bool
    tokenizer: str  # "spm" (32000 pieces) or "bpe" (GPT-NeoX-20B)
    n_ctx_train: int = 2048

    def n_params(self) -> int:
        return sum(int(np.prod(s)) for _, s in tensor_shapes(self))


SHAPES: Dict[str, Shape] = {
    # rinna/japanese-gpt-neox-3.6b: sequential residual, full rotary, sentencepiece 32000.
    "rinna-3.6b": Shape("rinna-3.6b", 36, 2816, 22, 11264, 32000, 1.0, False, "spm"),
    # EleutherAI/pythia-410m: parallel residual, rotary_pct 0.25, GPT-NeoX-20B BPE (padded to 50304).
    "pythia-410m": Shape("pythia-410m", 24, 1024, 16, 4096, 50304, 0.25, True, "bpe"),
    # A small shape for `bench/run.py --quick` (a smoke run, not a measurement).
    "tiny": Shape("tiny", 4, 256, 4, 1024, 32000, 1.0, False, "spm"),
}


def tensor_shapes(s: Shape) -> List[Tuple[str, Tuple[int, ...]]]:
    """HF GPTNeoXForCausalLM parameter names and shapes, in checkpoint order."""
    out: List[Tuple[str, Tuple[int, ...]]] = [("gpt_neox.embed_in.weight", (s.n_vocab, s.n_embd))]
    for i in range(s.n_layer):
        p = f"gpt_neox.layers.{i}."
        out += [
            (p + "input_layernorm.weight", (s.n_embd,)),
            (p + "input_layernorm.bias", (s.n_embd,)),
            (p + "post_attention_layernorm.weight", (s.n_embd,)),
            (p + "post_attention_layernorm.bias", (s.n_embd,)),
            (p + "attention.query_key_value.weight", (3 * s.n_embd, s.n_embd)),
            (p + "attention.query_key_value.bias", (3 * s.n_embd,)),
            (p + "attention.dense.weight", (s.n_embd, s.n_embd)),
            (p + "attention.dense.bias", (s.n_embd,)),
            (p + "mlp.dense_h_to_4h.weight", (s.n_ff, s.n_embd)),
            (p + "mlp.dense_h_to_4h.bias", (s.n_ff,)),
            (p + "mlp.dense_4h_to_h.weight", (s.n_embd, s.n_ff)),
            (p + "mlp.dense_4h_to_h.bias", (s.n_embd,)),
        ]
    out += [
        ("gpt_neox.final_layer_norm.weight", (s.n_embd,)),
        ("gpt_neox.final_layer_norm.bias", (s.n_embd,)),
        ("embed_out.weight", (s.n_vocab, s.n_embd)),
    ]
    return out


def hf_config(s: Shape) -> dict:
    spm = s.tokenizer == "spm"
    return {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "attention_bias": True,
        "attention_dropout": 0.0,
        "hidden_dropout": 0.0,
        "bos_token_id": 1 if spm else 0,
        "eos_token_id": 2 if spm else 0,
        "hidden_act": "gelu",
        "hidden_size": s.n_embd,
        "initializer_range": 0.02,
        "intermediate_size": s.n_ff,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": s.n_ctx_train,
        "num_attention_heads": s.n_head,
        "num_hidden_layers": s.n_layer,
        "rotary_emb_base": 10000,
        "rotary_pct": s.rotary_pct,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "use_cache": True,
        "use_parallel_residual": s.parallel_residual,
        "vocab_size": s.n_vocab,
    }


def _tokenizer_files(s: Shape, out: Path) -> None:
    if s.tokenizer == "spm":
        shutil.copyfile(SPM_MODEL, out / "spiece.model")
        special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "[PAD]"}
        cfg = dict(special, tokenizer_class="T5Tokenizer", extra_ids=0, additional_special_tokens=[],
                   do_lower_case=False, model_max_length=s.n_ctx_train)
    else:
        shutil.copyfile(BPE_JSON, out / "tokenizer.json")
        special = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
        cfg = dict(special, tokenizer_class="GPTNeoXTokenizer", add_prefix_space=False,
                   model_max_length=s.n_ctx_train)
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2))


def _values(rng: np.random.Generator, name: str, shape: Tuple[int, ...], chunk: int) -> Iterator[np.ndarray]:
    """The tensor's f16 values in chunks of at most `chunk` elements (row-major order)."""
    n = int(np.prod(shape))
    if name.endswith("layernorm.weight") or name.endswith("final_layer_norm.weight"):
        yield (1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float16)
        return
    std = 0.02 if name.endswith(".weight") else 0.01
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        yield (std * rng.standard_normal(m, dtype=np.float32)).astype(np.float16)


def write_checkpoint(s: Shape, out: Path, shard_bytes: int = 2 << 30, seed: int = 0) -> Path:
    """Write a random f16 HF checkpoint of shape `s` into `out` (sharded safetensors + index), streaming.
    Returns `out`. A finished checkpoint (marked by a `.complete` file) is reused."""
    done = out / ".complete"
    if done.exists() and json.loads(done.read_text()) == asdict(s):
        return out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # Group tensors into shards of about shard_bytes.
    shards: List[List[Tuple[str, Tuple[int, ...]]]] = [[]]
    size = 0
    for name, shape in tensor_shapes(s):
        nbytes = 2 * int(np.prod(shape))
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((name, shape))
        size += nbytes
    rng = np.random.default_rng(seed)
    weight_map: Dict[str, str] = {}
    total = 0
    for k, shard in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        header: Dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for name, shape in shard:
            nbytes = 2 * int(np.prod(shape))
            header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
            weight_map[name] = fname
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        with open(out / fname, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for name, shape in shard:
                for part in _values(rng, name, shape, chunk=1 << 24):
                    f.write(part.tobytes())
        total += offset
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    (out / "config.json").write_text(json.dumps(hf_config(s), indent=2))
    _tokenizer_files(s, out)
    done.write_text(json.dumps(asdict(s)))
    return out
