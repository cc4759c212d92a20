"""The converter (neox_cpp.convert) and the quantizer (neox_cpp.quantize), read back with gguf.GGUFReader.

References are computed here: HF's own weights and HF's own split of the fused QKV output, gguf-py's
quantizers and a scalar transcription of ggml's reference quantizers."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from models import ARTIFACTS, make_hf_model  # noqa: E402
from neox_cpp import convert as convert_mod  # noqa: E402
from neox_cpp._convert_quants import encode  # noqa: E402
from neox_cpp.convert import ConvertError, convert  # noqa: E402
from neox_cpp.quantize import quantize_file  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
T = gguf.GGUFValueType
Q = gguf.GGMLQuantizationType


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("convert")


@pytest.fixture(scope="module")
def bpe_model(work: Path) -> Path:
    return make_hf_model(work / "bpe", hidden=64, layers=2, heads=4, rotary_pct=0.25, parallel=True, seed=1)


@pytest.fixture(scope="module")
def spm_model(work: Path) -> Path:
    return make_hf_model(work / "spm", hidden=64, layers=2, heads=4, rotary_pct=1.0, parallel=False, seed=2,
                         tokenizer="spm", config_style="new")


def _state_dict(hf_dir: Path) -> Dict[str, np.ndarray]:
    from transformers import GPTNeoXForCausalLM

    m = GPTNeoXForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    sd = {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}
    if "lm_head.weight" in sd:  # transformers 5's in-memory name of embed_out
        sd["embed_out.weight"] = sd.pop("lm_head.weight")
    return sd


def _fields(r: Any) -> Dict[str, Any]:
    return {k: f for k, f in r.fields.items() if not k.startswith("GGUF.")}


def _tensors(r: Any) -> Dict[str, Any]:
    return {t.name: t for t in r.tensors}


def _f32(t: Any) -> np.ndarray:
    return np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(
        tuple(int(s) for s in reversed(t.shape.tolist())))


def _expected_names(n_layer: int) -> List[str]:
    names = ["token_embd.weight", "output_norm.weight", "output_norm.bias", "output.weight"]
    for i in range(n_layer):
        for s in ("attn_norm.weight", "attn_norm.bias", "attn_qkv.weight", "attn_qkv.bias",
                  "attn_output.weight", "attn_output.bias", "ffn_norm.weight", "ffn_norm.bias",
                  "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias"):
            names.append(f"blk.{i}.{s}")
    return names


# ------------------------------------------------------------------------------------------------
# keys, tensors, layout


@pytest.mark.parametrize("outtype,ftype,mtype", [("f32", 0, Q.F32), ("f16", 1, Q.F16), ("bf16", 32, Q.BF16),
                                                 ("q8_0", 7, Q.Q8_0), ("q4_0", 2, Q.Q4_0)])
def test_keys_and_tensors(bpe_model: Path, work: Path, outtype: str, ftype: int, mtype: Any) -> None:
    out = convert(bpe_model, work / f"keys-{outtype}.gguf", outtype, progress=False)
    r = gguf.GGUFReader(out)
    cfg = json.loads((bpe_model / "config.json").read_text())
    f = _fields(r)
    want = {
        "general.architecture": (T.STRING, "gptneox"),
        "general.name": (T.STRING, "bpe"),
        "general.file_type": (T.UINT32, ftype),
        "general.quantization_version": (T.UINT32, 2),
        "gptneox.context_length": (T.UINT32, cfg["max_position_embeddings"]),
        "gptneox.embedding_length": (T.UINT32, cfg["hidden_size"]),
        "gptneox.block_count": (T.UINT32, cfg["num_hidden_layers"]),
        "gptneox.feed_forward_length": (T.UINT32, cfg["intermediate_size"]),
        "gptneox.attention.head_count": (T.UINT32, cfg["num_attention_heads"]),
        "gptneox.use_parallel_residual": (T.BOOL, cfg["use_parallel_residual"]),
        "gptneox.rope.dimension_count": (
            T.UINT32, int(cfg["rotary_pct"] * (cfg["hidden_size"] // cfg["num_attention_heads"]))),
        "gptneox.vocab_size": (T.UINT32, cfg["vocab_size"]),
    }
    for key, (vtype, value) in want.items():
        assert key in f, key
        assert f[key].types == [vtype], key
        assert f[key].contents() == value, key
    for key, value in (("gptneox.attention.layer_norm_epsilon", cfg["layer_norm_eps"]),
                       ("gptneox.rope.freq_base", cfg["rotary_emb_base"])):
        assert f[key].types == [T.FLOAT32]
        assert f[key].contents() == pytest.approx(value, rel=1e-7)

    ts = _tensors(r)
    assert sorted(ts) == sorted(_expected_names(cfg["num_hidden_layers"]))
    n, v, ff = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
    shapes = {"token_embd.weight": [n, v], "output.weight": [n, v], "output_norm.weight": [n],
              "blk.0.attn_qkv.weight": [n, 3 * n], "blk.0.attn_qkv.bias": [3 * n],
              "blk.1.ffn_up.weight": [n, ff], "blk.1.ffn_down.weight": [ff, n], "blk.1.ffn_up.bias": [ff],
              "blk.1.attn_output.weight": [n, n]}
    for name, shape in shapes.items():
        assert ts[name].shape.tolist() == shape, name
    for name, t in ts.items():
        assert t.tensor_type == (mtype if len(t.shape) == 2 else Q.F32), name
    # llama.cpp's layout rules: offsets sequential, each padded to 32, data start aligned
    assert all(t.data_offset % 32 == 0 for t in r.tensors)
    assert os.path.getsize(out) % 32 == 0


def test_f32_values_and_qkv_order(bpe_model: Path, work: Path) -> None:
    out = convert(bpe_model, work / "values-f32.gguf", "f32", progress=False)
    ts = _tensors(gguf.GGUFReader(out))
    sd = _state_dict(bpe_model)
    cfg = json.loads((bpe_model / "config.json").read_text())
    n, h = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = n // h
    plain = {"token_embd.weight": "gpt_neox.embed_in.weight", "output.weight": "embed_out.weight",
             "output_norm.weight": "gpt_neox.final_layer_norm.weight",
             "output_norm.bias": "gpt_neox.final_layer_norm.bias"}
    for i in range(cfg["num_hidden_layers"]):
        p, q = f"blk.{i}.", f"gpt_neox.layers.{i}."
        plain.update({p + "attn_norm.weight": q + "input_layernorm.weight",
                      p + "attn_norm.bias": q + "input_layernorm.bias",
                      p + "attn_output.weight": q + "attention.dense.weight",
                      p + "attn_output.bias": q + "attention.dense.bias",
                      p + "ffn_norm.weight": q + "post_attention_layernorm.weight",
                      p + "ffn_norm.bias": q + "post_attention_layernorm.bias",
                      p + "ffn_up.weight": q + "mlp.dense_h_to_4h.weight",
                      p + "ffn_up.bias": q + "mlp.dense_h_to_4h.bias",
                      p + "ffn_down.weight": q + "mlp.dense_4h_to_h.weight",
                      p + "ffn_down.bias": q + "mlp.dense_4h_to_h.bias"})
    for g, hf in plain.items():
        np.testing.assert_array_equal(_f32(ts[g]), sd[hf], err_msg=g)

    # QKV: the GGUF rows must give Q = out[0:n], K = out[n:2n], V = out[2n:3n], head-major, for the same
    # input as HF's own per-head split of its fused output.
    x = np.random.default_rng(0).standard_normal((5, n)).astype(np.float32)
    for i in range(cfg["num_hidden_layers"]):
        w = sd[f"gpt_neox.layers.{i}.attention.query_key_value.weight"]
        b = sd[f"gpt_neox.layers.{i}.attention.query_key_value.bias"]
        hf_out = (x @ w.T + b).reshape(5, h, 3 * hd)  # HF: view(..., h, 3*hd), then chunk in 3
        hf_q, hf_k, hf_v = hf_out[..., :hd], hf_out[..., hd:2 * hd], hf_out[..., 2 * hd:]
        gw, gb = _f32(ts[f"blk.{i}.attn_qkv.weight"]), _f32(ts[f"blk.{i}.attn_qkv.bias"])
        g_out = x @ gw.T + gb
        np.testing.assert_array_equal(g_out[:, :n].reshape(5, h, hd), hf_q)
        np.testing.assert_array_equal(g_out[:, n:2 * n].reshape(5, h, hd), hf_k)
        np.testing.assert_array_equal(g_out[:, 2 * n:].reshape(5, h, hd), hf_v)


# ------------------------------------------------------------------------------------------------
# quantization bit-exactness


def _f16_bytes(v: np.float32) -> bytes:
    return np.array([v], dtype=np.float32).astype("<f2").tobytes()


def _ref_q8_0_block(x: np.ndarray) -> bytes:
    """ggml quantize_row_q8_0_ref, one block, in float32 scalars."""
    amax = np.float32(0.0)
    for v in x:
        amax = max(amax, np.float32(abs(v)))
    d = np.float32(amax / np.float32(127))
    inv = np.float32(np.float32(1.0) / d) if d != 0 else np.float32(0.0)
    qs = []
    for v in x:
        x0 = float(np.float32(v * inv))
        qs.append(int(np.sign(x0) * np.floor(abs(x0) + 0.5)))  # roundf
    return _f16_bytes(d) + struct.pack("<32b", *qs)


def _ref_q4_0_block(x: np.ndarray) -> bytes:
    """ggml quantize_row_q4_0_ref, one block, in float32 scalars."""
    amax, mx = np.float32(0.0), np.float32(0.0)
    for v in x:
        if amax < abs(v):
            amax, mx = np.float32(abs(v)), v
    d = np.float32(mx / np.float32(-8))
    inv = np.float32(np.float32(1.0) / d) if d != 0 else np.float32(0.0)
    qs = []
    for j in range(16):
        a = min(15, int(np.float32(np.float32(x[j] * inv) + np.float32(8.5))))
        b = min(15, int(np.float32(np.float32(x[j + 16] * inv) + np.float32(8.5))))
        qs.append(a | (b << 4))
    return _f16_bytes(d) + bytes(qs)


def _tricky_rows() -> np.ndarray:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 64)).astype(np.float32)
    x[0, :32] = 0.0                                    # all-zero block
    x[1, :32] = np.arange(32, dtype=np.float32) / 4 - 4  # exact .5 ties after scaling
    x[2, 3], x[2, 9] = -3.0, 3.0                       # |max| tie: the first one wins
    x[3] *= 1e-6
    x[4] *= 1e4
    x[5, :32] = 1.0                                    # constant block
    return x


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
def test_quantizers_match_ggml_reference(qtype: str) -> None:
    x = _tricky_rows()
    ours = encode(x, qtype).tobytes()
    ref_block = _ref_q8_0_block if qtype == "q8_0" else _ref_q4_0_block
    ref = b"".join(ref_block(b) for b in x.reshape(-1, 32))
    assert ours == ref
    big = np.random.default_rng(3).standard_normal((64, 256)).astype(np.float32)
    gg = gguf.quants.quantize(big, Q.Q8_0 if qtype == "q8_0" else Q.Q4_0)
    assert encode(big, qtype).tobytes() == gg.tobytes()


@pytest.mark.parametrize("outtype", ["f16", "bf16", "q8_0", "q4_0"])
def test_file_bytes_match_reference_encoders(bpe_model: Path, work: Path, outtype: str) -> None:
    f32 = _tensors(gguf.GGUFReader(convert(bpe_model, work / "ref-f32.gguf", "f32", progress=False)))
    other_path = convert(bpe_model, work / f"ref-{outtype}.gguf", outtype, progress=False)
    other = _tensors(gguf.GGUFReader(other_path))
    gtype = {"f16": Q.F16, "bf16": Q.BF16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0}[outtype]
    for name, t in f32.items():
        x = _f32(t)
        got = np.asarray(other[name].data).tobytes()
        if len(t.shape) == 1:
            assert got == x.tobytes(), name
        elif outtype == "f16":
            assert got == x.astype("<f2").tobytes(), name
        else:
            assert got == gguf.quants.quantize(x, gtype).tobytes(), name
    if outtype in ("q8_0", "q4_0"):  # and the scalar ggml transcription, on one matrix
        x = _f32(f32["blk.0.attn_output.weight"])
        ref_block = _ref_q8_0_block if outtype == "q8_0" else _ref_q4_0_block
        ref = b"".join(ref_block(b) for b in x.reshape(-1, 32))
        assert np.asarray(other["blk.0.attn_output.weight"].data).tobytes() == ref


# ------------------------------------------------------------------------------------------------
# input variants give the same file


def _tensor_bytes(path: Path) -> Dict[str, bytes]:
    return {t.name: np.asarray(t.data).tobytes() for t in gguf.GGUFReader(path).tensors}


def test_config_spellings_and_weight_formats_agree(work: Path) -> None:
    files = []
    variants = (("old", "safetensors"), ("new", "safetensors"), ("old", "bin"), ("new", "sharded"))
    for style, weights in variants:
        d = make_hf_model(work / f"var-{style}-{weights}", hidden=64, heads=4, rotary_pct=0.5, seed=5,
                          config_style=style, weights=weights)
        files.append(convert(d, work / f"var-{style}-{weights}.gguf", "f16", name="same", progress=False))
    first = files[0].read_bytes()
    for f in files[1:]:
        assert f.read_bytes() == first, f.name
    rot = _fields(gguf.GGUFReader(files[1]))["gptneox.rope.dimension_count"].contents()
    assert rot == 8  # 0.5 * 16


def test_bf16_and_f16_checkpoints(work: Path, bpe_model: Path) -> None:
    from safetensors.torch import load_file, save_file

    sd = load_file(str(bpe_model / "model.safetensors"))
    for dt in (torch.bfloat16, torch.float16):
        d = work / f"half-{dt}"
        d.mkdir()
        for f in bpe_model.iterdir():
            if f.name != "model.safetensors":
                (d / f.name).write_bytes(f.read_bytes())
        save_file({k: v.to(dt) for k, v in sd.items()}, str(d / "model.safetensors"))
        ts = _tensors(gguf.GGUFReader(convert(d, work / f"half-{dt}.gguf", "f32", progress=False)))
        np.testing.assert_array_equal(_f32(ts["token_embd.weight"]),
                                      sd["gpt_neox.embed_in.weight"].to(dt).float().numpy())


def test_buffers_are_dropped(work: Path, bpe_model: Path) -> None:
    from safetensors.torch import load_file, save_file

    sd = load_file(str(bpe_model / "model.safetensors"))
    sd["gpt_neox.layers.0.attention.bias"] = torch.ones(1, 1, 8, 8, dtype=torch.bool).to(torch.float32)
    sd["gpt_neox.layers.0.attention.masked_bias"] = torch.tensor(-1e9)
    sd["gpt_neox.layers.1.attention.rotary_emb.inv_freq"] = torch.ones(2)
    d = work / "buffers"
    d.mkdir()
    for f in bpe_model.iterdir():
        if f.name != "model.safetensors":
            (d / f.name).write_bytes(f.read_bytes())
    save_file(sd, str(d / "model.safetensors"))
    out = convert(d, work / "buffers.gguf", "f16", name="bpe", progress=False)
    ref = convert(bpe_model, work / "buffers-ref.gguf", "f16", progress=False)
    assert out.read_bytes() == ref.read_bytes()


def test_spm_model_converts(spm_model: Path, work: Path) -> None:
    out = convert(spm_model, work / "spm-q8_0.gguf", "q8_0", progress=False)
    f = _fields(gguf.GGUFReader(out))
    assert f["gptneox.use_parallel_residual"].contents() is False
    assert f["gptneox.rope.dimension_count"].contents() == 16
    if convert_mod._tokenizer_hooks()[0] is not None:
        assert f["tokenizer.ggml.model"].contents() == "llama"


# ------------------------------------------------------------------------------------------------
# quantize


@pytest.mark.parametrize("outtype", ["f16", "q8_0", "q4_0"])
def test_quantize_from_f32_equals_direct_conversion(bpe_model: Path, work: Path, outtype: str) -> None:
    src = convert(bpe_model, work / "q-src-f32.gguf", "f32", progress=False)
    direct = convert(bpe_model, work / f"q-direct-{outtype}.gguf", outtype, progress=False)
    requant = quantize_file(src, work / f"q-requant-{outtype}.gguf", outtype, progress=False)
    assert _tensor_bytes(requant) == _tensor_bytes(direct)
    fa, fb = _fields(gguf.GGUFReader(requant)), _fields(gguf.GGUFReader(direct))
    assert sorted(fa) == sorted(fb)
    for k in fb:
        assert fa[k].types == fb[k].types, k
        assert fa[k].contents() == fb[k].contents(), k
    assert requant.read_bytes() == direct.read_bytes()


def test_quantize_chain_and_cli(bpe_model: Path, work: Path) -> None:
    q8 = convert(bpe_model, work / "chain-q8_0.gguf", "q8_0", progress=False)
    out = work / "chain-f16.gguf"
    r = subprocess.run([sys.executable, "-m", "neox_cpp", "quantize", "-q", str(q8), str(out), "f16"],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ta, tb = _tensors(gguf.GGUFReader(q8)), _tensors(gguf.GGUFReader(out))
    for name in ta:
        np.testing.assert_array_equal(_f32(ta[name]).astype(np.float16), _f32(tb[name]).astype(np.float16))
    assert _fields(gguf.GGUFReader(out))["general.file_type"].contents() == 1


# ------------------------------------------------------------------------------------------------
# errors: clear, and no file left behind


def _listing(d: Path) -> List[str]:
    return sorted(p.name for p in d.iterdir())


def _copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_error_cases(bpe_model: Path, work: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "x.gguf"
    cases = []
    cases.append((tmp_path / "nope", "no such directory"))
    empty = tmp_path / "empty"
    empty.mkdir()
    cases.append((empty, "config.json not found"))
    no_w = _copy_model(bpe_model, tmp_path / "no_weights")
    (no_w / "model.safetensors").unlink()
    cases.append((no_w, "no weights found"))
    arch = _copy_model(bpe_model, tmp_path / "arch")
    cfg = json.loads((arch / "config.json").read_text())
    cfg["architectures"] = ["LlamaForCausalLM"]
    cfg["model_type"] = "llama"
    (arch / "config.json").write_text(json.dumps(cfg))
    cases.append((arch, "unsupported architecture"))
    extra = _copy_model(bpe_model, tmp_path / "extra")
    from safetensors.torch import load_file, save_file

    sd = load_file(str(extra / "model.safetensors"))
    sd["gpt_neox.layers.0.attention.lora_A.weight"] = torch.zeros(4, 64)
    save_file(sd, str(extra / "model.safetensors"))
    cases.append((extra, "unsupported tensor 'gpt_neox.layers.0.attention.lora_A.weight'"))
    trunc = _copy_model(bpe_model, tmp_path / "trunc")
    data = (trunc / "model.safetensors").read_bytes()
    (trunc / "model.safetensors").write_bytes(data[: len(data) // 2])
    cases.append((trunc, "outside the file"))
    if convert_mod._tokenizer_hooks()[0] is not None:
        no_tok = _copy_model(bpe_model, tmp_path / "no_tokenizer")
        (no_tok / "tokenizer.json").unlink()
        cases.append((no_tok, "tokenizer"))
    for src, msg in cases:
        with pytest.raises(ConvertError, match=msg.replace("(", r"\(")):
            convert(src, out, "f16", progress=False)
        assert _listing(out_dir) == []


def test_dimension_not_divisible_by_32(work: Path, tmp_path: Path) -> None:
    d = make_hf_model(work / "h72", hidden=72, heads=4, rotary_pct=0.25, seed=4)
    for t in ("q8_0", "q4_0"):
        with pytest.raises(ConvertError, match="not divisible by 32"):
            convert(d, tmp_path / "h72.gguf", t, progress=False)
    assert _listing(tmp_path) == []
    out = convert(d, tmp_path / "h72.gguf", "f16", progress=False)
    f = _fields(gguf.GGUFReader(out))
    assert f["gptneox.rope.dimension_count"].contents() == 4  # int(0.25 * 18)


def test_failure_mid_write_leaves_nothing(bpe_model: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "model.gguf"
    out.write_bytes(b"previous")
    calls = {"n": 0}
    real = convert_mod.encode

    def failing(x: np.ndarray, t: str) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("disk on fire")
        return real(x, t)

    monkeypatch.setattr(convert_mod, "encode", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        convert(bpe_model, out, "q8_0", progress=False)
    assert _listing(tmp_path) == ["model.gguf"]
    assert out.read_bytes() == b"previous"


def test_cli_convert_and_errors(bpe_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.gguf"
    r = subprocess.run([sys.executable, "-m", "neox_cpp", "convert", str(bpe_model), "-o", str(out),
                        "--outtype", "q8_0"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert gguf.GGUFReader(out).fields["general.file_type"].contents() == 7
    assert "100%" in r.stderr  # the progress bar goes to stderr
    assert r.stdout == ""
    r = subprocess.run([sys.executable, "-m", "neox_cpp", "convert", str(tmp_path / "missing"), "-o",
                        str(tmp_path / "y.gguf")], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("neox-cpp convert: error: ")
    assert "no such directory" in lines[0]
    assert _listing(tmp_path) == ["cli.gguf"]
    r = subprocess.run([sys.executable, "-m", "neox_cpp", "convert", str(bpe_model)], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 2  # argparse usage error: -o is required


# ------------------------------------------------------------------------------------------------
# the model shipped in models/


TINY_SPM = ARTIFACTS / "legacy" / "hf" / "tiny-spm"
SHIPPED = REPO / "models" / "tiny-spm-q8_0.gguf"


def test_shipped_model(tmp_path: Path) -> None:
    """models/tiny-spm-q8_0.gguf is what the converter makes today from its source checkpoint."""
    if not TINY_SPM.is_dir():
        pytest.skip(f"{TINY_SPM} (the shipped model's source) is not here")
    fresh = convert(TINY_SPM, tmp_path / "tiny-spm-q8_0.gguf", "q8_0", progress=False)
    assert _tensor_bytes(SHIPPED) == _tensor_bytes(fresh), (
        "models/tiny-spm-q8_0.gguf is stale; regenerate it with the command in models/README.md")
    shipped, now = _fields(gguf.GGUFReader(SHIPPED)), _fields(gguf.GGUFReader(fresh))
    for key in now:
        if not key.startswith("tokenizer."):
            assert shipped[key].contents() == now[key].contents(), key
    assert shipped["tokenizer.ggml.model"].contents() == "llama"
    assert SHIPPED.stat().st_size < 2 * 1024 * 1024


def test_encode_in_chunks_equals_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    from neox_cpp import _convert_quants as cq

    x = np.random.default_rng(9).standard_normal((37, 96)).astype(np.float32)
    whole = {t: cq.encode(x, t).tobytes() for t in ("f32", "f16", "bf16", "q8_0", "q4_0")}
    monkeypatch.setattr(cq, "_CHUNK_ELEMENTS", 96 * 5)
    for t, b in whole.items():
        assert cq.encode(x, t).tobytes() == b, t


def test_console_script_entry_point() -> None:
    import shutil

    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'neox-cpp = "neox_cpp.__main__:main"' in text
    from neox_cpp.__main__ import main

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    exe = shutil.which("neox-cpp")
    if exe is not None:  # installed with pip
        r = subprocess.run([exe, "convert", "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "--outtype" in r.stdout
