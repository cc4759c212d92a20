"""`neox-cpp run` / `neox-cpp chat` (neox_cpp.cli). Expected output: the same generation made directly
with neox_cpp.Llama and the same parameters (greedy and seeded sampling), so the flags are checked to
reach the sampler; chat is driven through a pipe on stdin."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from llm_models import converted

import neox_cpp
from neox_cpp import cli

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "吾輩は猫である。"


@pytest.fixture(scope="module")
def model() -> Path:
    return converted("spm", name="rinna-japanese-gpt-neox-3.6b-instruction-sft")[1]


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "neox_cpp.cli", *args], input=stdin.encode(),
                          capture_output=True, timeout=300, env=env, cwd=str(ROOT))


def _direct(model: Path, n_ctx: int = 512, n_batch: int = 512, repeat_last_n: int = 64, seed: int = 1) -> Any:
    return neox_cpp.Llama(model_path=str(model), n_ctx=n_ctx, n_batch=n_batch, seed=seed,
                          last_n_tokens_size=repeat_last_n, verbose=False)


def _params(n: int, temp: float, seed: int, top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05,
            repeat_penalty: float = 1.1) -> Dict[str, Any]:
    return dict(max_tokens=n, temperature=temp, top_k=top_k, top_p=top_p, min_p=min_p,
                repeat_penalty=repeat_penalty, seed=seed)


@pytest.mark.parametrize("temp,seed", [(0.0, 1), (0.9, 7), (1.3, 12345)])
def test_run_matches_direct_generation(model: Path, temp: float, seed: int) -> None:
    proc = _cli("run", "-m", str(model), "-p", PROMPT, "-n", "20", "--temp", str(temp), "--seed", str(seed),
                "-c", "256", "-b", "16", "--top_k", "30", "--top_p", "0.9", "--repeat_last_n", "32",
                "--repeat_penalty", "1.2", "-t", "1")
    assert proc.returncode == 0, proc.stderr.decode()
    llm = _direct(model, n_ctx=256, n_batch=16, repeat_last_n=32, seed=seed)
    try:
        expected = llm.create_completion(PROMPT, **_params(20, temp, seed, top_k=30, top_p=0.9,
                                                           repeat_penalty=1.2))["choices"][0]["text"]
    finally:
        llm.close()
    assert proc.stdout.decode() == PROMPT + expected + "\n"
    assert f"seed = {seed}" in proc.stderr.decode()


def test_run_color_and_verbose_prompt(model: Path) -> None:
    proc = _cli("run", "-m", str(model), "-p", PROMPT, "--n_predict", "4", "--temp", "0", "--color",
                "--verbose-prompt")
    assert proc.returncode == 0, proc.stderr.decode()
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert out.startswith(cli.YELLOW + PROMPT + cli.RESET)
    llm = _direct(model)
    try:
        tokens = llm.tokenize(PROMPT.encode(), add_bos=llm._model.add_bos_token(), special=True)
    finally:
        llm.close()
    assert f"number of tokens in prompt = {len(tokens)}" in err
    listed = [int(line.split("->")[0]) for line in err.splitlines() if "->" in line]
    assert listed == tokens


def test_run_streams(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The continuation is written piece by piece, not at the end."""

    class Recorder:
        def __init__(self) -> None:
            self.writes: List[str] = []

        def write(self, text: str) -> None:
            self.writes.append(text)

        def flush(self) -> None:
            pass

    out = Recorder()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", Recorder())
    assert cli.main(["run", "-m", str(model), "-p", PROMPT, "-n", "12", "--temp", "0", "--seed", "1"]) == 0
    assert out.writes[0] == PROMPT
    assert len(out.writes) > 4


def test_run_errors(model: Path, tmp_path: Path) -> None:
    proc = _cli("run", "-m", str(tmp_path / "missing.gguf"), "-p", "x")
    assert proc.returncode == 1 and b"model file not found" in proc.stderr
    proc = _cli("run", "-m", str(model), "-p", PROMPT * 20, "-c", "16")
    assert proc.returncode == 1 and b"exceed context window" in proc.stderr
    proc = _cli("run", "-m", str(model))
    assert proc.returncode == 2  # argparse: -p or -f required


def test_run_prompt_file(model: Path, tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_text(PROMPT, encoding="utf-8")
    a = _cli("run", "-m", str(model), "-f", str(f), "-n", "8", "--temp", "0")
    b = _cli("run", "-m", str(model), "-p", PROMPT, "-n", "8", "--temp", "0")
    assert a.returncode == 0 and a.stdout == b.stdout


def _chat_direct(model: Path, lines: List[str], n: int, seed: int, system: Any = None) -> str:
    llm = _direct(model, seed=seed)
    try:
        base = [{"role": "system", "content": system}] if system else []
        history: List[Dict[str, str]] = list(base)
        out = []
        for line in lines:
            if line == "/reset":
                history = list(base)
                continue
            history.append({"role": "user", "content": line})
            reply = llm.create_chat_completion(messages=history, **_params(n, 0.0, seed))
            text = reply["choices"][0]["message"]["content"]
            out.append(text + "\n")
            history.append({"role": "assistant", "content": text})
        return "".join(out)
    finally:
        llm.close()


def test_chat_through_a_pipe(model: Path) -> None:
    lines = ["日本で一番高い山は？", "もう一度\n", "/reset", "ありがとう"]
    stdin = "日本で一番高い山は？\nもう一度\n\n/reset\nありがとう\n/exit\nignored\n"
    proc = _cli("chat", "-m", str(model), "-n", "12", "--temp", "0", "--seed", "5", "--system", "丁寧に",
                stdin=stdin)
    assert proc.returncode == 0, proc.stderr.decode()
    assert "chat format: rinna" in proc.stderr.decode()
    expected = _chat_direct(model, [s.strip() for s in lines], 12, 5, system="丁寧に")
    assert proc.stdout.decode() == expected


def test_chat_ends_at_end_of_input(model: Path) -> None:
    proc = _cli("chat", "-m", str(model), "-n", "4", "--temp", "0", "--chat_format", "dolly-v2", stdin="hi\n")
    assert proc.returncode == 0, proc.stderr.decode()
    assert "chat format: dolly-v2" in proc.stderr.decode()
    assert proc.stdout.decode().endswith("\n")


def test_add_subcommands_plugs_into_a_parser() -> None:
    parser = argparse.ArgumentParser(prog="neox-cpp")
    sub = parser.add_subparsers(dest="command")
    cli.add_subcommands(sub)
    args = parser.parse_args(["run", "-m", "x.gguf", "-p", "hi", "-c", "64", "-b", "8", "-n", "5", "-t", "2",
                              "--temp", "0.5", "--top_k", "3", "--top_p", "0.5", "--repeat_last_n", "7",
                              "--repeat_penalty", "1.3", "--seed", "9", "--color", "--verbose-prompt"])
    assert (args.ctx_size, args.batch_size, args.n_predict, args.threads) == (64, 8, 5, 2)
    assert (args.temp, args.top_k, args.top_p, args.repeat_last_n, args.repeat_penalty, args.seed) == \
        (0.5, 3, 0.5, 7, 1.3, 9)
    assert args.color and args.verbose_prompt and args.func is cli.cmd_run
    args = parser.parse_args(["chat", "-m", "x.gguf"])
    assert args.func is cli.cmd_chat and args.n_predict == 256
