"""The llama.cpp peer: llama-cpp-python 0.3.36 compiled in full, run in a venv of its own.

`.ci/build-peer.sh` builds it (default `~/.cache/neox_cpp/peer`, override with NEOX_PEER_DIR). This
module never imports llama_cpp itself: it drives the peer's own interpreter through a small server script
(JSON commands on stdin, answers on stdout), so the Python-only llama-cpp-python that neox_cpp runs on and
the native one never meet in one process.

Used by tests/test_interop.py and by bench/run.py (which puts this folder on sys.path). pytest is imported
only by `require_peer`, so the bench does not need it.

Missing peer: `require_peer()` skips the test with a message, or fails it when NEOX_REQUIRE_PEER=1 (CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence

import numpy as np

VERSION = "0.3.36"


def peer_dir() -> Path:
    env = os.environ.get("NEOX_PEER_DIR")
    return Path(env) if env else Path.home() / ".cache" / "neox_cpp" / "peer"


def peer_python() -> Path:
    return peer_dir() / "venv" / "bin" / "python"


def peer_src() -> Path:
    """The unpacked llama-cpp-python sdist (vendor/llama.cpp holds convert_hf_to_gguf.py and gguf-py)."""
    return peer_dir() / "src"


def llama_converter() -> Path:
    return peer_src() / "vendor" / "llama.cpp" / "convert_hf_to_gguf.py"


def peer_missing_reason() -> Optional[str]:
    """None if the peer looks usable, else why not."""
    py = peer_python()
    if not py.exists():
        return f"llama.cpp peer venv not found at {py.parent.parent}: run .ci/build-peer.sh"
    lib = list((py.parent.parent / "lib").glob("python3*/site-packages/llama_cpp/lib/libllama.so"))
    if not lib:
        return f"llama.cpp peer at {py.parent.parent} has no native libllama.so: rerun .ci/build-peer.sh"
    return None


def require_peer() -> Path:
    """The peer's python; skips the calling test if the peer is missing (fails if NEOX_REQUIRE_PEER=1)."""
    import pytest

    reason = peer_missing_reason()
    if reason is not None:
        if os.environ.get("NEOX_REQUIRE_PEER") == "1":
            pytest.fail(reason + " (NEOX_REQUIRE_PEER=1)")
        pytest.skip(reason)
    return peer_python()


# The server run by the peer's interpreter. Commands are JSON lines; each answer is one line prefixed
# with "@@peer " (anything else llama.cpp may print is ignored by the client).
_SERVER = r'''
import json, sys, time
import numpy as np
import llama_cpp
import llama_cpp.llama_cpp as llcpp

# AMX fault of 0.3.36 (q4_0/q8_0 batches of > 1 token segfault in ggml_backend_amx_mul_mat): switch the
# CPU "extra buffer types" off. Llama.__init__ has no keyword for it, so patch the defaults it reads.
# NEOX_PEER_EXTRA_BUFTS=1 keeps them (llama.cpp's weight repacking; fine on an AVX2-only build).
import os
if os.environ.get("NEOX_PEER_EXTRA_BUFTS") != "1":
    _orig = llcpp.llama_model_default_params
    def _params():
        p = _orig()
        p.use_extra_bufts = False
        return p
    llcpp.llama_model_default_params = _params
    llama_cpp.llama_model_default_params = _params

out = sys.stdout
sys.stdout = sys.stderr  # nothing but answers on the real stdout
llm = None

def answer(obj):
    out.write("@@peer " + json.dumps(obj) + "\n")
    out.flush()

answer({"ok": True, "version": llama_cpp.__version__,
        "system_info": llcpp.llama_print_system_info().decode()})
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd["op"]
    try:
        if op == "load":
            if llm is not None:
                llm.close()
            t = time.perf_counter()
            llm = llama_cpp.Llama(model_path=cmd["path"], n_ctx=cmd["n_ctx"], n_batch=cmd["n_batch"],
                                  n_ubatch=cmd["n_batch"], n_threads=cmd["n_threads"],
                                  n_threads_batch=cmd["n_threads"], logits_all=cmd["logits_all"],
                                  flash_attn=cmd.get("flash_attn", False), type_k=cmd.get("type_k"),
                                  type_v=cmd.get("type_v"), verbose=False)
            answer({"ok": True, "seconds": time.perf_counter() - t, "n_vocab": llm.n_vocab()})
        elif op == "logits":
            llm.reset()
            llm.eval(cmd["tokens"])
            np.save(cmd["out"], np.array(llm.scores[: len(cmd["tokens"])], dtype=np.float32))
            answer({"ok": True})
        elif op == "pp":
            llm.reset()
            t = time.perf_counter()
            llm.eval(cmd["tokens"])
            llcpp.llama_synchronize(llm._ctx.ctx)  # results computed, as for our engine (bench/engines.py)
            answer({"ok": True, "seconds": time.perf_counter() - t})
        elif op == "tg":  # single-token evals after an optional prompt (evaluated first, not timed)
            llm.reset()
            if cmd.get("prompt"):
                llm.eval(cmd["prompt"])
                llcpp.llama_synchronize(llm._ctx.ctx)
            t = time.perf_counter()
            for tok in cmd["tokens"]:
                llm.eval([tok])
                llcpp.llama_synchronize(llm._ctx.ctx)
            answer({"ok": True, "seconds": time.perf_counter() - t})
        elif op == "quantize":
            p = llcpp.llama_model_quantize_default_params()
            p.ftype = cmd["ftype"]
            p.nthread = cmd.get("n_threads", 2)
            p.pure = cmd.get("pure", False)
            rc = llcpp.llama_model_quantize(cmd["src"].encode(), cmd["dst"].encode(), llcpp.byref(p))
            answer({"ok": rc == 0, "error": f"llama_model_quantize returned {rc}"})
        elif op == "quit":
            answer({"ok": True})
            break
        else:
            answer({"ok": False, "error": f"unknown op {op}"})
    except Exception as e:  # report, keep serving
        answer({"ok": False, "error": f"{type(e).__name__}: {e}"})
'''

# llama_ftype values (llama.h) for the quantize command.
LLAMA_FTYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7, "bf16": 32}


class PeerError(RuntimeError):
    pass


class Peer:
    """One long-lived llama.cpp process (the peer's venv). Use as a context manager."""

    def __init__(self, python: Optional[Path] = None, extra_bufts: bool = False) -> None:
        py = python or peer_python()
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.pop("LLAMA_CPP_LIB_PATH", None)
        if extra_bufts:
            env["NEOX_PEER_EXTRA_BUFTS"] = "1"
        self._proc = subprocess.Popen(
            [str(py), "-u", "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=None, text=True, env=env,
        )
        hello = self._read()
        self.system_info: str = hello.get("system_info", "")
        self.n_vocab = 0

    def _read(self) -> dict:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith("@@peer "):
                return json.loads(line[len("@@peer "):])
        rc = self._proc.wait()
        raise PeerError(f"llama.cpp peer exited with code {rc} (a negative code is a signal)")

    def call(self, op: str, **kw: Any) -> dict:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self._proc.stdin.flush()
        ans = self._read()
        if not ans.get("ok"):
            raise PeerError(f"llama.cpp peer, {op}: {ans.get('error')}")
        return ans

    def load(self, path: Path, n_ctx: int = 512, n_batch: int = 512, n_threads: int = 2,
             logits_all: bool = False, flash_attn: bool = False, type_k: Optional[int] = None,
             type_v: Optional[int] = None) -> float:
        """Llama(...) on `path`; flash_attn / type_k / type_v as Llama's keywords (None: its default, F16;
        llama.cpp needs flash_attn for a quantized V cache)."""
        ans = self.call("load", path=str(path), n_ctx=n_ctx, n_batch=n_batch, n_threads=n_threads,
                        logits_all=logits_all, flash_attn=flash_attn, type_k=type_k, type_v=type_v)
        self.n_vocab = int(ans["n_vocab"])
        return float(ans["seconds"])

    def logits(self, tokens: Sequence[int], out: Path) -> np.ndarray:
        self.call("logits", tokens=[int(t) for t in tokens], out=str(out))
        return np.load(out)

    def pp_seconds(self, tokens: Sequence[int]) -> float:
        return float(self.call("pp", tokens=[int(t) for t in tokens])["seconds"])

    def tg_seconds(self, tokens: Sequence[int], prompt: Sequence[int] = ()) -> float:
        """Single-token evals of `tokens`, after `prompt` (evaluated first, not timed) if given."""
        ans = self.call("tg", tokens=[int(t) for t in tokens], prompt=[int(t) for t in prompt])
        return float(ans["seconds"])

    def quantize(self, src: Path, dst: Path, outtype: str, n_threads: int = 2, pure: bool = False) -> None:
        """llama.cpp's quantizer (llama_model_quantize). pure: every matrix in `outtype` (by default
        llama.cpp keeps some tensors, e.g. output.weight, in other types such as q6_K)."""
        self.call("quantize", src=str(src), dst=str(dst), ftype=LLAMA_FTYPE[outtype], n_threads=n_threads,
                  pure=pure)

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self.call("quit")
            except (PeerError, BrokenPipeError, OSError):
                pass
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def peer_logits(gguf: Path, tokens: Sequence[int], n_threads: int = 2) -> np.ndarray:
    """llama.cpp's logits for every position of `tokens` ([n_tokens, n_vocab] float32), in one batch."""
    n = len(tokens)
    n_ctx = max(64, 1 << (n - 1).bit_length())
    with Peer() as peer:
        peer.load(gguf, n_ctx=n_ctx, n_batch=n_ctx, n_threads=n_threads, logits_all=True)
        return peer.logits(tokens, gguf.with_suffix(".peer-logits.npy"))


def run_llama_converter(hf_dir: Path, out: Path, outtype: str) -> Path:
    """Convert an HF GPT-NeoX checkpoint with llama.cpp's own convert_hf_to_gguf.py (from the peer's
    sdist; the script puts its vendored gguf-py first on sys.path) in the peer venv, where
    .ci/build-peer.sh installed what it needs (torch 2.13.0, transformers 4.57.6 as llama.cpp pins it:
    under transformers 5 its GPT-NeoX converter fails with KeyError 'rotary_pct').
    outtype: f32, f16, bf16 or q8_0 (the script's own quantizer)."""
    script = llama_converter()
    if not script.exists():
        raise FileNotFoundError(f"{script} not found: run .ci/build-peer.sh")
    env = dict(os.environ)
    env.pop("NO_LOCAL_GGUF", None)
    env.pop("PYTHONPATH", None)
    cmd: List[str] = [str(peer_python()), str(script), str(hf_dir), "--outfile", str(out),
                      "--outtype", outtype]
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0 or not out.exists():
        took = time.perf_counter() - t
        msg = f"llama.cpp converter failed ({res.returncode}) after {took:.0f}s:\n{res.stderr[-4000:]}"
        raise RuntimeError(msg)
    return out
