// Micro-benchmark (not a test): one head's blocked attention (kernels.attn_block) on f16 or q8_0 K/V rows,
// single thread, best-of-N wall time of one call (the least disturbed by other load on a shared VM).
// The block's queries are the last n_q positions of a causal prompt of n_keys tokens (n_q = 1: one decode
// step after n_keys - 1 cached tokens); K and V are hot in the caches, so this is the kernel's compute
// alone. Calls allow bf16 operands (attn_block_args::bf16, as for a Q8_0 / Q4_0 / BF16 model: the AMX
// path's tiles for n_q >= 2). Prints microseconds per call (best, and the mean) and GFLOP/s (4 * hd flops
// per visible query-key pair). Random K, V, q; the scale is 1/8 whatever hd (it does not change the work). With a sixth argument H > 0 (cold): H heads'
// K and V (2 MiB-aligned, on huge pages where the kernel grants them), one call per head in turn, so the
// rows come from memory as in a decode step at a long context; prints the best round's GB/s of K/V read
// (compare side by side in one run: this VM's bandwidth moves within minutes).
// Usage: attention_bench [hd] [n_keys] [n_q] [kernel path: 0 auto, 1 scalar, 2 avx2, 3 avx512, 4 amx] [calls] [H]
//        [cache type: 1 f16, 8 q8_0 (hd % 32 == 0)]
// (defaults 64 512 32 0 3000 0 1; e.g. a rinna-3.6B decode step after 1907 tokens: 128 1908 1 0 5 200).
// Build (after `make`, which compiles the objects):
//   g++ -std=c++17 -O2 -Iinclude -Isrc -pthread bench/attention_bench.cpp $(find build/release/src -name '*.o' ! -name '*_test.o') -o build/attention_bench
#include <sys/mman.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/kernels.h"

using namespace gptneox;

int main(int argc, char **argv) {
    const int64_t hd = argc > 1 ? std::atoll(argv[1]) : 64, n = argc > 2 ? std::atoll(argv[2]) : 512;
    const int nq = argc > 3 ? std::atoi(argv[3]) : 32;
    const auto path = static_cast<enum gptneox_kernel_path>(argc > 4 ? std::atoi(argv[4]) : 0);
    const int calls = argc > 5 ? std::atoi(argv[5]) : 3000;
    const int heads = argc > 6 ? std::atoi(argv[6]) : 0;
    const uint32_t type = argc > 7 ? uint32_t(std::atoi(argv[7])) : uint32_t(GPTNEOX_TYPE_F16);
    if (hd < 1 || n < 1 || nq < 1 || nq > kAttnMaxQ || nq > n || calls < 1 || heads < 0 ||
        (type != GPTNEOX_TYPE_F16 && type != GPTNEOX_TYPE_Q8_0) || !attn_row_type_ok(type, hd)) {
        std::fprintf(stderr, "bad arguments (hd >= 1, 1 <= n_q <= min(%d, n_keys), calls >= 1, H >= 0, type 1 or 8 "
                     "with hd %% 32 == 0)\n", kAttnMaxQ);
        return 1;
    }
    const kernels *k = get_kernels(path);
    if (!k) {
        std::fprintf(stderr, "kernel path %d is not available on this CPU\n", int(path));
        return 1;
    }
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> q(size_t(nq * hd)), out(size_t(nq * hd));
    const size_t row = type == GPTNEOX_TYPE_Q8_0 ? size_t(hd / 32) * sizeof(block_q8_0) : size_t(hd) * 2;
    std::vector<uint8_t> K(size_t(n) * row), V(size_t(n) * row);
    for (float &x : q) x = u(rng);
    std::vector<float> r(static_cast<size_t>(hd));
    for (std::vector<uint8_t> *kv : {&K, &V}) {
        for (int64_t j = 0; j < n; j++) {
            for (float &x : r) x = u(rng);
            k->traits[type].from_float(r.data(), kv->data() + size_t(j) * row, hd);
        }
    }
    std::vector<uint32_t> vis(size_t(n), 0); // query i (position n - nq + i) sees keys 0..n - nq + i
    for (int64_t j = 0; j < n; j++)
        for (int i = 0; i < nq; i++)
            if (j <= n - nq + i) vis[size_t(j)] |= uint32_t(1) << i;
    std::vector<float> work(attn_work_floats(n, hd) + 16);
    attn_block_args a;
    a.hd = hd, a.n_q = nq, a.q = q.data(), a.q_stride = size_t(hd);
    a.k = K.data(), a.v = V.data(), a.k_stride = a.v_stride = row, a.k_type = a.v_type = type;
    a.k0 = 0, a.k1 = n, a.vis = vis.data(), a.scale = 1.0f / 8.0f;
    a.out = out.data(), a.out_stride = size_t(hd);
    a.work = reinterpret_cast<float *>((reinterpret_cast<uintptr_t>(work.data()) + 63) & ~uintptr_t(63));
    a.bf16 = true; // (the AMX path's tiles, as for a Q8_0 / Q4_0 / BF16 model; other paths ignore it)
    double best = 1e30, total = 0;
    for (int r = 0; r < calls; r++) {
        const auto t0 = std::chrono::steady_clock::now();
        k->attn_block(a);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = dt < best ? dt : best;
        total += dt;
    }
    const double pairs = double(n) * nq - double(nq) * (nq - 1) / 2;
    std::printf("%-7s %s hd %4lld keys %5lld queries %2d: best %8.1f us (mean %.1f) %7.1f GFLOP/s (out[0] %.6g)\n",
                gptneox_kernel_path_name(k->path), type == GPTNEOX_TYPE_Q8_0 ? "q8_0" : "f16", (long long)hd, (long long)n, nq, best * 1e6,
                total / calls * 1e6, 4.0 * hd * pairs / best / 1e9, double(out[0]));
    if (heads == 0) return 0;

    // cold: every head's K then V, one call each per round
    const size_t head_bytes = size_t(n) * row, bytes = (size_t(heads) * head_bytes + (2u << 20) - 1) & ~size_t((2u << 20) - 1);
    uint8_t *Kc = static_cast<uint8_t *>(std::aligned_alloc(2u << 20, bytes));
    uint8_t *Vc = static_cast<uint8_t *>(std::aligned_alloc(2u << 20, bytes));
    if (!Kc || !Vc) {
        std::fprintf(stderr, "out of memory for %d heads\n", heads);
        return 1;
    }
    madvise(Kc, bytes, MADV_HUGEPAGE);
    madvise(Vc, bytes, MADV_HUGEPAGE);
    for (int h = 0; h < heads; h++) {
        std::memcpy(Kc + size_t(h) * head_bytes, K.data(), head_bytes);
        std::memcpy(Vc + size_t(h) * head_bytes, V.data(), head_bytes);
    }
    best = 1e30;
    for (int r = 0; r < calls; r++) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int h = 0; h < heads; h++) {
            a.k = Kc + size_t(h) * head_bytes, a.v = Vc + size_t(h) * head_bytes;
            k->attn_block(a);
        }
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = dt < best ? dt : best;
    }
    std::printf("%-7s cold, %d heads (%.0f MB of K/V): best round %.2f ms, %.1f GB/s\n", gptneox_kernel_path_name(k->path),
                heads, 2.0 * heads * head_bytes / 1e6, best * 1e3, 2.0 * heads * head_bytes / best / 1e9);
    std::free(Kc);
    std::free(Vc);
    return 0;
}
