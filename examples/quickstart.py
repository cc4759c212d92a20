"""Load a GGUF model through llama-cpp-python's own `Llama` class running on neox_cpp, and complete a prompt.

    python examples/quickstart.py [MODEL.gguf] [PROMPT]

Default model: models/tiny-spm-q8_0.gguf, a 2-layer random-weight rinna-shaped model shipped in the repo
(so its text is gibberish; point it at a converted real checkpoint for real text). The calls are
llama-cpp-python's: `Llama(...)`, then `llm(prompt, ...)` (create_completion), greedy (temperature 0),
once whole and once streamed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from neox_cpp import Llama

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    model = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "models" / "tiny-spm-q8_0.gguf")
    prompt = sys.argv[2] if len(sys.argv) > 2 else "吾輩は猫である。"
    llm = Llama(model_path=model, n_ctx=128, verbose=False)
    print(f"model: {llm.metadata.get('general.name', model)}  n_vocab={llm.n_vocab()}  n_ctx={llm.n_ctx()}")
    out = llm(prompt, max_tokens=16, temperature=0.0)
    print(f"completion: {out['choices'][0]['text']!r}  ({out['usage']['completion_tokens']} tokens, "
          f"finish_reason {out['choices'][0]['finish_reason']})")
    print("streamed:   ", end="", flush=True)
    for chunk in llm(prompt, max_tokens=16, temperature=0.0, stream=True):
        print(chunk["choices"][0]["text"], end="", flush=True)
    print()
    llm.close()


if __name__ == "__main__":
    main()
