// Micro-benchmark (not a test): matmul throughput for a 2816 x 11264 weight (ne0 = 2816 inputs,
// ne1 = 11264 outputs, an MLP up-projection shape) in Q8_0 and Q4_0, per kernel path,
// n_tokens 1 and 64, 1 and 2 threads. Prints GB/s of weight bytes read (and GFLOP/s) by wall clock,
// and by the calling thread's CPU time (cpu GB/s: for 1 thread, what the kernels reach when the
// machine is shared with other work), and by the fastest single call (best GB/s: the least disturbed
// by other load; usage: kernels_bench [seconds per case]).
// Build (after `make`, which compiles the objects):
//   g++ -std=c++17 -O2 -Iinclude -Isrc -pthread bench/kernels_bench.cpp $(find build/release/src -name '*.o') -o build/kernels_bench
//   build/kernels_bench
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <cstdio>
#include <random>
#include <vector>

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

int main(int argc, char **argv) {
    const int64_t ne0 = 2816, ne1 = 11264;
    double min_seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
    const kernels *ref = get_kernels(GPTNEOX_KERNELS_SCALAR);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> wf(ne0 * ne1);
    for (auto &v : wf) v = u(rng);
    std::vector<float> x(64 * ne0), y(64 * ne1);
    for (auto &v : x) v = u(rng);
    std::printf("cpu: %s\n", detect_cpu().brand);
    std::printf("%-8s %-6s %7s %7s %10s %10s %10s %10s %10s\n", "path", "type", "tokens", "threads", "ms/call", "GB/s",
                "GFLOP/s", "cpu GB/s", "best GB/s");
    thread_pool pool(2);
    std::vector<uint8_t> scratch;
    for (uint32_t type : {static_cast<uint32_t>(GPTNEOX_TYPE_Q8_0), static_cast<uint32_t>(GPTNEOX_TYPE_Q4_0)}) {
        const type_traits &tr = ref->traits[type];
        size_t row_bytes = ne0 / tr.blck * tr.type_size;
        std::vector<uint8_t> wq(row_bytes * ne1);
        for (int64_t r = 0; r < ne1; r++) tr.from_float(wf.data() + r * ne0, wq.data() + r * row_bytes, ne0);
        weight W;
        W.type = type;
        W.ne0 = ne0;
        W.ne1 = ne1;
        W.row_bytes = row_bytes;
        W.data = wq.data();
        W.name = "bench";
        for (auto path : {GPTNEOX_KERNELS_SCALAR, GPTNEOX_KERNELS_AVX2, GPTNEOX_KERNELS_AVX512}) {
            const kernels *k = get_kernels(path);
            const char *pname = path == GPTNEOX_KERNELS_SCALAR ? "scalar" : path == GPTNEOX_KERNELS_AVX2 ? "avx2" : "avx512";
            if (!k) {
                std::printf("%-8s (not supported on this CPU)\n", pname);
                continue;
            }
            for (int64_t nt : {int64_t(1), int64_t(64)}) {
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
                                type == GPTNEOX_TYPE_Q8_0 ? "q8_0" : "q4_0", static_cast<long long>(nt), nth, per * 1e3,
                                wq.size() / per / 1e9, 2.0 * ne0 * ne1 * nt / per / 1e9, wq.size() / cpu_per / 1e9,
                                wq.size() / best / 1e9);
                }
            }
        }
    }
    return 0;
}
