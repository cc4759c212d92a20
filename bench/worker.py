"""A bench engine in a process of its own: `python bench/worker.py KIND JSON_ARGS`, then JSON commands on
stdin, one answer line per command on stdout (prefixed "@@w "; anything else a library prints goes to
stderr).

Kinds:
  ct2    {"model_dir": ..., "threads": N}  CTranslate2 int8 (bench/ctranslate2_engine.py); the parent sets
         CT2_FORCE_CPU_ISA in the environment for the AVX2-limited variant
  torch  {"hf_dir": ..., "dtype": "bfloat16"|"float32", "threads": N}  (bench/torch_engine.py)
Commands: {"op": "pp"|"tg", "tokens": [...]} -> {"seconds": s}; {"op": "info"} -> {"info": str,
"peak_rss": bytes}; {"op": "quit"}.

A process per engine means its memory (a 7 GB torch model) is returned when its row is done, and an
environment variable read at library load (CT2_FORCE_CPU_ISA) applies to that engine alone.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sysinfo  # noqa: E402


def _make(kind: str, args: Dict[str, Any]) -> Any:
    if kind == "ct2":
        import ctranslate2_engine

        return ctranslate2_engine.CTranslate2Runner(Path(args["model_dir"]), int(args["threads"]))
    if kind == "torch":
        import torch_engine

        return torch_engine.TorchRunner(Path(args["hf_dir"]), str(args["dtype"]), int(args["threads"]))
    raise ValueError(f"unknown worker kind {kind!r}")


def main() -> int:
    out = sys.stdout
    sys.stdout = sys.stderr

    def answer(obj: Dict[str, Any]) -> None:
        out.write("@@w " + json.dumps(obj) + "\n")
        out.flush()

    try:
        t = time.perf_counter()
        runner = _make(sys.argv[1], json.loads(sys.argv[2]))
        answer({"ok": True, "load_seconds": time.perf_counter() - t})
    except Exception as e:
        traceback.print_exc()
        answer({"ok": False, "error": f"{type(e).__name__}: {e}"})
        return 1
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.get("op")
        try:
            if op == "pp":
                answer({"ok": True, "seconds": runner.pp(cmd["tokens"])})
            elif op == "tg":
                answer({"ok": True, "seconds": runner.tg(cmd["tokens"])})
            elif op == "info":
                answer({"ok": True, "info": runner.kernel_info(), "peak_rss": sysinfo.peak_rss()})
            elif op == "quit":
                runner.close()
                answer({"ok": True})
                break
            else:
                answer({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as e:  # report and keep serving
            traceback.print_exc()
            answer({"ok": False, "error": f"{type(e).__name__}: {e}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
