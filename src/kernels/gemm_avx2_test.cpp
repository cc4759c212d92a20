// Tests of the AVX2 Q8_0 / Q4_0 gemm (gemm-avx2.cpp): both of its kernels (decode: activations in place;
// prompt: gemm_prep layout, packed weights) against a scalar model of the contract in kernels.h
//   acc = 0; for each block b: acc = fma(float(exact integer block dot), dw_b * dy_b, acc)
// which they must match bit for bit, and against the scalar reference vec_dot (double sums) within the
// summation bound. Odd shapes: rows not a multiple of the 8/16-row tiles, n = 32 * odd, token counts
// 1..37 (partial token tiles), extreme quants (|w| = 128, a = +-127, Q4_0 nibbles 0 / 15) where a
// saturating i16 step would show. Then matmul on the AVX2 table: n tokens at once == one at a time.
// Prints "N passed, M failed"; exits 1 on failure; skips (exit 0, with a message) without AVX2.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "loader/model.h"
#include "threads/thread-pool.h"

using namespace gptneox;

namespace {

int g_pass = 0, g_fail = 0;
char g_ctx[160] = "";

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

std::mt19937 rng(777);
float urand(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }

const char *type_name(uint32_t t) { return t == GPTNEOX_TYPE_Q8_0 ? "q8_0" : "q4_0"; }

// Weight rows (n elements each, row_bytes apart). mode 0: random floats through the scalar quantizer;
// 1: extreme quants (Q8_0: -128 / 127 / -127 at random, Q4_0: nibbles 0 / 15); scales random f16.
std::vector<uint8_t> make_weights(const kernels &ref, uint32_t t, int64_t n, int64_t rows, size_t row_bytes, int mode) {
    const type_traits &tr = ref.traits[t];
    std::vector<uint8_t> buf(row_bytes * size_t(rows) + 64, 0xA5);
    std::vector<float> x(n);
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *row = buf.data() + size_t(r) * row_bytes;
        for (auto &v : x) v = urand(-1.0f, 1.0f);
        tr.from_float(x.data(), row, n);
        if (mode == 0) continue;
        for (int64_t ib = 0; ib < n / 32; ib++) {
            const uint16_t d = fp32_to_fp16(urand(0.001f, 0.02f));
            if (t == GPTNEOX_TYPE_Q8_0) {
                block_q8_0 *b = reinterpret_cast<block_q8_0 *>(row) + ib;
                b->d = d;
                const int pick = int(rng() % 3);
                for (int j = 0; j < 32; j++) b->qs[j] = static_cast<int8_t>(pick == 0 ? -128 : pick == 1 ? 127 : (j % 2 ? -128 : 127));
            } else {
                block_q4_0 *b = reinterpret_cast<block_q4_0 *>(row) + ib;
                b->d = d;
                const uint8_t v = (rng() % 2) ? 0x00 : 0xFF;
                for (int j = 0; j < 16; j++) b->qs[j] = v;
            }
        }
    }
    return buf;
}

// Q8_0 activation rows (act_stride bytes apart) from random floats; mode 1: whole blocks of +-amax,
// so that every quant is +-127.
std::vector<uint8_t> make_acts(const kernels &ref, int64_t n, int64_t n_tok, size_t act_stride, int mode) {
    std::vector<uint8_t> buf(act_stride * size_t(n_tok) + 64, 0x5A);
    std::vector<float> x(n);
    for (int64_t t = 0; t < n_tok; t++) {
        for (int64_t i = 0; i < n; i++) {
            x[i] = urand(-2.0f, 2.0f);
            if (mode == 1) x[i] = ((i / 32 + t) % 2 ? 1.5f : -1.5f) * ((i % 3) ? 1.0f : -1.0f);
        }
        ref.traits[GPTNEOX_TYPE_Q8_0].from_float(x.data(), buf.data() + size_t(t) * act_stride, n);
    }
    return buf;
}

int weight_q(uint32_t t, const uint8_t *row, int64_t i) {
    if (t == GPTNEOX_TYPE_Q8_0) return reinterpret_cast<const block_q8_0 *>(row)[i / 32].qs[i % 32];
    const block_q4_0 &b = reinterpret_cast<const block_q4_0 *>(row)[i / 32];
    const int j = int(i % 32);
    return (j < 16 ? (b.qs[j] & 15) : (b.qs[j - 16] >> 4)) - 8;
}
uint16_t weight_d(uint32_t t, const uint8_t *row, int64_t ib) {
    return t == GPTNEOX_TYPE_Q8_0 ? reinterpret_cast<const block_q8_0 *>(row)[ib].d
                                  : reinterpret_cast<const block_q4_0 *>(row)[ib].d;
}

// The contract's value for one row and one token, computed in scalar code.
float model_dot(uint32_t t, int64_t n, const uint8_t *row, const block_q8_0 *a) {
    float acc = 0.0f;
    for (int64_t ib = 0; ib < n / 32; ib++) {
        int32_t isum = 0;
        for (int j = 0; j < 32; j++) isum += weight_q(t, row, ib * 32 + j) * a[ib].qs[j];
        const float s = fp16_to_fp32(weight_d(t, row, ib)) * fp16_to_fp32(a[ib].d);
        acc = std::fma(static_cast<float>(isum), s, acc);
    }
    return acc;
}

void test_gemm_kernels(const kernels &k, const kernels &ref) {
    // n = 32: the Q8_0 prompt kernel falls back to the decode kernel (no room for a packed record); 96:
    // Q8_0 one-block K-chunks; 32 * 27, 32 * 37: Q8_0 15- and 21-block chunks (what the work area holds),
    // the last one short (Q4_0: one chunk of 27; 32 and 5); 32 * 89: full chunks (32 blocks) and a short one.
    const int64_t ns[] = {32, 96, 32 * 27, 32 * 37, 32 * 89};
    const int64_t rows_list[] = {1, 7, 8, 9, 15, 16, 17, 37};
    for (uint32_t t : {uint32_t(GPTNEOX_TYPE_Q8_0), uint32_t(GPTNEOX_TYPE_Q4_0)}) {
        const type_traits &tr = k.traits[t];
        check(tr.gemm != nullptr && tr.gemm_prep != nullptr, "avx2 table has the gemm and gemm_prep entries");
        if (!tr.gemm || !tr.gemm_prep) continue;
        for (int64_t n : ns)
            for (int64_t rows : rows_list)
                for (int mode = 0; mode < 2; mode++) {
                    // every token count 1..37 for a few shapes, a sample elsewhere (time)
                    const bool all_tok = n == 96 || (n == 32 * 37 && (rows == 17 || rows == 9));
                    const int64_t max_tok = 37;
                    std::snprintf(g_ctx, sizeof g_ctx, "%s n=%lld rows=%lld mode=%d", type_name(t), static_cast<long long>(n),
                                  static_cast<long long>(rows), mode);
                    const size_t row_bytes = size_t(n / 32) * ref.traits[t].type_size + 6; // padded rows
                    const size_t act_stride = size_t(n / 32) * sizeof(block_q8_0) + 10;
                    const std::vector<uint8_t> w = make_weights(ref, t, n, rows, row_bytes, mode);
                    const std::vector<uint8_t> act = make_acts(ref, n, max_tok, act_stride, mode);
                    // the model's values, and the reference vec_dot within the summation bound
                    std::vector<float> want(size_t(max_tok * rows));
                    int bad_ref = 0;
                    for (int64_t tk = 0; tk < max_tok; tk++)
                        for (int64_t r = 0; r < rows; r++) {
                            const uint8_t *row = w.data() + size_t(r) * row_bytes;
                            const block_q8_0 *a = reinterpret_cast<const block_q8_0 *>(act.data() + size_t(tk) * act_stride);
                            const float m = model_dot(t, n, row, a);
                            want[size_t(tk * rows + r)] = m;
                            double mag = 0;
                            for (int64_t i = 0; i < n; i++)
                                mag += std::fabs(double(weight_q(t, row, i)) * a[i / 32].qs[i % 32] *
                                                 fp16_to_fp32(weight_d(t, row, i / 32)) * fp16_to_fp32(a[i / 32].d));
                            const float rv = ref.traits[t].vec_dot(n, row, a);
                            bad_ref += !(std::fabs(double(m) - rv) <= (n / 32 + 8) * 0x1p-23 * mag + 1e-30);
                        }
                    check(bad_ref == 0, "contract model vs scalar vec_dot", "%g outputs off", bad_ref);
                    // prep rows (stride a multiple of 64, as matmul lays them out)
                    const size_t prep_stride = (tr.gemm_prep_size(n) + 63) / 64 * 64;
                    std::vector<uint8_t> prep_buf(prep_stride * max_tok + 64);
                    uint8_t *prep = reinterpret_cast<uint8_t *>((reinterpret_cast<uintptr_t>(prep_buf.data()) + 63) & ~uintptr_t(63));
                    for (int64_t tk = 0; tk < max_tok; tk++) tr.gemm_prep(n, act.data() + size_t(tk) * act_stride, prep + tk * prep_stride);
                    std::vector<uint8_t> work(gemm_work_bytes(n) + 1); // deliberately not 64-byte aligned
                    const size_t ys = size_t(rows) + 3;
                    int bad_dec = 0, bad_pro = 0, bad_pad = 0;
                    for (int64_t nt = 1; nt <= max_tok; nt++) {
                        if (!all_tok && nt != 1 && nt != 3 && nt != 4 && nt != 5 && nt != 11 && nt != max_tok) continue;
                        for (int use_prep = 0; use_prep < 2; use_prep++) {
                            std::vector<float> y(ys * size_t(nt), -77.0f);
                            tr.gemm(n, w.data(), row_bytes, rows, act.data(), act_stride, use_prep ? prep : nullptr,
                                    prep_stride, nt, y.data(), ys, use_prep ? work.data() + 1 : nullptr);
                            for (int64_t tk = 0; tk < nt; tk++) {
                                for (int64_t r = 0; r < rows; r++) {
                                    const float g = y[size_t(tk) * ys + r], e = want[size_t(tk * rows + r)];
                                    if (std::memcmp(&g, &e, 4) != 0) (use_prep ? bad_pro : bad_dec)++;
                                }
                                for (size_t r = size_t(rows); r < ys; r++) bad_pad += y[size_t(tk) * ys + r] != -77.0f;
                            }
                        }
                    }
                    check(bad_dec == 0, "decode kernel == contract model bit for bit", "%g outputs differ", bad_dec);
                    check(bad_pro == 0, "prompt kernel == contract model bit for bit", "%g outputs differ", bad_pro);
                    check(bad_pad == 0, "gemm writes only its outputs", "%g", bad_pad);
                }
    }
}

// matmul on the AVX2 table: a batch of n tokens gives each token the bits it gets alone.
void test_matmul_batches(const kernels &k, const kernels &ref, thread_pool &pool) {
    std::vector<uint8_t> scratch;
    for (uint32_t t : {uint32_t(GPTNEOX_TYPE_Q8_0), uint32_t(GPTNEOX_TYPE_Q4_0)})
        for (int64_t ne0 : {int64_t(32 * 3), int64_t(32 * 89)})
            for (int64_t ne1 : {int64_t(23), int64_t(100)}) {
                std::snprintf(g_ctx, sizeof g_ctx, "matmul %s ne0=%lld ne1=%lld", type_name(t), static_cast<long long>(ne0),
                              static_cast<long long>(ne1));
                const size_t row_bytes = size_t(ne0 / 32) * ref.traits[t].type_size;
                std::vector<uint8_t> wbuf = make_weights(ref, t, ne0, ne1, row_bytes, 0);
                const weight W = weight::rows(t, ne0, ne1, row_bytes, wbuf.data());
                const int64_t max_tok = 37;
                std::vector<float> x(size_t(max_tok * ne0));
                for (auto &v : x) v = urand(-1.0f, 1.0f);
                std::vector<float> one(size_t(max_tok * ne1));
                for (int64_t tk = 0; tk < max_tok; tk++)
                    matmul(k, pool, 1, W, nullptr, x.data() + tk * ne0, 1, ne0, one.data() + tk * ne1, ne1, scratch);
                int diff = 0;
                for (int64_t nt : {int64_t(2), int64_t(3), int64_t(4), int64_t(7), int64_t(16), int64_t(37)}) {
                    std::vector<float> all(size_t(nt * ne1));
                    matmul(k, pool, 2, W, nullptr, x.data(), nt, ne0, all.data(), ne1, scratch);
                    diff += std::memcmp(all.data(), one.data(), all.size() * sizeof(float)) != 0;
                }
                check(diff == 0, "matmul of n tokens == n matmuls of one token", "%g batch sizes differ", diff);
            }
}

} // namespace

int main() {
    const kernels *k = get_kernels(GPTNEOX_KERNELS_AVX2);
    if (!k) {
        std::printf("skip: the AVX2 path is not supported by this CPU\n");
        return 0;
    }
    const kernels *ref = get_kernels(GPTNEOX_KERNELS_SCALAR);
    thread_pool pool(2);
    test_gemm_kernels(*k, *ref);
    test_matmul_batches(*k, *ref, pool);
    std::printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
