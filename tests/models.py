"""Tiny random Hugging Face GPTNeoX checkpoints for the tests, their HF logits, and their GGUF files.

make_hf_model() saves a random GPTNeoXForCausalLM (transformers) with a real tokenizer:
- "bpe": a byte-level BPE (GPT-NeoX style, <|endoftext|> = 0, <|padding|> = 1) trained with `tokenizers`
  on tinyshakespeare;
- "spm": a sentencepiece unigram with byte fallback and a user-defined <NL> (rinna style:
  [PAD] 0, <unk> 1, <s> 2, </s> 3) trained on the Japanese texts.
Trained tokenizers are cached (NEOX_TEST_CACHE, else a folder in the system temp dir), keyed by their
options. The model's vocab_size is larger than the tokenizer's (padding rows), as in the real models.

hf_logits() computes the reference logits with transformers (eager attention) in float32 or float64.
interop_case() is the helper for the llama.cpp interop tests: a 3-layer random model converted to one
output type, with its tokens and float64 HF logits.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

ARTIFACTS = Path(__file__).resolve().parents[2] / "shared" / "artifacts"
if not ARTIFACTS.is_dir():  # CI: shared/ beside the clone
    ARTIFACTS = Path(os.environ.get("NEOX_SHARED", "/work/shared")) / "artifacts"
EN_TEXT = ARTIFACTS / "text" / "en" / "tinyshakespeare.txt"
JA_DIR = ARTIFACTS / "text" / "ja"
JA_FILES = ("rashomon.plain.txt", "kumono_ito.plain.txt", "momotaro.plain.txt")

TOKENIZER_SIZE = 1000
_CACHE_VERSION = "1"

PathLike = Union[str, "os.PathLike[str]"]


def cache_dir() -> Path:
    d = Path(os.environ.get("NEOX_TEST_CACHE") or Path(tempfile.gettempdir()) / "neox_cpp_test_cache")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _cached(kind: str, options: Dict[str, Any], build: Any) -> Path:
    """A cache folder for `kind`+`options`, built once by build(tmp_dir) and renamed into place."""
    blob = json.dumps([_CACHE_VERSION, kind, options], sort_keys=True).encode()
    key = hashlib.sha256(blob).hexdigest()[:16]
    final = cache_dir() / f"{kind}-{key}"
    if final.is_dir():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=cache_dir()))
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# --------------------------------------------------------------------------------------------------
# Tokenizers


def _build_bpe(out: Path, vocab_size: int) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|padding|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train([str(EN_TEXT)], trainer)
    tok.save(str(out / "tokenizer.json"))


def _build_spm(out: Path, vocab_size: int) -> None:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        input=",".join(str(JA_DIR / f) for f in JA_FILES),
        model_prefix=str(out / "spiece"),
        vocab_size=vocab_size,
        model_type="unigram",
        byte_fallback=True,
        user_defined_symbols=["<NL>"],
        pad_id=0, unk_id=1, bos_id=2, eos_id=3,
        pad_piece="[PAD]", unk_piece="<unk>", bos_piece="<s>", eos_piece="</s>",
        character_coverage=0.98,
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        input_sentence_size=200000,
        shuffle_input_sentence=False,
        num_threads=2,
        minloglevel=2,
    )
    (out / "spiece.vocab").unlink(missing_ok=True)


def tokenizer_dir(kind: str, vocab_size: int = TOKENIZER_SIZE) -> Path:
    """The cached folder holding tokenizer.json ("bpe") or spiece.model ("spm")."""
    if kind == "bpe":
        return _cached("bpe", {"vocab": vocab_size}, lambda d: _build_bpe(d, vocab_size))
    if kind == "spm":
        return _cached("spm", {"vocab": vocab_size}, lambda d: _build_spm(d, vocab_size))
    raise ValueError(f"unknown tokenizer kind {kind!r}")


def _install_tokenizer(kind: str, dst: Path, max_pos: int) -> Tuple[int, int, int]:
    """Copy the tokenizer files into dst; returns (tokenizer size, bos id, eos id)."""
    src = tokenizer_dir(kind)
    if kind == "bpe":
        shutil.copy(src / "tokenizer.json", dst / "tokenizer.json")
        special = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
        cfg = dict(special, add_prefix_space=False, model_max_length=max_pos,
                   tokenizer_class="GPTNeoXTokenizer")
        size = len(json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"])
        bos = eos = 0
    else:
        shutil.copy(src / "spiece.model", dst / "spiece.model")
        special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "[PAD]"}
        cfg = dict(special, extra_ids=0, additional_special_tokens=[], sp_model_kwargs={},
                   do_lower_case=False, model_max_length=max_pos, tokenizer_class="T5Tokenizer")
        size, bos, eos = TOKENIZER_SIZE, 2, 3
    (dst / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    (dst / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    return size, bos, eos


BPE_TEXT_START = 2000  # a passage of tinyshakespeare
SPM_TEXT = ("ある日の暮方の事である。<NL>一人の下人が、羅生門の下で雨やみを待っていた。<NL>"
            "吾輩は 猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
            "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。")


def sample_tokens(hf_dir: PathLike, n: int = 64) -> List[int]:
    """n token ids of a fixed text, tokenized by the checkpoint's own tokenizer library."""
    d = Path(hf_dir)
    if (d / "spiece.model").is_file():
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(d / "spiece.model"))
        ids = list(sp.encode(SPM_TEXT * 4))
    else:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        text = EN_TEXT.read_text(encoding="utf-8")[BPE_TEXT_START:BPE_TEXT_START + 4000]
        ids = tok.encode(text, add_special_tokens=False).ids
    if len(ids) < n:
        raise ValueError(f"sample text gives only {len(ids)} tokens")
    return [int(i) for i in ids[:n]]


# --------------------------------------------------------------------------------------------------
# Models


def _randomize(model: Any, seed: int) -> None:
    """Redraw every parameter so that nothing is trivial (no zero bias, no identity norm)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embed_in" in name:
                std, base = 0.5, 0.0
            elif "embed_out" in name:
                std, base = 0.1, 0.0
            elif "layernorm" in name or "layer_norm" in name:
                std, base = (0.1, 1.0) if name.endswith("weight") else (0.05, 0.0)
            elif name.endswith("bias"):
                std, base = 0.05, 0.0
            else:
                std, base = 0.06, 0.0
            p.copy_(base + std * torch.randn(p.shape, generator=g, dtype=torch.float32))


def _write_old_config(path: Path, rotary_pct: float) -> None:
    cfg = json.loads(path.read_text(encoding="utf-8"))
    rope = cfg.pop("rope_parameters", None) or {}
    cfg["rotary_pct"] = rotary_pct
    cfg["rotary_emb_base"] = rope.get("rope_theta", 10000)
    cfg["rope_scaling"] = None
    cfg["architectures"] = ["GPTNeoXForCausalLM"]
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True), encoding="utf-8")


def _save_weights(model: Any, d: Path, weights: str) -> None:
    import torch

    if weights == "safetensors":
        return  # save_pretrained wrote model.safetensors
    # transformers 5 calls the output matrix lm_head in memory; checkpoints on the Hub say embed_out
    sd = {("embed_out.weight" if k == "lm_head.weight" else k): v.detach().contiguous().clone()
          for k, v in model.state_dict().items()}
    (d / "model.safetensors").unlink()
    if weights == "bin":
        torch.save(sd, d / "pytorch_model.bin")
        return
    if weights != "sharded":
        raise ValueError(f"unknown weights format {weights!r}")
    from safetensors.torch import save_file

    names = list(sd)
    n_shards = 3
    chunks = [names[i::n_shards] for i in range(n_shards)]
    weight_map: Dict[str, str] = {}
    total = 0
    for i, chunk in enumerate(chunks):
        fname = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        save_file({k: sd[k] for k in chunk}, str(d / fname), metadata={"format": "pt"})
        for k in chunk:
            weight_map[k] = fname
            total += sd[k].numel() * sd[k].element_size()
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (d / "model.safetensors.index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")


def make_hf_model(
    out_dir: PathLike,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    ff: Optional[int] = None,
    rotary_pct: float = 0.25,
    parallel: bool = True,
    vocab: Optional[int] = None,
    seed: int = 0,
    config_style: str = "old",
    weights: str = "safetensors",
    tokenizer: str = "bpe",
    max_pos: int = 256,
) -> Path:
    """Save a random GPTNeoXForCausalLM with a tokenizer into out_dir (created); returns out_dir."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    tok_size, bos, eos = _install_tokenizer(tokenizer, d, max_pos)
    n_vocab = vocab if vocab is not None else (tok_size + 127) // 128 * 128 + 128  # padding rows
    config = GPTNeoXConfig(
        vocab_size=n_vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=ff if ff is not None else 4 * hidden, hidden_act="gelu",
        max_position_embeddings=max_pos, layer_norm_eps=1e-5, use_parallel_residual=parallel,
        rotary_pct=rotary_pct, rotary_emb_base=10000, tie_word_embeddings=False,
        bos_token_id=bos, eos_token_id=eos, attention_bias=True,
    )
    config.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0,
                              "partial_rotary_factor": rotary_pct}
    torch.manual_seed(seed)
    model = GPTNeoXForCausalLM(config).eval()
    _randomize(model, seed)
    model.save_pretrained(str(d))
    _save_weights(model, d, weights)
    if config_style == "old":
        _write_old_config(d / "config.json", rotary_pct)
    elif config_style == "new":
        cfg = json.loads((d / "config.json").read_text(encoding="utf-8"))
        assert "rope_parameters" in cfg and "rotary_pct" not in cfg, "transformers wrote an old-style config"
    else:
        raise ValueError(f"unknown config_style {config_style!r}")
    return d


_MODEL_CACHE: Dict[Tuple[str, str], Any] = {}


def load_hf_model(hf_dir: PathLike, dtype: str = "float32") -> Any:
    import torch
    from transformers import GPTNeoXForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    key = (str(Path(hf_dir).resolve()), dtype)
    if key not in _MODEL_CACHE:
        model = GPTNeoXForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32,
                                                   attn_implementation="eager")
        if dtype == "float64":
            model = model.to(torch.float64)
        _MODEL_CACHE.clear()
        _MODEL_CACHE[key] = model.eval()
    return _MODEL_CACHE[key]


def hf_logits(hf_dir: PathLike, tokens: List[int], dtype: str = "float32") -> np.ndarray:
    """HF logits [len(tokens), vocab_size] of one forward pass over tokens, computed in `dtype`
    ("float32" or "float64"), returned as float64."""
    import torch

    model = load_hf_model(hf_dir, dtype)
    with torch.no_grad():
        out = model(torch.tensor([tokens], dtype=torch.long), use_cache=False)
    return out.logits[0].to(torch.float64).numpy()


def convert_model(hf_dir: PathLike, out_dir: PathLike, outtype: str, name: Optional[str] = None) -> Path:
    """Convert with neox_cpp's converter (no progress bar); returns the GGUF path."""
    from neox_cpp.convert import convert

    out = Path(out_dir) / f"{name or Path(hf_dir).name}-{outtype}.gguf"
    convert(hf_dir, out, outtype, progress=False)
    return out


def rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    """||ours - ref|| / ||ref|| over the whole array (Frobenius norm)."""
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(ref, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


INTEROP_SHAPE = dict(hidden=128, layers=3, heads=4, rotary_pct=0.25, parallel=True, tokenizer="bpe", seed=3)


def interop_case(outtype: str, work_dir: PathLike, n_tokens: int = 64) -> Tuple[Path, List[int], np.ndarray]:
    """For the llama.cpp interop tests: (gguf_path, tokens, hf_logits) for a 3-layer random model
    (hidden 128, 4 heads, rotary 0.25, parallel residual, BPE vocabulary) converted to `outtype`.
    hf_logits is HF's float64 forward pass, shape [n_tokens, vocab_size]. The HF checkpoint is built once
    per work_dir (in work_dir/hf-interop) and reused for every outtype."""
    work = Path(work_dir)
    hf_dir = work / "hf-interop"
    if not (hf_dir / "config.json").is_file():
        tmp = work / f"hf-interop.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        make_hf_model(tmp, **INTEROP_SHAPE)  # type: ignore[arg-type]
        os.replace(tmp, hf_dir)
    gguf_path = work / f"interop-{outtype}.gguf"
    if not gguf_path.is_file():
        from neox_cpp.convert import convert

        convert(hf_dir, gguf_path, outtype, progress=False)
    tokens = sample_tokens(hf_dir, n_tokens)
    return gguf_path, tokens, hf_logits(hf_dir, tokens, "float64")
