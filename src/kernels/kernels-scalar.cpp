// The portable reference kernels: plain C++, no intrinsics, always compiled and always available
// (GPTNEOX_KERNELS_SCALAR). Every SIMD kernel is tested against these. Sums accumulate in double so
// the reference is at least as accurate as any SIMD variant.
#include <cmath>
#include <cstring>

#include "kernels/kernels-impl.h"

namespace gptneox {

static_assert(sizeof(block_q8_0) == 34, "block_q8_0 must be 34 bytes (ggml-common.h)");
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 must be 18 bytes (ggml-common.h)");

namespace {

} // namespace

float fp16_to_fp32(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (mant << 13)); // inf, NaN (payload kept)
    if (exp == 0) {
        // zero or subnormal: mant * 2^-24, exact in f32
        float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
        return bits_f32(sign | f32_bits(v));
    }
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t fp32_to_fp16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00 | ((ax >> 13) & 0x3FF)); // quiet NaN, as F16C
    if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00); // >= 65520 rounds to inf (RNE)
    if (ax < 0x38800000u) {
        // below 2^-14: f16 subnormal. Adding 0.5 puts the f16 ulp (2^-24) at the f32 ulp, so the FPU's
        // round-to-nearest-even does the rounding; the low mantissa bits are then the f16 bits.
        float v = bits_f32(ax) + 0.5f;
        return static_cast<uint16_t>(sign | (f32_bits(v) - 0x3F000000u));
    }
    uint32_t odd = (ax >> 13) & 1;
    ax += (static_cast<uint32_t>(15 - 127) << 23) + 0xFFF + odd; // rebias, round half to even
    return static_cast<uint16_t>(sign | (ax >> 13));
}

float bf16_to_fp32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

uint16_t fp32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40); // quiet NaN
    return static_cast<uint16_t>((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

namespace {

// ---- f32 helpers ----

float dot_f32(int64_t n, const float *a, const float *b) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += static_cast<double>(a[i]) * b[i];
    return static_cast<float>(s);
}

float dot_f32_f16(int64_t n, const float *a, const uint16_t *b) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += static_cast<double>(a[i]) * fp16_to_fp32(b[i]);
    return static_cast<float>(s);
}

void axpy_f16(int64_t n, float s, const uint16_t *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] += s * fp16_to_fp32(x[i]);
}

void axpy_f32(int64_t n, float s, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] += s * x[i];
}

void f32_to_f16_row(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = fp32_to_fp16(x[i]);
}

void f16_to_f32_row(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = fp16_to_fp32(x[i]);
}

// ---- F32 / F16 / BF16 weights (activations stay f32) ----

void f32_to_float(const void *x, float *y, int64_t n) { std::memcpy(y, x, n * sizeof(float)); }
void f32_from_float(const float *x, void *y, int64_t n) { std::memcpy(y, x, n * sizeof(float)); }
float f32_vec_dot(int64_t n, const void *w, const void *a) {
    return dot_f32(n, static_cast<const float *>(a), static_cast<const float *>(w));
}

void f16_to_float(const void *x, float *y, int64_t n) { f16_to_f32_row(static_cast<const uint16_t *>(x), y, n); }
void f16_from_float(const float *x, void *y, int64_t n) { f32_to_f16_row(x, static_cast<uint16_t *>(y), n); }
float f16_vec_dot(int64_t n, const void *w, const void *a) {
    return dot_f32_f16(n, static_cast<const float *>(a), static_cast<const uint16_t *>(w));
}

void bf16_to_float(const void *x, float *y, int64_t n) {
    const uint16_t *h = static_cast<const uint16_t *>(x);
    for (int64_t i = 0; i < n; i++) y[i] = bf16_to_fp32(h[i]);
}
void bf16_from_float(const float *x, void *y, int64_t n) {
    uint16_t *h = static_cast<uint16_t *>(y);
    for (int64_t i = 0; i < n; i++) h[i] = fp32_to_bf16(x[i]);
}
float bf16_vec_dot(int64_t n, const void *w, const void *a) {
    const uint16_t *h = static_cast<const uint16_t *>(w);
    const float *f = static_cast<const float *>(a);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += static_cast<double>(f[i]) * bf16_to_fp32(h[i]);
    return static_cast<float>(s);
}

// ---- Q8_0 ----

void q8_0_to_float(const void *x, float *y, int64_t n) {
    const block_q8_0 *b = static_cast<const block_q8_0 *>(x);
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        float d = fp16_to_fp32(b[ib].d);
        for (int j = 0; j < QK8_0; j++) y[ib * QK8_0 + j] = b[ib].qs[j] * d;
    }
}

// ggml's quantize_row_q8_0_ref: d = amax/127, q = roundf(x * (1/d)) (half away from zero).
void q8_0_from_float(const float *x, void *y, int64_t n) {
    block_q8_0 *b = static_cast<block_q8_0 *>(y);
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        const float *v = x + ib * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) amax = std::fmax(amax, std::fabs(v[j]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[ib].d = fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++) b[ib].qs[j] = static_cast<int8_t>(std::round(v[j] * id));
    }
}

float q8_0_vec_dot(int64_t n, const void *w, const void *a) {
    const block_q8_0 *x = static_cast<const block_q8_0 *>(w);
    const block_q8_0 *y = static_cast<const block_q8_0 *>(a);
    double s = 0;
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        int32_t isum = 0;
        for (int j = 0; j < QK8_0; j++) isum += x[ib].qs[j] * y[ib].qs[j];
        s += static_cast<float>(isum) * (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d));
    }
    return static_cast<float>(s);
}

// ---- Q4_0 ----

void q4_0_to_float(const void *x, float *y, int64_t n) {
    const block_q4_0 *b = static_cast<const block_q4_0 *>(x);
    for (int64_t ib = 0; ib < n / QK4_0; ib++) {
        float d = fp16_to_fp32(b[ib].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[ib * QK4_0 + j] = ((b[ib].qs[j] & 0x0F) - 8) * d;
            y[ib * QK4_0 + j + QK4_0 / 2] = ((b[ib].qs[j] >> 4) - 8) * d;
        }
    }
}

// ggml's quantize_row_q4_0_ref: max = the signed value of largest magnitude (first wins), d = max/-8,
// q = min(15, (int8)(x/d + 8.5)).
void q4_0_from_float(const float *x, void *y, int64_t n) {
    block_q4_0 *b = static_cast<block_q4_0 *>(y);
    for (int64_t ib = 0; ib < n / QK4_0; ib++) {
        const float *v = x + ib * QK4_0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++) {
            if (amax < std::fabs(v[j])) {
                amax = std::fabs(v[j]);
                max = v[j];
            }
        }
        float d = max / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[ib].d = fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            int q0 = static_cast<int8_t>(v[j] * id + 8.5f);
            int q1 = static_cast<int8_t>(v[j + QK4_0 / 2] * id + 8.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            b[ib].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
    }
}

float q4_0_vec_dot(int64_t n, const void *w, const void *a) {
    const block_q4_0 *x = static_cast<const block_q4_0 *>(w);
    const block_q8_0 *y = static_cast<const block_q8_0 *>(a);
    double s = 0;
    for (int64_t ib = 0; ib < n / QK4_0; ib++) {
        int32_t isum = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            isum += ((x[ib].qs[j] & 0x0F) - 8) * y[ib].qs[j];
            isum += ((x[ib].qs[j] >> 4) - 8) * y[ib].qs[j + QK4_0 / 2];
        }
        s += static_cast<float>(isum) * (fp16_to_fp32(x[ib].d) * fp16_to_fp32(y[ib].d));
    }
    return static_cast<float>(s);
}

} // namespace

void layer_norm(float *out, const float *x, const float *w, const float *b, int64_t n, float eps) {
    // mean and biased variance in double: the f32 result then matches torch to the last bits or so
    // (four partial sums, so the compiler can use packed doubles; the order is fixed, per token)
    double m4[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int r = 0; r < 4; r++) m4[r] += x[i + r];
    }
    for (; i < n; i++) m4[0] += x[i];
    const double mean = ((m4[0] + m4[1]) + (m4[2] + m4[3])) / double(n);
    double v4[4] = {0, 0, 0, 0};
    for (i = 0; i + 4 <= n; i += 4) {
        for (int r = 0; r < 4; r++) {
            const double d = x[i + r] - mean;
            v4[r] += d * d;
        }
    }
    for (; i < n; i++) v4[0] += (x[i] - mean) * (x[i] - mean);
    const double var = ((v4[0] + v4[1]) + (v4[2] + v4[3])) / double(n);
    const float rstd = float(1.0 / std::sqrt(var + double(eps)));
    const float fmean = float(mean);
    if (w && b) {
        for (i = 0; i < n; i++) out[i] = ((x[i] - fmean) * rstd) * w[i] + b[i];
    } else {
        for (i = 0; i < n; i++) out[i] = ((x[i] - fmean) * rstd) * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
    }
}

void fill_kernels_scalar(kernels &k) {
    k = kernels();
    k.path = GPTNEOX_KERNELS_SCALAR;
    k.traits[GPTNEOX_TYPE_F32] = {1, 4, GPTNEOX_TYPE_F32, f32_to_float, f32_from_float, f32_vec_dot};
    k.traits[GPTNEOX_TYPE_F16] = {1, 2, GPTNEOX_TYPE_F32, f16_to_float, f16_from_float, f16_vec_dot};
    k.traits[GPTNEOX_TYPE_BF16] = {1, 2, GPTNEOX_TYPE_F32, bf16_to_float, bf16_from_float, bf16_vec_dot};
    k.traits[GPTNEOX_TYPE_Q8_0] = {QK8_0, sizeof(block_q8_0), GPTNEOX_TYPE_Q8_0, q8_0_to_float,
                                   q8_0_from_float, q8_0_vec_dot};
    k.traits[GPTNEOX_TYPE_Q4_0] = {QK4_0, sizeof(block_q4_0), GPTNEOX_TYPE_Q8_0, q4_0_to_float,
                                   q4_0_from_float, q4_0_vec_dot};
    k.dot_f32 = dot_f32;
    k.dot_f32_f16 = dot_f32_f16;
    k.axpy_f16 = axpy_f16;
    k.axpy_f32 = axpy_f32;
    k.f32_to_f16 = f32_to_f16_row;
    k.f16_to_f32 = f16_to_f32_row;
    k.layer_norm = layer_norm;
}

} // namespace gptneox
