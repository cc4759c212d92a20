"""Helpers for the tokenizer tests (no tests here): trained tokenizers, vocab-only GGUF files written with
neox_cpp.convert_vocab.add_tokenizer, the engine's tokenizer through ctypes, and the seeded corpora."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import random
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

ARTIFACTS = Path(__file__).resolve().parents[2] / "shared" / "artifacts"
if not ARTIFACTS.is_dir():
    ARTIFACTS = Path(os.environ.get("NEOX_SHARED", "/work/shared")) / "artifacts"
TEXT_JA = ARTIFACTS / "text" / "ja"
TEXT_EN = ARTIFACTS / "text" / "en" / "tinyshakespeare.txt"
TOK_DIR = ARTIFACTS / "tokenizers"
NEOX_JSON = TOK_DIR / "gpt-neox-20b" / "20B_tokenizer.json"
NEOX_GGUF = TOK_DIR / "gpt-neox-20b" / "ggml-vocab-gpt-neox.gguf"
RINNA_GPT2_SP = TOK_DIR / "rinna-japanese-gpt2" / "google_sp.model"
N_CORPUS = int(os.environ.get("NEOX_TOKENIZER_CORPUS", "20000"))
_CACHE_VERSION = "3"


def cache_dir() -> Path:
    d = Path(os.environ.get("NEOX_TEST_CACHE") or Path(tempfile.gettempdir()) / "neox_cpp_test_cache")
    d.mkdir(parents=True, exist_ok=True)
    return d


def cached_dir(kind: str, options: Dict[str, Any], build: Any) -> Path:
    blob = json.dumps([_CACHE_VERSION, kind, options], sort_keys=True).encode()
    key = hashlib.sha256(blob).hexdigest()[:16]
    final = cache_dir() / f"tok-{kind}-{key}"
    if final.is_dir():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f"tok-{kind}-", dir=cache_dir()))
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def ja_text() -> str:
    return (TEXT_JA / "wagahaiwa_nekodearu.plain.txt").read_text(encoding="utf-8")


def en_text() -> str:
    return TEXT_EN.read_text(encoding="utf-8")


def _training_text(out: Path) -> Path:
    parts = [(TEXT_JA / n).read_text(encoding="utf-8") for n in ("rashomon.plain.txt", "kumono_ito.plain.txt",
                                                               "momotaro.plain.txt")]
    parts.append(ja_text()[:300_000])
    parts.append(en_text()[:200_000])
    p = out / "train.txt"
    p.write_text("\n".join(parts), encoding="utf-8")
    return p


# --------------------------------------------------------------------------------------------------
# Trained tokenizers: each returns an HF-style folder holding spiece.model or tokenizer.json


def train_spm(model_type: str = "unigram", normalization: str = "identity", vocab_size: int = 4000,
              add_dummy_prefix: bool = False, remove_extra_whitespaces: bool = False,
              byte_fallback: bool = True, split_by_whitespace: bool = True) -> Path:
    opts: Dict[str, Any] = dict(
        model_type=model_type, normalization=normalization, vocab_size=vocab_size,
        add_dummy_prefix=add_dummy_prefix, remove_extra_whitespaces=remove_extra_whitespaces,
        byte_fallback=byte_fallback)
    if not split_by_whitespace:  # only when not the default, so cached tokenizers keep their keys
        opts["split_by_whitespace"] = False

    def build(out: Path) -> None:
        import sentencepiece as spm

        text = _training_text(out)
        spm.SentencePieceTrainer.train(
            input=str(text), model_prefix=str(out / "spiece"), model_type=model_type, vocab_size=vocab_size,
            character_coverage=0.9995, byte_fallback=byte_fallback, user_defined_symbols=["<NL>"],
            add_dummy_prefix=add_dummy_prefix, remove_extra_whitespaces=remove_extra_whitespaces,
            normalization_rule_name=normalization, pad_id=0, unk_id=1, bos_id=2, eos_id=3,
            pad_piece="[PAD]", max_sentence_length=100000, num_threads=2, minloglevel=2,
            split_by_whitespace=split_by_whitespace,
        )
        text.unlink()
        (out / "spiece.vocab").unlink()
        (out / "config.json").write_text(json.dumps({"bos_token_id": 2, "eos_token_id": 3}))
        (out / "tokenizer_config.json").write_text(json.dumps(
            {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "[PAD]",
             "add_bos_token": False, "add_eos_token": False}))

    return cached_dir("spm", opts, build)


def train_bytelevel_bpe(vocab_size: int = 3000) -> Path:
    def build(out: Path) -> None:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|padding|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        text = _training_text(out)
        tok.train([str(text)], trainer)
        text.unlink()
        from tokenizers import AddedToken

        tok.add_tokens([AddedToken(" " * n, normalized=True) for n in (8, 4, 3, 2)])
        tok.save(str(out / "tokenizer.json"))
        (out / "tokenizer_config.json").write_text(json.dumps(
            {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}))

    return cached_dir("bbpe", {"vocab_size": vocab_size}, build)


def hf_dir_for(file: Path, name: str) -> Path:
    """A folder holding `file` under the name `name` (spiece.model / tokenizer.json)."""
    def build(out: Path) -> None:
        shutil.copyfile(file, out / name)

    return cached_dir("copy", {"file": str(file), "name": name, "size": file.stat().st_size}, build)


def write_vocab_gguf(hf_dir: Path, out: Path, n_vocab: Optional[int] = None) -> Path:
    """A vocab-only GGUF (architecture gptneox, no tensors) with add_tokenizer()'s keys."""
    import gguf
    from neox_cpp.convert_vocab import add_tokenizer, chat_template_for

    if n_vocab is None:
        n_vocab = tokenizer_size(hf_dir) + 7  # padding rows, as real models have
    w = gguf.GGUFWriter(str(out), "gptneox")
    w.add_string("general.name", "tokenizer-test")
    w.add_uint32("gptneox.context_length", 2048)
    w.add_uint32("gptneox.embedding_length", 64)
    w.add_uint32("gptneox.block_count", 1)
    w.add_uint32("gptneox.feed_forward_length", 256)
    w.add_uint32("gptneox.attention.head_count", 4)
    w.add_uint32("gptneox.rope.dimension_count", 16)
    w.add_float32("gptneox.attention.layer_norm_epsilon", 1e-5)
    w.add_bool("gptneox.use_parallel_residual", True)
    add_tokenizer(w, hf_dir, n_vocab)
    tmpl = chat_template_for(hf_dir)
    if tmpl:
        w.add_string("tokenizer.chat_template", tmpl)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    return out


def tokenizer_size(hf_dir: Path) -> int:
    if (hf_dir / "spiece.model").is_file():
        import sentencepiece as spm

        return int(spm.SentencePieceProcessor(model_file=str(hf_dir / "spiece.model")).get_piece_size())
    from tokenizers import Tokenizer

    return int(Tokenizer.from_file(str(hf_dir / "tokenizer.json")).get_vocab_size(with_added_tokens=True))


# --------------------------------------------------------------------------------------------------
# The engine's tokenizer


class Engine:
    """A vocab-only model loaded by libgptneox, tokenizing through the C API."""

    def __init__(self, path: Path) -> None:
        from neox_cpp import _lib

        self.lib = _lib
        params = _lib.gptneox_model_default_params()
        params.vocab_only = True
        self.model = _lib.gptneox_model_load_from_file(str(path).encode(), params)
        if not self.model:
            raise RuntimeError(f"load failed: {_lib.gptneox_last_error()!r}")
        self.vocab = _lib.gptneox_model_get_vocab(self.model)
        self._buf = (ctypes.c_int32 * 4096)()
        self._text = ctypes.create_string_buffer(1 << 16)

    def close(self) -> None:
        if self.model:
            self.lib.gptneox_model_free(self.model)
            self.model = None

    def encode(self, text: Any, add_special: bool = False, parse_special: bool = False) -> List[int]:
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        n = self.lib.gptneox_vocab_tokenize(self.vocab, data, len(data), self._buf, len(self._buf),
                                            add_special, parse_special)
        if n < 0:
            if n < -(1 << 28):
                raise RuntimeError(f"tokenize failed: {self.lib.gptneox_last_error()!r}")
            self._buf = (ctypes.c_int32 * (-n))()
            n = self.lib.gptneox_vocab_tokenize(self.vocab, data, len(data), self._buf, len(self._buf),
                                                add_special, parse_special)
        # memoryview.tolist() builds the list in C (a ctypes slice goes element by element)
        return memoryview(self._buf).cast("B").cast("i")[:n].tolist()

    def decode(self, ids: Sequence[int], remove_special: bool = False,
               unparse_special: bool = False) -> bytes:
        arr = (ctypes.c_int32 * max(1, len(ids)))(*ids)
        n = self.lib.gptneox_detokenize(self.vocab, arr, len(ids), self._text, len(self._text),
                                        remove_special, unparse_special)
        if n < 0:
            self._text = ctypes.create_string_buffer(-n)
            n = self.lib.gptneox_detokenize(self.vocab, arr, len(ids), self._text, len(self._text),
                                            remove_special, unparse_special)
        assert n >= 0, self.lib.gptneox_last_error()
        return self._text.raw[:n]

    def piece(self, token: int, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(256)
        n = self.lib.gptneox_token_to_piece(self.vocab, token, buf, 256, 0, special)
        assert n >= 0
        return buf.raw[:n]

    def __getattr__(self, name: str) -> Any:  # bos(), eos(), n_tokens(), ...
        fn = getattr(self.lib, f"gptneox_vocab_{name}")
        return lambda *a: fn(self.vocab, *a)


# --------------------------------------------------------------------------------------------------
# Corpora


def _assigned(lo: int, hi: int) -> List[str]:
    out = []
    for cp in range(lo, hi):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        if unicodedata.category(c) != "Cn":
            out.append(c)
    return out


_BLOCKS: Optional[List[List[str]]] = None


def unicode_blocks() -> List[List[str]]:
    """Assigned characters (per this Python's unicodedata) in every 128-code-point chunk that has any."""
    global _BLOCKS
    if _BLOCKS is None:
        blocks = []
        for lo in range(0, 0x110000, 128):
            if 0xD800 <= lo < 0xE000 or 0xF0000 <= lo:  # surrogates; planes 15-16 are private use only
                continue
            chars = _assigned(lo, lo + 128)
            if chars:
                blocks.append(chars)
        blocks.append([chr(c) for c in range(0xF0000, 0xF0080)])  # a private-use sample
        _BLOCKS = blocks
    return _BLOCKS


HIRA = [chr(c) for c in range(0x3041, 0x3097)]
KATA = [chr(c) for c in range(0x30A1, 0x30FB)] + ["ー", "々"]
KANJI = [chr(c) for c in range(0x4E00, 0x9FF0)]
FULL = [chr(c) for c in range(0xFF01, 0xFF5F)]
HALF_KANA = [chr(c) for c in range(0xFF61, 0xFFA0)]
ASCII = [chr(c) for c in range(0x20, 0x7F)]
EMOJI = ["😀", "👍", "👨", "👩", "👧", "👦", "❤", "🇯", "🇵", "🏳", "🌈", "🧑", "💻", "🤝", "✋", "🙏"]
SKIN = ["\U0001F3FB", "\U0001F3FC", "\U0001F3FD", "\U0001F3FE", "\U0001F3FF"]
COMBINING = [chr(c) for c in range(0x300, 0x370)] + ["\u3099", "\u309A", "\u20DD", "\uFE0F", "\uFE0E"]
SPACES = [" ", " ", " ", "\t", "\n", "\r\n", "\r", "\u3000", "\u00a0", "\u2003", "\u200b", "\x0b", "\x0c",
          "\x1c", "\x1f", "\x85", "\u2028"]
CONTROLS = [chr(c) for c in list(range(0, 0x20)) + list(range(0x7F, 0xA0))]
SPECIALS = ["<NL>", "</s>", "<s>", "<unk>", "[PAD]", "<|endoftext|>", "<|padding|>", "<0x41>", "▁", "▁▁"]
CODE = ["def f(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
        "if x != None and y >= 3: print(f'{x!r}')", "#include <stdio.h>\nint main(void) { return 0; }",
        "SELECT * FROM t WHERE id = 42;", "const s = `a ${b}`; // comment", "x = {'k': [1, 2.5e-3]}",
        "  \t  indented\n\n\n", "<html><body class=\"x\">&amp;</body></html>", "λx. x → y ≠ z"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'x", "''", "' s"]


def _choice_str(rng: random.Random, pool: Sequence[str], lo: int, hi: int) -> str:
    return "".join(rng.choice(pool) for _ in range(rng.randint(lo, hi)))


def corpus(seed: int, n: int = N_CORPUS, specials: Sequence[str] = SPECIALS) -> List[str]:
    rng = random.Random(seed)
    ja = ja_text()
    en = en_text()
    blocks = unicode_blocks()
    out: List[str] = ["", " ", "  ", "\n", "<NL>", "</s>", "<|endoftext|>", "a", "あ", "▁"]

    def window(text: str, lo: int, hi: int) -> str:
        k = rng.randint(lo, hi)
        i = rng.randrange(0, max(1, len(text) - k))
        return text[i:i + k]

    def mixed() -> str:
        parts = []
        for _ in range(rng.randint(1, 6)):
            parts.append(rng.choice(gens)())
        return rng.choice(["", " ", "\n", "  "]).join(parts)

    def emoji() -> str:
        s = []
        for _ in range(rng.randint(1, 5)):
            e = rng.choice(EMOJI)
            if rng.random() < 0.4:
                e += rng.choice(SKIN)
            if rng.random() < 0.4:
                e += "\u200d" + rng.choice(EMOJI)
            if rng.random() < 0.2:
                e += "\ufe0f"
            s.append(e)
        return rng.choice(["", " "]).join(s)

    def combining() -> str:
        s = []
        for _ in range(rng.randint(1, 8)):
            base = rng.choice(ASCII + HIRA + ["ᄀ", "가", "각", "ᅡ", "ᆨ", "Å", "e"])
            s.append(base + "".join(rng.choice(COMBINING) for _ in range(rng.randint(0, 3))))
        return "".join(s)

    def block() -> str:
        chars = rng.choice(blocks)
        return _choice_str(rng, chars + [" "], 1, 12)

    def whitespace() -> str:
        s = []
        for _ in range(rng.randint(1, 8)):
            words = ["word", "語", "x1", "."]
            s.append(_choice_str(rng, SPACES, 1, 30) if rng.random() < 0.5 else rng.choice(words))
        return "".join(s)

    def controls() -> str:
        return _choice_str(rng, CONTROLS + ASCII[:20] + ["a", "b", " "], 1, 20)

    def special() -> str:
        s = []
        for _ in range(rng.randint(1, 6)):
            s.append(rng.choice(list(specials) + [window(ja, 1, 10), window(en, 1, 20), " ", ""]))
        return "".join(s)

    def long_word() -> str:
        kind = rng.randrange(5)
        k = rng.randint(100, 3000)
        if kind == 0:
            return "a" * k
        if kind == 1:
            return _choice_str(rng, [chr(c) for c in range(0x61, 0x7B)], k, k)
        if kind == 2:
            return _choice_str(rng, KANJI[:500] + HIRA, k // 3, k // 3)
        if kind == 3:
            return _choice_str(rng, list("0123456789"), k, k)
        return " " * rng.randint(20, 400)

    gens = [
        lambda: window(ja, 1, 200),
        lambda: window(ja, 1, 30),
        lambda: _choice_str(rng, HIRA + KATA + KANJI[:3000], 1, 30),
        lambda: _choice_str(rng, FULL + HALF_KANA + ASCII + HIRA, 1, 30),
        lambda: window(en, 1, 300),
        lambda: window(en, 1, 40),
        lambda: rng.choice(CODE) + _choice_str(rng, ASCII, 0, 10),
        emoji,
        combining,
        block,
        block,
        whitespace,
        controls,
        special,
        lambda: rng.choice(CONTRACTIONS) + _choice_str(rng, ASCII, 0, 6),
        lambda: _choice_str(rng, ASCII, 1, 50),
    ]
    while len(out) < n:
        r = rng.random()
        if r < 0.01:
            out.append(long_word())
        elif r < 0.15:
            out.append(mixed())
        else:
            out.append(rng.choice(gens)())
    # every block at least once
    for i, chars in enumerate(blocks):
        out.append("".join(chars[(i + j) % len(chars)] for j in range(8)))
    return out


def long_texts(seed: int, n: int = 60, max_len: int = 20000) -> List[str]:
    """Long strings (2k-max_len characters): windows of the Japanese and English texts, generated corpus
    strings joined by newlines, spaces or nothing, and whitespace-heavy text. Long inputs are where the
    engine cuts the unigram lattice into chunks, so they check that the cuts never change a token."""
    rng = random.Random(seed)
    ja, en = ja_text(), en_text()
    short = corpus(seed + 1, n=3000)
    out: List[str] = []
    for i in range(n):
        kind = i % 5
        k = rng.randint(2000, max_len)
        if kind == 0:
            j = rng.randrange(0, len(ja) - k)
            out.append(ja[j:j + k])
        elif kind == 1:
            j = rng.randrange(0, len(en) - k)
            out.append(en[j:j + k])
        elif kind == 2:
            parts: List[str] = []
            while sum(len(p) for p in parts) < k:
                parts.append(rng.choice(short))
            out.append(rng.choice(["\n", " ", "", "  ", "\n\n"]).join(parts))
        elif kind == 3:
            words = ["word", "語", "x1", ".", "\n", "<NL>", "▁", "\t", "テスト", "a b"]
            out.append("".join(rng.choice(SPACES) * rng.randint(1, 5) if rng.random() < 0.4
                               else rng.choice(words) for _ in range(k // 3)))
        else:  # one window of each text, with the text's own newlines turned into spaces
            j = rng.randrange(0, len(ja) - k)
            e = rng.randrange(0, len(en) - k)
            out.append(ja[j:j + k // 2].replace("\n", " ") + en[e:e + k // 2].replace("\n", " "))
    return out
