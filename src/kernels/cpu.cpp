// CPU feature detection: cpuid for what the processor implements, xgetbv for what the OS saves on a
// context switch (a feature is usable only with both). Computed once; immutable afterwards.
#include <cpuid.h>
#include <cstring>

#include "kernels/kernels.h"

namespace gptneox {
namespace {

struct regs {
    unsigned a = 0, b = 0, c = 0, d = 0;
};

regs cpuid(unsigned leaf, unsigned subleaf) {
    regs r;
    __cpuid_count(leaf, subleaf, r.a, r.b, r.c, r.d);
    return r;
}

// XCR0 (requires OSXSAVE; the caller checks). Inline asm so this file needs no -mxsave.
uint64_t xgetbv0() {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<uint64_t>(hi) << 32) | lo;
}

bool bit(unsigned v, int i) { return (v >> i) & 1u; }

cpu_features compute() {
    cpu_features f;
    unsigned max_leaf = __get_cpuid_max(0, nullptr);
    if (max_leaf < 1) return f;
    regs l1 = cpuid(1, 0);
    bool osxsave = bit(l1.c, 27), avx = bit(l1.c, 28);
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    f.os_ymm = osxsave && avx && (xcr0 & 0x6) == 0x6;                 // XMM + YMM state
    f.os_zmm = f.os_ymm && (xcr0 & 0xE0) == 0xE0;                     // opmask, ZMM_Hi256, Hi16_ZMM
    f.os_amx = osxsave && (xcr0 & 0x60000) == 0x60000;                // XTILECFG + XTILEDATA
    if (max_leaf >= 0xD) {
        // Leaf 0xD subleaf 0 EAX: the XCR0 bits the processor supports; the OS may enable fewer.
        regs xd = cpuid(0xD, 0);
        if ((xd.a & 0xE0) != 0xE0) f.os_zmm = false;
        if ((xd.a & 0x60000) != 0x60000) f.os_amx = false;
    }
    f.fma = f.os_ymm && bit(l1.c, 12);
    f.f16c = f.os_ymm && bit(l1.c, 29);
    if (max_leaf >= 7) {
        regs l7 = cpuid(7, 0);
        f.avx2 = f.os_ymm && bit(l7.b, 5);
        f.avx512f = f.os_zmm && bit(l7.b, 16);
        f.avx512dq = f.avx512f && bit(l7.b, 17);
        f.avx512bw = f.avx512f && bit(l7.b, 30);
        f.avx512vl = f.avx512f && bit(l7.b, 31);
        f.avx512vnni = f.avx512f && bit(l7.c, 11);
        f.avx512vbmi = f.avx512f && bit(l7.c, 1);
        f.amx_bf16 = f.os_amx && bit(l7.d, 22) && bit(l7.d, 24);
        f.amx_int8 = f.os_amx && bit(l7.d, 25) && bit(l7.d, 24);
        if (l7.a >= 1) {
            regs l71 = cpuid(7, 1);
            f.avx512bf16 = f.avx512f && bit(l71.a, 5);
        }
    }
    unsigned max_ext = __get_cpuid_max(0x80000000u, nullptr);
    if (max_ext >= 0x80000004u) {
        char raw[49] = {0};
        for (unsigned i = 0; i < 3; i++) {
            regs r = cpuid(0x80000002u + i, 0);
            std::memcpy(raw + 16 * i + 0, &r.a, 4);
            std::memcpy(raw + 16 * i + 4, &r.b, 4);
            std::memcpy(raw + 16 * i + 8, &r.c, 4);
            std::memcpy(raw + 16 * i + 12, &r.d, 4);
        }
        const char *s = raw;
        while (*s == ' ') s++;
        std::strncpy(f.brand, s, sizeof(f.brand) - 1);
        size_t n = std::strlen(f.brand);
        while (n > 0 && f.brand[n - 1] == ' ') f.brand[--n] = 0;
    }
    return f;
}

} // namespace

const cpu_features &detect_cpu() {
    static const cpu_features features = compute();
    return features;
}

} // namespace gptneox
