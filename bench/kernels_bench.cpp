// Micro-benchmark (not a test): matmul throughput for a 2816 x 11264 weight by default (ne0 = 2816 inputs,
// ne1 = 11264 outputs, an MLP up-projection shape) in Q8_0, Q4_0, F16 and BF16, per kernel path,
// n_tokens 1 and 64, 1 and 2 threads. Prints GB/s of weight bytes read (and GFLOP/s) by wall clock,
// and by the calling thread's CPU time (cpu GB/s: for 1 thread, what the kernels reach when the
// machine is shared with other work), and by the fastest single call (best GB/s: the least disturbed
// by other load). Usage: kernels_bench [seconds per case] [token counts, e.g. 1,8,64] [paths, e.g.
// avx512,avx2,scalar,avx2p,avx512p,amxp] [types, e.g. q4_0,q8_0,f16,bf16] [output rows] [inputs] (defaults: 1.0
// 1,64 scalar,avx2,avx512,avx2p,avx512p,amxp q8_0,q4_0 11264). avx2p / avx512p / amxp: that path on the
// weights repacked at load (use_extra_bufts; amxp: the AMX path, tiles for Q8_0 / Q4_0 batches of 16+
// tokens and for BF16 weights, on CPUs that have AMX). Few rows (e.g. 256: the weights stay in L2) measure the kernels' compute alone.
// A CPU with a large L3 keeps a single matrix there between calls (the Xeon: 480 MiB, rinna's 34 MB): to
// read the weights from memory as the model does, give more rows than L3 holds (e.g. 180224 x 2816).
// Build (after `make`, which compiles the objects):
//   g++ -std=c++17 -O2 -Iinclude -Isrc -pthread bench/kernels_bench.cpp $(find build/release/src -name '*.o' ! -name '*_test.o') -o build/kernels_bench
//   build/kernels_bench
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/aligned-vector.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "loader/model.h"
#include "threads/thread-pool.h"

using namespace gptneox;

static double thread_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Comma-separated list in `arg` contains `name`.
static bool listed(const char *arg, const char *name) {
    const std::string a = std::string(",") + arg + ",", n = std::string(",") + name + ",";
    return a.find(n) != std::string::npos;
}

int main(int argc, char **argv) {
    const int64_t ne1 = argc > 5 ? std::atoll(argv[5]) : 11264, ne0 = argc > 6 ? std::atoll(argv[6]) : 2816;
    double min_seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
    std::vector<int64_t> token_counts;
    for (const char *p = argc > 2 ? argv[2] : "1,64"; *p;) {
        token_counts.push_back(std::atoll(p));
        const char *c = std::strchr(p, ',');
        if (!c) break;
        p = c + 1;
    }
    const char *paths = argc > 3 ? argv[3] : "scalar,avx2,avx512,avx2p,avx512p,amxp";
    const char *types = argc > 4 ? argv[4] : "q8_0,q4_0";
    const kernels *ref = get_kernels(GPTNEOX_KERNELS_SCALAR);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> wf(ne0 * ne1);
    for (auto &v : wf) v = u(rng);
    int64_t max_tokens = 1;
    for (int64_t t : token_counts) max_tokens = t > max_tokens ? t : max_tokens;
    // 64-byte aligned, as the forward pass's activation buffers are
    aligned_vector<float> x(max_tokens * ne0), y(max_tokens * ne1);
    for (auto &v : x) v = u(rng);
    std::printf("cpu: %s\n", detect_cpu().brand);
    std::printf("%-8s %-6s %7s %7s %10s %10s %10s %10s %10s\n", "path", "type", "tokens", "threads", "ms/call", "GB/s",
                "GFLOP/s", "cpu GB/s", "best GB/s");
    thread_pool pool(2);
    std::vector<uint8_t> scratch;
    auto type_name = [](uint32_t t) {
        return t == GPTNEOX_TYPE_Q8_0 ? "q8_0" : t == GPTNEOX_TYPE_Q4_0 ? "q4_0" : t == GPTNEOX_TYPE_F16 ? "f16" : "bf16";
    };
    for (uint32_t type : {uint32_t(GPTNEOX_TYPE_Q8_0), uint32_t(GPTNEOX_TYPE_Q4_0), uint32_t(GPTNEOX_TYPE_F16),
                          uint32_t(GPTNEOX_TYPE_BF16)}) {
        if (!listed(types, type_name(type))) continue;
        const type_traits &tr = ref->traits[type];
        size_t row_bytes = ne0 / tr.blck * tr.type_size;
        std::vector<uint8_t> wq(row_bytes * ne1);
        for (int64_t r = 0; r < ne1; r++) tr.from_float(wf.data() + r * ne0, wq.data() + r * row_bytes, ne0);
        const weight Wq = weight::rows(type, ne0, ne1, row_bytes, wq.data(), "bench");
        for (int p = 0; p < 6; p++) {
            const bool use_packed = p >= 3;
            const enum gptneox_kernel_path path = p == 0 ? GPTNEOX_KERNELS_SCALAR
                                                  : p == 1 || p == 3 ? GPTNEOX_KERNELS_AVX2
                                                  : p == 5           ? GPTNEOX_KERNELS_AMX
                                                                     : GPTNEOX_KERNELS_AVX512;
            const char *names[] = {"scalar", "avx2", "avx512", "avx2p", "avx512p", "amxp"};
            const char *pname = names[p];
            if (!listed(paths, pname)) continue;
            const kernels *k = get_kernels(path);
            if (!k) {
                std::printf("%-8s (not supported on this CPU)\n", pname);
                continue;
            }
            weight W = Wq;
            std::vector<uint8_t> packed;
            if (use_packed) { // the loader's repack (repack.cpp)
                const type_traits &kt = k->traits[type];
                if (!kt.repack) {
                    std::printf("%-8s %-6s (no packed layout)\n", pname, type_name(type));
                    continue;
                }
                const size_t gb = kt.packed_group_bytes(ne0);
                packed.resize(gb * size_t(ne1 / 16) + 64);
                uint8_t *dst = packed.data() + (64 - reinterpret_cast<uintptr_t>(packed.data()) % 64) % 64;
                kt.repack(ne0, wq.data(), row_bytes, ne1, dst);
                W.packed = dst;
                W.packed_layout = kt.packed_layout;
                W.packed_group_bytes = gb;
            }
            for (int64_t nt : token_counts) {
                for (int nth : {1, 2}) {
                    matmul(*k, pool, nth, W, nullptr, x.data(), nt, ne0, y.data(), ne1, scratch); // warm-up
                    int iters = 0;
                    auto t0 = std::chrono::steady_clock::now();
                    double c0 = thread_cpu_seconds();
                    double el = 0, best = 1e30;
                    do {
                        auto c = std::chrono::steady_clock::now();
                        matmul(*k, pool, nth, W, nullptr, x.data(), nt, ne0, y.data(), ne1, scratch);
                        auto e = std::chrono::steady_clock::now();
                        iters++;
                        const double one = std::chrono::duration<double>(e - c).count();
                        best = one < best ? one : best;
                        el = std::chrono::duration<double>(e - t0).count();
                    } while (el < min_seconds);
                    double per = el / iters, cpu_per = (thread_cpu_seconds() - c0) / iters;
                    std::printf("%-8s %-6s %7lld %7d %10.3f %10.2f %10.2f %10.2f %10.2f\n", pname,
                                type_name(type), static_cast<long long>(nt), nth, per * 1e3,
                                wq.size() / per / 1e9, 2.0 * ne0 * ne1 * nt / per / 1e9, wq.size() / cpu_per / 1e9,
                                wq.size() / best / 1e9);
                }
            }
        }
    }
    return 0;
}
