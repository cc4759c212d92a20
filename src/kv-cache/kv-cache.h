// The KV cache: n_ctx cells, each holding one token's K and V for every layer and head, its position and the
// set of sequences it belongs to (a 64-bit mask, bit s = sequence s). Cells are a unified pool shared by
// all sequences, as in llama.cpp: a cell copied into another sequence (seq_cp) is shared, not duplicated,
// so shifting its position (seq_add) moves it for every sequence that holds it.
//
// The bookkeeping (cells, find_slots, seq_*) is pure and unit-tested in kv-cache_test.cpp; the K rotation
// that seq_add implies is done by the caller (see rotate_k in arch/gptneox.h) on the cells it reports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace gptneox {

struct kv_cell {
    int32_t pos = -1;  // position in its sequence(s); -1 = empty
    uint64_t seq = 0;  // bit s set: the cell belongs to sequence s (empty cells have 0)
    bool empty() const { return seq == 0; }
    bool has(int32_t s) const { return (seq >> s) & 1u; }
};

constexpr int kMaxSeq = 64;

class kv_cache {
public:
    // Allocate n_ctx cells of n_layer x n_head K and V vectors of head_dim elements; type_k/type_v are
    // GPTNEOX_TYPE_F16, F32 or Q8_0 (head_dim % 32 == 0). Throws gptneox::error on a bad argument.
    void init(uint32_t n_ctx, int32_t n_layer, int32_t n_head, int32_t head_dim, uint32_t type_k, uint32_t type_v);

    uint32_t size() const { return static_cast<uint32_t>(cells_.size()); }
    uint32_t n_used() const { return n_used_; }
    const kv_cell &cell(uint32_t i) const { return cells_[i]; }
    // 1 + index of the last non-empty cell (0 if all are empty): attention scans cells [0, used_end()).
    uint32_t used_end() const;

    // Pick n free cells (ascending order) into cells[0..n): the first contiguous run of n free cells if
    // there is one, else the first n free cells. Returns false (and writes nothing) if fewer than n are free.
    bool find_slots(uint32_t n, int32_t *cells) const;
    // Occupy a free cell / empty a cell.
    void assign(uint32_t i, int32_t pos, uint64_t seq);
    void release(uint32_t i);

    // The gptneox_memory_* operations (ranges [p0, p1); p0 < 0 means 0, p1 < 0 means infinity).
    void clear();
    void seq_rm(int32_t seq, int32_t p0, int32_t p1);    // seq < 0: every sequence
    void seq_cp(int32_t src, int32_t dst, int32_t p0, int32_t p1);
    void seq_keep(int32_t seq);
    // Adds delta to the cells of seq in [p0, p1); a cell whose position would become negative is emptied.
    // The indices of the cells that moved (and still exist) are appended to `moved`.
    void seq_add(int32_t seq, int32_t p0, int32_t p1, int32_t delta, std::vector<uint32_t> &moved);
    int32_t seq_pos_min(int32_t seq) const; // -1 if the sequence holds no cell
    int32_t seq_pos_max(int32_t seq) const;

    // K / V storage: [n_layer][n_head][n_ctx][head_dim] elements of type_k / type_v. Head-major, so that
    // attention reads each head's vectors of consecutive cells as one stream: with cells as rows of all
    // heads, one head's vectors lay n_embd elements apart and decode at a long context read them at a
    // third of the memory bandwidth (measured: 12.9 vs 34 GB/s, 1900 cells of rinna-3.6B's shape).
    uint32_t type_k() const { return type_k_; }
    uint32_t type_v() const { return type_v_; }
    size_t k_head_bytes() const { return k_head_bytes_; } // one cell's K of one head in one layer
    size_t v_head_bytes() const { return v_head_bytes_; }
    size_t k_row_bytes() const { return k_head_bytes_ * size_t(n_head_); } // one cell's K of one layer
    size_t v_row_bytes() const { return v_head_bytes_ * size_t(n_head_); }
    int32_t n_layer() const { return n_layer_; }
    // Head h of layer `layer` in cell 0; cell i's vector follows at i * k_head_bytes() (v_head_bytes()).
    uint8_t *k_head(int32_t layer, int32_t h) { return k_.get() + head_offset(layer, h) * k_head_bytes_; }
    uint8_t *v_head(int32_t layer, int32_t h) { return v_.get() + head_offset(layer, h) * v_head_bytes_; }
    const uint8_t *k_head(int32_t layer, int32_t h) const { return k_.get() + head_offset(layer, h) * k_head_bytes_; }
    const uint8_t *v_head(int32_t layer, int32_t h) const { return v_.get() + head_offset(layer, h) * v_head_bytes_; }
    // Cell i's K (V) of one layer as one row of its heads in order (k_row_bytes()): state files, K rotation.
    void read_k_row(int32_t layer, uint32_t i, void *dst) const;
    void write_k_row(int32_t layer, uint32_t i, const void *src);
    void read_v_row(int32_t layer, uint32_t i, void *dst) const;
    void write_v_row(int32_t layer, uint32_t i, const void *src);
    void zero_data(); // zero the K/V bytes of every cell used since the last zero_data / init

private:
    void gather(const uint8_t *head0, size_t vec, uint32_t i, void *dst) const;
    void scatter(uint8_t *head0, size_t vec, uint32_t i, const void *src);
    size_t head_offset(int32_t layer, int32_t h) const { return (size_t(layer) * size_t(n_head_) + size_t(h)) * cells_.size(); }
    static bool in_range(const kv_cell &c, int32_t p0, int32_t p1) {
        return c.pos >= p0 && (p1 < 0 || c.pos < p1);
    }

    std::vector<kv_cell> cells_; // [n_ctx]
    uint32_t n_used_ = 0;        // non-empty cells
    uint32_t touched_ = 0;       // 1 + highest cell index assigned since init / zero_data
    int32_t n_layer_ = 0, n_head_ = 0;
    uint32_t type_k_ = 1, type_v_ = 1;
    size_t k_head_bytes_ = 0, v_head_bytes_ = 0;
    size_t k_bytes_ = 0, v_bytes_ = 0;
    std::unique_ptr<uint8_t[]> k_; // [n_layer][n_head][n_ctx][head_dim] of type_k (not zeroed: pages come lazily)
    std::unique_ptr<uint8_t[]> v_; // [n_layer][n_head][n_ctx][head_dim] of type_v
};

} // namespace gptneox
