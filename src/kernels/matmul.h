// Matrix-vector / matrix-matrix products against model weights, and embedding-row lookup. The weight
// type picks the kernels through the type-traits table (no switch on types here).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernels.h"
#include "threads/thread-pool.h"

namespace gptneox {

struct weight; // loader/model.h

// y[t][o] = sum_i W[o][i] * x[t][i] + bias[o] for t < n_tokens, o < W.ne1.
//   x: n_tokens rows of W.ne0 floats, x_stride floats apart; y: n_tokens rows of W.ne1 floats,
//   y_stride floats apart; bias: W.ne1 floats or nullptr.
//   scratch: holds the activations converted to the weight's vec_dot_type; grown only when too small,
//   so a caller that keeps it alive allocates nothing per token after warm-up.
// Output rows are split over min(n_threads, pool.size()) threads; for n_tokens > 1 the work is also
// blocked over tokens so each weight row is read from memory once per block of tokens.
// W.data and W.row_bytes must keep rows aligned to the element type (GGUF aligns tensor data to 32).
// Throws gptneox::error if the type has no kernels or ne0 is not a multiple of its block size.
void matmul(const kernels &k, thread_pool &pool, int n_threads, const weight &W, const float *bias,
            const float *x, int64_t n_tokens, int64_t x_stride, float *y, int64_t y_stride,
            std::vector<uint8_t> &scratch);

// Embedding lookup: out + i*W.ne0 receives row ids[i] of W as floats, for i < n. Throws
// gptneox::error on an id outside [0, W.ne1).
void get_rows(const kernels &k, const weight &W, const int32_t *ids, int64_t n, float *out);

} // namespace gptneox
