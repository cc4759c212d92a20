// The reference for kernels.attn_block (attention-avx2.cpp / attention-avx512.cpp are tested against it
// in attention_test.cpp): each query on its own, dots in double, softmax with a double sum, values summed
// in ascending key order; F16 or Q8_0 rows read element by element. Plain C++, no intrinsics.
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

// Element e of a cache row of `type` (F16, or Q8_0: d * q, exact in f32).
float row_elem(const uint8_t *row, uint32_t type, int64_t e) {
    if (type == GPTNEOX_TYPE_Q8_0) {
        const block_q8_0 *b = reinterpret_cast<const block_q8_0 *>(row) + e / QK8_0;
        return fp16_to_fp32(b->d) * float(b->qs[e % QK8_0]);
    }
    uint16_t h;
    std::memcpy(&h, row + 2 * e, 2);
    return fp16_to_fp32(h);
}

void attn_block(const attn_block_args &a) {
    const float ninf = -std::numeric_limits<float>::infinity();
    const int64_t n = a.k1 - a.k0;
    float *s = a.work; // [n] one query's scores, then its weights
    for (int32_t i = 0; i < a.n_q; i++) {
        const float *q = a.q + size_t(i) * a.q_stride;
        float *out = a.out + size_t(i) * a.out_stride;
        const uint32_t bit = uint32_t(1) << i;
        float max = ninf;
        for (int64_t j = 0; j < n; j++) {
            s[j] = ninf;
            if (!(a.vis[a.k0 + j] & bit)) continue;
            const uint8_t *k = a.k + size_t(a.k0 + j) * a.k_stride;
            double d = 0;
            for (int64_t e = 0; e < a.hd; e++) d += double(q[e]) * row_elem(k, a.k_type, e);
            s[j] = a.scale * float(d);
            max = std::fmax(max, s[j]);
        }
        for (int64_t e = 0; e < a.hd; e++) out[e] = 0.0f;
        if (max == ninf) continue; // sees nothing: zeros
        double sum = 0;
        for (int64_t j = 0; j < n; j++) {
            s[j] = std::exp(s[j] - max); // exp(-inf) = 0 for the keys it does not see
            sum += s[j];
        }
        const float inv = float(1.0 / sum);
        for (int64_t j = 0; j < n; j++) {
            if (!(a.vis[a.k0 + j] & bit)) continue;
            const float p = s[j] * inv;
            const uint8_t *v = a.v + size_t(a.k0 + j) * a.v_stride;
            for (int64_t e = 0; e < a.hd; e++) out[e] += p * row_elem(v, a.v_type, e);
        }
    }
}

} // namespace

void fill_attention_scalar(kernels &k) { k.attn_block = attn_block; }

} // namespace gptneox
