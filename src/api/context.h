// struct gptneox_context: everything one inference stream owns (KV cache, scratch sized at creation,
// thread pool, the outputs of the last decode, timings), and struct gptneox_memory, the handle of its
// KV cache for the gptneox_memory_* calls.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "arch/gptneox.h"
#include "gptneox.h"
#include "kernels/kernels.h"
#include "kv-cache/kv-cache.h"
#include "loader/model.h"
#include "threads/thread-pool.h"

struct gptneox_memory {
    gptneox_context *ctx = nullptr; // the owning context
};

struct gptneox_context {
    const gptneox_model *model_handle = nullptr; // what gptneox_get_model returns
    const gptneox::model *model = nullptr;       // model_handle->m
    gptneox_ctx_params params{};                 // resolved: n_ctx, rope base/scale, pooling, kernel path
    const gptneox::kernels *kern = nullptr;      // chosen once from params.kernel_path
    std::unique_ptr<gptneox::thread_pool> pool;  // max(n_threads, n_threads_batch) threads
    gptneox::kv_cache cache;                     // [n_ctx] cells
    gptneox::run_state rs;                       // forward scratch for n_ubatch tokens

    // Staging of one decode call, sized n_batch at creation.
    std::vector<int32_t> cells;      // [n_batch] KV cell of each batch token
    std::vector<int32_t> seq_first;  // [n_batch] first sequence id of each token (the one it attends to)
    std::vector<uint64_t> seq_mask;  // [n_batch] all sequences of each token (bit s = sequence s)
    std::vector<int32_t> pos;        // [n_batch] position of each token (generated if batch.pos is NULL)
    std::vector<int32_t> seq_next;   // [n_seq_max] next position per sequence when batch.pos is NULL
    std::vector<int32_t> out_rows;   // [rs.n_ubatch] output token indices within the current ubatch

    // Decode calls queued for computation (see gptneox_decode: small calls are coalesced and computed when
    // their results are first needed). Their cells are already assigned in `cache`; the outputs
    // (output_ids, n_outputs, n_batch_last) already describe the last call, whose tokens start at
    // last_begin. Arrays sized rs.n_ubatch (the coalescing capacity) at creation.
    struct pending_tokens {
        int32_t n = 0;
        int32_t last_begin = 0;
        std::vector<int32_t> token, pos, seq_first, cell;
        std::vector<uint64_t> seq_mask;
        std::vector<int32_t> max_pos; // [n_seq_max] highest queued position of the tokens attending to s
    } pend;

    // Outputs of the last decode.
    int32_t n_outputs = 0;           // rows in logits / embd
    int32_t n_batch_last = 0;        // tokens of the last decode (entries of output_ids)
    bool has_logits = false;         // logits rows are valid (false for pooled embedding runs)
    std::vector<int32_t> output_ids; // [n_batch] batch index -> output row, or -1
    std::vector<float> logits;       // [n_outputs capacity][n_vocab] (grows only past the largest seen)
    std::vector<float> embd;         // [n_outputs capacity][n_embd]  (params.embeddings only)
    std::vector<float> embd_seq;     // [n_seq_max][n_embd] pooled per sequence (pooling MEAN / LAST)
    std::vector<uint8_t> embd_seq_ok;// [n_seq_max] the sequence had tokens in the last decode
    std::vector<int32_t> seq_count;  // [n_seq_max] tokens per sequence while pooling

    // Timings (microseconds), see gptneox_perf_data.
    int64_t t_start_us = 0;
    int64_t t_p_eval_us = 0, t_eval_us = 0;
    int32_t n_p_eval = 0, n_eval = 0;
    double phase_s[2][GPTNEOX_PHASE_COUNT] = {}; // seconds per forward phase: [0] single-token, [1] batches

    gptneox_memory memory; // memory.ctx == this
};

namespace gptneox {
// The context behind a handle; throws INVALID_ARGUMENT for NULL.
gptneox_context &get_ctx(const gptneox_context *ctx);

// decode.cpp
// Decode calls of at most kCoalesceMaxCall tokens are queued and computed together, in ubatches of up to
// coalesce_capacity(n_ubatch, n_ctx) tokens.
constexpr int32_t kCoalesceMaxCall = 32;
uint32_t coalesce_capacity(uint32_t n_ubatch, uint32_t n_ctx);
// Make room for n_out output rows (grows only past the largest count seen so far).
void reserve_outputs(gptneox_context &c, int32_t n_out, bool logits);
// gptneox_decode: 0, 1 (no room in the KV cache, nothing changed), or throws.
int32_t decode(gptneox_context &c, const gptneox_batch &b);
// Compute the queued decode calls now (every function that reads or changes what a decode produced --
// outputs, KV cache, state, timings -- calls this first). Throws if the computation fails; the queued
// calls are then forgotten (their cells released, no outputs).
void synchronize(gptneox_context &c);
// get_ctx, then synchronize.
gptneox_context &get_synced(const gptneox_context *ctx);
// Output row of index i of the last decode (i >= 0: batch index of a token with an output; i < 0: from
// the end). Throws if there is none.
int32_t output_row(const gptneox_context &c, int32_t i);
} // namespace gptneox
