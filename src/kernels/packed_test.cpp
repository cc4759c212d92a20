// Weights repacked at load (type_traits::repack / gemm_packed, see use_extra_bufts). Q4_0 and Q8_0: on every
// kernel path that has a packed layout, repack writes packed-layout.h's bytes exactly (repack_x16_ref; paths
// sharing a layout read each other's copies), and matmul over the packed copy gives exactly the bits of
// matmul over the rows in place, for odd shapes (blocks per row odd and even, 1..23 groups of 16 rows,
// chunks that end inside a 32-row pair) and 1..37 tokens (decode, the 16-row and 32-row prompt kernels,
// partial token tiles), with 1 and 2 threads. A path without a packed layout, or a CPU without the path, is
// reported and skipped. F16 (AVX-512) and BF16 (AMX) sum in their own orders: their tests are at the end,
// as is the AMX path's Q8_0 / Q4_0 tile kernel for batches of 16+ tokens (bf16; below 16 tokens that path
// is the VNNI kernels, checked bit for bit here like the others), as dispatched and with passes of two
// token tiles and the smallest K-slices (fill_gemm_qbf16_amx_test), so these sizes cover both loops.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <random>
#include <vector>

#include "common/test-check.h"
#include "kernels/kernels-impl.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "kernels/packed-layout.h"
#include "loader/model.h"
#include "threads/thread-pool.h"

using namespace gptneox;
using namespace gptneox_test;

namespace {

std::mt19937 rng(2468);

// A random Q4_0 / Q8_0 matrix: every nibble / byte (-128 included), scales of both signs.
std::vector<uint8_t> rand_quant(uint32_t type, int64_t n, int64_t rows) {
    const size_t bs = type == GPTNEOX_TYPE_Q4_0 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    const int64_t nb = n / 32;
    std::vector<uint8_t> w(size_t(nb * rows) * bs);
    for (auto &b : w) b = uint8_t(rng());
    std::uniform_real_distribution<float> d(-0.05f, 0.05f);
    for (int64_t i = 0; i < nb * rows; i++) {
        const uint16_t h = fp32_to_fp16(d(rng));
        std::memcpy(w.data() + size_t(i) * bs, &h, 2);
    }
    return w;
}

// The loader's repack of rows [0, rows) (rb bytes apart) with t's repack into an aligned buffer, and the
// weight that reads it (P).
struct packed_copy {
    uint8_t *bytes = nullptr;
    size_t size = 0;
    weight P;
    packed_copy(const type_traits &t, uint32_t type, int64_t n, int64_t rows, size_t rb, const void *w) {
        const size_t gb = t.packed_group_bytes(n);
        size = gb * size_t(rows / 16);
        bytes = static_cast<uint8_t *>(std::aligned_alloc(64, (size + 63) / 64 * 64));
        t.repack(n, w, rb, rows, bytes);
        P = weight::rows(type, n, rows, rb, w);
        P.packed = bytes;
        P.packed_layout = t.packed_layout;
        P.packed_group_bytes = gb;
    }
    ~packed_copy() { std::free(bytes); }
    packed_copy(const packed_copy &) = delete;
    packed_copy &operator=(const packed_copy &) = delete;
};

// matmul over P of the first nt tokens of x (n floats each), for each nt, with 1 and 2 threads: bit for
// bit the first nt tokens of want (rows floats per token).
void check_batches(const kernels &k, thread_pool &pool, const weight &P, const std::vector<float> &x,
                   std::initializer_list<int64_t> nts, const std::vector<float> &want, const char *what,
                   const float *bias = nullptr) {
    std::vector<uint8_t> s;
    for (int64_t nt : nts) {
        for (int th : {1, 2}) {
            std::vector<float> y(size_t(P.ne1 * nt), -1.0f);
            matmul(k, pool, th, P, bias, x.data(), nt, P.ne0, y.data(), P.ne1, s);
            check(std::memcmp(y.data(), want.data(), y.size() * 4) == 0, what, double(nt), th);
        }
    }
}

void test_type(const kernels &k, thread_pool &pool, uint32_t type, const char *label) {
    const type_traits &t = k.traits[type];
    const char *tname = type == GPTNEOX_TYPE_Q4_0 ? "q4_0" : "q8_0";
    if (!t.packed_layout) {
        std::printf("%s %s: no packed layout (reads rows in place)\n", label, tname);
        return;
    }
    for (int64_t n : {32, 96, 128, 2816 + 32, 2816}) {
        for (int64_t rows : {16, 48, 64, 80, 96, 176, 368}) {
            std::snprintf(g_ctx, sizeof g_ctx, "%s %s n=%lld rows=%lld", label, tname,
                          static_cast<long long>(n), static_cast<long long>(rows));
            std::vector<uint8_t> w = rand_quant(type, n, rows);
            const size_t rb = w.size() / size_t(rows);
            const packed_copy pc(t, type, n, rows, rb, w.data());
            // the layout a path declares is packed-layout.h's, byte for byte (another path may read it)
            const bool q4 = type == GPTNEOX_TYPE_Q4_0;
            check(t.packed_layout == (q4 ? kPackedQ4x16 : kPackedQ8x16) &&
                      pc.P.packed_group_bytes == (q4 ? x16_group_bytes<true>(n) : x16_group_bytes<false>(n)),
                  "declares packed-layout.h's layout");
            std::vector<uint8_t> ref(pc.size);
            if (q4) repack_x16_ref<true>(n, w.data(), rb, rows, ref.data());
            else repack_x16_ref<false>(n, w.data(), rb, rows, ref.data());
            check(std::memcmp(ref.data(), pc.bytes, ref.size()) == 0, "repack == repack_x16_ref, byte for byte");
            const weight W = weight::rows(type, n, rows, rb, w.data());
            std::normal_distribution<float> d(0.0f, 1.0f);
            for (int64_t nt : {1, 2, 3, 5, 7, 12, 16, 17, 37}) {
                // (a tile kernel on bf16 activations: its batches are test_qbf16_amx's)
                if (t.gemm_pack_f32 && nt >= t.gemm_pack_min_tokens) continue;
                std::vector<float> x(size_t(n * nt));
                for (auto &v : x) v = d(rng);
                std::vector<float> y0(size_t(rows * nt));
                std::vector<uint8_t> s0;
                matmul(k, pool, 1, W, nullptr, x.data(), nt, n, y0.data(), rows, s0);
                check_batches(k, pool, pc.P, x, {nt}, y0, "packed == in place, bit for bit");
            }
        }
    }
}

float bf16_value(uint16_t h) {
    const uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// BF16 weights on the AMX path's tiles (gemm-bf16-amx.cpp): the tiles' own summation, so against a
// double-precision dot of the same bf16 values within the worst-case bound of any f32 summation order
// (n roundings of at most 2^-24 of the running sum, which never exceeds sum |a w|), and bit for bit
// against itself: a token gives the same bits alone and in any batch.
void test_bf16_amx(const kernels &k, thread_pool &pool) {
    const type_traits &t = k.traits[GPTNEOX_TYPE_BF16];
    if (t.packed_layout != kPackedPairs16x16) {
        std::printf("amx bf16: no tile kernel here (needs AMX-BF16 and AVX512_BF16)\n");
        return;
    }
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int64_t n : {32, 96, 1024, 2816 + 32}) {
        for (int64_t rows : {16, 48, 80, 368}) {
            std::snprintf(g_ctx, sizeof g_ctx, "amx bf16 n=%lld rows=%lld", static_cast<long long>(n),
                          static_cast<long long>(rows));
            std::vector<uint16_t> w(size_t(n * rows));
            for (auto &v : w) v = fp32_to_bf16(0.05f * nd(rng));
            const packed_copy pc(t, GPTNEOX_TYPE_BF16, n, rows, size_t(n) * 2, w.data());
            const int64_t max_tok = 37;
            std::vector<float> x(size_t(n * max_tok));
            for (auto &v : x) v = nd(rng);
            std::vector<uint16_t> xb(x.size());
            t.from_float(x.data(), xb.data(), n * max_tok);
            // each token alone
            std::vector<float> alone(size_t(rows * max_tok));
            std::vector<uint8_t> s;
            for (int64_t tk = 0; tk < max_tok; tk++)
                matmul(k, pool, 1, pc.P, nullptr, x.data() + tk * n, 1, n, alone.data() + tk * rows, rows, s);
            double worst = 0.0;
            for (int64_t tk = 0; tk < max_tok; tk++)
                for (int64_t r = 0; r < rows; r++) {
                    double ref = 0.0, mag = 0.0;
                    for (int64_t i = 0; i < n; i++) {
                        const double p = double(bf16_value(w[size_t(r * n + i)])) * bf16_value(xb[size_t(tk * n + i)]);
                        ref += p, mag += std::fabs(p);
                    }
                    const double err = std::fabs(double(alone[size_t(tk * rows + r)]) - ref);
                    const double bound = double(n) * std::ldexp(1.0, -24) * mag + 1e-30;
                    if (err / bound > worst) worst = err / bound;
                }
            check(worst <= 1.0, "within the f32 summation bound of the double reference", worst);
            check_batches(k, pool, pc.P, x, {2, 5, 16, 17, 37}, alone, "batch == token alone, bit for bit");
        }
    }
}

// Q8_0 / Q4_0 batches of 16+ tokens on the AMX path's bf16 tiles (gemm-qbf16-amx.cpp): against a double
// dot of its statement's values -- weights bf16(q * d), activations bf16dp_round_ref(x) -- within the f32
// summation bound (as test_bf16_amx), without a bias and with one (gemm_packed_bias: the sums start at it),
// and bit for bit across batches of 16+ tokens and threads (a token's
// result does not depend on its batch). Sizes cover odd block counts, one group pair and a lone group, K-
// slices (the test variant's: 8 blocks) and passes of two token tiles, full and partial token tiles, and
// the next group pair's dequantization partly before the tile loop or all inside it (as dispatched: all
// inside for Q8_0 at 81-95 and 97+ tokens, Q4_0 at 17-31 and 33+; always all inside in the test variant, 3
// vectors per block product); batches of 16-64 tokens (16, 17, 32, 37, 48, 53, 64) are narrow()'s, one to four
// token tiles, the last partial or not, in one K-slice or (test variant) several.
void test_qbf16_amx(const kernels &k, thread_pool &pool, uint32_t type, const char *label) {
    const type_traits &t = k.traits[type];
    const bool q4 = type == GPTNEOX_TYPE_Q4_0;
    const char *tname = q4 ? "q4_0" : "q8_0";
    if (!t.gemm_pack_f32) {
        std::printf("%s %s: no bf16 tile kernel here (needs AMX-BF16 and AVX512_BF16)\n", label, tname);
        return;
    }
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int64_t n : {32, 96, 288, 2816 + 32}) {
        for (int64_t rows : {16, 48, 64, 368}) {
            std::snprintf(g_ctx, sizeof g_ctx, "%s %s tiles n=%lld rows=%lld", label, tname, static_cast<long long>(n),
                          static_cast<long long>(rows));
            std::vector<uint8_t> w = rand_quant(type, n, rows);
            const size_t rb = w.size() / size_t(rows);
            const packed_copy pc(t, type, n, rows, rb, w.data());
            // the weights as the tiles see them: bf16(q * d), q * d from the scalar reference's dequantization
            const type_traits &ref_t = get_kernels(GPTNEOX_KERNELS_SCALAR)->traits[type];
            std::vector<float> wf(size_t(n * rows));
            for (int64_t r = 0; r < rows; r++) {
                ref_t.to_float(w.data() + size_t(r) * rb, wf.data() + r * n, n);
                for (int64_t i = 0; i < n; i++) wf[size_t(r * n + i)] = bf16_value(bf16dp_round_ref(wf[size_t(r * n + i)]));
            }
            // 133 tokens: 9 tiles, so that as dispatched the next pair's Q8_0 dequantization runs all inside
            // the tile loop (up to 53 partly before it)
            const int64_t max_tok = 133;
            std::vector<float> x(size_t(n * max_tok));
            for (auto &v : x) v = nd(rng);
            x[3] = 1e-40f; // a denormal activation: zero in bf16
            // a bias of the size of the sums (matmul passes it to gemm_packed_bias: each sum starts at it)
            std::vector<float> bias(static_cast<size_t>(rows));
            for (auto &v : bias) v = 4.0f * nd(rng);
            std::vector<float> all(size_t(rows * max_tok)), all_b(size_t(rows * max_tok));
            std::vector<uint8_t> s;
            matmul(k, pool, 2, pc.P, nullptr, x.data(), max_tok, n, all.data(), rows, s);
            matmul(k, pool, 2, pc.P, bias.data(), x.data(), max_tok, n, all_b.data(), rows, s);
            double worst = 0.0, worst_b = 0.0;
            for (int64_t tk = 0; tk < max_tok; tk++)
                for (int64_t r = 0; r < rows; r++) {
                    double ref = 0.0, mag = 0.0;
                    for (int64_t i = 0; i < n; i++) {
                        const double p = double(wf[size_t(r * n + i)]) * bf16_value(bf16dp_round_ref(x[size_t(tk * n + i)]));
                        ref += p, mag += std::fabs(p);
                    }
                    const double err = std::fabs(double(all[size_t(tk * rows + r)]) - ref);
                    const double bound = double(n) * std::ldexp(1.0, -24) * mag + 1e-30;
                    if (err / bound > worst) worst = err / bound;
                    // one more term in the sum: n + 1 roundings of at most |partial sum| 2^-24 each
                    const double ref_b = ref + double(bias[size_t(r)]), mag_b = mag + std::fabs(bias[size_t(r)]);
                    const double err_b = std::fabs(double(all_b[size_t(tk * rows + r)]) - ref_b);
                    const double bound_b = double(n + 1) * std::ldexp(1.0, -24) * mag_b + 1e-30;
                    if (err_b / bound_b > worst_b) worst_b = err_b / bound_b;
                }
            check(worst <= 1.0, "within the f32 summation bound of the double reference", worst);
            check(worst_b <= 1.0, "with a bias: within the f32 summation bound of the double reference", worst_b);
            check_batches(k, pool, pc.P, x, {16, 17, 32, 37, 48, 53, 64, 128}, all,
                          "batch of 16+ == the same tokens in a batch of 133");
            check_batches(k, pool, pc.P, x, {16, 17, 37, 64, 128}, all_b,
                          "with a bias: batch of 16+ == the same tokens in a batch of 133", bias.data());
        }
    }
}

// F16 weights in the pairs layout on the AVX-512 kernels (gemm-f16-packed-avx512.cpp, also the AMX table's):
// repack writes packed-layout.h's bytes, and every output is bit for bit the file's statement of its
// arithmetic -- an f32 FMA chain over the even elements and one over the odd, then their sum -- whatever
// the batch (decode, full and partial 12-token tiles) and the threads. Weights include zeros and f16
// subnormals.
void test_f16_packed(const kernels &k, thread_pool &pool, const char *label) {
    const type_traits &t = k.traits[GPTNEOX_TYPE_F16];
    if (t.packed_layout != kPackedPairs16x16) {
        std::printf("%s f16: no packed layout (reads rows in place)\n", label);
        return;
    }
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (int64_t n : {32, 96, 1024, 2816 + 32}) {
        for (int64_t rows : {16, 48, 80, 368}) {
            std::snprintf(g_ctx, sizeof g_ctx, "%s f16 n=%lld rows=%lld", label, static_cast<long long>(n),
                          static_cast<long long>(rows));
            std::vector<uint16_t> w(size_t(n * rows));
            for (size_t i = 0; i < w.size(); i++)
                w[i] = i % 97 == 0 ? 0 : i % 89 == 0 ? uint16_t(rng() & 0x83FF) : fp32_to_fp16(0.05f * nd(rng));
            const size_t rb = size_t(n) * 2;
            const packed_copy pc(t, GPTNEOX_TYPE_F16, n, rows, rb, w.data());
            check(pc.P.packed_group_bytes == pairs16x16_group_bytes(n), "declares packed-layout.h's pairs layout");
            std::vector<uint8_t> ref_bytes(pc.size);
            repack_pairs16x16_ref(n, w.data(), rb, rows, ref_bytes.data());
            check(std::memcmp(ref_bytes.data(), pc.bytes, pc.size) == 0, "repack == repack_pairs16x16_ref");
            const int64_t max_tok = 37;
            std::vector<float> x(size_t(n * max_tok));
            for (auto &v : x) v = nd(rng);
            std::vector<float> ref(size_t(rows * max_tok));
            for (int64_t tk = 0; tk < max_tok; tk++)
                for (int64_t r = 0; r < rows; r++) {
                    float acc[2] = {0.0f, 0.0f};
                    for (int64_t i = 0; i < n; i++)
                        acc[i % 2] =
                            std::fma(fp16_to_fp32(w[size_t(r * n + i)]), x[size_t(tk * n + i)], acc[i % 2]);
                    ref[size_t(tk * rows + r)] = acc[0] + acc[1];
                }
            check_batches(k, pool, pc.P, x, {1, 2, 5, 12, 13, 16, 37}, ref, "== the scalar statement, bit for bit");
        }
    }
}

} // namespace

int main() {
    thread_pool pool(2);
    for (enum gptneox_kernel_path p : {GPTNEOX_KERNELS_SCALAR, GPTNEOX_KERNELS_AVX2, GPTNEOX_KERNELS_AVX512, GPTNEOX_KERNELS_AMX}) {
        const kernels *k = get_kernels(p);
        if (!k) {
            std::printf("skip %s: not supported by this CPU\n", gptneox_kernel_path_name(p));
            continue;
        }
        test_type(*k, pool, GPTNEOX_TYPE_Q4_0, gptneox_kernel_path_name(p));
        test_type(*k, pool, GPTNEOX_TYPE_Q8_0, gptneox_kernel_path_name(p));
    }
    if (const kernels *amx = get_kernels(GPTNEOX_KERNELS_AMX)) {
        kernels small = *amx;
        const bool tiles = amx->traits[GPTNEOX_TYPE_Q8_0].gemm_pack_f32;
        if (tiles) fill_gemm_qbf16_amx_test(small);
        for (uint32_t type : {GPTNEOX_TYPE_Q4_0, GPTNEOX_TYPE_Q8_0}) {
            test_qbf16_amx(*amx, pool, type, "amx");
            if (tiles) test_qbf16_amx(small, pool, type, "amx-small-passes");
        }
    } else {
        std::printf("skip amx q8_0 / q4_0 tiles: no AMX\n");
    }
    for (enum gptneox_kernel_path p : {GPTNEOX_KERNELS_AVX512, GPTNEOX_KERNELS_AMX}) {
        if (const kernels *k = get_kernels(p)) test_f16_packed(*k, pool, gptneox_kernel_path_name(p));
        else std::printf("skip %s f16: not supported by this CPU\n", gptneox_kernel_path_name(p));
    }
    if (const kernels *amx = get_kernels(GPTNEOX_KERNELS_AMX)) test_bf16_amx(*amx, pool);
    else std::printf("skip amx bf16: no AMX\n");
    return report();
}
