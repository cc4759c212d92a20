"""The README's first command ends in `python examples/quickstart.py`: it must run, and what it prints must
be the model's greedy continuation, here recomputed on the engine directly (tokens by argmax over the
logits of neox_cpp._lib's Context, no sampler), then turned to text as llama-cpp-python does."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import List

from neox_cpp import Llama, _lib

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "tiny-spm-q8_0.gguf"
PROMPT = "吾輩は猫である。"


def _greedy_text(n: int) -> str:
    with _lib.Model(MODEL) as model:
        eos = _lib.gptneox_vocab_eos(model.vocab)
        add_bos = bool(_lib.gptneox_vocab_get_add_bos(model.vocab))
        prompt = model.tokenize(PROMPT.encode(), add_special=add_bos, parse_special=True)
        out: List[int] = []
        with _lib.Context(model, n_ctx=128) as ctx:
            ctx.decode(prompt)
            for _ in range(n):
                row = ctx.logits()
                token = max(range(len(row)), key=row.__getitem__)
                if token == eos:
                    break
                out.append(token)
                ctx.decode([token])
    llm = Llama(model_path=str(MODEL), n_ctx=128, verbose=False)
    try:
        return llm.detokenize(out, prev_tokens=prompt).decode("utf-8", errors="ignore")
    finally:
        llm.close()


def test_quickstart_prints_the_greedy_continuation() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True,
                         timeout=120, env=env, cwd=str(ROOT))
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    lines = run.stdout.decode("utf-8").splitlines()
    assert lines[0].startswith("model: tiny-spm")
    completion = lines[1]
    assert completion.startswith("completion: ")
    text = ast.literal_eval(completion[len("completion: "):completion.rindex("  (")])
    expected = _greedy_text(16)
    assert expected  # the tiny model does not stop at once: 16 tokens of text
    assert text == expected
    assert lines[2] == "streamed:   " + expected
