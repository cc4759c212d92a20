"""The engines the bench times, all behind one small interface.

Each engine loads one GGUF (or its own model format) and answers three timings:
  pp(tokens)  seconds to evaluate the prompt in one batch (logits of the last position only), empty cache
  tg(tokens)  seconds to evaluate the tokens one by one (each a single-token decode), empty cache at start

- OursEngine: libgptneox through neox_cpp._lib directly (no Llama layer), in this process. One context per
  engine, emptied before each measurement (as the llama.cpp peer's Llama.reset()); between measurements
  its thread pool's workers spin briefly and then sleep, and bench/run.py idles --settle seconds before
  each measurement so they are asleep while a peer runs.
- LlamaCppEngine: llama-cpp-python 0.3.36 compiled in full, in its own venv (tests/peer.py), driven through
  its high-level Llama.eval (n_batch = n_ubatch = 512, logits of the last position only).
- CTranslate2Engine: CTranslate2 int8 (converted from the same HF checkpoint), optionally limited to AVX2,
  and TorchEngine: transformers + torch in bf16/f32; both in a worker process (bench/worker.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # tests/peer.py (peer venv driver)

import peer as _peer  # noqa: E402


class Engine:
    name = "engine"

    def pp(self, tokens: Sequence[int]) -> float:
        raise NotImplementedError

    def tg(self, tokens: Sequence[int]) -> float:
        raise NotImplementedError

    def close(self) -> None:
        pass


class OursEngine(Engine):
    name = "neox_cpp"

    def __init__(self, path: Path, n_ctx: int, n_batch: int, n_threads: int, kernel_path: int = 0,
                 extra_bufts: bool = True, kv_type: Optional[int] = None) -> None:
        from neox_cpp import _lib as L

        self._L = L
        self.kv_type = kv_type  # enum gptneox_type of K and V (None: the default, F16)
        self.kernel_path = kernel_path  # enum gptneox_kernel_path: 0 auto, 2 AVX2, 3 AVX-512, 4 AMX
        if kernel_path:
            name = (L.gptneox_kernel_path_name(kernel_path) or b"?").decode()
            self.name = f"neox_cpp {name}"
        self.n_ctx, self.n_batch, self.n_threads = n_ctx, n_batch, n_threads
        mp = L.gptneox_model_default_params()
        mp.use_extra_bufts = extra_bufts  # weights repacked at load (gptneox.h), as llama.cpp's option
        self.model = L.check_ptr(L.gptneox_model_load_from_file(str(path).encode(), mp), f"loading {path}")
        self.batch = L.gptneox_batch_init(n_batch, 0, 1)
        if not self.batch.token:
            raise MemoryError("gptneox_batch_init failed")
        self._seq0 = [self.batch.seq_id[i] for i in range(n_batch)]
        self._ctx: Any = None

    def kernel_info(self) -> str:
        raw = self._L.gptneox_print_system_info()
        info = raw.decode() if raw else ""
        if self.kernel_path:  # the system info names the path AUTO picks; this engine forces its own
            forced = (self._L.gptneox_kernel_path_name(self.kernel_path) or b"?").decode()
            info = info.split(" | kernels = ")[0] + f" | kernels = {forced} (forced)"
        return info

    def _new_ctx(self) -> Any:
        L = self._L
        cp = L.gptneox_ctx_default_params()
        cp.n_ctx = self.n_ctx
        cp.n_batch = self.n_batch
        cp.n_ubatch = self.n_batch
        cp.n_seq_max = 1
        cp.n_threads = self.n_threads
        cp.n_threads_batch = self.n_threads
        cp.kernel_path = self.kernel_path
        if self.kv_type is not None:
            cp.type_k = cp.type_v = self.kv_type
        return L.check_ptr(L.gptneox_init_from_model(self.model, cp), "gptneox_init_from_model")

    def _cleared_ctx(self) -> Any:
        """The engine's one context, its KV cache emptied and its timings zeroed: every timed run starts
        from an empty cache in a context made once, as the llama.cpp peer's runs do (Llama.reset() on one
        Llama) and as a user of Llama does between prompts. (A new context per run would put the first
        touch of its cache pages, 1-4% of a rinna-shaped 512-token prompt, inside the timed call.)"""
        L = self._L
        if self._ctx is None:
            self._ctx = self._new_ctx()
        L.gptneox_memory_clear(L.gptneox_get_memory(self._ctx), True)
        L.gptneox_perf_context_reset(self._ctx)
        return self._ctx

    def _fill(self, tokens: Sequence[int], pos0: int) -> None:
        b = self.batch
        n = len(tokens)
        for i, t in enumerate(tokens):
            b.token[i] = int(t)
            b.pos[i] = pos0 + i
            b.n_seq_id[i] = 1
            self._seq0[i][0] = 0
            b.logits[i] = 1 if i == n - 1 else 0
        b.n_tokens = n

    def _decode(self, ctx: Any) -> None:
        """One decode call, computed before it returns: gptneox_decode may queue a small call (see
        gptneox.h), so every timed call is followed by gptneox_synchronize, as llama-bench does."""
        rc = self._L.gptneox_decode(ctx, self.batch)
        if rc != 0:
            self._L.check_status(rc if rc < 0 else -7, f"gptneox_decode returned {rc}")
        self._L.check_status(self._L.gptneox_synchronize(ctx), "gptneox_synchronize")

    def pp(self, tokens: Sequence[int], phases: Optional[Dict[str, float]] = None) -> float:
        """As Engine.pp; `phases`, if given, receives the forward pass's milliseconds per phase
        (gptneox_perf_phases of the batch)."""
        ctx = self._cleared_ctx()
        self._fill(tokens, 0)
        t = time.perf_counter()
        self._decode(ctx)
        dt = time.perf_counter() - t
        if phases is not None:
            phases.update(self._L.perf_phases(ctx, True))
        return dt

    def tg(self, tokens: Sequence[int], phases: Optional[Dict[str, float]] = None) -> float:
        return self.tg_after((), tokens, phases)

    def tg_after(self, prompt: Sequence[int], tokens: Sequence[int],
                 phases: Optional[Dict[str, float]] = None) -> float:
        """Seconds of single-token decodes of `tokens` after `prompt` (evaluated first, in n_batch calls,
        not timed): generation at a context of len(prompt). `phases`: as in pp, for the timed decodes."""
        ctx = self._cleared_ctx()
        for s in range(0, len(prompt), self.n_batch):
            self._fill(prompt[s:s + self.n_batch], s)
            self._decode(ctx)
        self._L.gptneox_perf_context_reset(ctx)
        t = time.perf_counter()
        for i, tok in enumerate(tokens):
            self._fill([tok], len(prompt) + i)
            self._decode(ctx)
        dt = time.perf_counter() - t
        if phases is not None:
            phases.update(self._L.perf_phases(ctx, False))
        return dt

    def logits(self, tokens: Sequence[int]) -> Any:
        """[n_tokens, n_vocab] logits of every position, in one batch (for checks, not timing)."""
        import numpy as np

        L = self._L
        ctx = self._new_ctx()
        try:
            self._fill(tokens, 0)
            for i in range(len(tokens)):
                self.batch.logits[i] = 1
            self._decode(ctx)
            n_vocab = L.gptneox_vocab_n_tokens(L.gptneox_model_get_vocab(self.model))
            ptr = L.check_ptr(L.gptneox_get_logits(ctx), "gptneox_get_logits")
            return np.ctypeslib.as_array(ptr, shape=(len(tokens), n_vocab)).copy()
        finally:
            L.gptneox_free(ctx)

    def close(self) -> None:
        if self._ctx is not None:
            self._L.gptneox_free(self._ctx)
            self._ctx = None
        if self.model:
            self._L.gptneox_batch_free(self.batch)
            self._L.gptneox_model_free(self.model)
            self.model = None


class LlamaCppEngine(Engine):
    name = "llama.cpp"

    def __init__(self, path: Path, n_ctx: int, n_batch: int, n_threads: int, extra_bufts: bool,
                 flash_attn: bool = False, kv_type: Optional[int] = None) -> None:
        """flash_attn / kv_type: Llama's flash_attn and type_k = type_v (None: F16); llama-cpp-python's
        Llama defaults to flash_attn=False, and llama.cpp needs it for a quantized V cache."""
        self._peer = _peer.Peer(extra_bufts=extra_bufts)
        self.system_info = self._peer.system_info
        self._peer.load(path, n_ctx=n_ctx, n_batch=n_batch, n_threads=n_threads, logits_all=False,
                        flash_attn=flash_attn, type_k=kv_type, type_v=kv_type)

    def kernel_info(self) -> str:
        return self.system_info

    def pp(self, tokens: Sequence[int]) -> float:
        return self._peer.pp_seconds(tokens)

    def tg(self, tokens: Sequence[int]) -> float:
        return self._peer.tg_seconds(tokens)

    def tg_after(self, prompt: Sequence[int], tokens: Sequence[int]) -> float:
        return self._peer.tg_seconds(tokens, prompt)

    def close(self) -> None:
        self._peer.close()


class WorkerEngine(Engine):
    """An engine in a process of its own (bench/worker.py), spoken to with JSON lines."""

    def __init__(self, name: str, kind: str, args: Dict[str, Any],
                 env: Optional[Dict[str, str]] = None) -> None:
        self.name = name
        full = dict(os.environ)
        full.update(env or {})
        self._proc: Optional[subprocess.Popen] = subprocess.Popen(
            [sys.executable, "-u", str(HERE / "worker.py"), kind, json.dumps(args)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, text=True, env=full,
        )
        self.load_seconds = float(self._read()["load_seconds"])
        self.info = ""
        self.peak_rss = 0

    def _read(self) -> Dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith("@@w "):
                ans: Dict[str, Any] = json.loads(line[4:])
                if not ans.get("ok"):
                    raise RuntimeError(f"{self.name} worker: {ans.get('error')}")
                return ans
        rc = self._proc.wait()
        raise RuntimeError(f"{self.name} worker exited with code {rc}")

    def call(self, op: str, **kw: Any) -> Dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def kernel_info(self) -> str:
        ans = self.call("info")
        self.info, self.peak_rss = str(ans["info"]), int(ans["peak_rss"])
        return self.info

    def pp(self, tokens: Sequence[int]) -> float:
        return float(self.call("pp", tokens=[int(t) for t in tokens])["seconds"])

    def tg(self, tokens: Sequence[int]) -> float:
        return float(self.call("tg", tokens=[int(t) for t in tokens])["seconds"])

    def close(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            try:
                self.kernel_info()  # keep the worker's peak RSS for the report
                self.call("quit")
            except (RuntimeError, OSError):
                pass
            try:
                self._proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None


class CTranslate2Engine(WorkerEngine):
    """CTranslate2 int8 on the same HF checkpoint (converted once: bench/ctranslate2_engine.py), in a
    worker process; isa="AVX2" limits it to AVX2 kernels there (CT2_FORCE_CPU_ISA, ONEDNN_MAX_CPU_ISA,
    MKL_ENABLE_INSTRUCTIONS)."""

    weights = "int8"

    @staticmethod
    def available() -> Optional[str]:
        """None if it can run, else why not."""
        import ctranslate2_engine

        return ctranslate2_engine.available()

    def __init__(self, model_dir: Path, n_threads: int, isa: Optional[str] = None) -> None:
        name = "CTranslate2" if isa is None else f"CTranslate2 {isa}"
        # CT2_FORCE_CPU_ISA limits CTranslate2's own kernels; its int8 GEMM is oneDNN's (MKL's on Intel
        # CPUs), which have limits of their own: without them the "AVX2" variant would still run VNNI
        env = {"CT2_FORCE_CPU_ISA": isa, "ONEDNN_MAX_CPU_ISA": isa, "DNNL_MAX_CPU_ISA": isa,
               "MKL_ENABLE_INSTRUCTIONS": isa} if isa else None
        super().__init__(name, "ct2", {"model_dir": str(model_dir), "threads": n_threads}, env)


class TorchEngine(WorkerEngine):
    """transformers + torch on the same HF checkpoint in `dtype` (bench/torch_engine.py), in a worker."""

    def __init__(self, hf_dir: Path, dtype: str, n_threads: int) -> None:
        self.weights = {"bfloat16": "bf16", "float32": "f32", "float16": "f16"}[dtype]
        super().__init__(f"torch {self.weights}", "torch",
                         {"hf_dir": str(hf_dir), "dtype": dtype, "threads": n_threads})
