"""`from neox_cpp import Llama`: llama-cpp-python's own Llama class running on libgptneox.

Expected values come from the engine driven directly through neox_cpp._lib (no llama-cpp-python code
in between), so these tests check the llama_compat layer and the peer loading, not the forward pass
(tests/test_convert.py and the engine tests compare that with Hugging Face).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator, List

import numpy as np
import pytest

import neox_cpp
from neox_cpp import _lib

ROOT = Path(__file__).resolve().parents[1]
TEXT = b"the cat sat on the mat, then the rat ate the hat"


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture()
def llm(tiny_gguf: Path) -> Iterator[object]:
    model = neox_cpp.Llama(model_path=str(tiny_gguf), n_ctx=64, verbose=False, logits_all=True)
    yield model
    model.close()


def _direct_logits(path: Path, tokens: List[int]) -> np.ndarray:
    """Logits of every position, computed through _lib only (one batch)."""
    with _lib.Model(path) as model, _lib.Context(model, n_ctx=64, n_batch=64) as ctx:
        ctx.decode(tokens, logits_all=True)
        return np.array(ctx.all_logits(), dtype=np.float32)


def test_llama_is_llama_cpp_pythons_class() -> None:
    Llama = neox_cpp.Llama
    # neox_cpp.llama.Llama: a thin subclass of llama-cpp-python's own class (streaming fix)
    assert Llama.__module__ == "neox_cpp.llama" and Llama.__mro__[1].__module__ == "llama_cpp.llama"
    assert Llama.__name__ == "Llama"
    assert callable(Llama.create_completion)


def test_sizes(llm: object, tiny_gguf: Path) -> None:
    with _lib.Model(tiny_gguf) as model:
        assert llm.n_vocab() == model.n_vocab  # type: ignore[attr-defined]
        assert llm.n_embd() == model.n_embd  # type: ignore[attr-defined]
    assert llm.n_ctx() == 64  # type: ignore[attr-defined]


def test_tokenize_detokenize_round_trip(llm: object, tiny_gguf: Path) -> None:
    tokens = llm.tokenize(TEXT, add_bos=False)  # type: ignore[attr-defined]
    with _lib.Model(tiny_gguf) as model:
        assert tokens == model.tokenize(TEXT)
    assert llm.detokenize(tokens) == TEXT  # type: ignore[attr-defined]
    text = "naïve café — 日本語 ✓".encode()
    assert llm.detokenize(llm.tokenize(text, add_bos=False)) == text  # type: ignore[attr-defined]


def test_metadata(llm: object, tiny_gguf: Path) -> None:
    with _lib.Model(tiny_gguf) as model:
        expected = model.metadata()
    assert llm.metadata == expected  # type: ignore[attr-defined]
    assert llm.metadata["general.architecture"] == "gptneox"  # type: ignore[attr-defined]


def test_eval_scores_equal_direct_engine_logits(llm: object, tiny_gguf: Path) -> None:
    tokens = llm.tokenize(TEXT, add_bos=False)  # type: ignore[attr-defined]
    llm.eval(tokens)  # type: ignore[attr-defined]
    ref = _direct_logits(tiny_gguf, tokens)
    n = len(tokens)
    scores = np.asarray(llm.scores[:n])  # type: ignore[attr-defined]
    assert llm.n_tokens == n  # type: ignore[attr-defined]
    assert _rel(scores[-1], ref[-1]) <= 1e-6
    assert _rel(scores, ref) <= 1e-6
    assert np.allclose(np.asarray(llm.eval_logits[-1]), ref[-1], rtol=0, atol=1e-5)  # type: ignore[attr-defined]


def test_eval_in_one_batch_in_batches_and_token_by_token_agree(tiny_gguf: Path) -> None:
    results = []
    for n_batch, by_token in ((64, False), (3, False), (64, True)):
        llm = neox_cpp.Llama(
            model_path=str(tiny_gguf), n_ctx=64, n_batch=n_batch, verbose=False, logits_all=True
        )
        tokens = llm.tokenize(TEXT, add_bos=False)
        if by_token:
            for t in tokens:
                llm.eval([t])
        else:
            llm.eval(tokens)
        results.append(np.array(llm.scores[: len(tokens)]))
        llm.close()
    one, batched, single = results
    assert _rel(batched, one) <= 1e-5
    assert _rel(single, one) <= 1e-5
    assert np.array_equal(np.argmax(one, axis=1), np.argmax(single, axis=1))


def test_save_state_reset_load_state(llm: object) -> None:
    tokens = llm.tokenize(TEXT, add_bos=False)  # type: ignore[attr-defined]
    head, tail = tokens[:-3], tokens[-3:]
    llm.eval(head)  # type: ignore[attr-defined]
    state = llm.save_state()  # type: ignore[attr-defined]
    llm.eval(tail)  # type: ignore[attr-defined]
    expected = np.array(llm.scores[: len(tokens)])  # type: ignore[attr-defined]

    llm.reset()  # type: ignore[attr-defined]
    llm.eval(llm.tokenize(b"something else entirely", add_bos=False))  # type: ignore[attr-defined]
    llm.load_state(state)  # type: ignore[attr-defined]
    assert llm.n_tokens == len(head)  # type: ignore[attr-defined]
    llm.eval(tail)  # type: ignore[attr-defined]
    got = np.array(llm.scores[: len(tokens)])  # type: ignore[attr-defined]
    assert _rel(got, expected) <= 1e-6


def test_close_is_idempotent(tiny_gguf: Path) -> None:
    llm = neox_cpp.Llama(model_path=str(tiny_gguf), n_ctx=32, verbose=False)
    llm.eval(llm.tokenize(b"the cat", add_bos=False))
    llm.close()
    llm.close()


def test_verbose_construction_and_perf_print(tiny_gguf: Path, capfd: pytest.CaptureFixture[str]) -> None:
    llm = neox_cpp.Llama(model_path=str(tiny_gguf), n_ctx=32, verbose=True)
    llm.eval(llm.tokenize(b"the cat sat", add_bos=False))
    llm._ctx.print_timings()  # llama_perf_context_print, through llama-cpp-python's logger
    llm.close()
    err = capfd.readouterr().err
    assert "prompt eval time" in err and "total time" in err
    assert "AVX2" in err  # llama_print_system_info


def test_bad_paths_raise_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        neox_cpp.Llama(model_path=str(tmp_path / "missing.gguf"), verbose=False)
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file" * 10)
    with pytest.raises(ValueError, match="Failed to load model"):
        neox_cpp.Llama(model_path=str(bogus), verbose=False)


def test_n_ctx_zero_uses_the_training_context(tiny_gguf: Path) -> None:
    llm = neox_cpp.Llama(model_path=str(tiny_gguf), n_ctx=0, verbose=False)
    with _lib.Model(tiny_gguf) as model:
        assert llm.n_ctx() == model.n_ctx_train
    llm.close()


def _run(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


_REAL_IMPORT = """
    try:
        import llama_cpp
        print("ok", llama_cpp.__file__)
    except BaseException as e:
        print(type(e).__name__, e)
"""


def test_plain_import_llama_cpp_is_untouched(tiny_gguf: Path) -> None:
    without = _run(_REAL_IMPORT)
    with_neox = _run(
        textwrap.dedent(f"""
        import sys
        from neox_cpp import Llama
        llm = Llama(model_path={str(tiny_gguf)!r}, n_ctx=32, verbose=False)
        assert not [k for k in sys.modules if k == "llama_cpp" or k.startswith("llama_cpp.")]
        """)
        + textwrap.dedent(_REAL_IMPORT)
    )
    assert with_neox == without  # same module, or the same "shared library not found" error


def test_an_existing_llama_cpp_module_is_restored_exactly() -> None:
    out = _run(
        """
        import sys, types
        fake = types.ModuleType("llama_cpp")
        fake_sub = types.ModuleType("llama_cpp.llama")
        sys.modules["llama_cpp"] = fake
        sys.modules["llama_cpp.llama"] = fake_sub
        from neox_cpp import Llama
        assert sys.modules["llama_cpp"] is fake and sys.modules["llama_cpp.llama"] is fake_sub
        assert {k for k in sys.modules if k.startswith("llama_cpp")} == {"llama_cpp", "llama_cpp.llama"}
        assert Llama.__mro__[1].__module__ == "llama_cpp.llama"
        assert Llama is not getattr(fake_sub, "Llama", None)
        print("restored")
        """
    )
    assert out.strip() == "restored"


def test_patch_and_unpatch(tiny_gguf: Path) -> None:
    out = _run(
        textwrap.dedent(f"""
        import sys
        import neox_cpp
        neox_cpp.patch()
        neox_cpp.patch()  # idempotent
        from llama_cpp import Llama
        import llama_cpp.llama_cpp as low
        assert Llama is neox_cpp.Llama and low is neox_cpp.llama_compat
        llm = Llama(model_path={str(tiny_gguf)!r}, n_ctx=32, verbose=False)
        assert llm.n_ctx() == 32
        llm.close()
        neox_cpp.unpatch()
        assert not [k for k in sys.modules if k == "llama_cpp" or k.startswith("llama_cpp.")]
        """)
        + textwrap.dedent(_REAL_IMPORT)
    )
    assert out == _run(_REAL_IMPORT)
