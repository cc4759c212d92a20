"""Loading corrupt or unsupported GGUF files must raise NeoxError with a message that says what is wrong
(and names the file), never crash. Each case starts from a tiny valid model written by gguf's GGUFWriter
(tests/gguf_fixtures.py) and breaks one thing."""

from __future__ import annotations

import ctypes
import struct
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gguf_fixtures as fx  # noqa: E402

from models import ARTIFACTS  # noqa: E402
from neox_cpp import _lib  # noqa: E402
from neox_cpp._lib import NeoxError  # noqa: E402

VT = fx.VT
ARTIFACT_VOCAB = ARTIFACTS / "tokenizers" / "gpt-neox-20b" / "ggml-vocab-gpt-neox.gguf"


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.write_tiny_model(tmp_path_factory.mktemp("gguf") / "valid.gguf", matrix_type="q8_0")


@pytest.fixture(scope="module")
def valid_bytes(valid: Path) -> bytes:
    return valid.read_bytes()


def load(path: Path, **kw: Any) -> _lib.Model:
    return _lib.Model(path, **kw)


def expect_error(path: Path, *phrases: str, status: Optional[int] = None, **kw: Any) -> NeoxError:
    with pytest.raises(NeoxError) as info:
        load(path, **kw).close()
    msg = str(info.value)
    assert str(path) in msg, msg
    for p in phrases:
        assert p in msg, f"{p!r} not in {msg!r}"
    if status is not None:
        assert info.value.status == status, (info.value.status_name, msg)
    return info.value


def patched(tmp: Path, data: bytes, name: str = "bad.gguf") -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


def put(data: bytes, offset: int, fmt: str, value: Any) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


def tensor_info_offset_field(data: bytes, name: str) -> int:
    """File offset of the u64 `offset` field of tensor `name`'s info record."""
    key = struct.pack("<Q", len(name)) + name.encode()
    at = data.index(key) + len(key)
    n_dims = struct.unpack_from("<I", data, at)[0]
    return at + 4 + 8 * n_dims + 4


# ---------------------------------------------------------------------------------------------------
# The valid file


def test_valid_file_loads_with_the_written_values(valid: Path) -> None:
    keys = fx.default_keys(ftype=7)
    for use_mmap in (True, False):
        with load(valid, use_mmap=use_mmap, check_tensors=True) as m:
            p = m.ptr
            assert _lib.gptneox_model_n_embd(p) == keys["gptneox.embedding_length"][0]
            assert _lib.gptneox_model_n_layer(p) == keys["gptneox.block_count"][0]
            assert _lib.gptneox_model_n_head(p) == keys["gptneox.attention.head_count"][0]
            assert _lib.gptneox_model_n_ff(p) == keys["gptneox.feed_forward_length"][0]
            assert _lib.gptneox_model_n_rot(p) == keys["gptneox.rope.dimension_count"][0]
            assert _lib.gptneox_model_n_ctx_train(p) == keys["gptneox.context_length"][0]
            assert _lib.gptneox_model_rope_freq_base_train(p) == 10000.0  # default: key not written
            assert _lib.gptneox_model_use_parallel_residual(p) is True
            assert _lib.gptneox_model_ftype(p) == 7
            assert m.n_vocab == len(fx.tiny_vocab()[0])
            assert m.desc().startswith("gptneox ") and m.desc().endswith(" Q8_0")
            layout = fx.tensor_layout(valid)
            assert _lib.gptneox_model_size(p) == sum(n for _, n in layout.values())
            md = m.metadata()
            assert md["general.name"] == "tiny-gptneox"
            assert md["gptneox.block_count"] == "2"
            assert md["gptneox.use_parallel_residual"] == "true"
            assert md["tokenizer.ggml.tokens"].startswith('["<|endoftext|>", ') and md[
                "tokenizer.ggml.tokens"
            ].endswith(", ...]")
            tmpl = _lib.gptneox_model_chat_template(p, None)
            assert tmpl == keys["tokenizer.chat_template"][0].encode()
            assert _lib.gptneox_model_chat_template(p, b"tool_use") is None


def test_meta_val_str_has_snprintf_semantics(valid: Path) -> None:
    with load(valid) as m:
        buf = ctypes.create_string_buffer(8)
        n = _lib.gptneox_model_meta_val_str(m.ptr, b"general.name", buf, 5)
        assert n == len("tiny-gptneox")
        assert buf.value == b"tiny"  # 4 bytes + NUL
        assert _lib.gptneox_model_meta_val_str(m.ptr, b"no.such.key", buf, 8) == -1
        assert _lib.gptneox_model_meta_key_by_index(m.ptr, 10_000, buf, 8) == -1
        assert _lib.gptneox_model_meta_val_str_by_index(m.ptr, -1, buf, 8) == -1
        assert _lib.gptneox_model_desc(m.ptr, None, 0) > 0


def test_null_model_is_an_error_not_a_crash() -> None:
    assert _lib.gptneox_model_n_embd(None) == -1
    assert _lib.gptneox_last_status() == _lib.GPTNEOX_STATUS_INVALID_ARGUMENT
    assert _lib.gptneox_model_desc(None, None, 0) == -1
    assert _lib.gptneox_model_meta_count(None) == -1
    assert not _lib.gptneox_model_get_vocab(None)
    assert _lib.gptneox_model_chat_template(None, None) is None
    _lib.gptneox_model_free(None)
    assert not _lib.gptneox_model_load_from_file(None, _lib.gptneox_model_default_params())
    assert _lib.gptneox_last_status() == _lib.GPTNEOX_STATUS_INVALID_ARGUMENT


def test_vocab_only_loads_the_real_llama_cpp_vocab_file() -> None:
    if not ARTIFACT_VOCAB.is_file():
        pytest.skip("artifact missing")
    with load(ARTIFACT_VOCAB, vocab_only=True) as m:
        assert _lib.gptneox_model_n_layer(m.ptr) == 44
        assert m.n_vocab == 50432
    # without vocab_only the file has no tensors
    expect_error(ARTIFACT_VOCAB, "missing tensor 'token_embd.weight'", status=_lib.GPTNEOX_STATUS_FORMAT)


def test_progress_callback_can_cancel(valid: Path) -> None:
    seen: List[float] = []

    def cb(progress: float, _: Any) -> bool:
        seen.append(progress)
        return len(seen) < 3

    params = _lib.gptneox_model_default_params()
    params.progress_callback = _lib.gptneox_progress_callback(cb)
    assert not _lib.gptneox_model_load_from_file(str(valid).encode(), params)
    assert _lib.gptneox_last_status() == _lib.GPTNEOX_STATUS_ABORTED
    assert b"cancelled" in _lib.gptneox_last_error()
    assert seen == sorted(seen) and len(seen) == 3


# ---------------------------------------------------------------------------------------------------
# Header


def test_missing_file_and_directory(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope.gguf", "cannot open", status=_lib.GPTNEOX_STATUS_IO)
    with pytest.raises(NeoxError) as info:
        load(tmp_path)
    assert info.value.status == _lib.GPTNEOX_STATUS_IO


def test_bad_magic(tmp_path: Path, valid_bytes: bytes) -> None:
    expect_error(patched(tmp_path, b"GGUX" + valid_bytes[4:]), "not a GGUF file", "bad magic")
    expect_error(patched(tmp_path, b""), "truncated", status=_lib.GPTNEOX_STATUS_FORMAT)


@pytest.mark.parametrize(
    "version,phrase,status",
    [
        (1, "version 1 is no longer supported", _lib.GPTNEOX_STATUS_UNSUPPORTED),
        (4, "version 4 is not supported", _lib.GPTNEOX_STATUS_UNSUPPORTED),
        (0, "invalid GGUF version 0", _lib.GPTNEOX_STATUS_FORMAT),
        (0x03000000, "big-endian", _lib.GPTNEOX_STATUS_UNSUPPORTED),
    ],
)
def test_bad_version(tmp_path: Path, valid_bytes: bytes, version: int, phrase: str, status: int) -> None:
    expect_error(patched(tmp_path, put(valid_bytes, 4, "<I", version)), phrase, status=status)


@pytest.mark.parametrize(
    "field,value,phrase",
    [
        ("tensor_count", 1 << 40, "tensor count 1099511627776 is impossible"),
        ("tensor_count", (1 << 64) - 1, "tensor count"),
        ("kv_count", 1 << 33, "key-value count 8589934592 is impossible"),
    ],
)
def test_huge_counts(tmp_path: Path, valid_bytes: bytes, field: str, value: int, phrase: str) -> None:
    at = {"tensor_count": 8, "kv_count": 16}[field]
    expect_error(
        patched(tmp_path, put(valid_bytes, at, "<Q", value)), phrase, status=_lib.GPTNEOX_STATUS_FORMAT
    )


def test_huge_array_count_and_string_length(tmp_path: Path, valid: Path, valid_bytes: bytes) -> None:
    offs = fx.header_offsets(valid)
    tokens = offs["kv:tokenizer.ggml.tokens"]  # u32 ARRAY, u32 STRING, u64 count
    expect_error(
        patched(tmp_path, put(valid_bytes, tokens + 8, "<Q", 1 << 40)),
        "key 'tokenizer.ggml.tokens': array count 1099511627776",
    )
    name = offs["kv:general.name"]  # u32 STRING, u64 length
    expect_error(patched(tmp_path, put(valid_bytes, name + 4, "<Q", 1 << 50)), "string length")
    expect_error(patched(tmp_path, put(valid_bytes, 24, "<Q", 1 << 31)), "string length 2147483648")


def test_unknown_value_type_and_nested_array(tmp_path: Path, valid: Path, valid_bytes: bytes) -> None:
    offs = fx.header_offsets(valid)
    expect_error(
        patched(tmp_path, put(valid_bytes, offs["kv:gptneox.block_count"], "<I", 99)),
        "key 'gptneox.block_count' has unknown value type 99",
    )
    expect_error(
        patched(tmp_path, put(valid_bytes, offs["kv:tokenizer.ggml.merges"] + 4, "<I", 9)),
        "key 'tokenizer.ggml.merges' is a nested array",
    )


# ---------------------------------------------------------------------------------------------------
# Tensor data


def test_tensor_offset_past_the_end(tmp_path: Path, valid: Path, valid_bytes: bytes) -> None:
    at = tensor_info_offset_field(valid_bytes, "output.weight")
    data_start = min(o for o, _ in fx.tensor_layout(valid).values())
    expect_error(
        patched(tmp_path, put(valid_bytes, at, "<Q", 1 << 40)),
        f"tensor 'output.weight' data (file offset {data_start + (1 << 40)},",
        "runs past the end of the file",
        status=_lib.GPTNEOX_STATUS_FORMAT,
    )


def test_tensor_offset_not_sequential(tmp_path: Path, valid_bytes: bytes) -> None:
    at = tensor_info_offset_field(valid_bytes, "blk.0.attn_norm.bias")
    old = struct.unpack_from("<Q", valid_bytes, at)[0]
    expect_error(
        patched(tmp_path, put(valid_bytes, at, "<Q", old + 8)), "'blk.0.attn_norm.bias' has data offset"
    )
    expect_error(patched(tmp_path, put(valid_bytes, at, "<Q", 0)), f"expected {old}")


def test_file_cut_inside_the_tensor_data(tmp_path: Path, valid: Path, valid_bytes: bytes) -> None:
    layout = fx.tensor_layout(valid)
    start, n = layout["blk.1.ffn_down.weight"]
    expect_error(
        patched(tmp_path, valid_bytes[: start + n // 2]),
        f"tensor 'blk.1.ffn_down.weight' data (file offset {start}, {n} bytes)",
        f"runs past the end of the file ({start + n // 2} bytes)",
    )


def _cut_points(valid: Path, size: int) -> Iterator[int]:
    layout = fx.tensor_layout(valid)
    data_start = min(o for o, _ in layout.values())
    yield from range(0, min(data_start, 400))  # every byte of the header and the first keys
    yield from range(400, data_start, 13)  # the rest of the metadata and the tensor infos
    for off, n in layout.values():
        yield from (off - 1, off, off + 1, off + n - 1)
    last_end = max(o + n for o, n in layout.values())
    yield from (last_end - 1,)
    del size


def test_truncated_at_many_cut_points(tmp_path: Path, valid: Path, valid_bytes: bytes) -> None:
    cuts = sorted(set(c for c in _cut_points(valid, len(valid_bytes)) if 0 <= c < len(valid_bytes)))
    assert len(cuts) > 500
    p = tmp_path / "cut.gguf"
    for cut in cuts:
        p.write_bytes(valid_bytes[:cut])
        with pytest.raises(NeoxError) as info:
            load(p).close()
        assert str(p) in str(info.value), (cut, str(info.value))
        assert info.value.status == _lib.GPTNEOX_STATUS_FORMAT, (cut, str(info.value))
    # the padding after the last tensor is not needed
    last_end = max(o + n for o, n in fx.tensor_layout(valid).values())
    p.write_bytes(valid_bytes[:last_end])
    load(p).close()


def test_random_byte_flips_never_crash(tmp_path: Path, valid: Path, valid_bytes: bytes) -> None:
    rng = np.random.default_rng(1)
    header_end = min(o for o, _ in fx.tensor_layout(valid).values())
    p = tmp_path / "flip.gguf"
    for _ in range(300):
        b = bytearray(valid_bytes)
        for at in rng.integers(0, header_end, size=int(rng.integers(1, 4))):
            b[int(at)] = int(rng.integers(0, 256))
        p.write_bytes(bytes(b))
        try:
            load(p).close()
        except NeoxError as e:
            assert str(p) in str(e)


# ---------------------------------------------------------------------------------------------------
# Model-level checks (keys, tensors)


def write(tmp: Path, **kw: Any) -> Path:
    return fx.write_tiny_model(tmp / "model.gguf", **kw)


def test_wrong_key_type(tmp_path: Path) -> None:
    p = write(tmp_path, set_keys={"gptneox.block_count": (2.0, VT.FLOAT32)})
    expect_error(
        p, "key 'gptneox.block_count' has type FLOAT32, expected UINT32", status=_lib.GPTNEOX_STATUS_FORMAT
    )
    p = write(tmp_path, set_keys={"gptneox.use_parallel_residual": (1, VT.UINT8)})
    expect_error(p, "'gptneox.use_parallel_residual' has type UINT8, expected BOOL")
    p = write(tmp_path, set_keys={"gptneox.attention.layer_norm_epsilon": (1e-5, VT.FLOAT64)})
    expect_error(p, "'gptneox.attention.layer_norm_epsilon' has type FLOAT64, expected FLOAT32")


def test_bad_alignment(tmp_path: Path) -> None:
    p = write(tmp_path, set_keys={"general.alignment": (64, VT.UINT64)})
    expect_error(p, "general.alignment has type UINT64, expected UINT32")


@pytest.mark.parametrize(
    "key",
    [
        "gptneox.context_length",
        "gptneox.embedding_length",
        "gptneox.block_count",
        "gptneox.feed_forward_length",
        "gptneox.attention.head_count",
        "gptneox.attention.layer_norm_epsilon",
        "gptneox.use_parallel_residual",
    ],
)
def test_missing_required_key(tmp_path: Path, key: str) -> None:
    expect_error(write(tmp_path, drop_keys=[key]), f"missing key '{key}'", status=_lib.GPTNEOX_STATUS_FORMAT)


def test_optional_keys_default(tmp_path: Path) -> None:
    with load(write(tmp_path, drop_keys=["gptneox.rope.dimension_count", "general.file_type"])) as m:
        assert _lib.gptneox_model_n_rot(m.ptr) == 64 // 4  # head_dim
        assert _lib.gptneox_model_ftype(m.ptr) == -1
        assert m.desc().endswith(" F32")  # no file_type: named after the weights
    with load(write(tmp_path, set_keys={"gptneox.rope.freq_base": (500.0, VT.FLOAT32)})) as m:
        assert _lib.gptneox_model_rope_freq_base_train(m.ptr) == 500.0


@pytest.mark.parametrize(
    "keys,phrase",
    [
        (
            {"gptneox.attention.head_count": (5, VT.UINT32)},
            "embedding_length 64 is not a multiple of attention.head_count 5",
        ),
        ({"gptneox.rope.dimension_count": (7, VT.UINT32)}, "rope.dimension_count 7 must be even"),
        ({"gptneox.rope.dimension_count": (18, VT.UINT32)}, "at most the head size 16"),
        ({"gptneox.block_count": (0, VT.UINT32)}, "must be positive"),
        ({"gptneox.context_length": (0, VT.UINT32)}, "must be positive"),
    ],
)
def test_invalid_hparams(tmp_path: Path, keys: Dict[str, Any], phrase: str) -> None:
    expect_error(write(tmp_path, set_keys=keys), phrase, status=_lib.GPTNEOX_STATUS_FORMAT)


def test_unsupported_architecture(tmp_path: Path) -> None:
    expect_error(
        write(tmp_path, arch="llama"),
        "architecture 'llama' is not supported",
        status=_lib.GPTNEOX_STATUS_UNSUPPORTED,
    )


def test_missing_tensor(tmp_path: Path) -> None:
    for name in ("blk.1.ffn_up.weight", "output.weight", "blk.0.attn_qkv.bias", "output_norm.bias"):
        expect_error(
            write(tmp_path, drop_tensors=[name]),
            f"missing tensor '{name}'",
            status=_lib.GPTNEOX_STATUS_FORMAT,
        )


def test_more_layers_than_tensors(tmp_path: Path) -> None:
    p = write(tmp_path, set_keys={"gptneox.block_count": (3, VT.UINT32)})
    expect_error(p, "missing tensor 'blk.2.attn_norm.weight'")


def test_wrong_tensor_shape(tmp_path: Path) -> None:
    p = write(tmp_path, tensor_shape={"blk.0.attn_qkv.weight": (128, 64)})
    expect_error(
        p,
        "tensor 'blk.0.attn_qkv.weight' has shape [64, 128], expected [64, 192]",
        status=_lib.GPTNEOX_STATUS_FORMAT,
    )
    p = write(tmp_path, tensor_shape={"blk.1.ffn_down.bias": (32,)})
    expect_error(p, "tensor 'blk.1.ffn_down.bias' has shape [32], expected [64]")
    p = write(tmp_path, tensor_shape={"output.weight": (100, 64)})
    expect_error(p, "tensor 'output.weight' has shape [64, 100], expected [64, 260]")


def test_vocab_larger_than_the_embedding(tmp_path: Path) -> None:
    p = write(tmp_path, n_vocab=100)  # 260 tokens, 100 rows
    expect_error(p, "260 tokens", "100 rows", status=_lib.GPTNEOX_STATUS_FORMAT)


def test_unsupported_tensor_types(tmp_path: Path) -> None:
    p = write(tmp_path, tensor_type={"blk.0.ffn_up.weight": "q4_1"})
    expect_error(
        p,
        "tensor 'blk.0.ffn_up.weight' has type Q4_1, which is not supported yet",
        status=_lib.GPTNEOX_STATUS_UNSUPPORTED,
    )
    p = write(tmp_path, tensor_type={"blk.1.attn_norm.bias": "f16"})
    expect_error(
        p,
        "tensor 'blk.1.attn_norm.bias' has type F16; 1-D tensors must be F32",
        status=_lib.GPTNEOX_STATUS_UNSUPPORTED,
    )


@pytest.mark.parametrize("matrix_type", ["f32", "f16", "bf16", "q8_0", "q4_0"])
def test_check_tensors_finds_nan(tmp_path: Path, matrix_type: str) -> None:
    p = write(tmp_path, matrix_type=matrix_type)
    start, _ = fx.tensor_layout(p)["blk.1.attn_output.weight"]
    nan = {
        "f32": b"\x00\x00\xc0\x7f",
        "f16": b"\x00\x7e",
        "bf16": b"\xc0\x7f",
        "q8_0": b"\x00\x7e",
        "q4_0": b"\x00\x7c",
    }
    b = bytearray(p.read_bytes())
    b[start : start + len(nan[matrix_type])] = nan[matrix_type]
    p.write_bytes(bytes(b))
    load(p).close()  # not checked by default
    expect_error(
        p,
        "tensor 'blk.1.attn_output.weight' contains a NaN or Inf",
        check_tensors=True,
        status=_lib.GPTNEOX_STATUS_FORMAT,
    )


def test_messages_are_valid_utf8_whatever_bytes_the_file_holds(tmp_path: Path) -> None:
    # A key name that is not UTF-8, followed by an unknown value type: the message quotes the name with
    # the bad byte escaped, so Python (and llama-cpp-python's log callback) can decode it.
    key = b"bad\xbe\xffkey"
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key + struct.pack("<I", 99)
    err = expect_error(patched(tmp_path, data))
    assert "bad\\xBE\\xFFkey" in str(err)
