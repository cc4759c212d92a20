// Scalar reference of gemm-bf16dp-avx512.cpp (used by gemm_bf16dp_test.cpp): the instructions'
// documented arithmetic (Intel SDM, VCVTNEPS2BF16 and VDPBF16PS), element by element.
#include <cmath>
#include <initializer_list>

#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

// bf16 -> f32 with denormals read as (signed) zero
float daz(uint16_t h) {
    const uint32_t u = uint32_t(h) << 16;
    return (u & 0x7F800000u) ? bits_f32(u) : bits_f32(u & 0x80000000u);
}
// a denormal result becomes a zero of its sign
float ftz(float f) { return (f32_bits(f) & 0x7F800000u) ? f : bits_f32(f32_bits(f) & 0x80000000u); }

} // namespace

uint16_t bf16dp_round_ref(float f) {
    const uint32_t u = f32_bits(f);
    if (std::isnan(f)) return static_cast<uint16_t>((u >> 16) | 0x0040u); // quiet NaN
    if (!(u & 0x7F800000u)) return static_cast<uint16_t>((u >> 16) & 0x8000u); // zero, denormal
    if ((u & 0x7F800000u) == 0x7F800000u) return static_cast<uint16_t>(u >> 16); // infinity
    return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

float bf16dp_dot_ref(int64_t n, const uint16_t *w, const uint16_t *a) {
    float acc[16] = {0};
    for (int64_t j = 0; j < n; j += 32) {
        for (int l = 0; l < 16; l++) {
            for (int e : {2 * l + 1, 2 * l}) { // the odd element of the pair first
                const int64_t i = j + e;
                const uint16_t wi = i < n ? w[i] : 0, ai = i < n ? a[i] : 0;
                acc[l] = ftz(std::fma(daz(wi), daz(ai), acc[l]));
            }
        }
    }
    float s8[8], s4[4];
    for (int i = 0; i < 8; i++) s8[i] = acc[i] + acc[i + 8];
    for (int i = 0; i < 4; i++) s4[i] = s8[i] + s8[i + 4];
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

} // namespace gptneox
