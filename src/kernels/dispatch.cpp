// Run-time dispatch: one immutable kernel table per path, built on first use, and only for paths this
// CPU and OS can execute (a SIMD file's code is never reached otherwise).
#include <cerrno>
#include <cstring>
#include <optional>

#include <sys/syscall.h>
#include <unistd.h>

#include "common/status.h"
#include "kernels/kernels-impl.h"

namespace gptneox {
namespace {

bool avx2_ok(const cpu_features &f) { return f.avx2 && f.fma && f.f16c; }

// The -avx512 files are compiled with F/BW/VL/DQ (+VNNI, used only through the vnni entries).
bool avx512_ok(const cpu_features &f) {
    return avx2_ok(f) && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
}

// Linux gives a process the AMX tile data state (8 KiB per thread's saved context) only on request:
// arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA). Until then a tile instruction faults. The grant
// is per process and permanent; asked once, when the AMX table is first built. A refusal (e.g. ENOSPC:
// some thread's sigaltstack is too small for the larger signal frame) leaves the path absent, and says why.
bool amx_permission() {
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0) return true;
    const int err = errno;
    log(GPTNEOX_LOG_LEVEL_WARN, "AMX kernels unavailable: the kernel refused the tile state (arch_prctl: %s)\n",
        std::strerror(err));
    return false;
}

// (the AMX table's tiles are all AMX-BF16: Q8_0 / Q4_0 prompts dequantized to bf16 -- Q8_0 by VPERMB, which
// every CPU with AMX has -- and BF16 weights)
bool amx_ok(const cpu_features &f) {
    return avx512_ok(f) && f.avx512vnni && f.avx512vbmi && f.avx512bf16 && f.amx_bf16 && f.os_amx;
}

kernels build(enum gptneox_kernel_path path) {
    kernels k;
    fill_kernels_scalar(k);
    fill_attention_scalar(k);
    fill_gelu_scalar(k);
    const cpu_features &f = detect_cpu();
    if (path == GPTNEOX_KERNELS_AVX2) {
        fill_kernels_avx2(k);
        fill_attention_avx2(k);
        fill_gelu_avx2(k);
        fill_gemm_avx2(k);
        fill_gemm_f16_avx2(k);
    } else if (path == GPTNEOX_KERNELS_AVX512 || path == GPTNEOX_KERNELS_AMX) {
        fill_kernels_avx2(k); // entries AVX-512 has no version of
        fill_kernels_avx512(k, f.avx512vnni);
        if (f.avx512vnni) {
            fill_gemm_avx512_vnni(k);
            fill_packed_avx512_vnni(k);
        }
        fill_attention_avx512(k);
        fill_gelu_avx512(k);
        fill_gemm_f16_avx512(k);
        fill_gemm_f16_packed_avx512(k);
        if (f.avx512bf16) fill_gemm_bf16dp_avx512(k);
        if (path == GPTNEOX_KERNELS_AMX) {
            fill_gemm_qbf16_amx(k);
            fill_gemm_bf16_amx(k);
            fill_attention_amx(k);
        }
    }
    k.path = path;
    return k;
}

} // namespace

enum gptneox_kernel_path best_kernel_path() {
    const cpu_features &f = detect_cpu();
    // AMX: the AVX-512 table with the tile kernel for prompt batches, where the CPU has it and the OS
    // grants the tile state (asked once, the first time; a refusal falls back to AVX-512)
    if (amx_ok(f) && get_kernels(GPTNEOX_KERNELS_AMX) != nullptr) return GPTNEOX_KERNELS_AMX;
    if (avx512_ok(f)) return GPTNEOX_KERNELS_AVX512;
    if (avx2_ok(f)) return GPTNEOX_KERNELS_AVX2;
    return GPTNEOX_KERNELS_SCALAR;
}

const kernels *get_kernels(enum gptneox_kernel_path path) {
    if (path == GPTNEOX_KERNELS_AUTO) path = best_kernel_path();
    const cpu_features &f = detect_cpu();
    switch (path) {
    case GPTNEOX_KERNELS_SCALAR: {
        static const kernels k = build(GPTNEOX_KERNELS_SCALAR);
        return &k;
    }
    case GPTNEOX_KERNELS_AVX2: {
        if (!avx2_ok(f)) return nullptr;
        static const kernels k = build(GPTNEOX_KERNELS_AVX2);
        return &k;
    }
    case GPTNEOX_KERNELS_AVX512: {
        if (!avx512_ok(f)) return nullptr;
        static const kernels k = build(GPTNEOX_KERNELS_AVX512);
        return &k;
    }
    case GPTNEOX_KERNELS_AMX: {
        // (the permission is asked once, inside the static's initialisation)
        static const std::optional<kernels> k =
            amx_ok(f) && amx_permission() ? std::optional<kernels>(build(GPTNEOX_KERNELS_AMX)) : std::nullopt;
        return k ? &*k : nullptr;
    }
    default:
        return nullptr;
    }
}

} // namespace gptneox
