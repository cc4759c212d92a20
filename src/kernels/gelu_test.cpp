// kernels.erf_f32 / kernels.gelu on every path this CPU runs. erf against std::erf in double on a dense
// sweep of floats: every float in [0.25, 4.1] whose bit pattern is a multiple of 7, every 499th elsewhere
// up to 12 (subnormals included), negated too, plus zeros, infinities and NaN; the SIMD erf must stay
// within 0.5 ulp + 1e-3 (erf-coefs.h: correctly rounded except within ~1e-4 ulp of a midpoint) and the
// C library's within 1 ulp. GELU against its f32 formula with that
// correctly rounded erf, within the error 1 ulp of erf can cause (the SIMD GELUs evaluate their own f32
// erf, gelu-coefs.h, so this bound is what holds them). Prints "N passed, M failed".
// GELU_TEST_EXHAUSTIVE=1 checks erf on every float in [-6, 6] instead, and GELU on every float in [-9, 9]
// (minutes).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"

using namespace gptneox;

namespace {

int g_pass = 0, g_fail = 0;

void check(bool ok, const char *path, const char *what, double a = 0, double b = 0) {
    if (ok) {
        g_pass++;
        return;
    }
    g_fail++;
    if (g_fail <= 30) std::printf("FAIL [%s] %s (%.9g, %.9g)\n", path, what, a, b);
}

float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// |a - b| in units of the f32 spacing at b (b exact, from double).
double ulps(float a, double b) {
    if (a == b) return 0;
    const double spacing = std::ldexp(1.0, std::ilogb(std::fmax(std::fabs(b), std::ldexp(1.0, -126))) - 23);
    return std::fabs(double(a) - b) / spacing;
}

// The sweep's inputs in order, a chunk at a time (the exhaustive sweep is ~2e9 floats).
struct sweep {
    bool exhaustive = false;
    uint32_t u = 0; // next bit pattern
    bool specials_done = false;
    // Fills x (up to cap values); returns false when the sweep is over.
    bool next(std::vector<float> &x, size_t cap) {
        x.clear();
        const uint32_t top = exhaustive ? 0x40C00000u : 0x41400000u; // 6 or 12
        while (x.size() + 2 <= cap && u <= top) {
            const float f = from_bits(u);
            const bool dense = f >= 0.25f && f <= 4.1f;
            if (exhaustive || (dense ? u % 7 == 0 : u % 499 == 0)) {
                x.push_back(f);
                x.push_back(-f);
            }
            u++;
        }
        if (u > top && !specials_done && x.size() + 9 <= cap) {
            for (float v : {0.0f, -0.0f, 1e-45f, -1e-45f, 1e-40f, INFINITY, -INFINITY, 1e30f, -1e30f}) x.push_back(v);
            specials_done = true;
        }
        return !x.empty();
    }
};

void test_path(const kernels &kt, const char *path, bool simd, bool exhaustive) {
    if (!kt.erf_f32 || !kt.gelu) {
        check(false, path, "erf_f32 and gelu are set");
        return;
    }
    double worst = 0, worst_x = 0;
    size_t count = 0;
    sweep sw;
    sw.exhaustive = exhaustive;
    std::vector<float> x, y;
    while (sw.next(x, size_t(1) << 20)) {
        y.resize(x.size());
        kt.erf_f32(x.data(), y.data(), int64_t(x.size()));
        for (size_t i = 0; i < x.size(); i++) {
            const double u = ulps(y[i], std::erf(double(x[i])));
            if (u > worst) {
                worst = u;
                worst_x = x[i];
            }
        }
        count += x.size();
    }
    std::printf("%s erf: %zu inputs, max error %.3f ulp (at %.9g)\n", path, count, worst, worst_x);
    check(worst <= (simd ? 0.501 : 1.0), path, "erf within the ulp bound", worst, worst_x);
    // GELU on every 5th input of the (non-exhaustive) sweep, both signs, plus the special values
    sweep gs;
    std::vector<float> chunk;
    x.clear();
    size_t seen = 0;
    while (gs.next(chunk, size_t(1) << 20)) {
        for (size_t i = 0; i + 1 < chunk.size(); i += 2, seen++) {
            if (seen % 5) continue;
            x.push_back(chunk[i]);
            x.push_back(chunk[i + 1]);
        }
    }
    for (float v : {0.0f, -0.0f, 1e-45f, -1e-45f, 1e-40f, INFINITY, -INFINITY, 1e30f, -1e30f, 5.5f, -5.5f, 9.0f})
        x.push_back(v);
    y.resize(x.size());
    kt.erf_f32(x.data(), y.data(), int64_t(x.size()));
    const float nan_in = NAN;
    float nan_out = 0;
    kt.erf_f32(&nan_in, &nan_out, 1);
    check(std::isnan(nan_out), path, "erf(NaN) is NaN");
    check(std::signbit(y[1]) && y[1] == 0.0f && x[1] == 0.0f, path, "erf(-0) = -0");

    // GELU over the same inputs (odd count: a tail), against the f32 formula with the rounded exact erf
    std::vector<float> g(x.begin(), x.end() - 1);
    kt.gelu(g.data(), int64_t(g.size()));
    double gworst = 0;
    bool specials = true;
    for (size_t i = 0; i < g.size(); i++) {
        const float xi = x[i];
        const float e = float(std::erf(double(xi) * 0.70710678118654752440));
        const float want = 0.5f * xi * (1.0f + e);
        if (!std::isfinite(want) || !std::isfinite(g[i])) {
            specials = specials && (std::isnan(want) ? std::isnan(g[i]) : g[i] == want);
            continue;
        }
        // erf off by 1 ulp (<= 2^-24 for |erf| <= 1... 2^-23 near 1) moves the result by 0.5|x| 2^-23,
        // plus the two f32 roundings of the formula
        const double tol = 0.5 * std::fabs(xi) * std::ldexp(1.0, -23) * 1.01 + std::fabs(want) * std::ldexp(1.0, -23);
        const double d = std::fabs(double(g[i]) - want);
        if (d > tol) {
            check(false, path, "gelu within 1 erf-ulp of the formula", xi, g[i]);
            gworst = std::fmax(gworst, d);
        }
    }
    check(specials, path, "gelu on infinities / NaN as the formula");
    check(gworst == 0, path, "gelu bound", gworst);
    float tail[3] = {1.0f, -1.0f, 2.0f}, tail_want[3] = {1.0f, -1.0f, 2.0f};
    kt.gelu(tail, 2); // only two written
    check(tail[2] == tail_want[2], path, "gelu writes n values only");
    const float tanh_1 = 0.5f * (1.0f + std::tanh(0.7978845608f * (1.0f + 0.044715f)));
    check(std::fabs(tail[0] - 0.8413447460685429f) < 1e-6 && std::fabs(tail[0] - tanh_1) > 1e-5, path,
          "gelu(1) is the erf form, not the tanh one", tail[0], tanh_1);
    if (!exhaustive) return;
    // every float in [-9, 9] (beyond, erf is +-1 in f32 either way)
    double worst_ratio = 0, worst_at = 0;
    size_t over = 0, n_all = 0;
    for (uint32_t sgn = 0; sgn < 2; sgn++) {
        for (uint32_t u = 0; u <= 0x41100000u;) {
            x.clear();
            for (; u <= 0x41100000u && x.size() < (size_t(1) << 22); u++) x.push_back(from_bits(u | (sgn << 31)));
            std::vector<float> gv(x);
            kt.gelu(gv.data(), int64_t(gv.size()));
            for (size_t i = 0; i < x.size(); i++, n_all++) {
                const float xi = x[i];
                const float want = 0.5f * xi * (1.0f + float(std::erf(double(xi) * 0.70710678118654752440)));
                const double tol =
                    0.5 * std::fabs(xi) * std::ldexp(1.0, -23) * 1.01 + std::fabs(want) * std::ldexp(1.0, -23);
                const double d = std::fabs(double(gv[i]) - want);
                if (d > tol) over++;
                if (tol > 0 && d / tol > worst_ratio) {
                    worst_ratio = d / tol;
                    worst_at = xi;
                }
            }
        }
    }
    std::printf("%s gelu: %zu inputs, worst error %.3f of the bound (at %.9g)\n", path, n_all, worst_ratio, worst_at);
    check(over == 0, path, "gelu within 1 erf-ulp of the formula on every float in [-9, 9]", double(over));
}

} // namespace

int main() {
    const bool exhaustive = std::getenv("GELU_TEST_EXHAUSTIVE") != nullptr;
    const enum gptneox_kernel_path paths[] = {GPTNEOX_KERNELS_SCALAR, GPTNEOX_KERNELS_AVX2, GPTNEOX_KERNELS_AVX512};
    const char *names[] = {"scalar", "avx2", "avx512"};
    for (int pi = 0; pi < 3; pi++) {
        const kernels *kt = get_kernels(paths[pi]);
        if (!kt) {
            std::printf("skip %s: not supported by this CPU/build\n", names[pi]);
            continue;
        }
        test_path(*kt, names[pi], pi > 0, exhaustive);
    }
    std::printf("gelu_test: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
