"""Llama(kv_overrides={...}): GGUF metadata overrides applied by the engine at load.

References are computed here: the same model without overrides (tokenize / metadata), and a copy of the
file whose value was rewritten with gguf-py (logits must equal those of the override).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, List, Union

import numpy as np
import pytest

import neox_cpp

EPS_KEY = "gptneox.attention.layer_norm_epsilon"
NEW_EPS = 0.25
PROMPT = "the cat sat on the mat"


def _llama(path: Path, overrides: Union[Dict[str, Any], None] = None, **kw: Any) -> Any:
    return neox_cpp.Llama(model_path=str(path), n_ctx=64, kv_overrides=overrides, verbose=False, **kw)


def _last_logits(llm: Any, tokens: List[int]) -> np.ndarray:
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)


def _rewrite_f32(src: Path, dst: Path, key: str, value: float) -> None:
    import gguf

    shutil.copyfile(src, dst)
    reader = gguf.GGUFReader(str(dst), "r+")
    field = reader.get_field(key)
    assert field is not None
    field.parts[field.data[0]][0] = value
    reader.data.flush()
    del reader


def test_add_bos_override_changes_tokenize(tiny_gguf: Path) -> None:
    plain = _llama(tiny_gguf)
    bos = plain.token_bos()
    ref = plain.tokenize(PROMPT.encode(), add_bos=True)
    assert ref[:1] != [bos]  # the file says add_bos_token = false
    ov = _llama(tiny_gguf, {"tokenizer.ggml.add_bos_token": True})
    assert ov.tokenize(PROMPT.encode(), add_bos=True) == [bos, *ref]
    assert ov.metadata["tokenizer.ggml.add_bos_token"] == "true"
    assert plain.metadata["tokenizer.ggml.add_bos_token"] == "false"


def test_layer_norm_epsilon_override_matches_rewritten_file(tiny_gguf: Path, tmp_path: Path) -> None:
    rewritten = tmp_path / "eps.gguf"
    _rewrite_f32(tiny_gguf, rewritten, EPS_KEY, NEW_EPS)
    plain = _llama(tiny_gguf, logits_all=True)
    tokens = plain.tokenize(PROMPT.encode())
    base = _last_logits(plain, tokens)
    ref_llm = _llama(rewritten, logits_all=True)
    assert float(ref_llm.metadata[EPS_KEY]) == NEW_EPS
    ref = _last_logits(ref_llm, tokens)
    got_llm = _llama(tiny_gguf, {EPS_KEY: NEW_EPS}, logits_all=True)
    got = _last_logits(got_llm, tokens)
    assert float(got_llm.metadata[EPS_KEY]) == NEW_EPS
    assert not np.allclose(base, ref, atol=1e-3)  # the value matters for this model
    np.testing.assert_array_equal(got, ref)


def test_string_override_in_metadata(tiny_gguf: Path) -> None:
    ov = _llama(tiny_gguf, {"general.name": "renamed", "neox_cpp.test.added": "new key"})
    assert ov.metadata["general.name"] == "renamed"
    assert ov.metadata["neox_cpp.test.added"] == "new key"
    assert _llama(tiny_gguf).metadata["general.name"] == "tiny-random-gptneox"


def test_int_override_of_absent_and_present_keys(tiny_gguf: Path) -> None:
    ov = _llama(tiny_gguf, {"tokenizer.ggml.padding_token_id": 0, "neox_cpp.test.int": -7})
    assert ov.metadata["tokenizer.ggml.padding_token_id"] == "0"
    assert ov.metadata["neox_cpp.test.int"] == "-7"


@pytest.mark.parametrize(
    "overrides",
    [
        {"tokenizer.ggml.add_bos_token": 1},  # int for a BOOL key
        {EPS_KEY: "0.5"},  # str for a FLOAT32 key
        {"general.name": 3.5},  # float for a STRING key
        {"gptneox.block_count": -1},  # out of range for UINT32
    ],
)
def test_wrong_type_raises_value_error(tiny_gguf: Path, overrides: Dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _llama(tiny_gguf, overrides)


def test_wrong_type_error_names_the_key(tiny_gguf: Path) -> None:
    from neox_cpp import _lib, llama_compat

    params = llama_compat.llama_model_default_params()
    arr = (llama_compat.llama_model_kv_override * 2)()
    arr[0].key = b"tokenizer.ggml.add_bos_token"
    arr[0].tag = llama_compat.LLAMA_KV_OVERRIDE_TYPE_INT
    arr[0].value.val_i64 = 1
    params.kv_overrides = arr
    assert llama_compat.llama_model_load_from_file(str(tiny_gguf).encode(), params) is None
    assert "tokenizer.ggml.add_bos_token" in _lib.gptneox_last_error().decode()
