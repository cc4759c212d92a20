"""llama_compat, part 2: contexts, batches, decoding, outputs, KV cache ("memory"), state and timings.

llama_context_params (llama-cpp-python's struct) is converted to gptneox_ctx_params; llama_batch has the
same layout as gptneox_batch and is copied bytewise. Return values follow llama.h, because
llama-cpp-python's _internals interprets them: llama_decode gives 0 / 1 (no KV slot) / 2 (aborted) /
negative; llama_state_set_data gives the bytes read (== size on success).
"""

from __future__ import annotations

import ctypes
from typing import Any, Optional

from neox_cpp import _lib as _n
from neox_cpp._compat_model import (
    GGML_LOG_LEVEL_INFO,
    GGML_LOG_LEVEL_WARN,
    _log,
    _log_last_error,
    _warn_deprecated,
)
from neox_cpp._compat_types import (
    GGML_TYPE_F16,
    LLAMA_ATTENTION_TYPE_NON_CAUSAL,
    LLAMA_ATTENTION_TYPE_UNSPECIFIED,
    LLAMA_FLASH_ATTN_TYPE_AUTO,
    LLAMA_POOLING_TYPE_UNSPECIFIED,
    LLAMA_ROPE_SCALING_TYPE_LINEAR,
    LLAMA_ROPE_SCALING_TYPE_NONE,
    LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED,
    llama_batch,
    llama_context_params,
    llama_perf_context_data,
)

# ---------------------------------------------------------------------------------------------------
# Context


def llama_context_default_params() -> llama_context_params:
    """llama.cpp's defaults (llama_context_default_params in llama.cpp)."""
    p = llama_context_params()
    p.n_ctx = 512
    p.n_batch = 2048
    p.n_ubatch = 512
    p.n_seq_max = 1
    p.n_threads = 4
    p.n_threads_batch = 4
    p.rope_scaling_type = LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED
    p.pooling_type = LLAMA_POOLING_TYPE_UNSPECIFIED
    p.attention_type = LLAMA_ATTENTION_TYPE_UNSPECIFIED
    p.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO
    p.rope_freq_base = 0.0
    p.rope_freq_scale = 0.0
    p.yarn_ext_factor = -1.0
    p.yarn_attn_factor = -1.0
    p.yarn_beta_fast = -1.0
    p.yarn_beta_slow = -1.0
    p.yarn_orig_ctx = 0
    p.defrag_thold = -1.0
    p.type_k = GGML_TYPE_F16
    p.type_v = GGML_TYPE_F16
    p.embeddings = False
    p.offload_kqv = True
    p.no_perf = True
    p.op_offload = True
    p.swa_full = True
    p.kv_unified = False
    return p


def _to_ctx_params(params: llama_context_params) -> Any:
    c = _n.gptneox_ctx_default_params()
    c.n_ctx = params.n_ctx
    c.n_batch = params.n_batch
    c.n_ubatch = params.n_ubatch
    c.n_seq_max = max(1, int(params.n_seq_max))
    c.n_threads = params.n_threads
    c.n_threads_batch = params.n_threads_batch
    c.type_k = params.type_k
    c.type_v = params.type_v
    c.pooling_type = params.pooling_type
    c.rope_freq_base = params.rope_freq_base
    c.rope_freq_scale = params.rope_freq_scale
    scaling = int(params.rope_scaling_type)
    if scaling == LLAMA_ROPE_SCALING_TYPE_NONE:
        c.rope_freq_scale = 1.0  # llama.cpp: never scale when the scaling type is NONE
    elif scaling not in (LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED, LLAMA_ROPE_SCALING_TYPE_LINEAR):
        _log(GGML_LOG_LEVEL_WARN, f"neox_cpp: rope_scaling_type {scaling} is not supported; using linear\n")
    if int(params.attention_type) == LLAMA_ATTENTION_TYPE_NON_CAUSAL:
        _log(GGML_LOG_LEVEL_WARN, "neox_cpp: non-causal attention is not supported; using causal\n")
    if params.abort_callback:
        address = ctypes.cast(params.abort_callback, ctypes.c_void_p).value
        c.abort_callback = _n.gptneox_abort_callback(address)
        c.abort_callback_data = params.abort_callback_data
    c.embeddings = bool(params.embeddings)
    c.no_perf = bool(params.no_perf)
    return c


def llama_init_from_model(model: Any, params: Any, /) -> Optional[int]:
    _n.gptneox_clear_error()
    ctx = _n.gptneox_init_from_model(model, _to_ctx_params(params))
    if not ctx:
        _log_last_error("llama_init_from_model")
        return None
    return int(ctx)


def llama_new_context_with_model(model: Any, params: Any, /) -> Optional[int]:
    _warn_deprecated("llama_new_context_with_model", "use llama_init_from_model instead")
    return llama_init_from_model(model, params)


def llama_free(ctx: Any, /) -> None:
    _n.gptneox_free(ctx)


def llama_get_model(ctx: Any, /) -> Optional[int]:
    return _n.gptneox_get_model(ctx)


def llama_n_ctx(ctx: Any, /) -> int:
    return int(_n.gptneox_n_ctx(ctx))


def llama_n_ctx_seq(ctx: Any, /) -> int:
    return int(_n.gptneox_n_ctx(ctx))  # one cache shared by all sequences


def llama_n_batch(ctx: Any, /) -> int:
    return int(_n.gptneox_n_batch(ctx))


def llama_n_ubatch(ctx: Any, /) -> int:
    return int(_n.gptneox_n_ubatch(ctx))


def llama_n_seq_max(ctx: Any, /) -> int:
    return int(_n.gptneox_n_seq_max(ctx))


def llama_n_threads(ctx: Any, /) -> int:
    return int(_n.gptneox_n_threads(ctx))


def llama_n_threads_batch(ctx: Any, /) -> int:
    return int(_n.gptneox_n_threads_batch(ctx))


def llama_set_n_threads(ctx: Any, n_threads: Any, n_threads_batch: Any, /) -> None:
    if _n.gptneox_set_n_threads(ctx, n_threads, n_threads_batch) < 0:
        _log_last_error("llama_set_n_threads")


def llama_pooling_type(ctx: Any, /) -> int:
    return int(_n.gptneox_pooling_type(ctx))


def llama_get_causal_attn(ctx: Any, /) -> bool:
    return True


def llama_synchronize(ctx: Any, /) -> None:
    # computes queued decode calls (see gptneox_decode); llama.h's is void, so a failure is logged
    if int(_n.gptneox_synchronize(ctx)) < 0:
        _log_last_error("llama_synchronize")


# ---------------------------------------------------------------------------------------------------
# Batches and decoding


def llama_batch_init(n_tokens: Any, embd: Any, n_seq_max: Any, /) -> llama_batch:
    # Llama passes n_seq_max = n_ctx; a token can belong to at most MAX_PARALLEL_SEQUENCES sequences.
    from neox_cpp._compat_model import MAX_PARALLEL_SEQUENCES

    n_seq = min(max(int(n_seq_max), 1), MAX_PARALLEL_SEQUENCES)
    return llama_batch.from_buffer_copy(_n.gptneox_batch_init(n_tokens, embd, n_seq))


def llama_batch_free(batch: Any, /) -> None:
    _n.gptneox_batch_free(_n.gptneox_batch.from_buffer_copy(batch))


def llama_decode(ctx: Any, batch: Any, /) -> int:
    rc = int(_n.gptneox_decode(ctx, _n.gptneox_batch.from_buffer_copy(batch)))
    if rc >= 0:
        return rc
    _log_last_error("llama_decode")
    if rc == _n.GPTNEOX_STATUS_ABORTED:
        return 2
    return rc  # -1: invalid batch (INVALID_ARGUMENT); < -1: error


def llama_encode(ctx: Any, batch: Any, /) -> int:
    """llama.cpp runs an encoder graph here (non-causal attention over the batch, no KV cache, every token
    an output). GPT-NeoX has no encoder (llama_model_has_encoder is false): llama.cpp 0.3.36 then
    dereferences a NULL memory context while building the graph and crashes (SIGSEGV); we return the
    engine's negative status instead (-1: empty batch; -4: no encoder), log why, and change nothing (KV
    cache and last outputs kept). llama-cpp-python's Llama never calls it (it decodes)."""
    rc = int(_n.gptneox_encode(ctx, _n.gptneox_batch.from_buffer_copy(batch)))
    if rc != 0:
        _log_last_error("llama_encode")
    return rc


def llama_get_logits(ctx: Any, /) -> Any:
    return _n.gptneox_get_logits(ctx)


def llama_get_logits_ith(ctx: Any, i: Any, /) -> Any:
    return _n.gptneox_get_logits_ith(ctx, i)


def llama_get_embeddings(ctx: Any, /) -> Any:
    return _n.gptneox_get_embeddings(ctx)


def llama_get_embeddings_ith(ctx: Any, i: Any, /) -> Any:
    return _n.gptneox_get_embeddings_ith(ctx, i)


def llama_get_embeddings_seq(ctx: Any, seq_id: Any, /) -> Any:
    return _n.gptneox_get_embeddings_seq(ctx, seq_id)


# ---------------------------------------------------------------------------------------------------
# Memory (KV cache)


def llama_get_memory(ctx: Any, /) -> Optional[int]:
    return _n.gptneox_get_memory(ctx)


def llama_memory_clear(mem: Any, data: Any, /) -> None:
    _n.gptneox_memory_clear(mem, data)


def llama_memory_seq_rm(mem: Any, seq_id: Any, p0: Any, p1: Any, /) -> bool:
    return bool(_n.gptneox_memory_seq_rm(mem, seq_id, p0, p1))


def llama_memory_seq_cp(mem: Any, seq_id_src: Any, seq_id_dst: Any, p0: Any, p1: Any, /) -> None:
    _n.gptneox_memory_seq_cp(mem, seq_id_src, seq_id_dst, p0, p1)


def llama_memory_seq_keep(mem: Any, seq_id: Any, /) -> None:
    _n.gptneox_memory_seq_keep(mem, seq_id)


def llama_memory_seq_add(mem: Any, seq_id: Any, p0: Any, p1: Any, delta: Any, /) -> None:
    _n.gptneox_memory_seq_add(mem, seq_id, p0, p1, delta)


def llama_memory_seq_pos_min(mem: Any, seq_id: Any, /) -> int:
    return int(_n.gptneox_memory_seq_pos_min(mem, seq_id))


def llama_memory_seq_pos_max(mem: Any, seq_id: Any, /) -> int:
    return int(_n.gptneox_memory_seq_pos_max(mem, seq_id))


def llama_memory_can_shift(mem: Any, /) -> bool:
    return bool(_n.gptneox_memory_can_shift(mem))


# ---------------------------------------------------------------------------------------------------
# State


def llama_state_get_size(ctx: Any, /) -> int:
    return int(_n.gptneox_state_get_size(ctx))


def llama_state_get_data(ctx: Any, dst: Any, size: Any, /) -> int:
    n = int(_n.gptneox_state_get_data(ctx, dst, size))
    if n == 0:
        _log_last_error("llama_state_get_data")
    return n


def llama_state_set_data(ctx: Any, src: Any, size: Any, /) -> int:
    n = int(_n.gptneox_state_set_data(ctx, src, size))
    if n == 0:
        _log_last_error("llama_state_set_data")
    return n


def _buffer_size(buf: Any, fallback: int) -> int:
    return ctypes.sizeof(buf) if isinstance(buf, ctypes.Array) else fallback


def llama_get_state_size(ctx: Any, /) -> int:
    _warn_deprecated("llama_get_state_size", "use llama_state_get_size instead")
    return llama_state_get_size(ctx)


def llama_copy_state_data(ctx: Any, dst: Any, /) -> int:
    _warn_deprecated("llama_copy_state_data", "use llama_state_get_data instead")
    return llama_state_get_data(ctx, dst, _buffer_size(dst, llama_state_get_size(ctx)))


def llama_set_state_data(ctx: Any, src: Any, /) -> int:
    _warn_deprecated("llama_set_state_data", "use llama_state_set_data instead")
    return llama_state_set_data(ctx, src, _buffer_size(src, llama_state_get_size(ctx)))


# ---------------------------------------------------------------------------------------------------
# Timings


def llama_perf_context(ctx: Any, /) -> llama_perf_context_data:
    return llama_perf_context_data.from_buffer_copy(_n.gptneox_perf_context(ctx))


def llama_perf_context_reset(ctx: Any, /) -> None:
    _n.gptneox_perf_context_reset(ctx)


def _per_token(ms: float, n: int) -> str:
    per = ms / n if n > 0 else 0.0
    rate = 1e3 * n / ms if ms > 0 else 0.0
    return f"({per:8.2f} ms per token, {rate:8.2f} tokens per second)"


def llama_perf_context_print(ctx: Any, /) -> None:
    d = _n.gptneox_perf_context(ctx)
    now_ms = _n.gptneox_time_us() / 1e3
    tag = "llama_perf_context_print"
    lines = [
        f"{tag}:        load time = {d.t_load_ms:10.2f} ms\n",
        f"{tag}: prompt eval time = {d.t_p_eval_ms:10.2f} ms / {d.n_p_eval:5d} tokens "
        + _per_token(d.t_p_eval_ms, d.n_p_eval)
        + "\n",
        f"{tag}:        eval time = {d.t_eval_ms:10.2f} ms / {d.n_eval:5d} runs   "
        + _per_token(d.t_eval_ms, d.n_eval)
        + "\n",
        f"{tag}:       total time = {now_ms - d.t_start_ms:10.2f} ms / {d.n_p_eval + d.n_eval:5d} tokens\n",
    ]
    for line in lines:
        _log(GGML_LOG_LEVEL_INFO, line)
