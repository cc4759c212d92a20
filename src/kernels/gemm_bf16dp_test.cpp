// The VDPBF16PS kernels (gemm-bf16dp-avx512.cpp) against their scalar reference (gemm-bf16dp-scalar.cpp),
// bit for bit: the activation rounding on every kind of float (ties, denormals, infinities, NaNs), and
// every output of the gemm on odd shapes (columns not a multiple of 32 or even of 2, rows not a multiple
// of the 4- or 8-row tiles, 1..37 tokens, padded rows, denormal weights); a token's outputs identical
// whatever the number of tokens in the call; and matmul (which converts the activations) == the gemm.
// Skipped with a message on a CPU without AVX512_BF16. Prints "N passed, M failed"; exits 1 on failure.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "common/test-check.h"
#include "kernels/kernels-impl.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "loader/model.h"
#include "threads/thread-pool.h"

using namespace gptneox;
using namespace gptneox_test;

namespace {

std::mt19937 rng(777);


void test_rounding(const type_traits &t) {
    std::snprintf(g_ctx, sizeof g_ctx, "bf16 rounding");
    std::vector<float> x;
    // random bit patterns (every class), values on and next to rounding ties, specials
    std::uniform_int_distribution<uint32_t> any;
    for (int i = 0; i < 200000; i++) x.push_back(bits_f32(any(rng)));
    for (uint32_t hi : {0x3F80u, 0x3F81u, 0xC2F7u, 0x0080u, 0x7F7Fu, 0x0000u, 0x8000u}) {
        for (uint32_t lo : {0x7FFFu, 0x8000u, 0x8001u, 0x0000u, 0xFFFFu}) x.push_back(bits_f32((hi << 16) | lo));
    }
    for (float f : {INFINITY, -INFINITY, NAN, -NAN, 1e-40f, -1e-40f, 1.17549435e-38f, 3.4028235e38f}) x.push_back(f);
    x.push_back(bits_f32(0x7F800001u)); // signalling NaN
    for (int64_t n : {int64_t(x.size()), int64_t(15), int64_t(17), int64_t(1)}) {
        std::vector<uint16_t> got(size_t(n) + 1, 0xBEEF);
        t.from_float(x.data(), got.data(), n);
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++) bad += got[size_t(i)] != bf16dp_round_ref(x[size_t(i)]);
        check(bad == 0, "from_float == reference", double(bad), double(n));
        check(got[size_t(n)] == 0xBEEF, "nothing written past n");
    }
}

// Random bf16 values (about N(0, scale)), with some denormals, zeros of both signs, and exact ties.
uint16_t rand_bf16(float scale) {
    const int kind = int(rng() % 64);
    if (kind == 0) return uint16_t(rng() & 0x807F); // denormal or zero
    if (kind == 1) return 0x8000;
    std::normal_distribution<float> d(0.0f, scale);
    return static_cast<uint16_t>(f32_bits(d(rng)) >> 16);
}

void test_shape(const type_traits &t, int64_t n, int64_t rows, int64_t max_tok) {
    std::snprintf(g_ctx, sizeof g_ctx, "gemm n=%lld rows=%lld", static_cast<long long>(n), static_cast<long long>(rows));
    const size_t row_elems = size_t(n) + size_t(n % 3); // padded rows
    std::vector<uint16_t> w(row_elems * size_t(rows) + 32, 0x7FC0); // padding holds NaNs: must not be read
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) w[size_t(r) * row_elems + size_t(i)] = rand_bf16(0.05f);
    const size_t a_stride = size_t(n) + 5;
    std::vector<uint16_t> a(a_stride * size_t(max_tok) + 32, 0x7FC0);
    for (int64_t tk = 0; tk < max_tok; tk++)
        for (int64_t i = 0; i < n; i++) a[size_t(tk) * a_stride + size_t(i)] = rand_bf16(1.0f);
    const size_t y_stride = size_t(rows) + 3;
    std::vector<float> ref(size_t(rows) * size_t(max_tok));
    for (int64_t tk = 0; tk < max_tok; tk++)
        for (int64_t r = 0; r < rows; r++)
            ref[size_t(tk * rows + r)] = bf16dp_dot_ref(n, w.data() + size_t(r) * row_elems, a.data() + size_t(tk) * a_stride);
    for (int64_t nt : {int64_t(1), int64_t(2), int64_t(5), int64_t(6), int64_t(7), max_tok}) {
        if (nt > max_tok) continue;
        std::vector<float> y(y_stride * size_t(nt) + 8, -12345.0f);
        t.gemm(n, w.data(), row_elems * 2, rows, a.data(), a_stride * 2, nullptr, 0, nt, y.data(), y_stride, nullptr);
        int64_t bad = 0, outside = 0;
        for (int64_t tk = 0; tk < nt; tk++) {
            for (int64_t r = 0; r < rows; r++) {
                const float g = y[size_t(tk) * y_stride + size_t(r)], e = ref[size_t(tk * rows + r)];
                bad += std::memcmp(&g, &e, 4) != 0;
            }
            for (size_t r = size_t(rows); r < y_stride; r++) outside += y[size_t(tk) * y_stride + r] != -12345.0f;
        }
        check(bad == 0, "gemm == reference, bit for bit", double(bad), double(nt));
        check(outside == 0, "nothing written outside the outputs", double(outside));
    }
    check(std::memcmp(&ref[0], &ref[0], 4) == 0 && !std::isnan(ref[0]), "reference is a number", double(ref[0]));
}

void test_matmul(const kernels &k, thread_pool &pool) {
    std::snprintf(g_ctx, sizeof g_ctx, "matmul");
    const int64_t n = 2816 + 7 * 2, rows = 133, nt = 9;
    std::vector<uint16_t> w(size_t(n * rows));
    for (auto &v : w) v = rand_bf16(0.05f);
    const weight W = weight::rows(GPTNEOX_TYPE_BF16, n, rows, size_t(n) * 2, w.data());
    std::vector<float> x(size_t(n * nt));
    std::normal_distribution<float> d(0.0f, 1.0f);
    for (auto &v : x) v = d(rng);
    std::vector<float> y(size_t(rows * nt));
    std::vector<uint8_t> scratch;
    matmul(k, pool, 2, W, nullptr, x.data(), nt, n, y.data(), rows, scratch);
    int64_t bad = 0;
    std::vector<uint16_t> a(static_cast<size_t>(n));
    for (int64_t tk = 0; tk < nt; tk++) {
        for (int64_t i = 0; i < n; i++) a[size_t(i)] = bf16dp_round_ref(x[size_t(tk * n + i)]);
        for (int64_t r = 0; r < rows; r++) {
            const float e = bf16dp_dot_ref(n, w.data() + size_t(r * n), a.data());
            bad += std::memcmp(&y[size_t(tk * rows + r)], &e, 4) != 0;
        }
    }
    check(bad == 0, "matmul == reference (activations rounded, then the dot)", double(bad));
}

} // namespace

int main() {
    const cpu_features &f = detect_cpu();
    const kernels *k = get_kernels(GPTNEOX_KERNELS_AVX512);
    if (!k || !f.avx512bf16) {
        std::printf("skip: this CPU has no AVX512_BF16 (VDPBF16PS kernels not dispatched)\n0 passed, 0 failed\n");
        return 0;
    }
    const type_traits &t = k->traits[GPTNEOX_TYPE_BF16];
    std::snprintf(g_ctx, sizeof g_ctx, "dispatch");
    check(t.vec_dot_type == GPTNEOX_TYPE_BF16 && t.gemm != nullptr, "AVX-512 table uses the VDPBF16PS kernels");
    test_rounding(t);
    for (int64_t n : {1, 2, 7, 31, 32, 33, 63, 64, 100, 257, 1000, 2816 + 7})
        for (int64_t rows : {1, 3, 4, 5, 8, 9, 13, 17, 37}) test_shape(t, n, rows, n > 1000 ? 13 : 37);
    thread_pool pool(2);
    test_matmul(*k, pool);
    return report("");
}
