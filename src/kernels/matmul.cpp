// matmul: convert the activations once (to f32 or Q8_0, the weight type's vec_dot_type), then the
// threads take chunks of output rows in turn and compute them with the table's vec_dot(_x4).
#include "kernels/matmul.h"

#include <atomic>
#include <cstdint>

#include "common/status.h"
#include "loader/model.h"

namespace gptneox {

size_t gemm_prep_bytes(int64_t n) { return static_cast<size_t>(n) + 8 * static_cast<size_t>(n / 32); }

namespace {

// Rows of weights per tile: about 64 KiB, so a tile stays in L1/L2 while it meets every token of a
// token block; tokens per block: their activations (a few KiB each) stay in L2.
constexpr size_t kTileBytes = 64 * 1024;
constexpr int64_t kTokenBlock = 64;
constexpr int64_t kGemmRows = 64;
constexpr int64_t kMaxClaimChunks = 8;

const type_traits &traits_for(const kernels &k, const weight &W) {
    const type_traits *tr = k.get(W.type);
    if (!tr || !tr->vec_dot) fail(GPTNEOX_STATUS_UNSUPPORTED, "tensor '%s': type %u has no kernels", W.name, W.type);
    if (W.ne0 <= 0 || W.ne1 <= 0 || W.ne0 % tr->blck != 0)
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "tensor '%s': bad shape %lld x %lld for type %u", W.name,
             static_cast<long long>(W.ne0), static_cast<long long>(W.ne1), W.type);
    if (!W.data || W.row_bytes < static_cast<size_t>(W.ne0 / tr->blck) * tr->type_size)
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "tensor '%s': no data or rows of %zu bytes are too short", W.name,
             W.row_bytes);
    return *tr;
}

} // namespace

void matmul(const kernels &k, thread_pool &pool, int n_threads, const weight &W, const float *bias,
            const float *x, int64_t n_tokens, int64_t x_stride, float *y, int64_t y_stride,
            std::vector<uint8_t> &scratch, matmul_act act) {
    const type_traits &tr = traits_for(k, W);
    if (n_tokens <= 0) return;
    const int64_t ne0 = W.ne0, ne1 = W.ne1;
    const type_traits *at = k.get(tr.vec_dot_type);
    if (!at || (tr.vec_dot_type != GPTNEOX_TYPE_F32 && ne0 % at->blck != 0))
        fail(GPTNEOX_STATUS_INTERNAL, "tensor '%s': no activation format for type %u", W.name, W.type);

    // The blocked kernel (if the path has one) computes every token count, so results never depend on
    // batching; from gemm_min_tokens on it wants the activations in its own layout as well.
    // (F16 / BF16 weights: f32 activations read in place -- or, for BF16 on VDPBF16PS, converted to
    // bf16 rows like any vec_dot_type -- no prep, chunks of kGemmRows rows)
    const bool use_gemm = tr.gemm != nullptr && (tr.vec_dot_type == GPTNEOX_TYPE_Q8_0 ||
                                                 tr.vec_dot_type == GPTNEOX_TYPE_F32 ||
                                                 tr.vec_dot_type == GPTNEOX_TYPE_BF16);
    const bool prompt = use_gemm && n_tokens >= tr.gemm_min_tokens;
    // the weight's copy in this path's own layout, if the loader made one (rows in groups of 16; chunks of
    // kGemmRows rows start on a group)
    const bool packed = use_gemm && W.packed && tr.gemm_packed && W.packed_layout == tr.packed_layout;
    // a packed kernel that takes its tiles from the f32 rows needs no quantized activations
    const bool pack_f32 = packed && prompt && tr.gemm_pack && tr.gemm_pack_f32 && n_tokens >= tr.gemm_pack_min_tokens;
    const bool use_prep = !pack_f32 && use_gemm && tr.gemm_prep && (prompt || tr.gemm_prep_decode);
    int nth = n_threads < pool.size() ? n_threads : pool.size();
    if (nth < 1) nth = 1;

    // Activations in vec_dot_type: f32 is used in place; otherwise quantized once into scratch.
    const uint8_t *act_q = reinterpret_cast<const uint8_t *>(x);
    size_t act_stride = static_cast<size_t>(x_stride) * sizeof(float);
    const size_t prep_bytes = tr.gemm_prep_size(ne0);
    const size_t prep_stride = use_prep ? (prep_bytes + 63) / 64 * 64 : 0;
    const size_t work_need = tr.gemm_work_size ? tr.gemm_work_size(ne0) : gemm_work_bytes(ne0);
    const size_t work_bytes = (use_prep || pack_f32) && prompt ? (work_need + 63) / 64 * 64 : 0;
    const int64_t pack_tiles =
        packed && work_bytes && tr.gemm_pack && n_tokens >= tr.gemm_pack_min_tokens ? (n_tokens + 15) / 16 : 0;
    const size_t pack_stride = pack_tiles ? (tr.gemm_pack_bytes(ne0) + 63) / 64 * 64 : 0;
    uint8_t *prep = nullptr, *work_area = nullptr, *tiles = nullptr;
    if (pack_f32) {
        // scratch: [nth gemm work areas][gemm_pack tiles], each 64-byte aligned
        const size_t need = 64 + work_bytes * size_t(nth) + pack_stride * size_t(pack_tiles);
        if (scratch.size() < need) scratch.resize(need);
        work_area = reinterpret_cast<uint8_t *>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
        tiles = work_area + work_bytes * size_t(nth);
    } else if (tr.vec_dot_type != GPTNEOX_TYPE_F32) {
        act_stride = static_cast<size_t>(ne0 / at->blck) * at->type_size;
        const size_t q_bytes = (act_stride * static_cast<size_t>(n_tokens) + 63) / 64 * 64;
        // scratch: [quantized rows][gemm_prep rows][nth gemm work areas][gemm_pack tiles], each 64-byte aligned
        const size_t need = 64 + q_bytes + prep_stride * static_cast<size_t>(n_tokens) + work_bytes * size_t(nth) +
                            pack_stride * size_t(pack_tiles);
        if (scratch.size() < need) scratch.resize(need);
        uint8_t *q = reinterpret_cast<uint8_t *>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
        if (use_prep) {
            prep = q + q_bytes;
            if (work_bytes) work_area = prep + prep_stride * static_cast<size_t>(n_tokens);
            if (pack_tiles) tiles = work_area + work_bytes * size_t(nth);
        }
        auto quantize = [&](int ith, int nt) {
            int64_t t0, t1;
            split_range(n_tokens, ith, nt, &t0, &t1);
            for (int64_t t = t0; t < t1; t++) {
                at->from_float(x + t * x_stride, q + t * act_stride, ne0);
                if (prep) tr.gemm_prep(ne0, q + t * act_stride, prep + t * prep_stride);
            }
        };
        if (n_tokens > 1) pool.run(n_threads, quantize);
        else quantize(0, 1);
        act_q = q;
    }
    // The packed prompt kernel's own tiles of the prepped tokens, once for every row range (kernels.h).
    if (pack_tiles) {
        // (from the f32 rows, or from gemm_prep's)
        const uint8_t *src = pack_f32 ? reinterpret_cast<const uint8_t *>(x) : prep;
        const size_t src_stride = pack_f32 ? size_t(x_stride) * sizeof(float) : prep_stride;
        auto pack = [&](int ith, int nt) {
            int64_t i0, i1;
            split_range(pack_tiles, ith, nt, &i0, &i1);
            for (int64_t i = i0; i < i1; i++)
                tr.gemm_pack(ne0, src, src_stride, n_tokens, i, tiles + size_t(i) * pack_stride);
        };
        pool.run(pack_tiles > 1 ? n_threads : 1, pack);
        act_q = tiles;
        act_stride = pack_stride;
    }

    const size_t row_bytes = W.row_bytes;
    const uint8_t *wdata = static_cast<const uint8_t *>(W.data);
    int64_t tile_rows = row_bytes >= kTileBytes ? 1 : static_cast<int64_t>(kTileBytes / row_bytes);
    // the blocked kernel works on whole 16-row groups; a chunk of kGemmRows lets it prefetch each next
    // group while it works on the current one
    if (use_gemm) tile_rows = kGemmRows;
    const int64_t n_chunks = (ne1 + tile_rows - 1) / tile_rows;
    // the tile kernel starts each output's sum at its bias: no pass over y to add it
    const bool fused_bias = bias && pack_f32 && pack_tiles && tr.gemm_packed_bias;
    auto vec_dot = tr.vec_dot;
    auto vec_dot_x4 = tr.vec_dot_x4;
    // rows [rb, re) against every token
    auto tile = [&](int64_t rb, int64_t re, int ith) {
        void *wk = work_area ? work_area + size_t(ith) * work_bytes : nullptr;
        // The bias of these rows is read after the kernel, and in decode it is cold (every weight has
        // streamed through the caches since): start its lines now, so that read does not wait on memory.
        if (bias) {
            for (int64_t o = rb; o < re; o += 16) __builtin_prefetch(bias + o);
            __builtin_prefetch(bias + re - 1);
        }
        if (fused_bias) {
            tr.gemm_packed_bias(ne0, W.packed + size_t(rb / 16) * W.packed_group_bytes, W.packed_group_bytes, re - rb,
                                act_q, act_stride, prep, prep_stride, n_tokens, bias + rb, y + rb,
                                static_cast<size_t>(y_stride), wk);
        } else if (packed) {
            tr.gemm_packed(ne0, W.packed + size_t(rb / 16) * W.packed_group_bytes, W.packed_group_bytes, re - rb, act_q,
                           act_stride, prep, prep_stride, n_tokens, y + rb, static_cast<size_t>(y_stride), wk);
        } else if (use_gemm) {
            tr.gemm(ne0, wdata + rb * row_bytes, row_bytes, re - rb, act_q, act_stride, prep, prep_stride, n_tokens,
                    y + rb, static_cast<size_t>(y_stride), wk);
        }
        for (int64_t tb = 0; !use_gemm && tb < n_tokens; tb += kTokenBlock) {
            const int64_t te = tb + kTokenBlock < n_tokens ? tb + kTokenBlock : n_tokens;
            int64_t t = tb;
            if (vec_dot_x4) {
                for (; t + 4 <= te; t += 4) {
                    const uint8_t *a = act_q + t * act_stride;
                    for (int64_t o = rb; o < re; o++) {
                        float v[4];
                        vec_dot_x4(ne0, wdata + o * row_bytes, a, act_stride, v);
                        for (int j = 0; j < 4; j++) y[(t + j) * y_stride + o] = v[j];
                    }
                }
            }
            for (; t < te; t++) {
                const uint8_t *a = act_q + t * act_stride;
                float *yt = y + t * y_stride;
                for (int64_t o = rb; o < re; o++) yt[o] = vec_dot(ne0, wdata + o * row_bytes, a);
            }
        }
        const bool add_bias = bias && !fused_bias;
        if (!add_bias && !act) return;
        for (int64_t t = 0; t < n_tokens; t++) {
            float *yt = y + t * y_stride;
            if (add_bias) k.axpy_f32(re - rb, 1.0f, bias + rb, yt + rb); // 1 * b is exact: yt + b, as rounded
            if (act) act(yt + rb, re - rb);
        }
    };
    // Small products are not worth waking workers for.
    if (ne1 * ne0 * n_tokens < 65536 || n_chunks < 2) nth = 1;
    std::atomic<int64_t> next_chunk{0};
    // The blocked Q8_0-activation kernels prefetch the next rows of the range they are given, so a range
    // should be long: a thread claims 1 / (2 * nth) of the chunks left (at least one, at most
    // kMaxClaimChunks, so a thread the OS preempts holds little work), i.e. long ranges first and short
    // ones at the end, where they even out the threads' finishing times.
    const bool guided = use_gemm && (tr.vec_dot_type == GPTNEOX_TYPE_Q8_0 || packed);
    auto work = [&](int ith, int) {
        for (;;) {
            int64_t c = next_chunk.load(std::memory_order_relaxed), take = 1;
            do {
                if (c >= n_chunks) return;
                take = guided ? (n_chunks - c) / (2 * nth) : 1;
                if (take > kMaxClaimChunks) take = kMaxClaimChunks;
                if (take < 1) take = 1;
            } while (!next_chunk.compare_exchange_weak(c, c + take, std::memory_order_relaxed));
            const int64_t rb = c * tile_rows, re = (c + take) * tile_rows;
            tile(rb, re < ne1 ? re : ne1, ith);
        }
    };
    pool.run(nth, work);
}

void get_rows(const kernels &k, const weight &W, const int32_t *ids, int64_t n, float *out) {
    const type_traits *tr = k.get(W.type);
    if (!tr || !tr->to_float) fail(GPTNEOX_STATUS_UNSUPPORTED, "tensor '%s': type %u has no kernels", W.name, W.type);
    if (W.ne0 % tr->blck != 0)
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "tensor '%s': row of %lld elements for type %u", W.name,
             static_cast<long long>(W.ne0), W.type);
    const uint8_t *wdata = static_cast<const uint8_t *>(W.data);
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= W.ne1)
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "tensor '%s': row %d out of range [0, %lld)", W.name, ids[i],
                 static_cast<long long>(W.ne1));
        tr->to_float(wdata + static_cast<size_t>(ids[i]) * W.row_bytes, out + i * W.ne0, W.ne0);
    }
}

} // namespace gptneox
