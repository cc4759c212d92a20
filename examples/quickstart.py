"""Load a GGUF model through llama-cpp-python's own `Llama` class running on neox_cpp, and greedy-decode.

    python examples/quickstart.py [MODEL.gguf] [PROMPT]

Default model: models/tiny-spm-q8_0.gguf, a 2-layer random-weight rinna-shaped model shipped in the repo
(so its text is gibberish; point it at a converted real checkpoint for real text). Sampling through
`Llama.create_completion` comes with the samplers issue; this uses `eval` and the logits (`scores`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from neox_cpp import Llama

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    model = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "models" / "tiny-spm-q8_0.gguf")
    prompt = sys.argv[2] if len(sys.argv) > 2 else "吾輩は猫である。"
    # logits_all: llama-cpp-python 0.3.36 fills `scores` only then (else logits stay inside the sampler).
    llm = Llama(model_path=model, n_ctx=128, logits_all=True, verbose=False)
    print(f"model: {llm.metadata.get('general.name', model)}  n_vocab={llm.n_vocab()}  n_ctx={llm.n_ctx()}")
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    print(f"prompt tokens: {tokens}")
    llm.eval(tokens)
    generated: list[int] = []
    for _ in range(16):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        if token == llm.token_eos():
            break
        generated.append(token)
        llm.eval([token])
    text = llm.detokenize(generated, prev_tokens=tokens).decode("utf-8", errors="replace")
    print(f"greedy continuation: {text!r}")
    llm.close()


if __name__ == "__main__":
    main()
