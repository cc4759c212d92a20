// The GPT-NeoX forward pass (see /work/shared/reference/gptneox-model.md): token embedding, per layer
// LayerNorm -> fused QKV -> NeoX rotary on the first n_rot dims of each head -> causal attention over
// the KV cache -> dense, plus LayerNorm -> up -> exact erf GELU -> down, with parallel or sequential
// residual; final LayerNorm and the output matrix (no bias). Everything is computed in f32.
#pragma once

#include <cstdint>
#include <vector>

#include "common/aligned-vector.h"
#include "gptneox.h"
#include "kernels/kernels.h"
#include "kv-cache/kv-cache.h"
#include "loader/model.h"
#include "threads/thread-pool.h"

namespace gptneox {

// ---- the small helpers the forward pass is made of (exposed for gptneox_test.cpp) ----

// (layer_norm, the LayerNorm of one row: kernels/kernels.h)
// Rotate x = one token's heads [n_head][head_dim] in place, NeoX style: dims i and i + n_rot/2
// (i < n_rot/2) of each head by angle pos * inv_freq[i]; dims >= n_rot are untouched.
void rope_neox(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot, float pos, const float *inv_freq);
// The angles of one position: cs[i] = cos, cs[n_rot/2 + i] = sin of pos * inv_freq[i], i < n_rot/2 (what
// rope_neox computes), so a token's Q and K, in every layer, share one computation.
void rope_angles(float *cs, int32_t n_rot, float pos, const float *inv_freq);
// rope_neox with the angles given (bit-identical to it).
void rope_neox_cs(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot, const float *cs);
// inv_freq[i] = base^(-2i/n_rot), i < n_rot/2, in f32 as Hugging Face computes it.
void rope_inv_freq(float *inv_freq, int32_t n_rot, float base);
// x[0..n) <- softmax(x) (max subtracted first).
void softmax(float *x, int64_t n);
// Exact GELU 0.5 x (1 + erf(x / sqrt 2)), in place.
void gelu(float *x, int64_t n);

// Rotate the K rows of `cells` (all layers) by `delta` positions: what seq_add needs (rotations compose).
void rotate_k(const kernels &k, kv_cache &cache, const hparams &hp, const float *inv_freq, float freq_scale,
              const uint32_t *cells, size_t n_cells, int32_t delta);

// ---- one step of the model ----

// Scratch for one micro-batch of up to n_ubatch tokens, sized once at context creation.
struct run_state {
    int32_t n_ubatch = 0;         // capacity in tokens
    aligned_vector<float> x;         // [n_ubatch][n]   residual stream
    aligned_vector<float> xn;        // [n_ubatch][n]   LayerNorm output (sublayer input)
    // (the buffers matmul writes have rows qkv_stride, proj_stride, ff_stride floats apart: 3n, n, f padded
    // as gptneox.cpp's padded_row says)
    aligned_vector<float> qkv;       // [n_ubatch][qkv_stride]  fused projection: Q | K | V, each [n_head][head_dim]
    aligned_vector<float> att;       // [n_ubatch][n]   attention output, heads merged
    aligned_vector<float> att_proj;  // [n_ubatch][proj_stride] dense(att)
    aligned_vector<float> ff;        // [n_ubatch][ff_stride]   MLP hidden (after GELU)
    aligned_vector<float> ff_out;    // [n_ubatch][proj_stride] MLP output
    size_t qkv_stride = 0, proj_stride = 0, ff_stride = 0;
    aligned_vector<float> out_x;     // [n_ubatch][n]   final-norm hidden states of the output rows
    std::vector<float> scores;    // [n_threads][n_ctx] attention weights, one row per thread (f32 cache)
    // blocked attention (f16 cache): which cells each block of kAttnMaxQ tokens sees, computed once per
    // ubatch for all layers, and each thread's kernel scratch
    std::vector<uint32_t> vis;    // [n_qblocks][n_ctx] bit i: token i of the block sees the cell
    std::vector<int64_t> vis_range; // [n_qblocks][2] cells [lo, hi) holding every visible one
    std::vector<float> attn_work; // [attn_slots][attn_slot_floats] + 16 (64-byte alignment)
    size_t attn_slot_floats = 0;
    int32_t attn_slots = 0;
    std::vector<float> rope_cs;   // [n_ubatch][2][n_rot/2] cos, sin of each token's angles
    std::vector<float> inv_freq;  // [n_rot/2] rotary frequencies
    std::vector<uint8_t> mm_scratch; // matmul activation conversion buffer (grown once, reused)

    void init(const hparams &hp, int32_t n_ubatch, uint32_t n_ctx, int32_t n_threads, float rope_base);
    // Room for n_threads threads' attention rows and scratch (grows only; allocates before it changes
    // anything, so a failure leaves the state as it was).
    void grow_threads(int32_t n_threads, uint32_t n_ctx);
};

// Settings of a run that the context decides.
struct run_config {
    int32_t n_threads = 1;
    float freq_scale = 1.0f;                   // positions are multiplied by it
    gptneox_abort_callback abort_cb = nullptr; // polled between layers
    void *abort_data = nullptr;
    double *phase_s = nullptr; // [GPTNEOX_PHASE_COUNT] seconds added per phase (gptneox_perf_phases), or NULL
};

// One micro-batch. Token t has already been given KV cell cell[t] (with its position and sequences).
struct ubatch {
    int32_t n_tokens = 0;
    const int32_t *token = nullptr;   // [n_tokens]
    const int32_t *pos = nullptr;     // [n_tokens] absolute positions
    const int32_t *seq = nullptr;     // [n_tokens] the sequence whose cells the token attends to (its first)
    const int32_t *cell = nullptr;    // [n_tokens] the KV cell each token's K/V is written to
    int32_t n_outputs = 0;
    const int32_t *out_rows = nullptr; // [n_outputs] ascending token indices (within the ubatch) to output
    float *logits = nullptr;          // [n_outputs][n_vocab], or NULL: no logits
    float *hidden = nullptr;          // [n_outputs][n] final-norm states, or NULL
};

// Run the model on `ub`, writing K/V into the cache and the outputs. Returns false if the abort callback
// asked to stop (the cells of `ub` then hold partial data; the caller releases them).
bool forward(const model &m, const kernels &k, thread_pool &pool, kv_cache &cache, run_state &rs,
             const run_config &cfg, const ubatch &ub);

} // namespace gptneox
