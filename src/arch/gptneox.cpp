// The GPT-NeoX forward pass, written to be read next to the model (gptneox-model.md §2-§7).
#include "arch/gptneox.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/status.h"
#include "kernels/matmul.h"

namespace gptneox {

// ------------------------------------------------------------------------------------------------
// Helpers

void rope_inv_freq(float *inv_freq, int32_t n_rot, float base) {
    // torch: 1.0 / (base ** (arange(0, rd, 2).float() / rd)), all in f32
    for (int32_t i = 0; i < n_rot / 2; i++) {
        const float e = float(2 * i) / float(n_rot);
        inv_freq[i] = 1.0f / float(std::pow(double(base), double(e)));
    }
}

void rope_angles(float *cs, int32_t n_rot, float pos, const float *inv_freq) {
    const int32_t half = n_rot / 2;
    for (int32_t i = 0; i < half; i++) {
        const float theta = pos * inv_freq[i]; // an f32 product, as in HF
        cs[i] = float(std::cos(double(theta)));
        cs[half + i] = float(std::sin(double(theta)));
    }
}

void rope_neox(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot, float pos, const float *inv_freq) {
    for (int32_t i = 0; i < n_rot / 2; i++) { // one angle at a time, as rope_angles computes it
        float cs[2];
        rope_angles(cs, 2, pos, inv_freq + i);
        for (int32_t h = 0; h < n_head; h++) {
            float *xh = x + int64_t(h) * head_dim;
            const float a = xh[i], b = xh[i + n_rot / 2];
            xh[i] = a * cs[0] - b * cs[1];
            xh[i + n_rot / 2] = b * cs[0] + a * cs[1];
        }
    }
}

void rope_neox_cs(float *x, int32_t n_head, int32_t head_dim, int32_t n_rot, const float *cs) {
    const int32_t half = n_rot / 2;
    const float *__restrict c = cs, *__restrict s = cs + half;
    for (int32_t h = 0; h < n_head; h++) {
        float *__restrict lo = x + int64_t(h) * head_dim;
        float *__restrict hi = lo + half;
        for (int32_t i = 0; i < half; i++) {
            const float a = lo[i], b = hi[i];
            lo[i] = a * c[i] - b * s[i];
            hi[i] = b * c[i] + a * s[i];
        }
    }
}

void softmax(float *x, int64_t n) {
    float max = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; i++) max = std::max(max, x[i]);
    if (max == -std::numeric_limits<float>::infinity()) { // nothing visible: all weights 0
        std::fill(x, x + n, 0.0f);
        return;
    }
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = std::exp(x[i] - max); // exp(-inf) = 0 for masked entries
        sum += x[i];
    }
    const float inv = float(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void gelu(float *x, int64_t n) {
    const float r2 = 0.70710678118654752440f; // 1/sqrt(2)
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * r2));
}

// ------------------------------------------------------------------------------------------------
// K cache re-rotation (seq_add)

namespace {
// Load / store one f32, f16 or q8_0 cache row of n elements (q8_0: n % 32 == 0, blocks quantized as the
// activations are, type_traits::from_float).
void load_row(const kernels &k, uint32_t type, const void *src, float *dst, int64_t n) {
    if (type == GPTNEOX_TYPE_F16) {
        k.f16_to_f32(static_cast<const uint16_t *>(src), dst, n);
    } else if (type == GPTNEOX_TYPE_Q8_0) {
        k.traits[GPTNEOX_TYPE_Q8_0].to_float(src, dst, n);
    } else {
        std::memcpy(dst, src, size_t(n) * sizeof(float));
    }
}
void store_row(const kernels &k, uint32_t type, const float *src, void *dst, int64_t n) {
    if (type == GPTNEOX_TYPE_F16) {
        k.f32_to_f16(src, static_cast<uint16_t *>(dst), n);
    } else if (type == GPTNEOX_TYPE_Q8_0) {
        k.traits[GPTNEOX_TYPE_Q8_0].from_float(src, dst, n);
    } else {
        std::memcpy(dst, src, size_t(n) * sizeof(float));
    }
}
} // namespace

void rotate_k(const kernels &k, kv_cache &cache, const hparams &hp, const float *inv_freq, float freq_scale,
              const uint32_t *cells, size_t n_cells, int32_t delta) {
    if (n_cells == 0 || hp.n_rot == 0) return;
    std::vector<float> row(size_t(hp.n_embd));       // [n] one cell's K row (not a per-token path)
    std::vector<uint8_t> raw(cache.k_row_bytes()); // the same as stored
    const float angle_pos = float(delta) * freq_scale;
    for (int32_t l = 0; l < hp.n_layer; l++) {
        for (size_t c = 0; c < n_cells; c++) {
            cache.read_k_row(l, cells[c], raw.data());
            load_row(k, cache.type_k(), raw.data(), row.data(), hp.n_embd);
            rope_neox(row.data(), hp.n_head, hp.head_dim, hp.n_rot, angle_pos, inv_freq);
            store_row(k, cache.type_k(), row.data(), raw.data(), hp.n_embd);
            cache.write_k_row(l, cells[c], raw.data());
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Scratch

// Row stride (floats) of an activation buffer whose rows matmul writes as 16-row tiles: whole 64-byte
// lines, and not a multiple of 2 KiB, so that 16 consecutive rows do not all fall in one or two sets of
// a 64-set L1 (rows 4 KiB apart all do: rinna's n_ff 11264 floats is 11 x 4 KiB).
static size_t padded_row(size_t floats) {
    size_t s = (floats + 15) & ~size_t(15);
    while ((s * sizeof(float)) % 2048 == 0) s += 16;
    return s;
}

void run_state::init(const hparams &hp, int32_t n_ub, uint32_t n_ctx, int32_t n_threads, float rope_base) {
    const size_t T = size_t(n_ub), n = size_t(hp.n_embd), f = size_t(hp.n_ff);
    n_ubatch = n_ub;
    x.assign(T * n, 0.0f);
    xn.assign(T * n, 0.0f);
    qkv_stride = padded_row(3 * n), proj_stride = padded_row(n), ff_stride = padded_row(f);
    qkv.assign(T * qkv_stride, 0.0f);
    att.assign(T * n, 0.0f);
    att_proj.assign(T * proj_stride, 0.0f);
    ff.assign(T * ff_stride, 0.0f);
    ff_out.assign(T * proj_stride, 0.0f);
    out_x.assign(T * n, 0.0f);
    scores.assign(size_t(std::max(n_threads, 1)) * n_ctx, 0.0f);
    const size_t n_qblocks = (T + kAttnMaxQ - 1) / kAttnMaxQ;
    vis.assign(n_qblocks * n_ctx, 0);
    vis_range.assign(n_qblocks * 2, 0);
    attn_slots = std::max(n_threads, 1);
    attn_slot_floats = (attn_work_floats(int64_t(n_ctx), hp.head_dim) + 15) & ~size_t(15);
    attn_work.assign(size_t(attn_slots) * attn_slot_floats + 16, 0.0f);
    rope_cs.assign(T * size_t(std::max(hp.n_rot, 2)), 0.0f);
    inv_freq.assign(size_t(std::max(hp.n_rot / 2, 1)), 0.0f);
    rope_inv_freq(inv_freq.data(), hp.n_rot, rope_base);
}

void run_state::grow_threads(int32_t n_threads, uint32_t n_ctx) {
    if (n_threads <= attn_slots) return;
    std::vector<float> sc(size_t(n_threads) * n_ctx, 0.0f);
    std::vector<float> work(size_t(n_threads) * attn_slot_floats + 16, 0.0f);
    scores.swap(sc);
    attn_work.swap(work);
    attn_slots = n_threads;
}

// ------------------------------------------------------------------------------------------------
// The forward pass

namespace {

const float *f32(const weight &w) { return static_cast<const float *>(w.data); }

// x += a (+ b): the residual adds, a + b first as before (restrict: the compiler vectorizes).
void add_rows(float *__restrict x, const float *__restrict a, const float *__restrict b, int64_t n) {
    if (b) {
        for (int64_t i = 0; i < n; i++) x[i] += a[i] + b[i];
    } else {
        for (int64_t i = 0; i < n; i++) x[i] += a[i];
    }
}

// Run fn(t) for t in [0, n) split over up to n_threads threads.
template <typename F> void for_tokens(thread_pool &pool, int32_t n_threads, int32_t n, F &&fn) {
    const int nth = std::max(1, std::min(n_threads, n));
    auto job = [&](int ith, int nt) {
        int64_t b, e;
        split_range(n, ith, nt, &b, &e);
        for (int64_t t = b; t < e; t++) fn(int32_t(t));
    };
    if (nth == 1) {
        job(0, 1);
    } else {
        pool.run(nth, job);
    }
}

// Which of the cells [0, n_kv) each token sees (same sequence, position <= its own), per block of
// kAttnMaxQ consecutive tokens of the ubatch: rs.vis and rs.vis_range. The same for every layer.
void compute_visibility(thread_pool &pool, int32_t n_threads, const kv_cache &cache, run_state &rs, const ubatch &ub,
                        uint32_t n_kv) {
    const int32_t n_blocks = (ub.n_tokens + kAttnMaxQ - 1) / kAttnMaxQ;
    const size_t n_ctx = cache.size();
    for_tokens(pool, n_threads, n_blocks, [&](int32_t b) {
        const int32_t t0 = b * kAttnMaxQ, nq = std::min(kAttnMaxQ, ub.n_tokens - t0);
        uint32_t *vis = rs.vis.data() + size_t(b) * n_ctx;
        int64_t lo = n_kv, hi = 0;
        for (uint32_t j = 0; j < n_kv; j++) {
            const kv_cell &c = cache.cell(j);
            uint32_t w = 0;
            if (!c.empty()) {
                for (int32_t i = 0; i < nq; i++) {
                    if (c.has(ub.seq[t0 + i]) && c.pos <= ub.pos[t0 + i]) w |= uint32_t(1) << i;
                }
            }
            vis[j] = w;
            if (w) {
                lo = std::min<int64_t>(lo, j);
                hi = int64_t(j) + 1;
            }
        }
        rs.vis_range[2 * size_t(b)] = lo < hi ? lo : 0;
        rs.vis_range[2 * size_t(b) + 1] = hi;
    });
}

// Whether the cache's K and V go through kernels.attn_block (F16 / Q8_0 rows); otherwise (an F32 K or V,
// with F16 or F32 beside it) through the per-query loop in attention(). Q8_0 beside F32 is refused when
// the context is made (gptneox_init_from_model), so a Q8_0 cache always takes this path.
bool uses_blocked_attention(const kernels &k, const kv_cache &cache, int64_t hd) {
    return k.attn_block && attn_row_type_ok(cache.type_k(), hd) && attn_row_type_ok(cache.type_v(), hd);
}

// Blocked causal attention (f16 or q8_0 cache): items (head, query block), taken by the threads in turn. Head
// by head, so one head's K/V rows stay in cache while all its blocks read them; within a head the most
// expensive (last) blocks first, so the cheap ones even out the threads at the end.
void attention_blocked(const kernels &k, thread_pool &pool, int32_t n_threads, const kv_cache &cache, run_state &rs,
                       const hparams &hp, int32_t layer, const ubatch &ub, bool bf16) {
    const int64_t n = hp.n_embd, hd = hp.head_dim;
    const int32_t H = hp.n_head;
    const int32_t n_blocks = (ub.n_tokens + kAttnMaxQ - 1) / kAttnMaxQ;
    const int64_t n_items = int64_t(n_blocks) * H;
    const int nth = int(std::max<int64_t>(1, std::min<int64_t>({int64_t(n_threads), n_items, int64_t(rs.attn_slots)})));
    float *work0 = rs.attn_work.data();
    work0 += (16 - (reinterpret_cast<uintptr_t>(work0) / sizeof(float)) % 16) % 16; // 64-byte aligned
    std::atomic<int64_t> next{0};
    auto job = [&](int ith, int) {
        attn_block_args a;
        a.hd = hd;
        a.q_stride = rs.qkv_stride;
        a.k_stride = cache.k_head_bytes();
        a.v_stride = cache.v_head_bytes();
        a.k_type = cache.type_k();
        a.v_type = cache.type_v();
        a.scale = 1.0f / std::sqrt(float(hd));
        a.out_stride = size_t(n);
        a.work = work0 + size_t(ith) * rs.attn_slot_floats;
        a.bf16 = bf16;
        for (int64_t it = next.fetch_add(1); it < n_items; it = next.fetch_add(1)) {
            const int32_t h = int32_t(it / n_blocks), b = n_blocks - 1 - int32_t(it % n_blocks);
            const int32_t t0 = b * kAttnMaxQ;
            a.n_q = std::min(kAttnMaxQ, ub.n_tokens - t0);
            a.q = rs.qkv.data() + size_t(t0) * rs.qkv_stride + size_t(h) * hd;
            a.k = cache.k_head(layer, h);
            a.v = cache.v_head(layer, h);
            a.k0 = rs.vis_range[2 * size_t(b)];
            a.k1 = rs.vis_range[2 * size_t(b) + 1];
            a.vis = rs.vis.data() + size_t(b) * cache.size();
            a.out = rs.att.data() + size_t(t0) * n + size_t(h) * hd;
            k.attn_block(a);
        }
    };
    if (nth == 1) {
        job(0, 1);
    } else {
        pool.run(nth, job);
    }
}

// Causal attention of every (token, head) of the ubatch over the cache cells [0, n_kv).
void attention(const kernels &k, thread_pool &pool, int32_t n_threads, const kv_cache &cache, run_state &rs,
               const hparams &hp, int32_t layer, const ubatch &ub, uint32_t n_kv, bool bf16) {
    const int64_t n = hp.n_embd, hd = hp.head_dim;
    const int32_t H = hp.n_head;
    const int64_t n_items = int64_t(ub.n_tokens) * H;
    const float scale = 1.0f / std::sqrt(float(hd));
    const bool k16 = cache.type_k() == GPTNEOX_TYPE_F16, v16 = cache.type_v() == GPTNEOX_TYPE_F16;
    const int nth = int(std::max<int64_t>(1, std::min<int64_t>(n_threads, n_items)));
    if (uses_blocked_attention(k, cache, hd)) {
        attention_blocked(k, pool, n_threads, cache, rs, hp, layer, ub, bf16);
        return;
    }

    auto job = [&](int ith, int nt) {
        float *sc = rs.scores.data() + size_t(ith) * cache.size(); // [n_kv] this thread's weights
        int64_t b, e;
        split_range(n_items, ith, nt, &b, &e);
        for (int64_t it = b; it < e; it++) {
            const int32_t t = int32_t(it / H), h = int32_t(it % H);
            const float *q = rs.qkv.data() + size_t(t) * rs.qkv_stride + size_t(h) * hd; // [hd]
            float *out = rs.att.data() + size_t(t) * n + size_t(h) * hd;                  // [hd]
            const int32_t p = ub.pos[t], s = ub.seq[t];
            // scores over the visible cells (same sequence, position <= p), -inf elsewhere
            if (k16 && k.attn_scores_f16) { // the same dots, in one kernel call over the cells
                for (uint32_t j = 0; j < n_kv; j++) {
                    const kv_cell &c = cache.cell(j);
                    sc[j] = c.empty() || !c.has(s) || c.pos > p ? -std::numeric_limits<float>::infinity() : 0.0f;
                }
                k.attn_scores_f16(hd, q, reinterpret_cast<const uint16_t *>(cache.k_head(layer, h)),
                                  cache.k_head_bytes() / 2, n_kv, scale, sc);
            } else {
                for (uint32_t j = 0; j < n_kv; j++) {
                    const kv_cell &c = cache.cell(j);
                    if (c.empty() || !c.has(s) || c.pos > p) {
                        sc[j] = -std::numeric_limits<float>::infinity();
                        continue;
                    }
                    const void *kr = cache.k_head(layer, h) + j * cache.k_head_bytes();
                    sc[j] = scale * (k16 ? k.dot_f32_f16(hd, q, static_cast<const uint16_t *>(kr))
                                         : k.dot_f32(hd, q, static_cast<const float *>(kr)));
                }
            }
            softmax(sc, n_kv);
            // out = sum_j sc[j] * v_j
            if (v16 && k.attn_values_f16) {
                k.attn_values_f16(hd, sc, reinterpret_cast<const uint16_t *>(cache.v_head(layer, h)),
                                  cache.v_head_bytes() / 2, n_kv, out);
                continue;
            }
            std::fill(out, out + hd, 0.0f);
            for (uint32_t j = 0; j < n_kv; j++) {
                if (sc[j] == 0.0f) continue;
                const void *vr = cache.v_head(layer, h) + j * cache.v_head_bytes();
                if (v16) {
                    k.axpy_f16(hd, sc[j], static_cast<const uint16_t *>(vr), out);
                } else {
                    k.axpy_f32(hd, sc[j], static_cast<const float *>(vr), out);
                }
            }
        }
    };
    if (nth == 1) {
        job(0, 1);
    } else {
        pool.run(nth, job);
    }
}

// Adds the time since the previous mark to acc[phase] (acc NULL: does nothing, reads no clock).
class phase_clock {
public:
    explicit phase_clock(double *acc) : acc_(acc), last_(acc ? now() : 0.0) {}
    void mark(gptneox_perf_phase phase) {
        if (!acc_) return;
        const double t = now();
        acc_[phase] += t - last_;
        last_ = t;
    }

private:
    static double now() {
        return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    }
    double *acc_;
    double last_;
};

} // namespace

bool forward(const model &m, const kernels &k, thread_pool &pool, kv_cache &cache, run_state &rs,
             const run_config &cfg, const ubatch &ub) {
    const hparams &hp = m.hp;
    const int32_t T = ub.n_tokens, nt = cfg.n_threads;
    const int64_t n = hp.n_embd;
    if (T <= 0 || T > rs.n_ubatch) fail(GPTNEOX_STATUS_INTERNAL, "forward: bad ubatch size %d", T);
    phase_clock clock(cfg.phase_s);

    // x = token embeddings                                              [T][n]
    get_rows(k, m.tok_embd, ub.token, T, rs.x.data());

    // every cell of this ubatch is already assigned, so n_kv covers them
    const uint32_t n_kv = cache.used_end();
    const bool blocked = uses_blocked_attention(k, cache, hp.head_dim);
    if (blocked) compute_visibility(pool, nt, cache, rs, ub, n_kv);
    // rotary angles of each token, shared by Q and K of every layer
    for (int32_t t = 0; t < T; t++) {
        rope_angles(&rs.rope_cs[size_t(t) * hp.n_rot], hp.n_rot, float(ub.pos[t]) * cfg.freq_scale, rs.inv_freq.data());
    }
    clock.mark(GPTNEOX_PHASE_EMBED);

    for (int32_t l = 0; l < hp.n_layer; l++) {
        const layer_weights &w = m.layers[size_t(l)];

        // ---- attention: xn = LN1(x); qkv = Wqkv xn + b                 [T][3n]
        for_tokens(pool, nt, T, [&](int32_t t) {
            k.layer_norm(&rs.xn[size_t(t) * n], &rs.x[size_t(t) * n], f32(w.attn_norm_w), f32(w.attn_norm_b), n,
                       hp.norm_eps);
        });
        clock.mark(GPTNEOX_PHASE_NORM);
        matmul(k, pool, nt, w.qkv_w, f32(w.qkv_b), rs.xn.data(), T, n, rs.qkv.data(), int64_t(rs.qkv_stride),
               rs.mm_scratch);
        clock.mark(GPTNEOX_PHASE_QKV);

        // rotary on Q and K, then K and V go to the token's cache cell
        for_tokens(pool, nt, T, [&](int32_t t) {
            float *q = &rs.qkv[size_t(t) * rs.qkv_stride]; // [h][hd]
            float *kk = q + n;                             // [h][hd]
            float *v = q + 2 * n;                          // [h][hd]
            const float *cs = &rs.rope_cs[size_t(t) * hp.n_rot];
            rope_neox_cs(q, hp.n_head, hp.head_dim, hp.n_rot, cs);
            rope_neox_cs(kk, hp.n_head, hp.head_dim, hp.n_rot, cs);
            const size_t cell = size_t(ub.cell[t]);
            for (int32_t h = 0; h < hp.n_head; h++) {
                store_row(k, cache.type_k(), kk + size_t(h) * hp.head_dim, cache.k_head(l, h) + cell * cache.k_head_bytes(),
                          hp.head_dim);
                store_row(k, cache.type_v(), v + size_t(h) * hp.head_dim, cache.v_head(l, h) + cell * cache.v_head_bytes(),
                          hp.head_dim);
            }
        });
        clock.mark(GPTNEOX_PHASE_ROPE_KV);

        // att = softmax(q k^T / sqrt(hd)) v per head, heads merged        [T][n]
        // (bf16 operands allowed where the layer's own prompt matmuls round to bf16)
        attention(k, pool, nt, cache, rs, hp, l, ub, n_kv, k.traits[w.qkv_w.type].bf16_prompt);
        clock.mark(GPTNEOX_PHASE_ATTENTION);
        // att_proj = Wo att + bo                                          [T][n]
        matmul(k, pool, nt, w.out_w, f32(w.out_b), rs.att.data(), T, n, rs.att_proj.data(), int64_t(rs.proj_stride),
               rs.mm_scratch);
        clock.mark(GPTNEOX_PHASE_ATTN_OUT);

        // ---- MLP on LN2 of the block input (parallel) or of x + attn (sequential)
        for_tokens(pool, nt, T, [&](int32_t t) {
            if (!hp.parallel_residual)
                add_rows(&rs.x[size_t(t) * n], &rs.att_proj[size_t(t) * rs.proj_stride], nullptr, n);
            k.layer_norm(&rs.xn[size_t(t) * n], &rs.x[size_t(t) * n], f32(w.ffn_norm_w), f32(w.ffn_norm_b), n,
                       hp.norm_eps);
        });
        clock.mark(GPTNEOX_PHASE_NORM);
        // ff = gelu(Wup xn + bup)                                         [T][f]
        matmul(k, pool, nt, w.up_w, f32(w.up_b), rs.xn.data(), T, n, rs.ff.data(), int64_t(rs.ff_stride), rs.mm_scratch,
               k.gelu ? k.gelu : gelu);
        clock.mark(GPTNEOX_PHASE_FFN_UP);
        // ff_out = Wdown ff + bdown                                       [T][n]
        matmul(k, pool, nt, w.down_w, f32(w.down_b), rs.ff.data(), T, int64_t(rs.ff_stride), rs.ff_out.data(),
               int64_t(rs.proj_stride), rs.mm_scratch);
        clock.mark(GPTNEOX_PHASE_FFN_DOWN);

        // ---- residual
        for_tokens(pool, nt, T, [&](int32_t t) {
            const size_t o = size_t(t) * n, p = size_t(t) * rs.proj_stride;
            if (hp.parallel_residual) {
                add_rows(&rs.x[o], &rs.att_proj[p], &rs.ff_out[p], n);
            } else {
                add_rows(&rs.x[o], &rs.ff_out[p], nullptr, n);
            }
        });
        clock.mark(GPTNEOX_PHASE_RESIDUAL);

        if (cfg.abort_cb && l + 1 < hp.n_layer && cfg.abort_cb(cfg.abort_data)) return false;
    }

    // ---- outputs: final LayerNorm of the output rows, then logits = Wout h (no bias)
    const int32_t n_out = ub.n_outputs;
    if (n_out == 0) return true;
    for_tokens(pool, nt, n_out, [&](int32_t r) {
        k.layer_norm(&rs.out_x[size_t(r) * n], &rs.x[size_t(ub.out_rows[r]) * n], f32(m.out_norm_w),
                   f32(m.out_norm_b), n, hp.norm_eps);
    });
    if (ub.hidden) std::memcpy(ub.hidden, rs.out_x.data(), size_t(n_out) * n * sizeof(float));
    if (ub.logits) {
        matmul(k, pool, nt, m.output, nullptr, rs.out_x.data(), n_out, n, ub.logits, hp.n_vocab, rs.mm_scratch);
    }
    clock.mark(GPTNEOX_PHASE_OUTPUT);
    return true;
}

} // namespace gptneox
