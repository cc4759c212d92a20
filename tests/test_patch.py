"""neox_cpp.patch() / unpatch(), and LangChain's LlamaCpp running on our engine through the patch.

The installed llama-cpp-python has no native library, so a real ``import llama_cpp`` fails; after
patch() it gives the private copy running on neox_cpp. Clean-interpreter cases run in a subprocess.
Reference for LangChain's output: the same call made directly on neox_cpp.Llama with the parameters
LangChain passes (docs: ../shared/reference/llama-cpp-python.md section 7).

LangChain tests need ``pip install langchain-community==0.4.2`` (pulls langchain-core, no torch).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
from llm_models import converted

import neox_cpp

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1]
STOP = ["\nシステム: ", "\n\tシステム: ", "</s>"]
PROMPT = "ユーザー: 日本で一番高い山は？<NL>システム: "


def _run_python(code: str, timeout: float = 180) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def gguf() -> Path:
    return converted("spm")[1]


def test_patch_before_import(gguf: Path) -> None:
    out = _run_python(f"""
        import sys
        import neox_cpp
        neox_cpp.patch()
        from llama_cpp import Llama
        import llama_cpp, llama_cpp.llama_chat_format as lcf
        assert Llama is neox_cpp.Llama, Llama
        assert llama_cpp.llama_cpp.__name__ == "neox_cpp.llama_compat"
        assert callable(lcf.get_chat_completion_handler("rinna"))
        llm = Llama(model_path={str(gguf)!r}, n_ctx=64, verbose=False)
        print("tokens", llm.tokenize("吾輩は猫".encode(), add_bos=False))
        llm.close()
        neox_cpp.unpatch()
        assert "llama_cpp" not in sys.modules
        try:
            import llama_cpp  # the real package: no native library here
        except (OSError, RuntimeError) as e:
            print("real import fails:", type(e).__name__)
        else:
            assert llama_cpp.Llama is not neox_cpp.Llama
            print("real import works")
    """)
    assert "tokens [" in out
    assert "real import" in out


def test_patch_after_failed_import(gguf: Path) -> None:
    out = _run_python(f"""
        try:
            import llama_cpp
            print("real llama_cpp importable")
        except (OSError, RuntimeError):
            print("real llama_cpp not importable")
        import neox_cpp
        neox_cpp.patch()
        neox_cpp.patch()  # idempotent
        from llama_cpp import Llama, LlamaRAMCache
        import llama_cpp.llama
        assert Llama is neox_cpp.Llama and llama_cpp.Llama is Llama
        llm = Llama(model_path={str(gguf)!r}, n_ctx=64, verbose=False)
        assert llm.n_ctx() == 64
        llm.close()
        neox_cpp.unpatch()
        neox_cpp.unpatch()
        print("ok")
    """)
    assert out.strip().endswith("ok")


def test_in_process_patch_and_unpatch_restore_sys_modules() -> None:
    before = {k: v for k, v in sys.modules.items() if k == "llama_cpp" or k.startswith("llama_cpp.")}
    neox_cpp.patch()
    try:
        import llama_cpp

        assert llama_cpp.Llama is neox_cpp.Llama
    finally:
        neox_cpp.unpatch()
    after = {k: v for k, v in sys.modules.items() if k == "llama_cpp" or k.startswith("llama_cpp.")}
    assert after == before


# --------------------------------------------------------------------------------------------------
# LangChain


@pytest.fixture()
def patched() -> Iterator[None]:
    pytest.importorskip("langchain_community", reason="pip install langchain-community==0.4.2")
    neox_cpp.patch()
    try:
        yield
    finally:
        neox_cpp.unpatch()


def _direct(gguf: Path, init: Dict[str, Any], call: Dict[str, Any]) -> str:
    llm = neox_cpp.Llama(model_path=str(gguf), **init)
    try:
        return str(llm(PROMPT, **call)["choices"][0]["text"])
    finally:
        llm.close()


# What LangChain 0.4.2 passes (section 7 of the reference).
LC_INIT = dict(rope_freq_scale=1.0, rope_freq_base=10000.0, n_parts=-1, f16_kv=True, logits_all=False,
               vocab_only=False, use_mlock=False, n_threads=None, n_batch=8, use_mmap=True,
               last_n_tokens_size=64, verbose=False)
LC_CALL = dict(max_tokens=256, temperature=0.8, top_p=0.95, logprobs=None, echo=False, repeat_penalty=1.1,
               top_k=40, suffix=None)


def test_langchain_seed_call(patched: None, gguf: Path) -> None:
    from langchain_community.llms import LlamaCpp

    llm = LlamaCpp(model_path=str(gguf), n_ctx=1024, max_tokens=256, seed=1, stop=STOP, f16_kv=True,
                   verbose=False)
    assert type(llm.client) is neox_cpp.Llama
    text = llm.invoke(PROMPT)
    assert isinstance(text, str) and text
    expected = _direct(gguf, dict(LC_INIT, n_ctx=1024, seed=1), dict(LC_CALL, stop=STOP))
    assert text == expected
    # a completion re-seeds the Llama (llama-cpp-python's set_seed), so stream from a fresh instance
    fresh = LlamaCpp(model_path=str(gguf), n_ctx=1024, max_tokens=256, seed=1, stop=STOP, f16_kv=True,
                     verbose=False)
    chunks = list(fresh.stream(PROMPT))
    assert len(chunks) > 1
    assert "".join(chunks) == expected
    assert llm.get_num_tokens("吾輩は猫") == len(llm.client.tokenize("吾輩は猫".encode()))


def test_langchain_defaults(patched: None, gguf: Path) -> None:
    """LangChain's defaults: n_ctx 512, n_batch 8, seed -1, rope_freq_base 10000.0, streaming=True."""
    from langchain_community.llms import LlamaCpp

    llm = LlamaCpp(model_path=str(gguf), max_tokens=32, verbose=False)
    assert llm.streaming and llm.n_batch == 8 and llm.seed == -1
    client = llm.client
    assert client.n_ctx() == 512 and client.n_batch == 8
    text = llm.invoke(PROMPT)
    assert isinstance(text, str)
    assert text == _direct(gguf, dict(LC_INIT, n_ctx=512, seed=-1), dict(LC_CALL, max_tokens=32, stop=[]))
    # seed -1 reaches the samplers as 2**32 - 1 (masked), the same every run
    again = LlamaCpp(model_path=str(gguf), max_tokens=32, verbose=False).invoke(PROMPT)
    assert again == text


def test_langchain_bad_path(patched: None, tmp_path: Path) -> None:
    from langchain_community.llms import LlamaCpp

    with pytest.raises(Exception, match="Could not load Llama model from path"):
        LlamaCpp(model_path=str(tmp_path / "missing.gguf"), verbose=False)
