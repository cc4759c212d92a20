// The pass/fail tally of the C++ unit tests (*_test.cpp, run by `make ctest`): check() counts a result
// and prints the first failures with the current context (g_ctx, set by the test), report() prints
// "N passed, M failed" and gives the exit code. Test code only.
#pragma once

#include <cstdio>

namespace gptneox_test {

inline int g_pass = 0, g_fail = 0;
inline char g_ctx[160] = "";
constexpr int kMaxPrinted = 40;

inline void check(bool ok, const char *what, double a = 0, double b = 0) {
    if (ok) {
        g_pass++;
        return;
    }
    g_fail++;
    if (g_fail <= kMaxPrinted) std::printf("FAIL [%s] %s (%.9g, %.9g)\n", g_ctx, what, a, b);
}

// prefix: e.g. "attention_test: " (may be "").
inline int report(const char *prefix = "") {
    std::printf("%s%d passed, %d failed\n", prefix, g_pass, g_fail);
    return g_fail ? 1 : 0;
}

} // namespace gptneox_test
