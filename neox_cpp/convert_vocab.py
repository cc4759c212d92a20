"""The tokenizer half of the converter: tokenizer.json (byte-level BPE) or spiece.model /
tokenizer.model (sentencepiece) -> GGUF tokenizer keys.

Standard llama.cpp keys where they exist (tokenizer.ggml.*), `neox_cpp.tokenizer.*` for what the engine
needs and llama.cpp has no key for (sentencepiece model type, byte fallback, normalizer name, ...).
Token types are sentencepiece's: 1 NORMAL, 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
PAD_SCORE = -10000.0
NS = "neox_cpp.tokenizer."


class VocabError(ValueError):
    """The tokenizer files cannot be converted."""


def _read_json(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return data if isinstance(data, dict) else {}


def _token_content(v: Any) -> Optional[str]:
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get("content"), str):
        return v["content"]
    return None


def _special_ids(hf_dir: Path, lookup: Dict[str, int], n_tokens: int,
                 defaults: Dict[str, Optional[int]]) -> Dict[str, Optional[int]]:
    """bos/eos/unk/pad/sep ids: token strings of tokenizer_config.json / special_tokens_map.json, then
    config.json's *_token_id, then the tokenizer file's own defaults."""
    tcfg = _read_json(hf_dir / "tokenizer_config.json")
    smap = _read_json(hf_dir / "special_tokens_map.json")
    cfg = _read_json(hf_dir / "config.json")
    out: Dict[str, Optional[int]] = {}
    for name in ("bos", "eos", "unk", "pad", "sep"):
        found: Optional[int] = None
        for src in (tcfg, smap):
            content = _token_content(src.get(f"{name}_token"))
            if content is not None and content in lookup:
                found = lookup[content]
                break
        if found is None:
            v = cfg.get(f"{name}_token_id")
            if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < n_tokens:
                found = v
        if found is None:
            d = defaults.get(name)
            if d is not None and 0 <= d < n_tokens:
                found = d
        out[name] = found
    return out


def _add_flags(hf_dir: Path) -> Tuple[bool, bool]:
    """add_bos / add_eos as the HF tokenizer does: tokenizer_config.json's flags, default False (GPT-NeoX
    and rinna add neither)."""
    tcfg = _read_json(hf_dir / "tokenizer_config.json")
    return bool(tcfg.get("add_bos_token", False)), bool(tcfg.get("add_eos_token", False))


def _write_common(writer: Any, ids: Dict[str, Optional[int]], hf_dir: Path) -> None:
    if ids.get("bos") is not None:
        writer.add_bos_token_id(ids["bos"])
    if ids.get("eos") is not None:
        writer.add_eos_token_id(ids["eos"])
    if ids.get("unk") is not None:
        writer.add_unk_token_id(ids["unk"])
    if ids.get("pad") is not None:
        writer.add_pad_token_id(ids["pad"])
    if ids.get("sep") is not None:
        writer.add_sep_token_id(ids["sep"])
    add_bos, add_eos = _add_flags(hf_dir)
    writer.add_add_bos_token(add_bos)
    writer.add_add_eos_token(add_eos)


def _pad_to(tokens: List[str], scores: List[float], types: List[int], n_vocab: int) -> None:
    for i in range(len(tokens), n_vocab):
        tokens.append(f"[PAD{i}]")
        scores.append(PAD_SCORE)
        types.append(UNUSED)


# --------------------------------------------------------------------------------------------------
# sentencepiece


def _sentencepiece(writer: Any, hf_dir: Path, model_file: Path, n_vocab: int) -> None:
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.ParseFromString(model_file.read_bytes())
    ts, ns = proto.trainer_spec, proto.normalizer_spec
    model_type = {pb.TrainerSpec.UNIGRAM: "unigram", pb.TrainerSpec.BPE: "bpe"}.get(ts.model_type)
    if model_type is None:
        raise VocabError(f"{model_file}: sentencepiece model type {ts.model_type} is not supported "
                         "(unigram and BPE are)")
    tokens: List[str] = []
    scores: List[float] = []
    types: List[int] = []
    for p in proto.pieces:
        tokens.append(p.piece)
        scores.append(float(p.score))
        types.append(int(p.type))
    n_sp = len(tokens)
    if n_vocab < n_sp:
        raise VocabError(f"{model_file}: {n_sp} pieces but the model has only {n_vocab} embedding rows")
    _pad_to(tokens, scores, types, n_vocab)
    lookup = {t: i for i, t in enumerate(tokens[:n_sp])}

    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    trainer_ids = {"bos": ts.bos_id, "eos": ts.eos_id, "unk": ts.unk_id, "pad": ts.pad_id}
    ids = _special_ids(hf_dir, lookup, n_sp, {k: (v if v >= 0 else None) for k, v in trainer_ids.items()})
    if ids.get("unk") is None:
        unk = [i for i, t in enumerate(types[:n_sp]) if t == UNKNOWN]
        ids["unk"] = unk[0] if unk else None
    _write_common(writer, ids, hf_dir)
    writer.add_add_space_prefix(bool(ns.add_dummy_prefix))
    writer.add_remove_extra_whitespaces(bool(ns.remove_extra_whitespaces))
    if ns.precompiled_charsmap:
        writer.add_precompiled_charsmap(bytes(ns.precompiled_charsmap))
    writer.add_string(NS + "sp_model_type", model_type)
    writer.add_bool(NS + "byte_fallback", bool(ts.byte_fallback))
    writer.add_string(NS + "normalizer", ns.name or "identity")
    writer.add_bool(NS + "escape_whitespaces", bool(ns.escape_whitespaces))
    writer.add_bool(NS + "treat_whitespace_as_suffix", bool(ts.treat_whitespace_as_suffix))
    writer.add_bool(NS + "split_digits", bool(ts.split_digits))
    if ts.HasField("unk_surface"):
        writer.add_string(NS + "unk_surface", ts.unk_surface)


# --------------------------------------------------------------------------------------------------
# byte-level BPE (tokenizer.json)


def _normalizer_is_nfc(norm: Any, path: Path) -> bool:
    if norm is None:
        return False
    kind = norm.get("type")
    if kind == "NFC":
        return True
    if kind == "Sequence":
        parts = norm.get("normalizers") or []
        flags = [_normalizer_is_nfc(p, path) for p in parts]
        return any(flags)
    raise VocabError(f"{path}: normalizer {kind!r} is not supported (only NFC or none)")


def _byte_level(pre: Any, path: Path) -> bool:
    """add_prefix_space of the ByteLevel pre-tokenizer (possibly inside a Sequence)."""
    if pre is None:
        raise VocabError(f"{path}: no pre_tokenizer; only ByteLevel tokenizers are supported")
    if pre.get("type") == "ByteLevel":
        if pre.get("use_regex", True) is False:
            raise VocabError(f"{path}: ByteLevel with use_regex=false is not supported")
        return bool(pre.get("add_prefix_space", False))
    if pre.get("type") == "Sequence" and len(pre.get("pretokenizers") or []) == 1:
        return _byte_level(pre["pretokenizers"][0], path)
    raise VocabError(f"{path}: pre_tokenizer {pre.get('type')!r} is not supported (ByteLevel only)")


def _tokenizer_json(writer: Any, hf_dir: Path, path: Path, n_vocab: int) -> None:
    with open(path, encoding="utf-8") as f:
        tj = json.load(f)
    model = tj.get("model") or {}
    if model.get("type") != "BPE":
        raise VocabError(f"{path}: model type {model.get('type')!r} is not supported (BPE only)")
    nfc = _normalizer_is_nfc(tj.get("normalizer"), path)
    add_prefix_space = _byte_level(tj.get("pre_tokenizer"), path)
    vocab: Dict[str, int] = model.get("vocab") or {}
    by_id: Dict[int, Tuple[str, int]] = {i: (t, NORMAL) for t, i in vocab.items()}
    for at in tj.get("added_tokens") or []:
        by_id[int(at["id"])] = (at["content"], CONTROL if at.get("special") else USER_DEFINED)
    n_tok = max(by_id) + 1 if by_id else 0
    if n_vocab < n_tok:
        raise VocabError(f"{path}: {n_tok} tokens but the model has only {n_vocab} embedding rows")
    tokens: List[str] = []
    types: List[int] = []
    for i in range(n_tok):
        t, kind = by_id.get(i, (f"[PAD{i}]", UNUSED))
        tokens.append(t)
        types.append(kind)
    scores: List[float] = [0.0] * len(tokens)
    _pad_to(tokens, scores, types, n_vocab)
    merges: List[str] = []
    for m in model.get("merges") or []:
        if isinstance(m, str):
            merges.append(m)
        else:
            a, b = m
            merges.append(f"{a} {b}")
    lookup = {t: i for i, t in enumerate(tokens[:n_tok]) if types[i] != UNUSED}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    eot = lookup.get("<|endoftext|>")  # GPT-NeoX's bos = eos = unk when no config file says otherwise
    ids = _special_ids(hf_dir, lookup, n_tok, {"bos": eot, "eos": eot, "unk": eot})
    _write_common(writer, ids, hf_dir)
    writer.add_bool(NS + "nfc", nfc)
    writer.add_bool(NS + "add_prefix_space", add_prefix_space)


# --------------------------------------------------------------------------------------------------


def add_tokenizer(writer: Any, hf_dir: Path, n_vocab: int) -> None:
    """Write the tokenizer of the checkpoint in hf_dir into `writer` (a gguf.GGUFWriter), padding the
    token list to n_vocab entries (the model's embedding rows) with "[PAD{id}]" UNUSED tokens."""
    hf_dir = Path(hf_dir)
    for name in ("spiece.model", "tokenizer.model"):
        if (hf_dir / name).is_file():
            _sentencepiece(writer, hf_dir, hf_dir / name, n_vocab)
            return
    if (hf_dir / "tokenizer.json").is_file():
        _tokenizer_json(writer, hf_dir, hf_dir / "tokenizer.json", n_vocab)
        return
    raise VocabError(f"{hf_dir}: no tokenizer.json, spiece.model or tokenizer.model")


# --------------------------------------------------------------------------------------------------
# chat templates (see docs: prompts for rinna instruction, RedPajama chat, Dolly v2)

RINNA_TEMPLATE = (
    "{%- set ns = namespace(parts=[]) -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'user' -%}"
    "{%- set ns.parts = ns.parts + ['ユーザー: ' + (m['content'] | replace('\\n', '<NL>'))] -%}"
    "{%- elif m['role'] == 'assistant' -%}"
    "{%- set ns.parts = ns.parts + ['システム: ' + (m['content'] | replace('\\n', '<NL>'))] -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{%- set ns.parts = ns.parts + ['システム: '] -%}{%- endif -%}"
    "{{- ns.parts | join('<NL>') -}}"
)

REDPAJAMA_CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    # `{% elif`/`{% endif` without '-' on the left: a '-' there would strip the preceding newline.
    "{%- if m['role'] == 'user' -%}<human>: {{ m['content'] }}\n"
    "{% elif m['role'] == 'assistant' -%}<bot>: {{ m['content'] }}\n"
    "{% endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<bot>:{%- endif -%}"
)

DOLLY_TEMPLATE = (
    "{%- set ns = namespace(intro='Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.') -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}{%- set ns.intro = m['content'] -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'user' -%}"
    "{{ ns.intro }}\n\n### Instruction:\n{{ m['content'] }}\n\n### Response:\n"
    "{% elif m['role'] == 'assistant' -%}{{ m['content'] }}\n\n### End\n\n"
    "{% endif -%}"
    "{%- endfor -%}"
)


def _family_name(hf_dir: Path) -> str:
    cfg = _read_json(hf_dir / "config.json")
    names = [hf_dir.resolve().name, str(cfg.get("_name_or_path", ""))]
    return " ".join(names).lower()


def chat_template_for(hf_dir: Path) -> Optional[str]:
    """tokenizer_config.json's chat_template, else a template for a recognized family (rinna
    instruction models, RedPajama-INCITE chat, Dolly v2), else None."""
    hf_dir = Path(hf_dir)
    tcfg = _read_json(hf_dir / "tokenizer_config.json")
    tmpl = tcfg.get("chat_template")
    if isinstance(tmpl, str) and tmpl:
        return tmpl
    if isinstance(tmpl, list):
        named = {t.get("name"): t.get("template") for t in tmpl if isinstance(t, dict)}
        chosen = named.get("default") or next((t for t in named.values() if isinstance(t, str)), None)
        if isinstance(chosen, str):
            return chosen
    name = _family_name(hf_dir)
    if "rinna" in name and any(k in name for k in ("instruction", "sft", "ppo")):
        return RINNA_TEMPLATE
    if "redpajama" in name and "chat" in name:
        return REDPAJAMA_CHAT_TEMPLATE
    if "dolly" in name:
        return DOLLY_TEMPLATE
    return None
