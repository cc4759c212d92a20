// kernels.attn_block on every path this CPU runs, against a double-precision definition of attention
// (and the scalar reference against it too), for F16 and Q8_0 K / V rows in each combination, on odd
// sizes: head dims that are not multiples of 8 / 16 (F16; Q8_0 needs multiples of 32),
// odd query and key counts, causal and random masks, keys nobody sees holding NaN, queries that see
// nothing. Then batch invariance, bit for bit: each query computed alone (n_q = 1, its own key range)
// and inside any block, with any wider key range, gives the same output; and no path reads past the
// cache's last row (a copy of K / V ending at an unreadable page).
// Prints "N passed, M failed"; exits 1 on failure.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "common/test-check.h"
#include "kernels/kernels-impl.h"
#include "kernels/kernels.h"

using namespace gptneox;
using namespace gptneox_test;

namespace {

std::mt19937 rng(4242);
float urand(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }

struct problem {
    int64_t hd = 0, n_keys = 0;
    int32_t n_q = 0;
    uint32_t kt = GPTNEOX_TYPE_F16, vt = GPTNEOX_TYPE_F16;
    std::vector<float> q;      // [n_q][hd + 3] (a stride that is not hd)
    std::vector<uint8_t> k, v; // [n_keys][k_stride / v_stride bytes] (rows a little longer than needed)
    size_t q_stride = 0, k_stride = 0, v_stride = 0;
    std::vector<uint32_t> vis; // [n_keys]
};

size_t row_bytes(uint32_t type, int64_t hd) { return type == GPTNEOX_TYPE_Q8_0 ? size_t(hd / 32) * 34 : size_t(hd) * 2; }

// Element e of a row, by the formats' definitions (Q8_0: 32-element blocks of an f16 scale, then 32 int8).
double elem(const uint8_t *row, uint32_t type, int64_t e) {
    uint16_t h;
    if (type == GPTNEOX_TYPE_Q8_0) {
        const uint8_t *b = row + size_t(e / 32) * 34;
        std::memcpy(&h, b, 2);
        return double(fp16_to_fp32(h)) * double(int8_t(b[2 + e % 32]));
    }
    std::memcpy(&h, row + 2 * e, 2);
    return fp16_to_fp32(h);
}

// A row of random values of magnitude up to `amp` (Q8_0: random scales, random q in [-127, 127]); nan:
// every element NaN (F16 NaN elements; Q8_0 NaN scales).
void fill_row(uint8_t *row, uint32_t type, int64_t hd, float amp, bool nan) {
    if (type == GPTNEOX_TYPE_Q8_0) {
        for (int64_t b = 0; b < hd / 32; b++) {
            uint8_t *blk = row + size_t(b) * 34;
            const uint16_t d = nan ? uint16_t(0x7E00) : fp32_to_fp16(urand(0.1f, 1.0f) * amp / 127.0f);
            std::memcpy(blk, &d, 2);
            for (int i = 0; i < 32; i++) blk[2 + i] = uint8_t(int8_t(std::lround(urand(-127.4f, 127.4f))));
        }
        return;
    }
    for (int64_t e = 0; e < hd; e++) {
        const uint16_t h = nan ? uint16_t(0x7E00) : fp32_to_fp16(urand(-amp, amp));
        std::memcpy(row + 2 * e, &h, 2);
    }
}

// mask: 0 causal (query i at position base + i, key j at position j), 1 random, 2 causal with some
// keys nobody sees and the last query seeing nothing.
problem make(int64_t hd, int32_t n_q, int64_t n_keys, int mask, uint32_t kt, uint32_t vt) {
    problem p;
    p.hd = hd;
    p.n_q = n_q;
    p.n_keys = n_keys;
    p.kt = kt;
    p.vt = vt;
    p.q_stride = size_t(hd + 3);
    p.k_stride = row_bytes(kt, hd) + 10;
    p.v_stride = row_bytes(vt, hd) + 6;
    p.q.resize(size_t(n_q) * p.q_stride);
    for (auto &x : p.q) x = urand(-2.0f, 2.0f);
    p.k.assign(size_t(n_keys) * p.k_stride, 0x55);
    p.v.assign(size_t(n_keys) * p.v_stride, 0x55);
    p.vis.assign(size_t(n_keys), 0);
    const int64_t base = n_keys - n_q; // the block's last query sees every key (prompt continuation)
    for (int64_t j = 0; j < n_keys; j++) {
        for (int32_t i = 0; i < n_q; i++) {
            bool sees = false;
            if (mask == 1) {
                sees = urand(0.0f, 1.0f) < 0.6f;
            } else {
                sees = j <= base + i;
                if (mask == 2 && (j % 7 == 3 || i == n_q - 1)) sees = false;
            }
            if (sees) p.vis[size_t(j)] |= uint32_t(1) << i;
        }
    }
    // rows nobody sees hold NaN: they must never be used as numbers
    for (int64_t j = 0; j < n_keys; j++) {
        const bool nan = p.vis[size_t(j)] == 0;
        fill_row(&p.k[size_t(j) * p.k_stride], kt, hd, 2.0f, nan);
        fill_row(&p.v[size_t(j) * p.v_stride], vt, hd, 3.0f, nan);
    }
    return p;
}

// x rounded to bf16 as VCVTNE2PS2BF16 does (nearest-even), as a double.
double bf16(double x) {
    const uint32_t bits = uint32_t(bf16dp_round_ref(float(x))) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// The definition, in double; with `tiles`, the AMX kernel's operands: q, k and v rounded to bf16 first
// (its weights are too, which the caller's bound covers). Returns [n_q][hd].
std::vector<double> reference(const problem &p, float scale, bool tiles) {
    auto op = [&](double x) { return tiles ? bf16(x) : x; };
    std::vector<double> out(size_t(p.n_q) * p.hd, 0.0);
    std::vector<double> s(size_t(p.n_keys));
    for (int32_t i = 0; i < p.n_q; i++) {
        double mx = -INFINITY;
        for (int64_t j = 0; j < p.n_keys; j++) {
            if (!(p.vis[size_t(j)] >> i & 1)) continue;
            double d = 0;
            for (int64_t e = 0; e < p.hd; e++)
                d += op(p.q[size_t(i) * p.q_stride + e]) * op(elem(&p.k[size_t(j) * p.k_stride], p.kt, e));
            s[size_t(j)] = d * scale;
            mx = std::fmax(mx, s[size_t(j)]);
        }
        if (mx == -INFINITY) continue;
        double sum = 0;
        for (int64_t j = 0; j < p.n_keys; j++)
            if (p.vis[size_t(j)] >> i & 1) sum += std::exp(s[size_t(j)] - mx);
        for (int64_t j = 0; j < p.n_keys; j++) {
            if (!(p.vis[size_t(j)] >> i & 1)) continue;
            const double w = std::exp(s[size_t(j)] - mx) / sum;
            for (int64_t e = 0; e < p.hd; e++)
                out[size_t(i) * p.hd + e] += w * op(elem(&p.v[size_t(j) * p.v_stride], p.vt, e));
        }
    }
    return out;
}

struct aligned_work {
    std::vector<float> buf;
    float *get(int64_t n_keys, int64_t hd) {
        buf.assign(attn_work_floats(n_keys, hd) + 16, NAN); // NaN: the kernel must not read stale scratch
        float *w = buf.data();
        while (reinterpret_cast<uintptr_t>(w) % 64) w++;
        return w;
    }
};

// Run queries [i0, i0 + nq) of p as one block over keys [k0, k1) (K / V rows at k / v if given, else p's).
std::vector<float> run(const kernels &kt, const problem &p, int32_t i0, int32_t nq, int64_t k0, int64_t k1,
                       float scale, const uint8_t *k = nullptr, const uint8_t *v = nullptr) {
    std::vector<uint32_t> vis(size_t(p.n_keys));
    for (int64_t j = 0; j < p.n_keys; j++) {
        const uint32_t bits = p.vis[size_t(j)] >> i0;
        vis[size_t(j)] = nq >= 32 ? bits : bits & ((uint32_t(1) << nq) - 1);
    }
    std::vector<float> out(size_t(nq) * size_t(p.hd + 1), -7.0f);
    aligned_work w;
    attn_block_args a;
    a.hd = p.hd;
    a.n_q = nq;
    a.q = p.q.data() + size_t(i0) * p.q_stride;
    a.q_stride = p.q_stride;
    a.k = k ? k : p.k.data();
    a.v = v ? v : p.v.data();
    a.k_stride = p.k_stride;
    a.v_stride = p.v_stride;
    a.k_type = p.kt;
    a.v_type = p.vt;
    a.k0 = k0;
    a.k1 = k1;
    a.vis = vis.data();
    a.scale = scale;
    a.out = out.data();
    a.out_stride = size_t(p.hd + 1);
    a.work = w.get(p.n_keys, p.hd);
    a.bf16 = kt.path == GPTNEOX_KERNELS_AMX; // (the AMX path's tiles; without it that path is AVX-512's)
    kt.attn_block(a);
    return out;
}

// The tightest [k0, k1) holding every key one of queries [i0, i0 + nq) sees.
void key_range(const problem &p, int32_t i0, int32_t nq, int64_t *k0, int64_t *k1) {
    const uint32_t m = (nq >= 32 ? ~uint32_t(0) : (uint32_t(1) << nq) - 1) << i0;
    *k0 = p.n_keys;
    *k1 = 0;
    for (int64_t j = 0; j < p.n_keys; j++) {
        if (p.vis[size_t(j)] & m) {
            if (*k0 > j) *k0 = j;
            *k1 = j + 1;
        }
    }
    if (*k0 >= *k1) *k0 = *k1 = 0;
}

const char *type_name(uint32_t t) { return t == GPTNEOX_TYPE_Q8_0 ? "q8_0" : "f16"; }

void test_case(const kernels &kt, const char *path, uint32_t ktype, uint32_t vtype, int64_t hd, int32_t n_q,
               int64_t n_keys, int mask) {
    std::snprintf(g_ctx, sizeof(g_ctx), "%s K %s V %s hd %lld n_q %d keys %lld mask %d", path, type_name(ktype),
                  type_name(vtype), (long long)hd, n_q, (long long)n_keys, mask);
    // the AMX path's blocks that go on tiles (attention-amx.cpp); everything else there is the AVX-512 kernel
    const bool tiles = kt.path == GPTNEOX_KERNELS_AMX && n_q >= 2 && ktype == GPTNEOX_TYPE_F16 &&
                       vtype == GPTNEOX_TYPE_F16 && hd % 32 == 0 && hd <= 256;
    const problem p = make(hd, n_q, n_keys, mask, ktype, vtype);
    const float scale = 1.0f / std::sqrt(float(hd));
    const std::vector<double> ref = reference(p, scale, tiles);
    int64_t k0, k1;
    key_range(p, 0, n_q, &k0, &k1);
    const std::vector<float> got = run(kt, p, 0, n_q, k0, k1, scale);
    double worst = 0;
    bool finite = true;
    for (int32_t i = 0; i < n_q; i++) {
        for (int64_t e = 0; e < hd; e++) {
            const double g = got[size_t(i) * (hd + 1) + e], r = ref[size_t(i) * hd + e];
            finite = finite && std::isfinite(g);
            worst = std::fmax(worst, std::fabs(g - r));
        }
        check(got[size_t(i) * (hd + 1) + hd] == -7.0f, "writes only hd floats per query");
    }
    check(finite, "outputs are finite (NaN rows unused)");
    // |v| <= 3: weights off by a relative 1e-6 (score error ~ hd * 2^-24 * |q||k|) move out by ~3e-6; on
    // tiles each weight is also rounded to bf16 (relative 2^-8: 8 significant bits), which moves out by up
    // to 3 * 2^-8
    const double tol = tiles ? 3.0 * std::ldexp(1.0, -8) + 2e-5 : 2e-5;
    check(worst <= tol, "matches the double-precision definition", worst, tol);

    // batch invariance: each query alone (on tiles: with its neighbour, a block of two), with its own tight
    // range, and within sub-blocks with a wider range
    bool same = true;
    for (int32_t i = 0; i < n_q; i++) {
        const int32_t i0 = tiles ? (i + 1 < n_q ? i : i - 1) : i, nq = tiles ? 2 : 1;
        int64_t a0, a1;
        key_range(p, i0, nq, &a0, &a1);
        const std::vector<float> one = run(kt, p, i0, nq, a0, a1, scale);
        same = same && std::memcmp(&one[size_t(i - i0) * (hd + 1)], &got[size_t(i) * (hd + 1)],
                                   size_t(hd) * sizeof(float)) == 0;
    }
    check(same, tiles ? "a query in a block of two == the same query in the block (bit for bit)"
                      : "a query alone == the same query in the block (bit for bit)");
    if (n_q > 2) { // (on tiles at least two queries)
        const int32_t i0 = 1, nq = tiles && n_q == 3 ? 2 : n_q - 2;
        const std::vector<float> sub = run(kt, p, i0, nq, 0, n_keys, scale);
        check(std::memcmp(sub.data(), &got[size_t(i0) * (hd + 1)], size_t(nq) * (hd + 1) * sizeof(float)) == 0,
              "a sub-block over the full key range == the block (bit for bit)");
    }
}

// A copy of a K or V cache that ends (its last row's last element) exactly where an unreadable page
// begins: a kernel that reads past the last row -- e.g. whole groups of 8 / 16 keys past k1 -- faults.
struct guarded_rows {
    void *base = MAP_FAILED;
    size_t len = 0;
    const uint8_t *data = nullptr;
    guarded_rows(const std::vector<uint8_t> &src, size_t bytes) {
        const size_t page = size_t(sysconf(_SC_PAGESIZE));
        const size_t span = (bytes + page - 1) / page * page;
        len = span + page;
        base = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED || mprotect(static_cast<char *>(base) + span, page, PROT_NONE) != 0) return;
        uint8_t *d = static_cast<uint8_t *>(base) + span - bytes;
        std::memcpy(d, src.data(), bytes);
        data = d;
    }
    ~guarded_rows() {
        if (base != MAP_FAILED) munmap(base, len);
    }
    guarded_rows(const guarded_rows &) = delete;
    guarded_rows &operator=(const guarded_rows &) = delete;
};

// The last key (seen by the last query) is the cache's last row: the block and each query alone give the
// same bits as over the unguarded copy, without touching the page after it.
void test_guarded(const kernels &kt, const char *path, uint32_t ktype, uint32_t vtype, int64_t hd, int32_t n_q,
                  int64_t n_keys) {
    std::snprintf(g_ctx, sizeof(g_ctx), "%s guarded K %s V %s hd %lld n_q %d keys %lld", path, type_name(ktype),
                  type_name(vtype), (long long)hd, n_q, (long long)n_keys);
    const problem p = make(hd, n_q, n_keys, 0, ktype, vtype);
    // up to the last row's end
    const guarded_rows gk(p.k, size_t(n_keys - 1) * p.k_stride + row_bytes(ktype, hd));
    const guarded_rows gv(p.v, size_t(n_keys - 1) * p.v_stride + row_bytes(vtype, hd));
    check(gk.data && gv.data, "guard pages mapped");
    if (!gk.data || !gv.data) return;
    const float scale = 1.0f / std::sqrt(float(hd));
    const size_t row = size_t(hd + 1);
    const std::vector<float> gb = run(kt, p, 0, n_q, 0, n_keys, scale, gk.data, gv.data);
    const std::vector<float> ub = run(kt, p, 0, n_q, 0, n_keys, scale);
    check(std::memcmp(gb.data(), ub.data(), gb.size() * sizeof(float)) == 0,
          "a block over a cache that ends at an unreadable page");
    bool same = true;
    for (int32_t i = 0; i < n_q; i++) {
        int64_t a0, a1;
        key_range(p, i, 1, &a0, &a1);
        const std::vector<float> g = run(kt, p, i, 1, a0, a1, scale, gk.data, gv.data);
        const std::vector<float> u = run(kt, p, i, 1, a0, a1, scale);
        same = same && std::memcmp(g.data(), u.data(), row * sizeof(float)) == 0;
    }
    check(same, "each query alone over a cache that ends at an unreadable page");
}

} // namespace

int main() {
    const enum gptneox_kernel_path paths[] = {GPTNEOX_KERNELS_SCALAR, GPTNEOX_KERNELS_AVX2, GPTNEOX_KERNELS_AVX512,
                                              GPTNEOX_KERNELS_AMX};
    const char *names[] = {"scalar", "avx2", "avx512", "amx"};
    for (int pi = 0; pi < 4; pi++) {
        const kernels *kt = get_kernels(paths[pi]);
        if (!kt) {
            std::printf("skip %s: not supported by this CPU/build\n", names[pi]);
            continue;
        }
        if (!kt->attn_block) {
            std::snprintf(g_ctx, sizeof(g_ctx), "%s", names[pi]);
            check(false, "attn_block is set");
            continue;
        }
        constexpr uint32_t F16 = GPTNEOX_TYPE_F16, Q8 = GPTNEOX_TYPE_Q8_0;
        const uint32_t types[4][2] = {{F16, F16}, {Q8, Q8}, {Q8, F16}, {F16, Q8}};
        for (const auto &t : types) {
            const bool q8 = t[0] == Q8 || t[1] == Q8;
            const std::vector<int64_t> hds = q8 ? std::vector<int64_t>{128, 64, 96, 32, 256}
                                                : std::vector<int64_t>{128, 64, 80, 100, 7, 33, 256};
            for (int64_t hd : hds) {
                for (int32_t n_q : {1, 3, 5, 17, 32}) {
                    for (int64_t n_keys : {int64_t(n_q), int64_t(n_q) + 13, int64_t(n_q) + 50, int64_t(n_q) + 201}) {
                        for (int mask = 0; mask < 3; mask++) test_case(*kt, names[pi], t[0], t[1], hd, n_q, n_keys, mask);
                    }
                }
            }
            for (int64_t hd : q8 ? std::vector<int64_t>{128, 64, 96} : std::vector<int64_t>{128, 64, 100, 7, 33})
                for (int32_t n_q : {1, 5, 32})
                    for (int64_t n_keys : {int64_t(n_q), int64_t(n_q) + 13, int64_t(n_q) + 202})
                        test_guarded(*kt, names[pi], t[0], t[1], hd, n_q, n_keys);
        }
    }
    return report("attention_test: ");
}
