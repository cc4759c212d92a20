// Internal to src/kernels: how dispatch.cpp builds the per-path tables. Each ISA file exports one
// function that overwrites the entries it has a faster version of; dispatch.cpp calls it only after
// detect_cpu() says the CPU (and the OS) support that ISA. Nothing else may call SIMD code directly.
#pragma once

#include "kernels/kernels.h"

namespace gptneox {

// Fill every entry with the portable reference code (kernels-scalar.cpp; no intrinsics).
void fill_kernels_scalar(kernels &k);
// Overwrite entries with AVX2+FMA+F16C versions (kernels-avx2.cpp).
void fill_kernels_avx2(kernels &k);
// Overwrite entries with AVX-512 F/BW/VL/DQ versions; `vnni` selects the VPDPBUSD int8 dots
// (kernels-avx512.cpp).
void fill_kernels_avx512(kernels &k, bool vnni);
// Set the Q8_0 / Q4_0 gemm entries (gemm-avx512.cpp; AVX-512 with VNNI only).
void fill_gemm_avx512_vnni(kernels &k);
// Set the Q8_0 / Q4_0 packed layouts, the loader's repack and the gemm over them
// (gemm-packed-avx512.cpp; AVX-512 with VNNI only).
void fill_packed_avx512_vnni(kernels &k);
// Its Q8_0 / Q4_0 gemms over the packed layouts, which the AMX gemm calls for batches too small for its tiles.
void gemm_packed_q8_vnni(int64_t n, const void *w, size_t gb, int64_t n_rows, const void *act, size_t act_stride,
                         const void *prep, size_t prep_stride, int64_t n_tok, float *y, size_t y_stride, void *work);
void gemm_packed_q4_vnni(int64_t n, const void *w, size_t gb, int64_t n_rows, const void *act, size_t act_stride,
                         const void *prep, size_t prep_stride, int64_t n_tok, float *y, size_t y_stride, void *work);
// Replace the Q8_0 / Q4_0 packed gemms of an AVX-512 VNNI table by the AMX-BF16 tile kernel for batches of
// 16+ tokens (gemm-qbf16-amx.cpp; AMX-BF16 with AVX512_BF16, the OS having granted the tile state).
// The test variant (packed_test only, never dispatched) takes its tokens in passes of two tiles and its
// blocks in the smallest K-slices, so that small sizes cover both loops.
void fill_gemm_qbf16_amx(kernels &k);
void fill_gemm_qbf16_amx_test(kernels &k);
// Set the BF16 packed layout, repack and tile gemm of the AMX table (gemm-bf16-amx.cpp; AMX-BF16 with
// AVX512_BF16, whose bf16 activations it reads).
void fill_gemm_bf16_amx(kernels &k);
// Set the F16 packed layout (pairs), repack and gemm_packed of the AVX-512 / AMX tables
// (gemm-f16-packed-avx512.cpp; AVX-512 F).
void fill_gemm_f16_packed_avx512(kernels &k);
// Set the Q8_0 / Q4_0 gemm entries of the AVX2 table (gemm-avx2.cpp).
void fill_gemm_avx2(kernels &k);
// Set the F16 / BF16 gemm entries (f32 activations): gemm-f16-avx512.cpp (AVX-512 F/BW) and
// gemm-f16-avx2.cpp (AVX2 + FMA + F16C).
void fill_gemm_f16_avx512(kernels &k);
void fill_gemm_f16_avx2(kernels &k);
// BF16 weights x bf16 activations on VDPBF16PS (gemm-bf16dp-avx512.cpp; AVX512_BF16 only): replaces the
// BF16 entries (vec_dot_type becomes BF16). Its reference, element by element (gemm-bf16dp-scalar.cpp):
// the activation rounding and one output's dot product.
void fill_gemm_bf16dp_avx512(kernels &k);
uint16_t bf16dp_round_ref(float f);
float bf16dp_dot_ref(int64_t n, const uint16_t *w, const uint16_t *a);

// Blocked attention and GELU (attention-*.cpp, gelu-*.cpp): the scalar ones after fill_kernels_scalar,
// the SIMD ones only on their path.
void fill_attention_scalar(kernels &k);
void fill_attention_avx2(kernels &k);
void fill_attention_avx512(kernels &k);
// The AVX-512 table's attn_block, which the AMX one calls for what its tiles do not take (attention-amx.cpp).
void attn_block_avx512(const attn_block_args &a);
// Replace attn_block of the AMX table: prompt blocks on AMX-BF16 tiles (attention-amx.cpp).
void fill_attention_amx(kernels &k);
void fill_gelu_scalar(kernels &k);
void fill_gelu_avx2(kernels &k);
void fill_gelu_avx512(kernels &k);

} // namespace gptneox
