#include "kv-cache/kv-cache.h"

#include <cstring>
#include <limits>
#include <new>

#include "common/status.h"

namespace gptneox {

namespace {
// Bytes of one head's vector of head_dim elements (Q8_0: blocks of 32, a 2-byte scale and 32 int8).
size_t vec_bytes(uint32_t type, int32_t head_dim) {
    if (type == GPTNEOX_TYPE_F32) return 4 * size_t(head_dim);
    if (type == GPTNEOX_TYPE_F16) return 2 * size_t(head_dim);
    if (type == GPTNEOX_TYPE_Q8_0) {
        if (head_dim % 32) {
            fail(GPTNEOX_STATUS_UNSUPPORTED, "a Q8_0 KV cache needs a head dim that is a multiple of 32 (this model's is %d)",
                 head_dim);
        }
        return size_t(head_dim / 32) * 34;
    }
    fail(GPTNEOX_STATUS_UNSUPPORTED, "KV cache type %u is not supported (F32 = 0, F16 = 1, Q8_0 = 8)", type);
}
} // namespace

void kv_cache::init(uint32_t n_ctx, int32_t n_layer, int32_t n_head, int32_t head_dim, uint32_t type_k,
                    uint32_t type_v) {
    if (n_ctx == 0 || n_layer <= 0 || n_head <= 0 || head_dim <= 0) {
        fail(GPTNEOX_STATUS_INVALID_ARGUMENT, "KV cache: bad size (n_ctx %u, n_layer %d, n_head %d, head_dim %d)",
             n_ctx, n_layer, n_head, head_dim);
    }
    k_head_bytes_ = vec_bytes(type_k, head_dim);
    v_head_bytes_ = vec_bytes(type_v, head_dim);
    const size_t vecs = size_t(n_layer) * size_t(n_head) * n_ctx;
    if (vecs > std::numeric_limits<size_t>::max() / (k_head_bytes_ + v_head_bytes_)) {
        fail(GPTNEOX_STATUS_NO_MEMORY, "KV cache too large");
    }
    k_bytes_ = vecs * k_head_bytes_;
    v_bytes_ = vecs * v_head_bytes_;
    // (4 KB pages, not huge_alloc: every head's region starts being written at once, so huge pages would
    // make the first decode zero nearly the whole cache -- measured 1 s for rinna-3.6B at n_ctx 2048; and
    // the head-major streams cross a page only every 4 KB)
    k_.reset(new (std::nothrow) uint8_t[k_bytes_]);
    v_.reset(new (std::nothrow) uint8_t[v_bytes_]);
    if (!k_ || !v_) {
        fail(GPTNEOX_STATUS_NO_MEMORY, "cannot allocate the KV cache (%zu bytes)", k_bytes_ + v_bytes_);
    }
    cells_.assign(n_ctx, kv_cell{});
    n_used_ = 0;
    touched_ = 0;
    n_layer_ = n_layer;
    n_head_ = n_head;
    type_k_ = type_k;
    type_v_ = type_v;
}

uint32_t kv_cache::used_end() const {
    for (uint32_t i = size(); i > 0; i--) {
        if (!cells_[i - 1].empty()) return i;
    }
    return 0;
}

bool kv_cache::find_slots(uint32_t n, int32_t *cells) const {
    if (n > size() - n_used_) return false;
    // First contiguous run of n free cells (the single-sequence append case lands here).
    uint32_t run = 0;
    for (uint32_t i = 0; i < size(); i++) {
        run = cells_[i].empty() ? run + 1 : 0;
        if (run == n) {
            for (uint32_t j = 0; j < n; j++) cells[j] = int32_t(i + 1 - n + j);
            return true;
        }
    }
    // Otherwise any n free cells, in cell order.
    uint32_t k = 0;
    for (uint32_t i = 0; i < size() && k < n; i++) {
        if (cells_[i].empty()) cells[k++] = int32_t(i);
    }
    return k == n;
}

void kv_cache::assign(uint32_t i, int32_t pos, uint64_t seq) {
    if (seq != 0 && i >= touched_) touched_ = i + 1;
    if (cells_[i].empty() && seq != 0) n_used_++;
    if (!cells_[i].empty() && seq == 0) n_used_--;
    cells_[i].pos = seq ? pos : -1;
    cells_[i].seq = seq;
}

void kv_cache::release(uint32_t i) { assign(i, -1, 0); }

void kv_cache::clear() {
    for (auto &c : cells_) c = kv_cell{};
    n_used_ = 0;
}

void kv_cache::zero_data() {
    // only rows that ever held data: untouched pages of a large cache stay uncommitted
    for (int32_t l = 0; l < n_layer_; l++) {
        for (int32_t h = 0; h < n_head_; h++) {
            std::memset(k_head(l, h), 0, touched_ * k_head_bytes_);
            std::memset(v_head(l, h), 0, touched_ * v_head_bytes_);
        }
    }
    touched_ = 0;
}

// One cell's vectors of every head of a layer (head h's cell 0 at head0 + h * n_ctx * vec bytes) as one row.
void kv_cache::gather(const uint8_t *head0, size_t vec, uint32_t i, void *dst) const {
    for (int32_t h = 0; h < n_head_; h++)
        std::memcpy(static_cast<uint8_t *>(dst) + size_t(h) * vec, head0 + (size_t(h) * cells_.size() + i) * vec, vec);
}
void kv_cache::scatter(uint8_t *head0, size_t vec, uint32_t i, const void *src) {
    for (int32_t h = 0; h < n_head_; h++)
        std::memcpy(head0 + (size_t(h) * cells_.size() + i) * vec, static_cast<const uint8_t *>(src) + size_t(h) * vec, vec);
}
void kv_cache::read_k_row(int32_t layer, uint32_t i, void *dst) const { gather(k_head(layer, 0), k_head_bytes_, i, dst); }
void kv_cache::write_k_row(int32_t layer, uint32_t i, const void *src) { scatter(k_head(layer, 0), k_head_bytes_, i, src); }
void kv_cache::read_v_row(int32_t layer, uint32_t i, void *dst) const { gather(v_head(layer, 0), v_head_bytes_, i, dst); }
void kv_cache::write_v_row(int32_t layer, uint32_t i, const void *src) { scatter(v_head(layer, 0), v_head_bytes_, i, src); }

void kv_cache::seq_rm(int32_t seq, int32_t p0, int32_t p1) {
    for (uint32_t i = 0; i < size(); i++) {
        const kv_cell &c = cells_[i];
        if (c.empty() || !in_range(c, p0, p1)) continue;
        if (seq < 0) {
            release(i);
        } else if (c.has(seq)) {
            assign(i, c.pos, c.seq & ~(uint64_t(1) << seq));
        }
    }
}

void kv_cache::seq_cp(int32_t src, int32_t dst, int32_t p0, int32_t p1) {
    if (src == dst) return;
    for (auto &c : cells_) {
        if (!c.empty() && c.has(src) && in_range(c, p0, p1)) c.seq |= uint64_t(1) << dst;
    }
}

void kv_cache::seq_keep(int32_t seq) {
    for (uint32_t i = 0; i < size(); i++) {
        const kv_cell &c = cells_[i];
        if (c.empty()) continue;
        if (c.has(seq)) {
            assign(i, c.pos, uint64_t(1) << seq);
        } else {
            release(i);
        }
    }
}

void kv_cache::seq_add(int32_t seq, int32_t p0, int32_t p1, int32_t delta, std::vector<uint32_t> &moved) {
    if (delta == 0) return;
    for (uint32_t i = 0; i < size(); i++) {
        kv_cell &c = cells_[i];
        if (c.empty() || !c.has(seq) || !in_range(c, p0, p1)) continue;
        const int64_t p = int64_t(c.pos) + delta;
        if (p < 0) {
            release(i);
        } else {
            c.pos = p > std::numeric_limits<int32_t>::max() ? std::numeric_limits<int32_t>::max() : int32_t(p);
            moved.push_back(i);
        }
    }
}

int32_t kv_cache::seq_pos_min(int32_t seq) const {
    int32_t r = -1;
    for (const auto &c : cells_) {
        if (!c.empty() && c.has(seq) && (r < 0 || c.pos < r)) r = c.pos;
    }
    return r;
}

int32_t kv_cache::seq_pos_max(int32_t seq) const {
    int32_t r = -1;
    for (const auto &c : cells_) {
        if (!c.empty() && c.has(seq) && c.pos > r) r = c.pos;
    }
    return r;
}

} // namespace gptneox
