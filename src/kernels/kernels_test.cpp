// Kernel tests: every SIMD path this CPU supports against the scalar reference, the scalar reference
// against independent definitions (nearest-even f16/bf16 found by search, double-precision sums), and
// matmul against a naive double-precision product. Prints "N passed, M failed"; exits 1 on failure.
//
// Tolerances: SIMD kernels sum in a different order than the reference (lanes, FMA), and any order of
// summing m terms in float is within (m-1)*2^-24*sum|term| of the exact sum (Higham, recursive
// summation bound), so sums are compared with tol = (m + 8) * 2^-24 * sum|term| (+ the reference's own
// error). Everything that is not a sum (conversions, quantization, dequantization) must be bit-exact.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "common/status.h"
#include "kernels/kernels-impl.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "loader/model.h"
#include "threads/thread-pool.h"

using namespace gptneox;

namespace {

int g_pass = 0, g_fail = 0;
const char *g_ctx = "";

void check(bool ok, const char *what, const char *fmt = "", double a = 0, double b = 0, double c = 0) {
    if (ok) {
        g_pass++;
        return;
    }
    g_fail++;
    if (g_fail <= 40) {
        std::printf("FAIL [%s] %s: ", g_ctx, what);
        std::printf(fmt, a, b, c);
        std::printf("\n");
    }
}

constexpr double kEps = 1.0 / 16777216.0; // 2^-24, f32 unit roundoff

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

std::mt19937 rng(12345);
float urand(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }
std::vector<float> rand_vec(int64_t n, float scale = 1.0f) {
    std::vector<float> v(n);
    for (auto &x : v) x = urand(-scale, scale);
    return v;
}

// ---- independent references ----

// Nearest f16 by search over the sorted positive f16 values (exact in double), ties to even.
uint16_t ref_f16(float f) {
    if (std::isnan(f)) return 0x7E00;
    double a = std::fabs(static_cast<double>(f));
    uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    auto val = [](int h) -> double {
        int e = (h >> 10) & 31, m = h & 1023;
        return e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
    };
    if (a >= 65520.0) return sign | 0x7C00;
    int lo = 0, hi = 0x7BFF; // largest h with val(h) <= a
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (val(mid) <= a) lo = mid;
        else hi = mid - 1;
    }
    int h = lo;
    if (h < 0x7BFF) {
        double d0 = a - val(h), d1 = val(h + 1) - a;
        if (d1 < d0 || (d1 == d0 && (h & 1))) h++;
    } else if (a - val(h) > 0) {
        h = a >= 65520.0 ? 0x7C00 : h;
    }
    return static_cast<uint16_t>(sign | h);
}

// Nearest bf16 (ties to even) from the exact f32 value.
uint16_t ref_bf16(float f) {
    uint32_t u = bits(f);
    uint32_t up = u >> 16, rem = u & 0xFFFF;
    if (rem > 0x8000 || (rem == 0x8000 && (up & 1))) up++;
    return static_cast<uint16_t>(up);
}

const enum gptneox_kernel_path kPaths[] = {GPTNEOX_KERNELS_SCALAR, GPTNEOX_KERNELS_AVX2, GPTNEOX_KERNELS_AVX512};
const char *path_name(enum gptneox_kernel_path p) {
    return p == GPTNEOX_KERNELS_SCALAR ? "scalar"
           : p == GPTNEOX_KERNELS_AVX2 ? "avx2"
           : p == GPTNEOX_KERNELS_AMX  ? "amx"
                                       : "avx512";
}
const char *type_name(uint32_t t) {
    switch (t) {
    case GPTNEOX_TYPE_F32: return "f32";
    case GPTNEOX_TYPE_F16: return "f16";
    case GPTNEOX_TYPE_BF16: return "bf16";
    case GPTNEOX_TYPE_Q8_0: return "q8_0";
    case GPTNEOX_TYPE_Q4_0: return "q4_0";
    }
    return "?";
}
const uint32_t kTypes[] = {GPTNEOX_TYPE_F32, GPTNEOX_TYPE_F16, GPTNEOX_TYPE_BF16, GPTNEOX_TYPE_Q8_0,
                           GPTNEOX_TYPE_Q4_0};

size_t row_size(const type_traits &t, int64_t n) { return static_cast<size_t>(n / t.blck) * t.type_size; }

// ---- scalar reference against independent definitions ----

void test_scalar_conversions() {
    g_ctx = "scalar conversions";
    // f16 -> f32 -> f16 round trip over all non-NaN patterns; NaN stays NaN.
    int bad = 0, bad_nan = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fp16_to_fp32(static_cast<uint16_t>(h));
        bool is_nan = ((h >> 10) & 31) == 31 && (h & 1023);
        if (is_nan) bad_nan += !std::isnan(f) || !std::isnan(fp16_to_fp32(fp32_to_fp16(f)));
        else bad += fp32_to_fp16(f) != h || ref_f16(f) != h;
    }
    check(bad == 0, "f16 round trip", "%g mismatches", bad);
    check(bad_nan == 0, "f16 NaN preserved", "%g mismatches", bad_nan);
    // f32 -> f16 rounding: random floats of all magnitudes, and every midpoint between f16 values (+-1 ulp).
    std::vector<float> xs;
    for (int i = 0; i < 200000; i++) xs.push_back(from_bits(rng()) );
    for (int i = 0; i < 200000; i++) xs.push_back(urand(-70000.0f, 70000.0f) * std::ldexp(1.0f, -static_cast<int>(rng() % 30)));
    for (uint32_t h = 0; h < 0x7C00; h++) {
        float mid = static_cast<float>((static_cast<double>(fp16_to_fp32(static_cast<uint16_t>(h))) +
                                        fp16_to_fp32(static_cast<uint16_t>(h + 1))) / 2);
        xs.push_back(mid);
        xs.push_back(from_bits(bits(mid) + 1));
        xs.push_back(from_bits(bits(mid) - 1));
        xs.push_back(-mid);
    }
    bad = 0;
    for (float f : xs) {
        if (std::isnan(f)) bad += !std::isnan(fp16_to_fp32(fp32_to_fp16(f)));
        else bad += fp32_to_fp16(f) != ref_f16(f);
    }
    check(bad == 0, "f32->f16 nearest-even", "%g mismatches", bad);
    // bf16
    bad = 0;
    for (float f : xs) {
        if (std::isnan(f)) bad += !std::isnan(bf16_to_fp32(fp32_to_bf16(f)));
        else bad += fp32_to_bf16(f) != ref_bf16(f);
    }
    check(bad == 0, "f32->bf16 nearest-even", "%g mismatches", bad);
    check(std::isnan(bf16_to_fp32(fp32_to_bf16(from_bits(0x7F800001u)))), "bf16 keeps signalling NaN a NaN");
    check(fp32_to_bf16(1e38f * 10.0f) == 0x7F80, "bf16 inf");
}

void test_scalar_quant_properties(const kernels &ref) {
    g_ctx = "scalar quantizers";
    // Q8_0: |x - deq| <= d/2 (+ rounding of d to f16 handled by using the stored d); ties away from zero.
    std::vector<float> x = rand_vec(4096, 3.0f);
    x[0] = 127.0f; x[1] = 2.5f; x[2] = -3.5f; x[3] = 0.5f; x[4] = -0.5f; // block 0: d = 1, exact ties
    std::vector<uint8_t> q(row_size(ref.traits[GPTNEOX_TYPE_Q8_0], 4096));
    ref.traits[GPTNEOX_TYPE_Q8_0].from_float(x.data(), q.data(), 4096);
    const block_q8_0 *b8 = reinterpret_cast<const block_q8_0 *>(q.data());
    check(b8[0].d == 0x3C00 && b8[0].qs[1] == 3 && b8[0].qs[2] == -4 && b8[0].qs[3] == 1 && b8[0].qs[4] == -1,
          "q8_0 roundf ties away from zero");
    std::vector<float> y(4096);
    ref.traits[GPTNEOX_TYPE_Q8_0].to_float(q.data(), y.data(), 4096);
    int bad = 0;
    for (int i = 0; i < 4096; i++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = std::fmax(amax, std::fabs(x[i / 32 * 32 + j]));
        double d = amax / 127.0;
        bad += std::fabs(x[i] - y[i]) > 0.5 * d * 1.01 + 127 * std::fabs(fp16_to_fp32(b8[i / 32].d) - d);
    }
    check(bad == 0, "q8_0 round trip error <= d/2", "%g elements", bad);
    // Q4_0: the largest-magnitude element maps to -8*d; every q in [0, 15].
    x = rand_vec(4096, 2.0f);
    q.assign(row_size(ref.traits[GPTNEOX_TYPE_Q4_0], 4096), 0);
    ref.traits[GPTNEOX_TYPE_Q4_0].from_float(x.data(), q.data(), 4096);
    ref.traits[GPTNEOX_TYPE_Q4_0].to_float(q.data(), y.data(), 4096);
    const block_q4_0 *b4 = reinterpret_cast<const block_q4_0 *>(q.data());
    bad = 0;
    int bad_err = 0;
    for (int ib = 0; ib < 128; ib++) {
        int jm = 0;
        for (int j = 1; j < 32; j++)
            if (std::fabs(x[ib * 32 + j]) > std::fabs(x[ib * 32 + jm])) jm = j;
        int qm = jm < 16 ? (b4[ib].qs[jm] & 15) : (b4[ib].qs[jm - 16] >> 4);
        bad += qm != 0;
        // error <= d/2, except where q clips at 15 (x/d in [7.5, 8]: error <= d); the quants use the
        // unrounded d, so add 8 * |d - f16(d)| for the stored scale.
        double d32 = std::fabs(x[ib * 32 + jm] / -8.0f), d = std::fabs(fp16_to_fp32(b4[ib].d));
        for (int j = 0; j < 32; j++) {
            int qj = j < 16 ? (b4[ib].qs[j] & 15) : (b4[ib].qs[j - 16] >> 4);
            double lim = (qj == 15 ? 1.0 : 0.5) * d32 + 8 * std::fabs(d - d32) + 1e-6 * d32;
            bad_err += std::fabs(x[ib * 32 + j] - y[ib * 32 + j]) > lim;
        }
    }
    check(bad == 0, "q4_0 max element -> q = 0", "%g blocks", bad);
    check(bad_err == 0, "q4_0 round trip error <= d/2", "%g elements", bad_err);
}

// ---- SIMD path against the scalar reference ----

void test_helpers(const kernels &k, const kernels &ref) {
    // f16 -> f32 over all 65536 patterns, bit-exact (NaNs: NaN)
    std::vector<uint16_t> h(65536);
    for (int i = 0; i < 65536; i++) h[i] = static_cast<uint16_t>(i);
    std::vector<float> a(65536), b(65536);
    k.f16_to_f32(h.data(), a.data(), 65536);
    ref.f16_to_f32(h.data(), b.data(), 65536);
    int bad = 0;
    for (int i = 0; i < 65536; i++) bad += std::isnan(b[i]) ? !std::isnan(a[i]) : bits(a[i]) != bits(b[i]);
    check(bad == 0, "f16_to_f32 all patterns", "%g mismatches", bad);
    // f32 -> f16: random bit patterns + values near f16 midpoints, odd length
    std::vector<float> xs(100003);
    for (size_t i = 0; i < xs.size(); i++) {
        if (i % 2) xs[i] = from_bits(rng());
        else {
            uint16_t hh = static_cast<uint16_t>(rng() % 0x7C00);
            float mid = static_cast<float>((static_cast<double>(fp16_to_fp32(hh)) + fp16_to_fp32(hh + 1)) / 2);
            xs[i] = from_bits(bits(mid) + (rng() % 3) - 1);
        }
    }
    std::vector<uint16_t> h1(xs.size()), h2(xs.size());
    k.f32_to_f16(xs.data(), h1.data(), xs.size());
    ref.f32_to_f16(xs.data(), h2.data(), xs.size());
    bad = 0;
    for (size_t i = 0; i < xs.size(); i++) bad += std::isnan(xs[i]) ? !std::isnan(fp16_to_fp32(h1[i])) : h1[i] != h2[i];
    check(bad == 0, "f32_to_f16", "%g mismatches", bad);

    const int64_t sizes[] = {1, 7, 16, 33, 100, 1001, 4096, 4099};
    for (int64_t n : sizes) {
        std::vector<float> x = rand_vec(n), y = rand_vec(n);
        std::vector<uint16_t> yh(n);
        ref.f32_to_f16(y.data(), yh.data(), n);
        double exact = 0, exact_h = 0, mag = 0, mag_h = 0;
        for (int64_t i = 0; i < n; i++) {
            exact += static_cast<double>(x[i]) * y[i];
            mag += std::fabs(static_cast<double>(x[i]) * y[i]);
            exact_h += static_cast<double>(x[i]) * fp16_to_fp32(yh[i]);
            mag_h += std::fabs(static_cast<double>(x[i]) * fp16_to_fp32(yh[i]));
        }
        double tol = (n + 8) * kEps * mag, tol_h = (n + 8) * kEps * mag_h;
        float d = k.dot_f32(n, x.data(), y.data());
        check(std::fabs(d - exact) <= tol + kEps * std::fabs(exact), "dot_f32", "n=%g got %g want %g", n, d, exact);
        float dr = ref.dot_f32(n, x.data(), y.data());
        check(std::fabs(dr - exact) <= kEps * std::fabs(exact) + 1e-30, "scalar dot_f32 exact-rounded", "n=%g %g %g", n, dr, exact);
        float dh = k.dot_f32_f16(n, x.data(), yh.data());
        check(std::fabs(dh - exact_h) <= tol_h + kEps * std::fabs(exact_h), "dot_f32_f16", "n=%g got %g want %g", n, dh, exact_h);
        // axpy: one FMA (SIMD) vs a rounded product then a rounded sum (scalar): within 2 roundings.
        float s = urand(-2, 2);
        std::vector<float> y1 = y, y2 = y;
        k.axpy_f32(n, s, x.data(), y1.data());
        ref.axpy_f32(n, s, x.data(), y2.data());
        int bad_axpy = 0;
        for (int64_t i = 0; i < n; i++)
            bad_axpy += std::fabs(y1[i] - y2[i]) > 2 * kEps * (std::fabs(y[i]) + std::fabs(s * x[i]));
        check(bad_axpy == 0, "axpy_f32", "n=%g bad=%g", n, bad_axpy);
        y1 = y;
        y2 = y;
        k.axpy_f16(n, s, yh.data(), y1.data());
        ref.axpy_f16(n, s, yh.data(), y2.data());
        bad_axpy = 0;
        for (int64_t i = 0; i < n; i++)
            bad_axpy += std::fabs(y1[i] - y2[i]) > 2 * kEps * (std::fabs(y[i]) + std::fabs(s * fp16_to_fp32(yh[i])));
        check(bad_axpy == 0, "axpy_f16", "n=%g bad=%g", n, bad_axpy);
    }
}

// A random weight row of type t (raw bytes, including -128 in Q8_0 and every nibble in Q4_0).
std::vector<uint8_t> rand_weight_row(const kernels &ref, uint32_t t, int64_t n) {
    const type_traits &tr = ref.traits[t];
    std::vector<uint8_t> w(row_size(tr, n));
    if (t == GPTNEOX_TYPE_F32 || t == GPTNEOX_TYPE_F16 || t == GPTNEOX_TYPE_BF16) {
        std::vector<float> x = rand_vec(n);
        tr.from_float(x.data(), w.data(), n);
        return w;
    }
    for (auto &c : w) c = static_cast<uint8_t>(rng());
    for (int64_t ib = 0; ib < n / tr.blck; ib++) { // sane scales (random bits could be inf/NaN)
        uint16_t d = fp32_to_fp16(urand(-0.05f, 0.05f));
        std::memcpy(w.data() + ib * tr.type_size, &d, 2);
    }
    return w;
}

// A random ne1 x ne0 weight of type t in `buf`, rows `pad` bytes longer than their data (row_bytes honoured).
weight rand_weight(const kernels &ref, uint32_t t, int64_t ne0, int64_t ne1, std::vector<uint8_t> &buf, size_t pad = 0) {
    const size_t rb = row_size(ref.traits[t], ne0) + pad;
    buf.assign(rb * ne1, 0);
    for (int64_t o = 0; o < ne1; o++) {
        std::vector<uint8_t> r = rand_weight_row(ref, t, ne0);
        std::memcpy(buf.data() + o * rb, r.data(), r.size());
    }
    return weight::rows(t, ne0, ne1, rb, buf.data());
}

// Activation row in t's vec_dot_type, plus its float values.
std::vector<uint8_t> make_act(const kernels &ref, uint32_t t, const std::vector<float> &x, std::vector<float> *deq) {
    const type_traits &at = ref.traits[ref.traits[t].vec_dot_type];
    int64_t n = static_cast<int64_t>(x.size());
    std::vector<uint8_t> a(row_size(at, n));
    at.from_float(x.data(), a.data(), n);
    deq->resize(n);
    at.to_float(a.data(), deq->data(), n);
    return a;
}

// BF16 on VDPBF16PS (AVX512_BF16 CPUs) rounds the activations to bf16: gemm_bf16dp_test checks it
// against its own reference; here it takes part in the batch-invariance checks only.
bool bf16_dp(const kernels &k, uint32_t t) {
    return t == GPTNEOX_TYPE_BF16 && k.traits[t].vec_dot_type == GPTNEOX_TYPE_BF16;
}

// LayerNorm rows, bit for bit against the scalar reference: odd lengths (tails of the 4-wide sums and 8-wide
// affine step), rows far from zero mean, constant rows (variance 0), w / b absent (1 / +0: a -0 product
// becomes +0, as in the reference).
void test_layer_norm(const kernels &k) {
    const int64_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 100, 1001, 1024, 2816, 2817};
    std::normal_distribution<float> nd(0.0f, 1.0f);
    int bad = 0;
    for (int64_t n : sizes) {
        for (int kind = 0; kind < 4; kind++) {
            std::vector<float> x(n), w(n), b(n), o1(n), o2(n);
            const float offset = kind == 1 ? 1000.0f : kind == 2 ? -3.5f : 0.0f;
            for (int64_t i = 0; i < n; i++) {
                x[i] = kind == 3 ? 2.25f : offset + nd(rng) * (kind == 1 ? 0.01f : 1.0f);
                w[i] = nd(rng);
                b[i] = nd(rng) * 0.1f;
            }
            for (int wb = 0; wb < 4; wb++) {
                const float *wp = wb & 1 ? nullptr : w.data(), *bp = wb & 2 ? nullptr : b.data();
                k.layer_norm(o1.data(), x.data(), wp, bp, n, 1e-5f);
                layer_norm(o2.data(), x.data(), wp, bp, n, 1e-5f);
                for (int64_t i = 0; i < n; i++) bad += bits(o1[i]) != bits(o2[i]);
            }
        }
    }
    check(bad == 0, "layer_norm == reference bit for bit", "%g mismatches", bad);
}

void test_types(const kernels &k, const kernels &ref) {
    for (uint32_t t : kTypes) {
        const type_traits *kt = k.get(t), *rt = ref.get(t);
        check(kt && rt, "type present");
        if (!kt || !rt) continue;
        if (bf16_dp(k, t)) continue; // its own reference: gemm_bf16dp_test
        check(kt->blck == rt->blck && kt->type_size == rt->type_size && kt->vec_dot_type == rt->vec_dot_type,
              "traits match scalar");
        bool quant = rt->blck > 1;
        std::vector<int64_t> sizes = {32, 96, 4064, 4096, 4128, 4160, 4192, 8192 + 96};
        if (!quant) sizes.insert(sizes.end(), {1, 7, 33, 1001});
        for (int64_t n : sizes) {
            char ctx[96];
            std::snprintf(ctx, sizeof ctx, "%s %s n=%lld", path_name(k.path), type_name(t), static_cast<long long>(n));
            g_ctx = ctx;
            // to_float: bit-exact
            std::vector<uint8_t> w = rand_weight_row(ref, t, n);
            std::vector<float> f1(n), f2(n);
            kt->to_float(w.data(), f1.data(), n);
            rt->to_float(w.data(), f2.data(), n);
            check(std::memcmp(f1.data(), f2.data(), n * 4) == 0, "to_float bit-exact");
            // from_float: byte-exact (same scale, same rounding); values with exact .5 ties for Q8_0
            std::vector<float> x = rand_vec(n, 4.0f);
            if (quant) {
                x[0] = 127.0f;
                for (int j = 1; j < 32; j++) x[j] = (j % 2 ? 0.5f : -0.5f) + static_cast<float>(static_cast<int>(rng() % 200) - 100);
                // an all-zero block (scale 0, id 0) and one whose scale is an f16 subnormal
                for (int j = 32; j < 64 && j < n; j++) x[j] = 0.0f;
                for (int j = 64; j < 96 && j < n; j++) x[j] = 3e-7f * static_cast<float>(j - 80);
            }
            std::vector<uint8_t> q1(row_size(*rt, n)), q2(row_size(*rt, n));
            kt->from_float(x.data(), q1.data(), n);
            rt->from_float(x.data(), q2.data(), n);
            check(std::memcmp(q1.data(), q2.data(), q1.size()) == 0, "from_float byte-exact");
            // vec_dot vs scalar, tolerance from the summation bound
            std::vector<float> xd;
            std::vector<uint8_t> a = make_act(ref, t, rand_vec(n, 2.0f), &xd);
            double mag = 0, exact = 0;
            for (int64_t i = 0; i < n; i++) {
                exact += static_cast<double>(f2[i]) * xd[i];
                mag += std::fabs(static_cast<double>(f2[i]) * xd[i]);
            }
            int64_t m = quant ? n / 32 : n; // terms summed in float: per-block products for Q types
            double tol = (m + 8) * kEps * mag + 2 * kEps * std::fabs(exact);
            float v1 = kt->vec_dot(n, w.data(), a.data()), v2 = rt->vec_dot(n, w.data(), a.data());
            check(std::fabs(v1 - v2) <= tol, "vec_dot vs scalar", "got %g want %g tol %g", v1, v2, tol);
            check(std::fabs(v2 - exact) <= tol, "scalar vec_dot vs double", "got %g want %g tol %g", v2, exact, tol);
            if (kt->vec_dot_x4) {
                // 4 activation rows, 40 bytes of padding between them
                size_t as = a.size() + 40;
                std::vector<uint8_t> a4(4 * as);
                float want[4], got[4];
                double tol4[4];
                for (int j = 0; j < 4; j++) {
                    std::vector<float> xj = xd;
                    std::vector<uint8_t> aj = j == 0 ? a : make_act(ref, t, rand_vec(n, 2.0f), &xj);
                    std::memcpy(a4.data() + j * as, aj.data(), aj.size());
                    want[j] = rt->vec_dot(n, w.data(), aj.data());
                    double mj = 0;
                    for (int64_t i = 0; i < n; i++) mj += std::fabs(static_cast<double>(f2[i]) * xj[i]);
                    tol4[j] = (m + 8) * kEps * mj + 2 * kEps * std::fabs(want[j]);
                }
                kt->vec_dot_x4(n, w.data(), a4.data(), as, got);
                int bad4 = 0, diff1 = 0;
                for (int j = 0; j < 4; j++) {
                    bad4 += !(std::fabs(got[j] - want[j]) <= tol4[j]);
                    // batch invariance: a token's value must not depend on whether matmul took it in a
                    // group of 4 (vec_dot_x4) or alone (vec_dot), bit for bit
                    float one = kt->vec_dot(n, w.data(), a4.data() + j * as);
                    diff1 += std::memcmp(&one, &got[j], sizeof one) != 0;
                }
                check(bad4 == 0, "vec_dot_x4 vs scalar", "%g rows differ (got %g want %g)", bad4, got[1], want[1]);
                check(diff1 == 0, "vec_dot_x4 bit-identical to vec_dot", "%g rows differ", diff1);
            }
            if (quant) {
                // Integer parts exact: with every scale 1.0 and small quants all partial sums are integers
                // below 2^24, so any summation order must give the exact value.
                uint16_t one = 0x3C00;
                std::vector<float> xs(n);
                for (auto &v : xs) v = static_cast<float>(static_cast<int>(rng() % 31) - 15);
                std::vector<uint8_t> a1(row_size(ref.traits[GPTNEOX_TYPE_Q8_0], n));
                for (int64_t ib = 0; ib < n / 32; ib++) {
                    block_q8_0 *b = reinterpret_cast<block_q8_0 *>(a1.data()) + ib;
                    b->d = one;
                    for (int j = 0; j < 32; j++) b->qs[j] = static_cast<int8_t>(xs[ib * 32 + j]);
                    std::memcpy(w.data() + ib * rt->type_size, &one, 2);
                    if (t == GPTNEOX_TYPE_Q8_0)
                        for (int j = 0; j < 32; j++)
                            reinterpret_cast<block_q8_0 *>(w.data())[ib].qs[j] = static_cast<int8_t>(static_cast<int>(rng() % 31) - 15);
                }
                std::vector<float> wf(n);
                rt->to_float(w.data(), wf.data(), n);
                double isum = 0;
                for (int64_t i = 0; i < n; i++) isum += static_cast<double>(wf[i]) * xs[i];
                float e1 = kt->vec_dot(n, w.data(), a1.data()), e2 = rt->vec_dot(n, w.data(), a1.data());
                check(e1 == isum && e2 == isum, "integer dot exact", "simd %g scalar %g want %g", e1, e2, isum);
                // full int8 range (including -128 weights): scalar and SIMD within 1e-6 relative
                std::vector<uint8_t> w2 = rand_weight_row(ref, t, n);
                float g1 = kt->vec_dot(n, w2.data(), a.data()), g2 = rt->vec_dot(n, w2.data(), a.data());
                double mag2 = 0;
                std::vector<float> wf2(n);
                rt->to_float(w2.data(), wf2.data(), n);
                for (int64_t i = 0; i < n; i++) mag2 += std::fabs(static_cast<double>(wf2[i]) * xd[i]);
                check(std::fabs(g1 - g2) <= 1e-6 * mag2 * (1 + m / 256.0), "vec_dot full range", "%g %g %g", g1, g2, mag2);
            }
        }
    }
}

// ---- matmul ----

// The attention loops, where a path has them, must equal the dot_f32_f16 / axpy_f16 loops bit for bit
// (decode and prompt then agree whichever the caller uses).
void test_attention_loops(const kernels &k) {
    if (!k.attn_scores_f16 && !k.attn_values_f16) return;
    for (int64_t n : {int64_t(16), int64_t(64), int64_t(80), int64_t(96), int64_t(100), int64_t(128), int64_t(256)}) {
        char ctx[96];
        std::snprintf(ctx, sizeof ctx, "attention loops %s n=%lld", path_name(k.path), static_cast<long long>(n));
        g_ctx = ctx;
        const int64_t rows = 37;
        const size_t stride = size_t(n) * 3 + 8;
        std::vector<float> kv = rand_vec(int64_t(stride) * rows), q = rand_vec(n), w = rand_vec(rows);
        std::vector<uint16_t> h(kv.size());
        for (size_t i = 0; i < kv.size(); i++) h[i] = fp32_to_fp16(kv[i]);
        std::vector<float> got(rows), want(rows);
        for (int64_t j = 0; j < rows; j++) got[j] = want[j] = j % 5 == 3 ? -INFINITY : 0.0f;
        for (int64_t j = 0; j < rows; j++)
            if (want[j] == 0.0f) want[j] = 0.125f * k.dot_f32_f16(n, q.data(), h.data() + j * stride);
        if (k.attn_scores_f16) {
            k.attn_scores_f16(n, q.data(), h.data(), stride, rows, 0.125f, got.data());
            check(std::memcmp(got.data(), want.data(), rows * sizeof(float)) == 0, "attn_scores_f16 == dot loop");
        }
        for (int64_t j = 0; j < rows; j += 4) w[j] = 0.0f;
        std::vector<float> vg(n, -1.0f), vw(n, 0.0f);
        for (int64_t j = 0; j < rows; j++)
            if (w[j] != 0.0f) k.axpy_f16(n, w[j], h.data() + j * stride, vw.data());
        if (k.attn_values_f16) {
            k.attn_values_f16(n, w.data(), h.data(), stride, rows, vg.data());
            check(std::memcmp(vg.data(), vw.data(), n * sizeof(float)) == 0, "attn_values_f16 == axpy loop");
        }
    }
}

// A token's outputs must not depend on the batch it came in (the decode kernel for few tokens, the
// repacking prompt kernel / vec_dot_x4 for more): matmul of n tokens == n matmuls of 1 token, bit for bit.
void test_batch_invariance(const kernels &k, const kernels &ref, thread_pool &pool) {
    std::vector<uint8_t> scratch;
    for (uint32_t t : kTypes) {
        // ne0 / 32 = 3, 6, 88, 129 blocks: every remainder mod 4 (Q4_0 decode goes 4 blocks at a time), and
        // the AVX-512 32-row kernel splits each into K chunks of 1, 3, 48, 71 blocks;
        // 600 rows: matmul hands the threads ranges of several row chunks (37: a 32-row group, 5 left)
        for (int64_t ne0 : {int64_t(96), int64_t(192), int64_t(2816), int64_t(4128)})
            for (int64_t ne1 : {int64_t(37), int64_t(100), int64_t(600)})
                // with 7 and 12: every tail (1-6 tokens) of the 32-row kernel's 6-token register tile
                for (int64_t nt : {int64_t(3), int64_t(4), int64_t(7), int64_t(8), int64_t(9), int64_t(12), int64_t(17)}) {
                    char ctx[128];
                    std::snprintf(ctx, sizeof ctx, "batch invariance %s %s ne0=%lld ne1=%lld nt=%lld", path_name(k.path),
                                  type_name(t), static_cast<long long>(ne0), static_cast<long long>(ne1),
                                  static_cast<long long>(nt));
                    g_ctx = ctx;
                    std::vector<uint8_t> wbuf;
                    const weight W = rand_weight(ref, t, ne0, ne1, wbuf);
                    std::vector<float> x = rand_vec(nt * ne0), all(nt * ne1), one(ne1);
                    matmul(k, pool, 2, W, nullptr, x.data(), nt, ne0, all.data(), ne1, scratch);
                    int diff = 0;
                    for (int64_t tt = 0; tt < nt; tt++) {
                        matmul(k, pool, 1 + int(tt % 2), W, nullptr, x.data() + tt * ne0, 1, ne0, one.data(), ne1,
                               scratch);
                        diff += std::memcmp(one.data(), all.data() + tt * ne1, ne1 * sizeof(float)) != 0;
                    }
                    check(diff == 0, "matmul of n tokens == n matmuls of one token", "%g tokens differ", diff);
                }
    }
}

void test_matmul(const kernels &k, const kernels &ref, thread_pool &pool) {
    const int64_t ne1s[] = {1, 3, 37, 100};
    const int64_t ntoks[] = {1, 5, 33};
    std::vector<uint8_t> scratch;
    for (uint32_t t : kTypes) {
        if (bf16_dp(k, t)) continue; // gemm_bf16dp_test
        const type_traits &rt = ref.traits[t];
        std::vector<int64_t> ne0s = {32, 96, 320};
        if (rt.blck == 1) ne0s.push_back(33);
        for (int64_t ne0 : ne0s)
            for (int64_t ne1 : ne1s)
                for (int64_t nt : ntoks)
                    for (int nth = 1; nth <= 2; nth++) {
                        char ctx[128];
                        std::snprintf(ctx, sizeof ctx, "matmul %s %s ne0=%lld ne1=%lld nt=%lld th=%d", path_name(k.path),
                                      type_name(t), static_cast<long long>(ne0), static_cast<long long>(ne1),
                                      static_cast<long long>(nt), nth);
                        g_ctx = ctx;
                        // padded rows: row_bytes is honoured (rows stay 4-aligned as in GGUF)
                        std::vector<uint8_t> wbuf;
                        const weight W = rand_weight(ref, t, ne0, ne1, wbuf, 8);
                        const size_t rb = W.row_bytes;
                        int64_t xs = ne0 + 3, ys = ne1 + 2;
                        std::vector<float> x = rand_vec(nt * xs), bias = rand_vec(ne1);
                        std::vector<float> y(nt * ys, -1234.5f);
                        bool use_bias = (ne1 + nt) % 2 == 0;
                        matmul(k, pool, nth, W, use_bias ? bias.data() : nullptr, x.data(), nt, xs, y.data(), ys, scratch);
                        // reference: double sums of dequantized weights and of the activations as the
                        // kernels see them (Q8_0-rounded for quantized weights, by the scalar quantizer)
                        int bad = 0, bad_pad = 0;
                        std::vector<float> wf(ne0);
                        std::vector<std::vector<float>> xa(nt);
                        for (int64_t tt = 0; tt < nt; tt++) {
                            std::vector<float> xr(x.begin() + tt * xs, x.begin() + tt * xs + ne0);
                            if (rt.vec_dot_type == GPTNEOX_TYPE_F32) xa[tt] = xr;
                            else make_act(ref, t, xr, &xa[tt]);
                        }
                        double worst = 0;
                        for (int64_t o = 0; o < ne1; o++) {
                            rt.to_float(wbuf.data() + o * rb, wf.data(), ne0);
                            for (int64_t tt = 0; tt < nt; tt++) {
                                double s = use_bias ? bias[o] : 0, mag = std::fabs(s);
                                for (int64_t i = 0; i < ne0; i++) {
                                    s += static_cast<double>(wf[i]) * xa[tt][i];
                                    mag += std::fabs(static_cast<double>(wf[i]) * xa[tt][i]);
                                }
                                int64_t m = rt.blck > 1 ? ne0 / 32 : ne0;
                                double tol = (m + 8) * kEps * mag + 2 * kEps * std::fabs(s) + 1e-30;
                                double err = std::fabs(y[tt * ys + o] - s);
                                if (err > tol) bad++;
                                if (err / tol > worst) worst = err / tol;
                            }
                        }
                        for (int64_t tt = 0; tt < nt; tt++)
                            for (int64_t o = ne1; o < ys; o++) bad_pad += y[tt * ys + o] != -1234.5f;
                        check(bad == 0, "matmul vs double reference", "%g bad, worst err/tol %g", bad, worst);
                        check(bad_pad == 0, "matmul writes only its outputs");
                    }
    }
    // scratch is not reallocated once large enough
    g_ctx = "matmul scratch";
    const uint8_t *p = scratch.data();
    size_t cap = scratch.size();
    {
        std::vector<float> x = rand_vec(64);
        std::vector<uint8_t> wq(row_size(ref.traits[GPTNEOX_TYPE_Q8_0], 64) * 2);
        ref.traits[GPTNEOX_TYPE_Q8_0].from_float(rand_vec(128).data(), wq.data(), 128);
        weight W = weight::rows(GPTNEOX_TYPE_Q8_0, 64, 2, row_size(ref.traits[GPTNEOX_TYPE_Q8_0], 64), wq.data());
        float y[2];
        matmul(k, pool, 2, W, nullptr, x.data(), 1, 64, y, 2, scratch);
        check(scratch.data() == p && scratch.size() == cap, "scratch reused");
        // errors are thrown, not crashes
        bool threw = false;
        W.ne0 = 48;
        try {
            matmul(k, pool, 2, W, nullptr, x.data(), 1, 64, y, 2, scratch);
        } catch (const gptneox::error &e) {
            threw = e.status() == GPTNEOX_STATUS_INVALID_ARGUMENT;
        }
        check(threw, "ne0 not a multiple of the block size throws");
        threw = false;
        W.ne0 = 64;
        W.type = 3; // Q4_1: no kernels
        try {
            matmul(k, pool, 2, W, nullptr, x.data(), 1, 64, y, 2, scratch);
        } catch (const gptneox::error &e) {
            threw = e.status() == GPTNEOX_STATUS_UNSUPPORTED;
        }
        check(threw, "unsupported type throws");
    }
    // get_rows
    for (uint32_t t : kTypes) {
        g_ctx = "get_rows";
        const type_traits &rt = ref.traits[t];
        int64_t ne0 = 96, ne1 = 7;
        std::vector<uint8_t> wbuf;
        const weight W = rand_weight(ref, t, ne0, ne1, wbuf);
        const size_t rb = W.row_bytes;
        int32_t ids[4] = {6, 0, 3, 6};
        std::vector<float> out(4 * ne0), want(ne0);
        get_rows(k, W, ids, 4, out.data());
        int bad = 0;
        for (int i = 0; i < 4; i++) {
            rt.to_float(wbuf.data() + ids[i] * rb, want.data(), ne0);
            bad += std::memcmp(want.data(), out.data() + i * ne0, ne0 * 4) != 0;
        }
        check(bad == 0, "get_rows rows");
        bool threw = false;
        int32_t badid = 7;
        try {
            get_rows(k, W, &badid, 1, out.data());
        } catch (const gptneox::error &) {
            threw = true;
        }
        check(threw, "get_rows id out of range throws");
    }
}

} // namespace

int main() {
    const cpu_features &f = detect_cpu();
    std::printf("cpu: %s | avx2 %d fma %d f16c %d avx512f %d bw %d vl %d dq %d vnni %d vbmi %d bf16 %d amx-int8 %d "
                "amx-bf16 %d\n",
                f.brand, f.avx2, f.fma, f.f16c, f.avx512f, f.avx512bw, f.avx512vl, f.avx512dq, f.avx512vnni,
                f.avx512vbmi, f.avx512bf16, f.amx_int8, f.amx_bf16);
    std::printf("best path: %s\n", path_name(best_kernel_path()));
    const kernels *ref = get_kernels(GPTNEOX_KERNELS_SCALAR);
    check(ref != nullptr, "scalar path always available");
    if (!ref) return 1;
    check(get_kernels(GPTNEOX_KERNELS_AUTO) == get_kernels(best_kernel_path()), "AUTO is the best path");
    check(get_kernels(static_cast<enum gptneox_kernel_path>(99)) == nullptr, "unknown path is nullptr");
    test_scalar_conversions();
    test_scalar_quant_properties(*ref);
    thread_pool pool(2);
    for (enum gptneox_kernel_path p : kPaths) {
        const kernels *k = get_kernels(p);
        if (!k) {
            std::printf("skip %s: not supported by this CPU\n", path_name(p));
            continue;
        }
        int before = g_fail;
        g_ctx = path_name(p);
        check(k->path == p, "table path");
        test_helpers(*k, *ref);
        test_layer_norm(*k);
        test_types(*k, *ref);
        test_matmul(*k, *ref, pool);
        test_batch_invariance(*k, *ref, pool);
        test_attention_loops(*k);
        std::printf("path %s: %s\n", path_name(p), g_fail == before ? "ok" : "FAILED");
    }
    // The AVX-512 table without VNNI (as on Skylake-X), built the way dispatch.cpp builds it.
    if (get_kernels(GPTNEOX_KERNELS_AVX512)) {
        static kernels nv;
        fill_kernels_scalar(nv);
        fill_kernels_avx2(nv);
        fill_kernels_avx512(nv, false);
        int before = g_fail;
        test_types(nv, *ref);
        test_matmul(nv, *ref, pool);
        test_batch_invariance(nv, *ref, pool);
        std::printf("path avx512 without vnni: %s\n", g_fail == before ? "ok" : "FAILED");
    }
    std::printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
