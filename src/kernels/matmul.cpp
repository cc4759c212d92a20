// matmul: convert the activations once (to f32 or Q8_0, the weight type's vec_dot_type), then every
// thread computes a contiguous range of output rows with the table's vec_dot.
#include "kernels/matmul.h"

#include "common/status.h"
#include "loader/model.h"

namespace gptneox {
namespace {

// Rows of weights per tile: about 64 KiB, so a tile stays in L1/L2 while it meets every token of a
// token block; tokens per block: their activations (a few KiB each) stay in L2.
constexpr size_t kTileBytes = 64 * 1024;
constexpr int64_t kTokenBlock = 64;

const type_traits &traits_for(const kernels &k, const weight &W) {
    const type_traits *tr = k.get(W.type);
    if (!tr || !tr->vec_dot) fail(GPTNEOX_STATUS_UNSUPPORTED, "tensor '%s': type %u has no kernels", W.name, W.type);
    if (W.ne0 <= 0 || W.ne1 <= 0 || W.ne0 % tr->blck != 0)
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "tensor '%s': bad shape %lld x %lld for type %u", W.name,
             static_cast<long long>(W.ne0), static_cast<long long>(W.ne1), W.type);
    if (!W.data || W.row_bytes < static_cast<size_t>(W.ne0 / tr->blck) * tr->type_size)
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "tensor '%s': no data or rows of %zu bytes are too short", W.name,
             W.row_bytes);
    return *tr;
}

} // namespace

void matmul(const kernels &k, thread_pool &pool, int n_threads, const weight &W, const float *bias,
            const float *x, int64_t n_tokens, int64_t x_stride, float *y, int64_t y_stride,
            std::vector<uint8_t> &scratch) {
    const type_traits &tr = traits_for(k, W);
    if (n_tokens <= 0) return;
    const int64_t ne0 = W.ne0, ne1 = W.ne1;
    const type_traits *at = k.get(tr.vec_dot_type);
    if (!at || (tr.vec_dot_type != GPTNEOX_TYPE_F32 && ne0 % at->blck != 0))
        fail(GPTNEOX_STATUS_INTERNAL, "tensor '%s': no activation format for type %u", W.name, W.type);

    // Activations in vec_dot_type: f32 is used in place; otherwise quantized once into scratch.
    const uint8_t *act = reinterpret_cast<const uint8_t *>(x);
    size_t act_stride = static_cast<size_t>(x_stride) * sizeof(float);
    if (tr.vec_dot_type != GPTNEOX_TYPE_F32) {
        act_stride = static_cast<size_t>(ne0 / at->blck) * at->type_size;
        size_t need = act_stride * static_cast<size_t>(n_tokens);
        if (scratch.size() < need) scratch.resize(need);
        uint8_t *q = scratch.data();
        auto quantize = [&](int ith, int nth) {
            int64_t t0, t1;
            split_range(n_tokens, ith, nth, &t0, &t1);
            for (int64_t t = t0; t < t1; t++) at->from_float(x + t * x_stride, q + t * act_stride, ne0);
        };
        if (n_tokens > 1) pool.run(n_threads, quantize);
        else quantize(0, 1);
        act = q;
    }

    const size_t row_bytes = W.row_bytes;
    const uint8_t *wdata = static_cast<const uint8_t *>(W.data);
    const int64_t tile_rows = row_bytes >= kTileBytes ? 1 : static_cast<int64_t>(kTileBytes / row_bytes);
    auto vec_dot = tr.vec_dot;
    auto vec_dot_x4 = tr.vec_dot_x4;
    auto work = [&](int ith, int nth) {
        int64_t r0, r1;
        split_range(ne1, ith, nth, &r0, &r1);
        for (int64_t rb = r0; rb < r1; rb += tile_rows) {
            const int64_t re = rb + tile_rows < r1 ? rb + tile_rows : r1;
            for (int64_t tb = 0; tb < n_tokens; tb += kTokenBlock) {
                const int64_t te = tb + kTokenBlock < n_tokens ? tb + kTokenBlock : n_tokens;
                int64_t t = tb;
                if (vec_dot_x4) {
                    for (; t + 4 <= te; t += 4) {
                        const uint8_t *a = act + t * act_stride;
                        for (int64_t o = rb; o < re; o++) {
                            float v[4];
                            vec_dot_x4(ne0, wdata + o * row_bytes, a, act_stride, v);
                            const float b = bias ? bias[o] : 0.0f;
                            for (int j = 0; j < 4; j++) y[(t + j) * y_stride + o] = v[j] + b;
                        }
                    }
                }
                for (; t < te; t++) {
                    const uint8_t *a = act + t * act_stride;
                    float *yt = y + t * y_stride;
                    for (int64_t o = rb; o < re; o++) {
                        float v = vec_dot(ne0, wdata + o * row_bytes, a);
                        yt[o] = bias ? v + bias[o] : v;
                    }
                }
            }
        }
    };
    // Small products are not worth waking workers for.
    int nth = n_threads;
    if (ne1 * ne0 * n_tokens < 4096) nth = 1;
    pool.run(nth, work);
}

void get_rows(const kernels &k, const weight &W, const int32_t *ids, int64_t n, float *out) {
    const type_traits *tr = k.get(W.type);
    if (!tr || !tr->to_float) fail(GPTNEOX_STATUS_UNSUPPORTED, "tensor '%s': type %u has no kernels", W.name, W.type);
    if (W.ne0 % tr->blck != 0)
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "tensor '%s': row of %lld elements for type %u", W.name,
             static_cast<long long>(W.ne0), W.type);
    const uint8_t *wdata = static_cast<const uint8_t *>(W.data);
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= W.ne1)
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "tensor '%s': row %d out of range [0, %lld)", W.name, ids[i],
                 static_cast<long long>(W.ne1));
        tr->to_float(wdata + static_cast<size_t>(ids[i]) * W.row_bytes, out + i * W.ne0, W.ne0);
    }
}

} // namespace gptneox
