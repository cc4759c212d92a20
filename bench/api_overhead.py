"""What the layers above the engine cost, on one GGUF (the rinna-3.6B-shaped q8_0 in the real run):

(a) generation through llama-cpp-python's `Llama` API running on our engine (neox_cpp.Llama) against our
    engine driven directly through neox_cpp._lib, interleaved in one process, same context sizes:
      direct:   per token: gptneox_decode of one token + argmax of its logits (numpy on the logits pointer)
      generate: Llama.generate(prompt, temp=0): seconds from the first token out to the 33rd = 32 steps of
                eval + greedy sample; per-token overhead = generate / direct - 1 (target < 3%)
      create_completion(prompt, max_tokens=32, temperature=0) against direct pp(prompt) + one decode+argmax
                per completion token (the whole call: tokens in, text out)
(b) LangChain's default n_batch=8: a 512-token prompt by Llama.eval with n_batch=8 against n_batch=512 on
    the same Llama (Llama.eval splits the prompt by self.n_batch); and through
    langchain_community.llms.LlamaCpp (after neox_cpp.patch(); n_threads given, its n_batch default kept):
    its client evaluates the same prompt, against the n_batch=512 Llama, interleaved.
    Cost = 1 - speed(8) / speed(512) (target < 10%).
    The ratio in (a) divides two figures that each move with the machine's memory bandwidth (the rinna
    shape's tokens are bandwidth-bound and take ~0.1 s); so the layer's own cost is also measured in
    absolute terms on a small model whose decode takes well under a millisecond (the `tiny` shape, 32000
    vocabulary as rinna's): per-token seconds of generate minus direct, best of the runs, set against
    the large model's direct per-token time.
(c) peak RSS (VmHWM) of a fresh process that loads the file, runs pp512 and tg32 through neox_cpp._lib
    (n_ctx 1024), against file size + 10% + KV cache bytes (f16 K and V: 2 × n_layer × n_ctx × n_embd × 2).

`python bench/api_overhead.py FILE.gguf [--small SMALL.gguf] [--reps N] [--threads N]` runs it alone;
bench/run.py calls run().
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import engines  # noqa: E402
import sysinfo  # noqa: E402

N_GEN = 32
N_PROMPT = 512


def _tokens(n: int, seed: int) -> List[int]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [int(x) for x in rng.integers(16, 30000, size=n)]


def direct_gen(eng: engines.OursEngine, prompt: List[int], n: int) -> float:
    """Seconds of n steps of (one-token decode + argmax of its logits) after `prompt`, through _lib."""
    import numpy as np

    L = eng._L
    ctx = eng._new_ctx()
    try:
        n_vocab = L.gptneox_vocab_n_tokens(L.gptneox_model_get_vocab(eng.model))
        eng._fill(prompt, 0)
        eng._decode(ctx)
        tok = int(np.argmax(np.ctypeslib.as_array(L.gptneox_get_logits_ith(ctx, -1), shape=(n_vocab,))))
        t = time.perf_counter()
        for i in range(n):
            eng._fill([tok], len(prompt) + i)
            eng._decode(ctx)
            logits = np.ctypeslib.as_array(L.gptneox_get_logits_ith(ctx, -1), shape=(n_vocab,))
            tok = int(np.argmax(logits))
        return time.perf_counter() - t
    finally:
        L.gptneox_free(ctx)


def direct_completion(eng: engines.OursEngine, prompt: List[int], n: int) -> float:
    """Seconds of pp(prompt) + n decode+argmax steps, through _lib (create_completion's equivalent)."""
    t = time.perf_counter()
    eng.pp(prompt)
    pp = time.perf_counter() - t
    return pp + direct_gen(eng, prompt, n)


def api_gen(llm: Any, prompt: List[int], n: int) -> float:
    """Seconds from the first generated token to the (n+1)-th through Llama.generate (greedy)."""
    llm.reset()
    it = llm.generate(prompt, temp=0.0, top_k=1, reset=True)
    next(it)
    t = time.perf_counter()
    for _ in range(n):
        next(it)
    dt = time.perf_counter() - t
    it.close()
    return dt


def api_completion(llm: Any, prompt: List[int], n: int) -> Tuple[float, int]:
    """(seconds, completion tokens) of create_completion(prompt, max_tokens=n, greedy)."""
    llm.reset()
    t = time.perf_counter()
    out = llm.create_completion(prompt, max_tokens=n, temperature=0.0, top_k=1)
    return time.perf_counter() - t, int(out["usage"]["completion_tokens"])


def eval_prompt(llm: Any, prompt: List[int], n_batch: int) -> float:
    """Seconds of Llama.eval(prompt) in calls of n_batch tokens, until the results are computed (our
    gptneox_decode queues small calls: llama_synchronize waits for them, as sampling would)."""
    from neox_cpp import llama_compat

    llm.reset()
    llm.n_batch = n_batch
    t = time.perf_counter()
    llm.eval(prompt)
    llama_compat.llama_synchronize(llm._ctx.ctx)
    return time.perf_counter() - t


def _pct(a: List[float], b: List[float]) -> str:
    """'x% (best y%)': how much longer a takes than b (medians; and best runs)."""
    return (f"{100 * (statistics.median(a) / statistics.median(b) - 1):+.1f}% "
            f"(best {100 * (min(a) / min(b) - 1):+.1f}%)")


def measure_api(path: Path, reps: int, threads: int) -> Dict[str, Any]:
    """(a) and (b) in this process."""
    import neox_cpp

    n_ctx = 1024
    res: Dict[str, List[float]] = {k: [] for k in ("direct_gen", "api_gen", "direct_cc", "api_cc",
                                                   "nb512", "nb8", "lc")}
    prompt8 = _tokens(8, 1)
    prompt = _tokens(N_PROMPT, 2)
    notes: List[str] = []
    eng = engines.OursEngine(path, n_ctx, 512, threads)
    llm = neox_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=512, n_ubatch=512, n_threads=threads,
                         n_threads_batch=threads, verbose=False)
    lc, note = langchain_client(path, n_ctx, threads)
    notes.append(note)
    try:
        direct_gen(eng, prompt8, 2)
        api_gen(llm, prompt8, 2)
        for _ in range(reps):
            res["direct_gen"].append(direct_gen(eng, prompt8, N_GEN))
            res["api_gen"].append(api_gen(llm, prompt8, N_GEN))
            secs, n_done = api_completion(llm, prompt8, N_GEN)
            res["api_cc"].append(secs)
            res["direct_cc"].append(direct_completion(eng, prompt8, n_done))
            if n_done != N_GEN:
                notes.append(f"create_completion stopped after {n_done} tokens")
            res["nb512"].append(eval_prompt(llm, prompt, 512))
            res["nb8"].append(eval_prompt(llm, prompt, 8))
            if lc is not None:
                res["lc"].append(eval_prompt(lc, prompt, int(lc.n_batch)))
    finally:
        if lc is not None:
            lc.close()
        llm.close()
        eng.close()
    return {"raw": res, "notes": notes}


def langchain_client(path: Path, n_ctx: int, threads: int) -> Tuple[Optional[Any], str]:
    """The Llama that langchain_community.llms.LlamaCpp makes on our engine (after neox_cpp.patch()), with
    LangChain's defaults except n_threads (its default leaves the choice to Llama); and a note."""
    try:
        from langchain_community.llms import LlamaCpp
    except ImportError:
        return None, "langchain_community is not installed: its row was not run"
    import neox_cpp

    neox_cpp.patch()
    try:
        client = LlamaCpp(model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False).client
        return client, (f"LangChain LlamaCpp made Llama(n_batch={client.n_batch}, "
                        f"n_ubatch={client.context_params.n_ubatch})")
    except Exception as e:  # report, do not lose the other figures
        return None, f"LangChain LlamaCpp failed: {type(e).__name__}: {e}"
    finally:
        neox_cpp.unpatch()


_RSS_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[2]); sys.path.insert(0, sys.argv[3])
import engines, sysinfo
from api_overhead import _tokens
base = sysinfo.peak_rss()
e = engines.OursEngine(__import__("pathlib").Path(sys.argv[1]), 1024, 512, int(sys.argv[4]))
e.pp(_tokens(512, 3))
e.tg(_tokens(32, 4))
print(json.dumps({"peak_rss": sysinfo.peak_rss(), "baseline": base}))
"""


def peak_rss(path: Path, threads: int) -> Dict[str, Any]:
    """(c): VmHWM of a fresh process that loads `path`, runs pp512 and tg32 (n_ctx 1024)."""
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    n_layer = int(r.fields["gptneox.block_count"].parts[-1][0])
    n_embd = int(r.fields["gptneox.embedding_length"].parts[-1][0])
    del r
    kv = 2 * n_layer * 1024 * n_embd * 2
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(path), str(HERE), str(HERE.parent),
                          str(threads)], capture_output=True, text=True, env=dict(os.environ))
    if out.returncode != 0:
        return {"error": out.stderr[-2000:]}
    got = json.loads(out.stdout.strip().splitlines()[-1])
    size = path.stat().st_size
    return {"peak_rss": got["peak_rss"], "baseline": got["baseline"], "file": size, "kv": kv,
            "budget": int(size * 1.1) + kv}


def measure_small(path: Path, reps: int, threads: int, n: int = 128) -> Dict[str, Any]:
    """(a) in absolute terms: seconds per token of Llama.generate minus _lib decode+argmax on `path`."""
    import neox_cpp

    eng = engines.OursEngine(path, 1024, 512, threads)
    llm = neox_cpp.Llama(model_path=str(path), n_ctx=1024, n_batch=512, n_ubatch=512, n_threads=threads,
                         n_threads_batch=threads, verbose=False)
    prompt8 = _tokens(8, 1)
    direct: List[float] = []
    api: List[float] = []
    try:
        direct_gen(eng, prompt8, 2)
        api_gen(llm, prompt8, 2)
        for _ in range(max(reps, 5)):
            direct.append(direct_gen(eng, prompt8, n) / n)
            api.append(api_gen(llm, prompt8, n) / n)
    finally:
        llm.close()
        eng.close()
    return {"file": str(path), "direct": direct, "api": api}


def run(path: Path, reps: int, threads: int, small: Optional[Path] = None) -> Dict[str, Any]:
    out = {"api": measure_api(path, reps, threads), "rss": peak_rss(path, threads), "file": str(path)}
    if small is not None:
        out["small"] = measure_small(small, reps, threads)
    return out


def report(r: Dict[str, Any]) -> str:
    """Markdown lines for the table."""
    res = r["api"]["raw"]
    name = Path(r["file"]).name
    lines = [f"Layers above the engine ({name}; {len(res['direct_gen'])} interleaved runs):", ""]

    def tok_s(secs: List[float], n: int) -> str:
        return f"{n / statistics.median(secs):.3g} tok/s" if secs else "–"

    lines.append(f"- generation, Llama.generate (greedy, {N_GEN} tokens) vs _lib decode+argmax: "
                 f"{tok_s(res['api_gen'], N_GEN)} vs {tok_s(res['direct_gen'], N_GEN)}: "
                 f"Python layer {_pct(res['api_gen'], res['direct_gen'])} (target < 3%)")
    if r.get("small"):
        sm = r["small"]
        per_tok = min(sm["api"]) - min(sm["direct"])
        big = statistics.median(res["direct_gen"]) / N_GEN
        small_ms = 1e3 * min(sm["direct"])
        lines.append(f"- the same on {Path(sm['file']).name} (decode {small_ms:.3f} ms/token): "
                     f"the Python layer costs {1e3 * per_tok:.3f} ms per token (best runs), "
                     f"{100 * per_tok / big:.2f}% of {name}'s {1e3 * big:.1f} ms per token (target < 3%)")
    lines.append(f"- create_completion(8-token prompt, max_tokens={N_GEN}) vs _lib pp8 + decode+argmax: "
                 f"{_pct(res['api_cc'], res['direct_cc'])}")
    lines.append(f"- {N_PROMPT}-token prompt, Llama.eval with n_batch=8 vs 512: "
                 f"{tok_s(res['nb8'], N_PROMPT)} vs {tok_s(res['nb512'], N_PROMPT)}: "
                 f"cost {_cost(res['nb8'], res['nb512'])} (target < 10%)")
    if res.get("lc"):
        lines.append(f"- the same through langchain_community LlamaCpp (its default n_batch) vs n_batch=512: "
                     f"{tok_s(res['lc'], N_PROMPT)} vs {tok_s(res['nb512'], N_PROMPT)}: "
                     f"cost {_cost(res['lc'], res['nb512'])}")
    for n in dict.fromkeys(r["api"]["notes"]):
        lines.append(f"- note: {n}")
    m = r["rss"]
    if "error" in m:
        lines.append(f"- peak RSS: the child failed: {m['error'][-300:]}")
    else:
        ok = "at or below" if m["peak_rss"] <= m["budget"] else "ABOVE"
        own = m["peak_rss"] - m["baseline"]
        ok_own = "at or below" if own <= m["budget"] else "ABOVE"
        lines.append(f"- peak RSS (VmHWM) after load + pp512 + tg32, n_ctx 1024: "
                     f"{m['peak_rss'] / 1e9:.3f} GB ({ok} the budget file {m['file'] / 1e9:.3f} GB + 10% + "
                     f"KV {m['kv'] / 1e9:.3f} GB = {m['budget'] / 1e9:.3f} GB); without the bare Python "
                     f"process's {m['baseline'] / 1e9:.3f} GB: {own / 1e9:.3f} GB ({ok_own} the budget)")
    return "\n".join(lines)


def _cost(slow: List[float], fast: List[float]) -> str:
    """Lost share of speed: 1 - speed(slow) / speed(fast), medians (and best runs)."""
    return (f"{100 * (1 - statistics.median(fast) / statistics.median(slow)):.1f}% "
            f"(best {100 * (1 - min(fast) / min(slow)):.1f}%)")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gguf", type=Path)
    ap.add_argument("--small", type=Path, help="a small GGUF for the absolute per-token cost (tiny shape)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    print(report(run(args.gguf, args.reps, args.threads, args.small)))
    print(f"(load average {os.getloadavg()[0]:.1f}; peak RSS of this process "
          f"{sysinfo.peak_rss() / 1e9:.2f} GB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
