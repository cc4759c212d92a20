"""`python -m neox_cpp.server` (llama-cpp-python's OpenAI-compatible server on our engine), driven with the
official `openai` client against a server started on 127.0.0.1 on a free port.

The server runs under `timeout` (it stops by itself even if the test process dies) and is terminated by
the fixture. Expected outputs: the same requests made directly on neox_cpp.Llama (greedy decoding, the
server's request defaults), so every answer is checked for content, including 20 concurrent requests.

Needs llama-cpp-python's [server] extra and openai:
    pip install openai 'uvicorn>=0.22.0' 'fastapi>=0.100.0' 'pydantic-settings>=2.0.1' \
        'sse-starlette>=1.6.1' 'starlette-context>=0.3.6,<0.4' 'PyYAML>=5.1'
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest
from llm_models import converted

import neox_cpp

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1]
N_CTX = 512
SERVER_LIFETIME = 600  # seconds, hard limit of the server process
# The server's request defaults (llama_cpp/server/types.py) that matter for greedy decoding.
SERVER_SAMPLING = dict(repeat_penalty=1.1, frequency_penalty=0.0, presence_penalty=0.0)

for _mod in ("openai", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings"):
    pytest.importorskip(_mod, reason="pip install openai and llama-cpp-python's [server] extra "
                                     "(see tests/test_server.py)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, model: Path, *extra: str) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
        cmd = [sys.executable, "-m", "neox_cpp.server", "--model", str(model), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(N_CTX), "--verbose", "false", *extra]
        if shutil.which("timeout"):
            cmd = ["timeout", str(SERVER_LIFETIME), *cmd]
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"neox-server-{self.port}.log", "w+b")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))

    def wait_ready(self, timeout: float = 90) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.base_url + "/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-5000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.log.close()


def _client(server: Server) -> Any:
    import openai

    return openai.OpenAI(base_url=server.base_url, api_key="unused", timeout=120, max_retries=0)


@pytest.fixture(scope="module")
def model_path() -> Path:
    return converted("spm", name="rinna-japanese-gpt-neox-3.6b-instruction-sft")[1]


@pytest.fixture(scope="module")
def server(model_path: Path) -> Iterator[Server]:
    # interrupt_requests (on by default in llama-cpp-python's server) ends a stream early as soon as
    # another request waits; off, every one of the concurrent requests runs to completion.
    srv = Server(model_path, "--embedding", "true", "--interrupt_requests", "false")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def direct(model_path: Path) -> Iterator[Any]:
    """The reference: the same model in this process, as the server loads it (logits_all, embedding)."""
    llm = neox_cpp.Llama(model_path=str(model_path), n_ctx=N_CTX, logits_all=True, embedding=True,
                         verbose=False)
    yield llm
    llm.close()


def _complete(direct: Any, prompt: str, max_tokens: int) -> Dict[str, Any]:
    return direct.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, **SERVER_SAMPLING)


def test_models(server: Server, model_path: Path) -> None:
    models = _client(server).models.list()
    assert [m.id for m in models.data] == [str(model_path)]


def test_completion_and_stream(server: Server, direct: Any) -> None:
    client = _client(server)
    prompt = "吾輩は猫である。"
    expected = _complete(direct, prompt, 24)["choices"][0]
    got = client.completions.create(model="x", prompt=prompt, max_tokens=24, temperature=0.0)
    assert got.choices[0].text == expected["text"]
    assert got.choices[0].finish_reason == expected["finish_reason"]
    assert got.usage.completion_tokens == 24 or expected["finish_reason"] == "stop"
    chunks = list(client.completions.create(model="x", prompt=prompt, max_tokens=24, temperature=0.0,
                                            stream=True))
    assert len(chunks) > 2
    assert "".join(c.choices[0].text for c in chunks) == expected["text"]
    assert chunks[-1].choices[0].finish_reason == expected["finish_reason"]


def test_chat_completion_and_stream(server: Server, direct: Any) -> None:
    client = _client(server)
    messages: List[Dict[str, str]] = [{"role": "user", "content": "日本で一番高い山は？\n短く答えて。"}]
    assert direct.chat_format == "rinna"
    expected = direct.create_chat_completion(messages=messages, max_tokens=24, temperature=0.0,
                                             **SERVER_SAMPLING)["choices"][0]
    got = client.chat.completions.create(model="x", messages=messages, max_tokens=24, temperature=0.0)
    assert got.choices[0].message.role == "assistant"
    assert got.choices[0].message.content == expected["message"]["content"]
    assert "<NL>" not in got.choices[0].message.content
    stream = client.chat.completions.create(model="x", messages=messages, max_tokens=24, temperature=0.0,
                                            stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected["message"]["content"]
    assert chunks[-1].choices[0].finish_reason == expected["finish_reason"]


def test_embeddings(server: Server, direct: Any) -> None:
    texts = ["吾輩は猫である。", "名前はまだ無い。"]
    got = _client(server).embeddings.create(model="x", input=texts)
    expected = direct.create_embedding(texts)
    assert len(got.data) == 2
    for item, ref in zip(got.data, expected["data"]):
        # GPT-NeoX models have no pooling: one vector per token, as llama.cpp's server gives
        np.testing.assert_allclose(np.asarray(item.embedding), np.asarray(ref["embedding"]),
                                   rtol=0, atol=1e-5)
    assert got.usage.prompt_tokens == expected["usage"]["prompt_tokens"]


def test_twenty_concurrent_requests(server: Server, direct: Any) -> None:
    client = _client(server)
    prompts = [f"{i}番目の猫は" + "吾輩" * (i % 4) for i in range(20)]
    expected = [_complete(direct, p, 12)["choices"][0]["text"] for p in prompts]

    def ask(i: int) -> str:
        if i % 2:
            chunks = client.completions.create(model="x", prompt=prompts[i], max_tokens=12,
                                               temperature=0.0, stream=True)
            return "".join(c.choices[0].text for c in chunks)
        return str(client.completions.create(model="x", prompt=prompts[i], max_tokens=12,
                                             temperature=0.0).choices[0].text)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(ask, range(20)))
    assert answers == expected


def test_pooling_option(model_path: Path) -> None:
    """--pooling mean (our option): /v1/embeddings gives one pooled vector per input."""
    srv = Server(model_path, "--embedding", "true", "--pooling", "mean")
    try:
        srv.wait_ready()
        got = _client(srv).embeddings.create(model="x", input="吾輩は猫である。")
    finally:
        srv.stop()
    llm = neox_cpp.Llama(model_path=str(model_path), n_ctx=N_CTX, embedding=True, pooling_type=1,
                         verbose=False)
    try:
        ref = llm.embed("吾輩は猫である。")
    finally:
        llm.close()
    np.testing.assert_allclose(np.asarray(got.data[0].embedding), np.asarray(ref), rtol=0, atol=1e-5)


def test_bad_pooling_value_is_refused(model_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "neox_cpp.server", "--model", str(model_path),
                           "--pooling", "max"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode != 0
    assert "--pooling must be one of" in proc.stderr
