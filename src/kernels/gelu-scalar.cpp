// The reference exact GELU, 0.5 x (1 + erf(x / sqrt 2)) in f32 with the C library's erf, and that erf
// (the SIMD versions in gelu-avx2.cpp / gelu-avx512.cpp are tested against them in gelu_test.cpp).
#include <cmath>

#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

void gelu(float *y, int64_t n) {
    const float r2 = 0.70710678118654752440f; // 1/sqrt(2)
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * y[i] * (1.0f + std::erf(y[i] * r2));
}

void erf_f32(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = std::erf(x[i]);
}

} // namespace

void fill_gelu_scalar(kernels &k) {
    k.gelu = gelu;
    k.erf_f32 = erf_f32;
}

} // namespace gptneox
