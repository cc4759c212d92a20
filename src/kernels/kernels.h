// Numeric kernels and their dispatch. Every kernel has a scalar reference (src/kernels/*-scalar.cpp,
// always compiled); SIMD variants live beside it (*-avx2.cpp, *-avx512.cpp, compiled with the ISA's
// flags but only called after cpuid says the CPU has it). A context picks one table at creation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "gptneox.h"

namespace gptneox {

struct cpu_features {
    bool avx2 = false, fma = false, f16c = false;
    bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512bf16 = false;
    bool avx512vbmi = false;           // VPERMB: the AMX path's Q8_0 dequantization
    bool amx_int8 = false, amx_bf16 = false;
    bool avx512dq = false;             // the AVX-512 files are compiled with -mavx512dq, so the path needs it
    bool os_ymm = false, os_zmm = false, os_amx = false; // XCR0: the OS saves that register state
    char brand[64] = {0};
};
// cpuid + xgetbv (OS support of the register state). Computed once, cached (immutable afterwards).
const cpu_features &detect_cpu();

// Size of one gemm_prep row in the AVX-512 kernels' layout (kernels/gemm-avx512.cpp): n bytes, then room
// for two 4-byte values per block of 32. The default of type_traits::gemm_prep_size. (Defined in
// matmul.cpp, a file built without ISA flags: its address is the default of every table.)
size_t gemm_prep_bytes(int64_t n);

// LayerNorm of one row (the model's definition, the kernels' scalar reference; kernels-scalar.cpp):
// out[i] = ((x[i] - mean) * rstd) * w[i] + b[i] in f32, mean and biased variance accumulated in double as
// four partial sums over i % 4 (the n % 4 tail into the first), rstd = 1 / sqrt(var + eps) rounded to f32;
// w or b NULL: 1 / 0. The vector versions keep the same partial sums and never fuse a multiply and an add.
void layer_norm(float *out, const float *x, const float *w, const float *b, int64_t n, float eps);

// What one weight type needs from the kernels.
struct type_traits {
    int64_t blck = 0;          // elements per block
    size_t type_size = 0;      // bytes per block
    uint32_t vec_dot_type = 0; // type activations are converted to before vec_dot (F32 or Q8_0)
    // Dequantize n elements (n % blck == 0).
    void (*to_float)(const void *x, float *y, int64_t n) = nullptr;
    // Quantize n elements (n % blck == 0) to this type (used for activations and by the quantizer).
    void (*from_float)(const float *x, void *y, int64_t n) = nullptr;
    // Dot product of one weight row and one activation row (in vec_dot_type), n elements.
    float (*vec_dot)(int64_t n, const void *w, const void *a) = nullptr;
    // Optional (nullptr: matmul calls vec_dot per token): one weight row against the 4 activation rows
    // at a + j*a_stride bytes (j < 4); out[j] = the dot with row j. Decodes each weight block once.
    void (*vec_dot_x4)(int64_t n, const void *w, const void *a, size_t a_stride, float *out) = nullptr;

    // Optional blocked product (nullptr: matmul uses vec_dot / vec_dot_x4), for Q8_0-activation types.
    // y[t * y_stride + r] = dot(row r of w, token t) for r < n_rows (rows row_bytes apart), t < n_tok.
    // With prep == nullptr the tokens are read as Q8_0 rows at act + t * act_stride (the decode
    // kernel); otherwise from gemm_prep's layout at prep + t * prep_stride (the prompt kernel, which
    // repacks 16 weight rows at a time into `work`, gemm_work_bytes(n) bytes, 64-byte aligned).
    // Both give bit-identical results for the same token, whatever n_tok, so batching never changes
    // logits -- except gemm_packed on the AMX path (gemm-qbf16-amx.cpp), whose batches of 16+ tokens
    // take bf16 activations and differ from smaller ones in rounding. Requires n % 32 == 0.
    // F16 / BF16 weights (vec_dot_type F32, gemm-f16-*.cpp): the tokens are f32 rows read in place at
    // act + t * act_stride, prep / work unused (nullptr), any n >= 1; same batch invariance.
    void (*gemm)(int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act, size_t act_stride,
                 const void *prep, size_t prep_stride, int64_t n_tok, float *y, size_t y_stride,
                 void *work) = nullptr;
    // One Q8_0 activation row (n elements) to the prompt kernel's layout, gemm_prep_size(n) bytes.
    void (*gemm_prep)(int64_t n, const void *a, void *prep) = nullptr;
    size_t (*gemm_prep_size)(int64_t n) = gemm_prep_bytes;
    int64_t gemm_min_tokens = 0; // matmul uses the prompt kernel (prep) from this many tokens on
    // The decode kernel reads gemm_prep's layout too: matmul preps every token whatever n_tok (work
    // still only from gemm_min_tokens on), and `act` is not read.
    bool gemm_prep_decode = false;

    // Optional layout of whole 16-row groups that this path reads faster (weight.packed; the loader
    // makes it once, see use_extra_bufts). packed_layout != 0 names it; a group of n columns takes
    // packed_group_bytes(n) bytes; repack writes rows [0, n_rows) (n_rows % 16 == 0, rows row_bytes
    // apart) as n_rows / 16 consecutive groups. gemm_packed is gemm over that layout: w = the group of
    // the first row, row_bytes = the group stride, rows a multiple of 16 from a group's start; it gives
    // results bit-identical to gemm on the original rows -- except the 16-bit float kernels (BF16 on AMX,
    // F16 on AVX-512), whose own summation orders their files state (as batch-invariant; tested there),
    // and AMX's Q8_0 / Q4_0 tiles for batches of 16+ tokens (bf16; packed_test).
    uint32_t packed_layout = 0;
    size_t (*packed_group_bytes)(int64_t n) = nullptr;
    void (*repack)(int64_t n, const void *w, size_t row_bytes, int64_t n_rows, uint8_t *out) = nullptr;
    void (*gemm_packed)(int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                        size_t act_stride, const void *prep, size_t prep_stride, int64_t n_tok, float *y,
                        size_t y_stride, void *work) = nullptr;
    // Optional: gemm_packed that also adds the rows' bias (bias[r] for row r of the call, not null), as the
    // starting value of each output's sum rather than after it: matmul calls it instead of gemm_packed and
    // a separate pass over y when, and only when, it has packed the tiles from the f32 rows (gemm_pack_f32,
    // n_tok >= gemm_pack_min_tokens, act = the tiles, work given).
    void (*gemm_packed_bias)(int64_t n, const void *w, size_t row_bytes, int64_t n_rows, const void *act,
                             size_t act_stride, const void *prep, size_t prep_stride, int64_t n_tok,
                             const float *bias, float *y, size_t y_stride, void *work) = nullptr;
    // Optional (nullptr: gemm_work_bytes): bytes of the work area each thread's gemm / gemm_packed call
    // gets in prompt batches, for a kernel that needs more (gemm-qbf16-amx.cpp).
    size_t (*gemm_work_size)(int64_t n) = nullptr;
    // Optional: the packed prompt kernel's own activation layout, made once per matmul of at least
    // gemm_pack_min_tokens tokens, after gemm_prep: tile i (tokens 16i .. 16i + 15, zeros past n_tok) is
    // written by gemm_pack(n, prep, prep_stride, n_tok, i, out) to gemm_pack_bytes(n) bytes at out (64-byte
    // aligned). gemm_packed then gets the tiles as act, act_stride = that size rounded up to 64.
    // With gemm_pack_f32 the tiles are made from the f32 activations instead (prep = the x rows as bytes,
    // prep_stride = their stride in bytes) and matmul makes no Q8_0 rows or gemm_prep for those batches:
    // gemm_packed gets prep == nullptr (gemm-qbf16-amx.cpp, whose tiles are bf16).
    void (*gemm_pack)(int64_t n, const uint8_t *prep, size_t prep_stride, int64_t n_tok, int64_t tile,
                      uint8_t *out) = nullptr;
    size_t (*gemm_pack_bytes)(int64_t n) = nullptr;
    int64_t gemm_pack_min_tokens = 0;
    bool gemm_pack_f32 = false;
    // Prompt batches of this type round their activations to bf16 (the AMX tile kernels; BF16 on
    // VDPBF16PS): the forward pass then lets attention round its operands to bf16 too (attn_block_args).
    bool bf16_prompt = false;
};

// Size of the gemm work area (kernels/gemm-avx512.cpp's layout).
constexpr size_t gemm_work_bytes(int64_t n) {
    return 16 * static_cast<size_t>(n) + 2 * 64 * static_cast<size_t>(n / 32) + 64;
}

// One head's attention for a block of up to kAttnMaxQ query tokens over K/V cache rows (kernels.attn_block).
// Key j's rows are k + j * k_stride and v + j * v_stride bytes, each hd elements of k_type / v_type: F16,
// or Q8_0 (hd % 32 == 0; blocks of an f16 scale d and 32 int8 q, element = d * q; the SIMD paths apply d
// once per block, see attention-avx512.cpp). vis[j] bit i says query i sees key j; every
// key some query sees lies in [k0, k1). For each query i:
//   s_j = scale * dot(q_i, k_j) for the keys it sees, softmax over them, out_i = sum_j p_j v_j in
// ascending j. A query's result does not depend on n_q, [k0, k1) or the other queries (batching
// never changes logits; with `bf16` on the AMX path, any n_q >= 2 gives the same result); a query that
// sees no key gets zeros. Rows nobody sees are never used as numbers.
constexpr int kAttnMaxQ = 32;
struct attn_block_args {
    int64_t hd = 0;                 // head dim
    int32_t n_q = 0;                // 1..kAttnMaxQ
    const float *q = nullptr;       // query i at q + i * q_stride
    size_t q_stride = 0;
    const uint8_t *k = nullptr, *v = nullptr;
    size_t k_stride = 0, v_stride = 0; // bytes
    uint32_t k_type = GPTNEOX_TYPE_F16, v_type = GPTNEOX_TYPE_F16;
    int64_t k0 = 0, k1 = 0;
    const uint32_t *vis = nullptr;  // indexed by absolute key index j in [k0, k1)
    float scale = 1.0f;
    float *out = nullptr;           // query i's output at out + i * out_stride (hd floats)
    size_t out_stride = 0;
    float *work = nullptr;          // attn_work_floats(n_keys, hd) floats, 64-byte aligned, per thread
    // The caller accepts q, k, v and the softmax weights rounded to bf16 (the model's own prompt matmuls
    // round their activations so: type_traits::bf16_prompt). The AMX path then takes blocks of 2+ queries
    // on tiles (attention-amx.cpp): one such block gives a query the same bits as any other, but not the
    // same as a block of that query alone (f32, as on the AVX-512 path).
    bool bf16 = false;
};
// Whether attn_block takes cache rows of this type with this head dim.
constexpr bool attn_row_type_ok(uint32_t type, int64_t hd) {
    return type == GPTNEOX_TYPE_F16 || (type == GPTNEOX_TYPE_Q8_0 && hd % 32 == 0);
}
// Scratch floats attn_block needs for key ranges up to n_keys long.
constexpr size_t attn_work_floats(int64_t n_keys, int64_t hd) {
    return (static_cast<size_t>(hd) + 16) * (16 + kAttnMaxQ) + (kAttnMaxQ + 16) * (static_cast<size_t>(n_keys) + 48) +
           static_cast<size_t>(hd) + 256; // the last term: Q8_0 block scales of a group of keys
}

constexpr int kMaxType = 40;

struct kernels {
    enum gptneox_kernel_path path = GPTNEOX_KERNELS_SCALAR;
    type_traits traits[kMaxType]; // indexed by ggml type id; blck == 0 means unsupported

    // f32 helpers for norms and attention.
    float (*dot_f32)(int64_t n, const float *a, const float *b) = nullptr;
    // dot of f32 a with an f16 row b (K cache)
    float (*dot_f32_f16)(int64_t n, const float *a, const uint16_t *b) = nullptr;
    // y += s * x, x an f16 row (V cache) / an f32 row
    void (*axpy_f16)(int64_t n, float s, const uint16_t *x, float *y) = nullptr;
    void (*axpy_f32)(int64_t n, float s, const float *x, float *y) = nullptr;
    // Optional attention loops over n_rows f16 K / V rows (rows `stride` elements apart); nullptr: the
    // caller loops over dot_f32_f16 / axpy_f16. Bit-identical to those loops:
    //   scores: out[j] = scale * dot_f32_f16(n, q, k_j) for every j whose out[j] is not -inf on entry
    //   values: out[0..n) = sum over j of w[j] * v_j in ascending j, rows with w[j] == 0 skipped
    void (*attn_scores_f16)(int64_t n, const float *q, const uint16_t *k, size_t stride, int64_t n_rows, float scale,
                            float *out) = nullptr;
    void (*attn_values_f16)(int64_t n, const float *w, const uint16_t *v, size_t stride, int64_t n_rows,
                            float *out) = nullptr;
    // Blocked attention of a block of queries (attn_block_args); set on every path.
    void (*attn_block)(const attn_block_args &a) = nullptr;
    // Exact (erf) GELU in place, y = 0.5 y (1 + erf(y / sqrt 2)) in f32 (the MLP's activation): within
    // what 1 ulp of erf can move the f32 formula (the SIMD paths evaluate erf in f32 to ~7e-8 absolute,
    // gelu-coefs.h); erf_f32: erf correctly rounded but within ~1e-4 ulp of a midpoint (SIMD), 1 ulp
    // (scalar). Both tested in gelu_test.cpp.
    void (*gelu)(float *y, int64_t n) = nullptr;
    // LayerNorm of one row, bit-identical on every path to the scalar reference layer_norm (above).
    void (*layer_norm)(float *out, const float *x, const float *w, const float *b, int64_t n, float eps) = nullptr;
    void (*erf_f32)(const float *x, float *y, int64_t n) = nullptr;
    void (*f32_to_f16)(const float *x, uint16_t *y, int64_t n) = nullptr;
    void (*f16_to_f32)(const uint16_t *x, float *y, int64_t n) = nullptr;

    const type_traits *get(uint32_t type) const {
        return type < kMaxType && traits[type].blck ? &traits[type] : nullptr;
    }
};

// The table for `path`, or nullptr if this CPU or build cannot run it. AUTO gives the best supported.
const kernels *get_kernels(enum gptneox_kernel_path path);
// The path AUTO resolves to on this CPU.
enum gptneox_kernel_path best_kernel_path();

// The bits of a float and back.
inline uint32_t f32_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float bits_f32(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// Scalar conversions (exact IEEE; round-to-nearest-even) used everywhere outside hot loops.
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

// Block layouts (ggml-common.h), checked with static_assert in kernels-scalar.cpp.
constexpr int QK8_0 = 32;
struct block_q8_0 {
    uint16_t d;        // f16 scale
    int8_t qs[QK8_0];  // values = qs[i] * d
};
constexpr int QK4_0 = 32;
struct block_q4_0 {
    uint16_t d;            // f16 scale
    uint8_t qs[QK4_0 / 2]; // element j in the low nibble of qs[j], element j+16 in the high; value = (q - 8) * d
};

} // namespace gptneox
