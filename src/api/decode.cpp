// gptneox_decode behind the API: batch validation, the ubatch loop over the forward pass, outputs
// (logits, per-token and pooled embeddings), and the coalescing of small decode calls.
//
// Coalescing. A decode call reads all the weights once per ubatch, so a prompt fed in calls of a few
// tokens (LangChain's LlamaCpp defaults to n_batch = 8) reads them once per few tokens and runs at a
// fraction of the speed of one big batch. llama.h lets a decode return before its results exist (they
// are ready at llama_synchronize or at the first function that reads them), so a call of up to
// kCoalesceMaxCall tokens is validated, given its KV cells and its output rows, and queued; the queue is
// computed in ubatches of up to coalesce_capacity tokens when something needs it. Since a token's result
// is bit-identical whatever the batch it is computed in (except on the AMX path's tiles: Q8_0 / Q4_0
// matmuls for batches of 16+ tokens, and for Q8_0 / Q4_0 / BF16 models attention for blocks of 2+ tokens;
// there the queue gives what one batch of its tokens gives), this is invisible except in timing --
// provided no queued token can see a later-queued cell it would not have seen when computed call by call
// (a cell of its first sequence at a position <= its own). Calls that would break that, calls with an
// abort callback (it must be able to stop *that* call) and embedding contexts run at once, after the queue.
#include <algorithm>
#include <climits>
#include <cstring>

#include "api/context.h"
#include "common/status.h"
#include "kernels/matmul.h"

namespace gptneox {
namespace {

// smallest coalescing capacity: on AMX, Q8_0 ubatches of 128 / 256 / 512 tokens ran at 178 / 191 / 165-178
// tok/s (rinna-3.6B, bench/phase_profile.py, 11-27): the weights' dequantization is paid once per ubatch
constexpr uint32_t kCoalesceTokens = 256;

// Validate a batch and fill c.pos / c.seq_first / c.seq_mask. Throws; changes no visible state.
void check_batch(gptneox_context &c, const gptneox_batch &b) {
    const auto &hp = c.model->hp;
    const int32_t n_seq_max = int32_t(c.params.n_seq_max);
    if (b.n_tokens < 1 || uint32_t(b.n_tokens) > c.params.n_batch) {
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch has %d tokens; must be 1..n_batch (%u)", b.n_tokens,
             c.params.n_batch);
    }
    if (b.embd) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batches of embeddings (batch.embd) are not supported");
    if (!b.token) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch.token is NULL");
    if (b.seq_id && !b.n_seq_id) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch.seq_id set but batch.n_seq_id is NULL");
    if (!b.pos) {
        for (int32_t s = 0; s < n_seq_max; s++) c.seq_next[size_t(s)] = c.cache.seq_pos_max(s) + 1;
    }
    for (int32_t i = 0; i < b.n_tokens; i++) {
        if (b.token[i] < 0 || b.token[i] >= hp.n_vocab) {
            fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch token %d: id %d out of range [0, %d)", i, b.token[i],
                 hp.n_vocab);
        }
        uint64_t mask = 0;
        int32_t first = 0;
        if (b.seq_id) {
            const int32_t ns = b.n_seq_id[i];
            if (ns < 1 || ns > n_seq_max || !b.seq_id[i]) {
                fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch token %d: n_seq_id %d must be 1..n_seq_max (%d)", i, ns,
                     n_seq_max);
            }
            for (int32_t j = 0; j < ns; j++) {
                const int32_t s = b.seq_id[i][j];
                if (s < 0 || s >= n_seq_max) {
                    fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch token %d: seq_id %d out of range [0, %d)", i, s,
                         n_seq_max);
                }
                mask |= uint64_t(1) << s;
            }
            first = b.seq_id[i][0];
        } else {
            mask = 1; // sequence 0
        }
        int32_t p;
        if (b.pos) {
            p = b.pos[i];
            if (p < 0) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch token %d: position %d is negative", i, p);
        } else {
            p = c.seq_next[size_t(first)]++;
        }
        c.pos[size_t(i)] = p;
        c.seq_first[size_t(i)] = first;
        c.seq_mask[size_t(i)] = mask;
    }
}

// Pool the per-token hidden states (all tokens are outputs, rows in batch order) per sequence.
void pool_embeddings(gptneox_context &c, int32_t n_tokens) {
    const size_t n = size_t(c.model->hp.n_embd);
    std::fill(c.embd_seq.begin(), c.embd_seq.end(), 0.0f);
    std::fill(c.embd_seq_ok.begin(), c.embd_seq_ok.end(), uint8_t(0));
    std::fill(c.seq_count.begin(), c.seq_count.end(), 0);
    for (int32_t i = 0; i < n_tokens; i++) {
        const float *row = c.embd.data() + size_t(c.output_ids[size_t(i)]) * n;
        for (uint32_t s = 0; s < c.params.n_seq_max; s++) {
            if (!((c.seq_mask[size_t(i)] >> s) & 1u)) continue;
            float *dst = c.embd_seq.data() + size_t(s) * n;
            if (c.params.pooling_type == GPTNEOX_POOLING_TYPE_LAST) {
                std::memcpy(dst, row, n * sizeof(float)); // the last token of the batch wins
            } else {
                for (size_t j = 0; j < n; j++) dst[j] += row[j];
            }
            c.seq_count[s]++;
            c.embd_seq_ok[s] = 1;
        }
    }
    if (c.params.pooling_type == GPTNEOX_POOLING_TYPE_MEAN) {
        for (uint32_t s = 0; s < c.params.n_seq_max; s++) {
            if (!c.seq_count[s]) continue;
            const float inv = 1.0f / float(c.seq_count[s]);
            float *dst = c.embd_seq.data() + size_t(s) * n;
            for (size_t j = 0; j < n; j++) dst[j] *= inv;
        }
    }
}

// Pooled runs: the forward pass gave the final-norm hidden state of every token of the ubatch [b0, b0+nt)
// (output row = batch index); compute logits = Wout h for each run of consecutive tokens that want them,
// straight into their rows, and zero the rows of the others.
template <typename WantsLogits>
void pooled_logits(gptneox_context &c, int32_t n_threads, int32_t b0, int32_t nt, const WantsLogits &wants_logits) {
    const auto &hp = c.model->hp;
    const size_t nv = size_t(hp.n_vocab), n = size_t(hp.n_embd);
    int32_t i = b0;
    while (i < b0 + nt) {
        const int32_t row = c.output_ids[size_t(i)];
        if (!wants_logits(i)) {
            std::fill_n(c.logits.data() + size_t(row) * nv, nv, 0.0f);
            i++;
            continue;
        }
        int32_t j = i + 1;
        while (j < b0 + nt && wants_logits(j)) j++;
        matmul(*c.kern, *c.pool, n_threads, c.model->output, nullptr, c.embd.data() + size_t(row) * n, j - i,
               int64_t(n), c.logits.data() + size_t(row) * nv, int64_t(nv), c.rs.mm_scratch);
        i = j;
    }
}

// Tokens to compute: [n] of each array; cells given, assigned in the cache already or not.
struct token_span {
    int32_t n = 0;
    const int32_t *token = nullptr, *pos = nullptr, *seq_first = nullptr, *cell = nullptr;
    const uint64_t *seq_mask = nullptr;
    bool assigned = false; // false: assign each ubatch's cells just before computing it
};

// The ubatch loop: compute s in ubatches of U tokens. out(i) is token i's output row or -1 (rows ascend
// with i); wants_logits(i) says whether a pooled run computes logits for it. On failure (abort, error)
// all of s's cells are released and the outputs emptied, and it throws.
template <typename Out, typename WantsLogits>
void run(gptneox_context &c, const token_span &s, int32_t U, bool pooled, const Out &out,
         const WantsLogits &wants_logits) {
    const auto &hp = c.model->hp;
    run_config cfg;
    cfg.n_threads = s.n == 1 ? c.params.n_threads : c.params.n_threads_batch;
    cfg.freq_scale = c.params.rope_freq_scale;
    cfg.abort_cb = c.params.abort_callback;
    cfg.abort_data = c.params.abort_callback_data;
    cfg.phase_s = c.params.no_perf ? nullptr : c.phase_s[s.n == 1 ? 0 : 1]; // the split of add_timing
    auto forget = [&](int32_t upto) {
        for (int32_t i = 0; i < upto; i++) c.cache.release(uint32_t(s.cell[i]));
        c.n_batch_last = 0;
        c.n_outputs = 0;
        c.has_logits = false;
    };
    int32_t out_base = -1;
    for (int32_t b0 = 0; b0 < s.n; b0 += U) {
        const int32_t nt = std::min(U, s.n - b0);
        // the cells of this ubatch become visible now (not earlier: later ubatches hold no data yet)
        if (!s.assigned) {
            for (int32_t i = b0; i < b0 + nt; i++) c.cache.assign(uint32_t(s.cell[i]), s.pos[i], s.seq_mask[i]);
        }
        int32_t n_ub_out = 0;
        for (int32_t i = b0; i < b0 + nt; i++) {
            const int32_t row = out(i);
            if (row < 0) continue;
            if (n_ub_out == 0) out_base = row;
            c.out_rows[size_t(n_ub_out++)] = i - b0;
        }
        ubatch ub;
        ub.n_tokens = nt;
        ub.token = s.token + b0;
        ub.pos = s.pos + b0;
        ub.seq = s.seq_first + b0;
        ub.cell = s.cell + b0;
        ub.n_outputs = n_ub_out;
        ub.out_rows = c.out_rows.data();
        const size_t base = size_t(n_ub_out ? out_base : 0);
        ub.logits = pooled || !n_ub_out ? nullptr : c.logits.data() + base * hp.n_vocab;
        ub.hidden = c.params.embeddings && n_ub_out ? c.embd.data() + base * hp.n_embd : nullptr;
        bool ok = false;
        try {
            ok = forward(*c.model, *c.kern, *c.pool, c.cache, c.rs, cfg, ub);
            if (ok && pooled) pooled_logits(c, cfg.n_threads, b0, nt, wants_logits);
        } catch (...) {
            forget(s.assigned ? s.n : b0 + nt);
            throw;
        }
        if (!ok) {
            forget(s.assigned ? s.n : b0 + nt); // the cache is as before the call
            fail(GPTNEOX_STATUS_ABORTED, "decode aborted by the abort callback");
        }
    }
}

void add_timing(gptneox_context &c, int64_t t0, int32_t n_tokens) {
    if (c.params.no_perf) return;
    const int64_t dt = gptneox_time_us() - t0;
    if (n_tokens == 1) {
        c.t_eval_us += dt;
        c.n_eval++;
    } else {
        c.t_p_eval_us += dt;
        c.n_p_eval += n_tokens;
    }
}

// Can the checked batch (c.pos / seq_first / seq_mask) join the queue? See the file comment: every token
// Y must come after every queued-or-earlier token X of its sequences: pos(Y) > pos(X) whenever
// seq_first(X) is among Y's sequences. commit: record the batch's positions in max_pos.
bool order_allows(gptneox_context &c, int32_t T, bool commit) {
    int32_t mp[kMaxSeq];
    const size_t ns = c.params.n_seq_max;
    std::copy_n(c.pend.max_pos.begin(), ns, mp);
    for (int32_t i = 0; i < T; i++) {
        const uint64_t m = c.seq_mask[size_t(i)];
        const int32_t p = c.pos[size_t(i)];
        for (size_t s = 0; s < ns; s++) {
            if (((m >> s) & 1u) && p <= mp[s]) return false;
        }
        int32_t &f = mp[c.seq_first[size_t(i)]];
        f = std::max(f, p);
    }
    if (commit) std::copy_n(mp, ns, c.pend.max_pos.begin());
    return true;
}

// Outputs of a call of T tokens: output_ids, n_outputs, has_logits, n_batch_last; rows reserved.
template <typename WantsLogits> int32_t set_outputs(gptneox_context &c, int32_t T, bool pooled, const WantsLogits &wl) {
    int32_t n_out = 0, n_logits = 0;
    for (int32_t i = 0; i < T; i++) {
        const bool lg = wl(i);
        n_logits += lg ? 1 : 0;
        c.output_ids[size_t(i)] = pooled || lg ? n_out++ : -1;
    }
    reserve_outputs(c, n_out, true);
    c.n_outputs = n_out;
    c.n_batch_last = T;
    c.has_logits = !pooled || n_logits > 0;
    return n_out;
}

} // namespace

uint32_t coalesce_capacity(uint32_t n_ubatch, uint32_t n_ctx) {
    return std::max(n_ubatch, std::min(kCoalesceTokens, n_ctx));
}

void reserve_outputs(gptneox_context &c, int32_t n_out, bool logits) {
    const auto &hp = c.model->hp;
    if (logits && c.logits.size() < size_t(n_out) * size_t(hp.n_vocab)) c.logits.resize(size_t(n_out) * hp.n_vocab);
    if (c.params.embeddings && c.embd.size() < size_t(n_out) * size_t(hp.n_embd)) {
        c.embd.resize(size_t(n_out) * hp.n_embd);
    }
}

void synchronize(gptneox_context &c) {
    auto &q = c.pend;
    if (q.n == 0) return;
    const int64_t t0 = gptneox_time_us();
    token_span s;
    s.n = q.n;
    s.token = q.token.data();
    s.pos = q.pos.data();
    s.seq_first = q.seq_first.data();
    s.cell = q.cell.data();
    s.seq_mask = q.seq_mask.data();
    s.assigned = true;
    const int32_t last = q.last_begin;
    // the queue is empty from here on, whatever happens (run releases the cells if it fails)
    q.n = 0;
    q.last_begin = 0;
    std::fill(q.max_pos.begin(), q.max_pos.end(), -1);
    auto out = [&](int32_t i) { return i >= last ? c.output_ids[size_t(i - last)] : -1; };
    auto none = [](int32_t) { return false; };
    run(c, s, c.rs.n_ubatch, false, out, none);
    add_timing(c, t0, s.n);
}

gptneox_context &get_synced(const gptneox_context *ctx) {
    gptneox_context &c = get_ctx(ctx);
    synchronize(c);
    return c;
}

int32_t decode(gptneox_context &c, const gptneox_batch &b) {
    const int64_t t0 = gptneox_time_us();
    check_batch(c, b);
    const int32_t T = b.n_tokens;
    auto &q = c.pend;
    const bool pooled = c.params.embeddings && c.params.pooling_type != GPTNEOX_POOLING_TYPE_NONE;
    auto wants_logits = [&](int32_t i) { return b.logits ? b.logits[i] != 0 : (c.params.embeddings || i == T - 1); };

    const bool queueable = !c.params.embeddings && !c.params.abort_callback && T <= kCoalesceMaxCall &&
                           T <= c.rs.n_ubatch;
    // what cannot join the queue runs after it
    if (q.n > 0 && (!queueable || q.n + T > c.rs.n_ubatch || !order_allows(c, T, false))) synchronize(c);
    if (queueable && order_allows(c, T, false)) {
        if (!c.cache.find_slots(uint32_t(T), q.cell.data() + q.n)) return 1; // no room: nothing changed
        order_allows(c, T, true);
        for (int32_t i = 0; i < T; i++) {
            const size_t j = size_t(q.n + i);
            q.token[j] = b.token[i];
            q.pos[j] = c.pos[size_t(i)];
            q.seq_first[j] = c.seq_first[size_t(i)];
            q.seq_mask[j] = c.seq_mask[size_t(i)];
            // assigned now, so that later calls and seq_pos_max see them
            c.cache.assign(uint32_t(q.cell[j]), q.pos[j], q.seq_mask[j]);
        }
        q.last_begin = q.n;
        q.n += T;
        set_outputs(c, T, false, wants_logits);
        return 0;
    }

    // at once: the ubatch loop over this call alone
    if (!c.cache.find_slots(uint32_t(T), c.cells.data())) return 1; // no room: nothing changed
    set_outputs(c, T, pooled, wants_logits);
    token_span s;
    s.n = T;
    s.token = b.token;
    s.pos = c.pos.data();
    s.seq_first = c.seq_first.data();
    s.cell = c.cells.data();
    s.seq_mask = c.seq_mask.data();
    auto out = [&](int32_t i) { return c.output_ids[size_t(i)]; };
    run(c, s, int32_t(c.params.n_ubatch), pooled, out, wants_logits);
    if (pooled) pool_embeddings(c, T);
    add_timing(c, t0, T);
    return 0;
}

int32_t output_row(const gptneox_context &c, int32_t i) {
    if (i < 0) {
        const int32_t j = c.n_outputs + i;
        if (j < 0) fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "output index %d out of range (%d outputs)", i, c.n_outputs);
        return j;
    }
    if (i >= c.n_batch_last || c.output_ids[size_t(i)] < 0) {
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "batch token %d has no output in the last decode", i);
    }
    return c.output_ids[size_t(i)];
}

} // namespace gptneox
