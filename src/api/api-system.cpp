// Exported system functions (gptneox.h, "Logging, system"): CPU/kernel report, capabilities, clock,
// struct sizes for the ctypes mirrors.
#include <chrono>
#include <cstring>
#include <string>

#include "common/status.h"
#include "kernels/kernels.h"

namespace {

bool valid_path(int p) { return p >= GPTNEOX_KERNELS_AUTO && p <= GPTNEOX_KERNELS_AMX; }

const char *path_name(int p) {
    switch (p) {
    case GPTNEOX_KERNELS_AUTO: return "auto";
    case GPTNEOX_KERNELS_SCALAR: return "scalar";
    case GPTNEOX_KERNELS_AVX2: return "avx2";
    case GPTNEOX_KERNELS_AVX512: return "avx512";
    case GPTNEOX_KERNELS_AMX: return "amx";
    default: return "unknown";
    }
}

std::string build_system_info() {
    const gptneox::cpu_features &c = gptneox::detect_cpu();
    auto b = [](bool x) { return x ? "1" : "0"; };
    std::string s = "CPU: ";
    s += c.brand[0] ? std::string(c.brand, ::strnlen(c.brand, sizeof c.brand)) : std::string("unknown");
    s += std::string(" | AVX2 = ") + b(c.avx2);
    s += std::string(" | FMA = ") + b(c.fma);
    s += std::string(" | F16C = ") + b(c.f16c);
    s += std::string(" | AVX512 = ") + b(c.avx512f && c.avx512bw && c.avx512vl);
    s += std::string(" | AVX512_VNNI = ") + b(c.avx512vnni);
    s += std::string(" | AVX512_BF16 = ") + b(c.avx512bf16);
    s += std::string(" | AMX_INT8 = ") + b(c.amx_int8);
    s += std::string(" | kernels = ") + path_name(gptneox::best_kernel_path());
    return s;
}

} // namespace

extern "C" {

GPTNEOX_API const char *gptneox_print_system_info(void) {
    return gptneox::guard<const char *>("", [] {
        static const std::string info = build_system_info(); // built once, immutable afterwards
        return info.c_str();
    });
}

GPTNEOX_API bool gptneox_supports_mmap(void) { return true; }
GPTNEOX_API bool gptneox_supports_mlock(void) { return true; }

GPTNEOX_API int64_t gptneox_time_us(void) {
    using namespace std::chrono;
    return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

GPTNEOX_API size_t gptneox_struct_size(gptneox_struct_id id) {
    switch (id) {
    case GPTNEOX_STRUCT_MODEL_PARAMS: return sizeof(gptneox_model_params);
    case GPTNEOX_STRUCT_CTX_PARAMS: return sizeof(gptneox_ctx_params);
    case GPTNEOX_STRUCT_BATCH: return sizeof(gptneox_batch);
    case GPTNEOX_STRUCT_PERF_DATA: return sizeof(gptneox_perf_data);
    default: return 0;
    }
}

GPTNEOX_API bool gptneox_kernel_path_supported(enum gptneox_kernel_path path) {
    return gptneox::guard<bool>(false, [&] {
        return valid_path(static_cast<int>(path)) && gptneox::get_kernels(path) != nullptr;
    });
}

GPTNEOX_API const char *gptneox_kernel_path_name(enum gptneox_kernel_path path) { return path_name(static_cast<int>(path)); }

} // extern "C"
