// Micro-benchmark (not a test): what a decode step's many short matrix calls cost against one long call
// over the same bytes. "layers": a model's decode-step matrices in order (per layer QKV, attention output,
// MLP up, MLP down; single token, the weights repacked as the loader does), each a separate matmul call as
// in the forward pass; "one call": a single weight of the same type and total size (its rows stacked,
// n_embd wide). Both far larger than the caches, so both stream from memory; prints GB/s of weights read
// (best and median of the repetitions) and the calls' share of the one-call rate.
// Usage: decode_calls_bench [n_embd] [n_layer] [type q4_0|q8_0] [kernel path: 0 auto, 2 avx2, 3 avx512]
// [repetitions] [threads] (defaults 1024 24 q4_0 0 40 2: the pythia-410m shape). Build (after `make`):
//   g++ -std=c++17 -O2 -Iinclude -Isrc -pthread bench/decode_calls_bench.cpp $(find build/release/src -name '*.o' ! -name '*_test.o') -o build/decode_calls_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "loader/model.h"
#include "threads/thread-pool.h"

using namespace gptneox;

namespace {

// One matrix: quantized rows, and the packed copy the path's kernels read (if the path repacks the type).
struct matrix {
    std::vector<uint8_t> q, packed;
    weight w;
};

void make_matrix(matrix &m, const kernels &k, uint32_t type, int64_t ne0, int64_t ne1, std::mt19937 &rng) {
    const type_traits &tr = k.traits[type];
    const size_t row_bytes = size_t(ne0 / tr.blck) * tr.type_size;
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> row(static_cast<size_t>(ne0));
    m.q.resize(row_bytes * size_t(ne1));
    for (int64_t r = 0; r < ne1; r++) {
        for (float &v : row) v = u(rng);
        tr.from_float(row.data(), m.q.data() + size_t(r) * row_bytes, ne0);
    }
    m.w = weight::rows(type, ne0, ne1, row_bytes, m.q.data(), "bench");
    if (!tr.repack || ne1 % 16 != 0) return;
    const size_t gb = tr.packed_group_bytes(ne0);
    m.packed.resize(gb * size_t(ne1 / 16) + 64);
    uint8_t *dst = m.packed.data() + (64 - reinterpret_cast<uintptr_t>(m.packed.data()) % 64) % 64;
    tr.repack(ne0, m.q.data(), row_bytes, ne1, dst);
    m.w.packed = dst; // (the rows stay: matmul checks them; the kernels read only the packed copy)
    m.w.packed_layout = tr.packed_layout;
    m.w.packed_group_bytes = gb;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

} // namespace

int main(int argc, char **argv) {
    const int64_t n = argc > 1 ? std::atoll(argv[1]) : 1024, n_layer = argc > 2 ? std::atoll(argv[2]) : 24;
    const bool q8 = argc > 3 && std::strcmp(argv[3], "q8_0") == 0;
    const auto path = static_cast<enum gptneox_kernel_path>(argc > 4 ? std::atoi(argv[4]) : 0);
    const int reps = argc > 5 ? std::atoi(argv[5]) : 40, nth = argc > 6 ? std::atoi(argv[6]) : 2;
    const uint32_t type = q8 ? GPTNEOX_TYPE_Q8_0 : GPTNEOX_TYPE_Q4_0;
    const kernels *k = get_kernels(path);
    if (!k || n % 32 != 0 || n < 32 || n_layer < 1 || reps < 1 || nth < 1) {
        std::fprintf(stderr, "bad arguments or kernel path not available\n");
        return 1;
    }
    std::mt19937 rng(1);
    // per layer: QKV (n -> 3n), attention output (n -> n), up (n -> 4n), down (4n -> n)
    const int64_t shapes[4][2] = {{n, 3 * n}, {n, n}, {n, 4 * n}, {4 * n, n}};
    std::vector<matrix> layers(size_t(4 * n_layer));
    size_t bytes = 0;
    for (int64_t l = 0; l < n_layer; l++)
        for (int s = 0; s < 4; s++) {
            matrix &m = layers[size_t(4 * l + s)];
            make_matrix(m, *k, type, shapes[s][0], shapes[s][1], rng);
            bytes += size_t(m.w.ne1) * (m.w.packed ? m.w.packed_group_bytes / 16 : m.w.row_bytes);
        }
    // the same bytes in one weight n wide: 12 n rows per layer (3n + n + 4n + 4 * n rows of the down's n)
    matrix one;
    make_matrix(one, *k, type, n, 12 * n * n_layer, rng);
    thread_pool pool(nth);
    std::vector<uint8_t> scratch;
    std::vector<float> x(size_t(4 * n), 0.5f), y(size_t(12 * n * n_layer));
    std::vector<double> t_layers, t_one;
    for (int r = 0; r < reps + 1; r++) { // the first round warms up
        auto t = std::chrono::steady_clock::now();
        for (const matrix &m : layers)
            matmul(*k, pool, nth, m.w, nullptr, x.data(), 1, m.w.ne0, y.data(), m.w.ne1, scratch);
        const double a = seconds_since(t);
        t = std::chrono::steady_clock::now();
        matmul(*k, pool, nth, one.w, nullptr, x.data(), 1, one.w.ne0, y.data(), one.w.ne1, scratch);
        const double b = seconds_since(t);
        if (r > 0) t_layers.push_back(a), t_one.push_back(b);
    }
    auto report = [&](const char *what, std::vector<double> &t, int calls) {
        std::sort(t.begin(), t.end());
        std::printf("%-9s %4d calls  %7.1f MB  best %6.2f GB/s  median %6.2f GB/s  (%.1f us per call)\n", what, calls,
                    bytes / 1e6, bytes / t.front() / 1e9, bytes / t[t.size() / 2] / 1e9, t[t.size() / 2] / calls * 1e6);
        return bytes / t[t.size() / 2];
    };
    std::printf("%s, %s, n_embd %lld, %lld layers, 1 token, %d threads, %d rounds\n",
                gptneox_kernel_path_name(k->path), q8 ? "q8_0" : "q4_0", (long long)n, (long long)n_layer, nth, reps);
    const double a = report("layers", t_layers, int(layers.size()));
    const double b = report("one call", t_one, 1);
    std::printf("layers / one call (medians): %.2f\n", a / b);
    return 0;
}
