// F16 / BF16 gemm kernels (gemm-f16-avx2.cpp, gemm-f16-avx512.cpp) against a double-precision scalar
// reference on odd shapes: rows and columns that are not multiples of the vector width or of the
// register tile, token counts 1..37, padded row strides. Also: a token's outputs are bit-identical
// whatever the number of tokens in the call (decode vs prompt tiles), nothing outside the outputs is
// written, and matmul routes F16/BF16 through the gemm on the SIMD paths. A path the CPU lacks is
// skipped with a message. Prints "N passed, M failed"; exits 1 on failure.
//
// Tolerance: any order of summing m terms in float is within (m-1)*2^-24*sum|term| of the exact sum
// (Higham), so the check is |got - exact| <= (n + 8) * 2^-24 * sum|w*a| (products are exact in f32
// up to one rounding, included in the + 8).
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

constexpr double kEps = 1.0 / 16777216.0;
std::mt19937 rng(4242);

std::vector<float> rand_vec(size_t n, float scale) {
    std::vector<float> v(n);
    std::uniform_real_distribution<float> d(-scale, scale);
    for (auto &x : v) x = d(rng);
    return v;
}

const char *type_name(uint32_t t) { return t == GPTNEOX_TYPE_F16 ? "f16" : "bf16"; }
const char *path_name(enum gptneox_kernel_path p) { return p == GPTNEOX_KERNELS_AVX2 ? "avx2" : "avx512"; }

// One shape: n columns, rows weight rows (row_bytes = 2n + pad), n_tok tokens.
void test_shape(const kernels &k, const kernels &ref, uint32_t type, int64_t n, int64_t rows, int64_t max_tok) {
    const type_traits &kt = k.traits[type], &rt = ref.traits[type];
    std::snprintf(g_ctx, sizeof g_ctx, "%s %s n=%lld rows=%lld", path_name(k.path), type_name(type),
                  static_cast<long long>(n), static_cast<long long>(rows));
    const size_t row_bytes = static_cast<size_t>(2 * n) + 2 * (n % 3); // padded rows, 2-byte aligned
    std::vector<uint8_t> wbuf(row_bytes * static_cast<size_t>(rows) + 64, 0xAB);
    std::vector<float> wf(static_cast<size_t>(n * rows));
    for (int64_t r = 0; r < rows; r++) {
        // mixed magnitudes so sums cancel a little; the scalar from_float rounds them to the type
        std::vector<float> v = rand_vec(static_cast<size_t>(n), r % 3 == 0 ? 4.0f : 0.5f);
        rt.from_float(v.data(), wbuf.data() + r * row_bytes, n);
        rt.to_float(wbuf.data() + r * row_bytes, wf.data() + r * n, n);
    }
    const int64_t a_stride = n + 5, y_stride = rows + 3;
    std::vector<float> x = rand_vec(static_cast<size_t>(max_tok * a_stride), 1.0f);
    // reference and tolerance per (token, row)
    std::vector<double> want(static_cast<size_t>(max_tok * rows)), tol(want.size());
    for (int64_t t = 0; t < max_tok; t++)
        for (int64_t r = 0; r < rows; r++) {
            double s = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) {
                const double p = static_cast<double>(wf[r * n + i]) * x[t * a_stride + i];
                s += p;
                mag += std::fabs(p);
            }
            want[t * rows + r] = s;
            tol[t * rows + r] = (n + 8) * kEps * mag + 1e-30;
        }
    // token by token (the decode kernel)
    std::vector<float> one(static_cast<size_t>(max_tok * y_stride), -777.0f);
    for (int64_t t = 0; t < max_tok; t++)
        kt.gemm(n, wbuf.data(), row_bytes, rows, x.data() + t * a_stride, a_stride * sizeof(float), nullptr, 0, 1,
                one.data() + t * y_stride, y_stride, nullptr);
    int bad = 0, bad_pad = 0;
    double worst = 0;
    for (int64_t t = 0; t < max_tok; t++) {
        for (int64_t r = 0; r < rows; r++) {
            const double e = std::fabs(one[t * y_stride + r] - want[t * rows + r]);
            bad += e > tol[t * rows + r];
            if (e / tol[t * rows + r] > worst) worst = e / tol[t * rows + r];
        }
        for (int64_t r = rows; r < y_stride; r++) bad_pad += one[t * y_stride + r] != -777.0f;
    }
    check(bad == 0, "one token vs double reference (bad, worst err/tol)", bad, worst);
    check(bad_pad == 0, "one token writes only its outputs", bad_pad);
    // every batch size 2..max_tok: bit-identical to the token-by-token results
    int diff = 0;
    bad_pad = 0;
    std::vector<float> all(one.size());
    for (int64_t nt = 2; nt <= max_tok; nt++) {
        std::fill(all.begin(), all.end(), -777.0f);
        kt.gemm(n, wbuf.data(), row_bytes, rows, x.data(), a_stride * sizeof(float), nullptr, 0, nt, all.data(),
                y_stride, nullptr);
        for (int64_t t = 0; t < max_tok; t++) {
            for (int64_t r = 0; r < rows; r++)
                diff += t < nt ? std::memcmp(&all[t * y_stride + r], &one[t * y_stride + r], 4) != 0
                               : all[t * y_stride + r] != -777.0f;
            for (int64_t r = rows; r < y_stride; r++) bad_pad += all[t * y_stride + r] != -777.0f;
        }
    }
    check(diff == 0, "n tokens == n calls of one token, bit for bit (differences)", diff);
    check(bad_pad == 0, "batched call writes only its outputs", bad_pad);
}

// matmul on this path goes through the gemm: its results equal the gemm's, bit for bit.
void test_matmul_uses_gemm(const kernels &k, thread_pool &pool, uint32_t type) {
    std::snprintf(g_ctx, sizeof g_ctx, "%s %s matmul", path_name(k.path), type_name(type));
    const int64_t n = 200, rows = 301, nt = 7;
    std::vector<uint16_t> wh(static_cast<size_t>(n * rows));
    std::vector<float> v = rand_vec(wh.size(), 1.0f);
    k.traits[type].from_float(v.data(), wh.data(), static_cast<int64_t>(wh.size()));
    const weight W = weight::rows(type, n, rows, static_cast<size_t>(n) * 2, wh.data());
    std::vector<float> x = rand_vec(static_cast<size_t>(n * nt), 1.0f), y1(static_cast<size_t>(rows * nt)), y2(y1.size());
    std::vector<uint8_t> scratch;
    matmul(k, pool, 2, W, nullptr, x.data(), nt, n, y1.data(), rows, scratch);
    k.traits[type].gemm(n, wh.data(), W.row_bytes, rows, x.data(), n * sizeof(float), nullptr, 0, nt, y2.data(), rows,
                        nullptr);
    check(std::memcmp(y1.data(), y2.data(), y1.size() * 4) == 0, "matmul == gemm");
}

} // namespace

int main() {
    const kernels *ref = get_kernels(GPTNEOX_KERNELS_SCALAR);
    if (!ref) return 1;
    thread_pool pool(2);
    const int64_t ns[] = {1, 7, 15, 16, 17, 31, 33, 100, 257, 1000, 2816 + 7};
    const int64_t rowss[] = {1, 3, 4, 5, 8, 9, 13, 37};
    for (enum gptneox_kernel_path p : {GPTNEOX_KERNELS_AVX2, GPTNEOX_KERNELS_AVX512}) {
        const kernels *k = get_kernels(p);
        if (!k) {
            std::printf("skip %s: not supported by this CPU\n", path_name(p));
            continue;
        }
        const int before = g_fail;
        for (uint32_t type : {uint32_t(GPTNEOX_TYPE_F16), uint32_t(GPTNEOX_TYPE_BF16)}) {
            std::snprintf(g_ctx, sizeof g_ctx, "%s %s", path_name(p), type_name(type));
            if (k->traits[type].vec_dot_type != GPTNEOX_TYPE_F32) { // bf16 activations: gemm_bf16dp_test
                std::printf("%s %s: VDPBF16PS kernels (bf16 activations), tested by gemm_bf16dp_test\n",
                            path_name(p), type_name(type));
                continue;
            }
            check(k->traits[type].gemm != nullptr, "gemm entry set");
            if (!k->traits[type].gemm) continue;
            for (int64_t n : ns)
                for (int64_t rows : rowss) test_shape(*k, *ref, type, n, rows, n > 1000 ? 13 : 37);
            test_matmul_uses_gemm(*k, pool, type);
        }
        std::printf("path %s: %s\n", path_name(p), g_fail == before ? "ok" : "FAILED");
    }
    return report("");
}
