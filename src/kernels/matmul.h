// Matrix-vector / matrix-matrix products against model weights, and embedding-row lookup. The weight
// type picks the kernels through the type-traits table (no switch on types here).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernels.h"
#include "threads/thread-pool.h"

namespace gptneox {

struct weight; // loader/model.h

// Optional element-wise function applied to each output segment after the bias (e.g. the MLP's GELU),
// so it runs on all threads while the values are still in cache: act(y, n) transforms y[0..n) in place.
using matmul_act = void (*)(float *y, int64_t n);

// y[t][o] = act(sum_i W[o][i] * x[t][i] + bias[o]) for t < n_tokens, o < W.ne1.
//   x: n_tokens rows of W.ne0 floats, x_stride floats apart; y: n_tokens rows of W.ne1 floats,
//   y_stride floats apart; bias: W.ne1 floats or nullptr.
//   scratch: holds the activations converted to the weight's vec_dot_type; grown only when too small,
//   so a caller that keeps it alive allocates nothing per token after warm-up.
// Output rows are cut into chunks of about 64 KiB of weights that min(n_threads, pool.size()) threads
// take in turn (a thread slowed down by other work on the machine takes fewer); within a chunk, tokens
// are taken in blocks so each weight row is read from memory once per block of tokens.
// W.data and W.row_bytes must keep rows aligned to the element type (GGUF aligns tensor data to 32).
// Throws gptneox::error if the type has no kernels or ne0 is not a multiple of its block size.
void matmul(const kernels &k, thread_pool &pool, int n_threads, const weight &W, const float *bias,
            const float *x, int64_t n_tokens, int64_t x_stride, float *y, int64_t y_stride,
            std::vector<uint8_t> &scratch, matmul_act act = nullptr);

// Embedding lookup: out + i*W.ne0 receives row ids[i] of W as floats, for i < n. Throws
// gptneox::error on an id outside [0, W.ne1).
void get_rows(const kernels &k, const weight &W, const int32_t *ids, int64_t n, float *out);

} // namespace gptneox
