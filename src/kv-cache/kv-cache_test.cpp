// KV cache bookkeeping against a naive reference (cells as position + std::set of sequences), driven
// by random operation sequences, plus directed checks of slot finding.
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "common/status.h"
#include "kv-cache/kv-cache.h"

namespace {

int g_pass = 0, g_fail = 0;

void check(bool ok, const char *what) {
    if (ok) {
        g_pass++;
    } else {
        g_fail++;
        std::printf("FAIL: %s\n", what);
    }
}

// The reference: llama.cpp's unified-cache semantics stated as plainly as possible.
struct ref_cell {
    int pos = -1;
    std::set<int> seqs;
};
struct ref_cache {
    std::vector<ref_cell> cells;
    static bool in(const ref_cell &c, int p0, int p1) { return c.pos >= p0 && (p1 < 0 || c.pos < p1); }
    void rm(int s, int p0, int p1) {
        for (auto &c : cells) {
            if (c.seqs.empty() || !in(c, p0, p1)) continue;
            if (s < 0) c.seqs.clear(); else c.seqs.erase(s);
            if (c.seqs.empty()) c.pos = -1;
        }
    }
    void cp(int a, int b, int p0, int p1) {
        for (auto &c : cells) if (c.seqs.count(a) && in(c, p0, p1)) c.seqs.insert(b);
    }
    void keep(int s) {
        for (auto &c : cells) {
            if (c.seqs.count(s)) {
                c.seqs = {s};
            } else {
                c.seqs.clear();
                c.pos = -1;
            }
        }
    }
    std::vector<uint32_t> add(int s, int p0, int p1, int d) {
        std::vector<uint32_t> moved;
        if (d == 0) return moved;
        for (size_t i = 0; i < cells.size(); i++) {
            auto &c = cells[i];
            if (!c.seqs.count(s) || !in(c, p0, p1)) continue;
            c.pos += d;
            if (c.pos < 0) {
                c.seqs.clear();
                c.pos = -1;
            } else {
                moved.push_back(uint32_t(i));
            }
        }
        return moved;
    }
    int pmin(int s) const {
        int r = -1;
        for (auto &c : cells) if (c.seqs.count(s) && (r < 0 || c.pos < r)) r = c.pos;
        return r;
    }
    int pmax(int s) const {
        int r = -1;
        for (auto &c : cells) if (c.seqs.count(s) && c.pos > r) r = c.pos;
        return r;
    }
};

bool same(const gptneox::kv_cache &kv, const ref_cache &ref) {
    uint32_t used = 0, end = 0;
    for (uint32_t i = 0; i < kv.size(); i++) {
        const auto &c = kv.cell(i);
        const auto &r = ref.cells[i];
        uint64_t mask = 0;
        for (int s : r.seqs) mask |= uint64_t(1) << s;
        if (c.seq != mask) return false;
        if (!r.seqs.empty() && c.pos != r.pos) return false;
        if (!c.empty()) {
            used++;
            end = i + 1;
        } else if (c.pos != -1) {
            return false;
        }
    }
    return used == kv.n_used() && end == kv.used_end();
}

void test_slots() {
    gptneox::kv_cache kv;
    kv.init(8, 2, 2, 3, GPTNEOX_TYPE_F16, GPTNEOX_TYPE_F32); // 2 layers, 2 heads of 3
    int32_t cells[8];
    check(kv.find_slots(3, cells) && cells[0] == 0 && cells[1] == 1 && cells[2] == 2, "append slots are 0,1,2");
    for (int i = 0; i < 3; i++) kv.assign(uint32_t(cells[i]), i, 1);
    check(kv.find_slots(2, cells) && cells[0] == 3 && cells[1] == 4, "next append is contiguous after them");
    kv.assign(5, 10, 2);                 // occupy 5: free cells are 3,4,6,7
    check(kv.find_slots(2, cells) && cells[0] == 3 && cells[1] == 4, "first contiguous run");
    check(kv.find_slots(3, cells) && cells[0] == 3 && cells[1] == 4 && cells[2] == 6,
          "no contiguous run of 3: first free cells in order");
    check(!kv.find_slots(5, cells), "5 cells do not fit in 4 free");
    check(kv.n_used() == 4 && kv.used_end() == 6, "n_used / used_end");
    check(kv.k_head_bytes() == 6 && kv.v_head_bytes() == 12 && kv.k_row_bytes() == 12 && kv.v_row_bytes() == 24,
          "head and row bytes for f16 K / f32 V");
    check(kv.k_head(0, 1) - kv.k_head(0, 0) == 8 * 6 && kv.k_head(1, 0) - kv.k_head(0, 0) == 2 * 8 * 6 &&
              kv.v_head(1, 1) - kv.v_head(0, 0) == 3 * 8 * 12,
          "K / V layout [layer][head][cell][head_dim]");
    // a row is the cell's heads in order: write one, read it back, and find its heads where they belong
    uint8_t row[24], back[24];
    for (int b = 0; b < 24; b++) row[b] = uint8_t(b + 1);
    kv.write_k_row(1, 5, row);
    kv.read_k_row(1, 5, back);
    check(std::memcmp(row, back, 12) == 0 && std::memcmp(kv.k_head(1, 1) + 5 * 6, row + 6, 6) == 0 &&
              std::memcmp(kv.k_head(1, 0) + 5 * 6, row, 6) == 0,
          "K row write / read round trip, head h at k_head(l, h) + i * k_head_bytes");
    kv.write_v_row(0, 2, row);
    kv.read_v_row(0, 2, back);
    check(std::memcmp(row, back, 24) == 0 && std::memcmp(kv.v_head(0, 1) + 2 * 12, row + 12, 12) == 0,
          "V row write / read round trip");
    kv.clear();
    kv.zero_data();
    bool zero = true;
    for (int l = 0; l < 2; l++) {
        for (uint32_t i = 0; i < 6; i++) {
            kv.read_k_row(l, i, back);
            for (size_t b = 0; b < kv.k_row_bytes(); b++) zero = zero && back[b] == 0;
            kv.read_v_row(l, i, back);
            for (size_t b = 0; b < kv.v_row_bytes(); b++) zero = zero && back[b] == 0;
        }
    }
    check(zero, "zero_data zeroes every row that held data");
    check(kv.n_used() == 0 && kv.used_end() == 0 && kv.seq_pos_max(0) == -1, "clear empties everything");

    auto refused = [](uint32_t type_k, int32_t head_dim, const char *words) {
        gptneox::kv_cache c;
        try {
            c.init(4, 1, 2, head_dim, type_k, GPTNEOX_TYPE_F16);
        } catch (const gptneox::error &e) {
            return e.status() == GPTNEOX_STATUS_UNSUPPORTED && std::strstr(e.what(), words) != nullptr;
        }
        return false;
    };
    check(refused(GPTNEOX_TYPE_Q8_0, 48, "multiple of 32"), "a Q8_0 cache with a head dim of 48 is refused");
    check(refused(GPTNEOX_TYPE_Q4_0, 64, "not supported"), "a Q4_0 cache is refused");

    // Q8_0: a head's vector of 64 elements is 2 blocks of 34 bytes
    kv.init(4, 2, 3, 64, GPTNEOX_TYPE_Q8_0, GPTNEOX_TYPE_F16);
    check(kv.k_head_bytes() == 68 && kv.v_head_bytes() == 128 && kv.k_row_bytes() == 3 * 68,
          "head and row bytes for a Q8_0 K / f16 V");
    check(kv.k_head(1, 2) - kv.k_head(0, 0) == (1 * 3 + 2) * 4 * 68, "Q8_0 K layout [layer][head][cell][blocks]");
}

void test_random() {
    std::mt19937 rng(42);
    for (int round = 0; round < 200; round++) {
        const uint32_t n_ctx = 1 + rng() % 40;
        const int n_seq = 1 + int(rng() % 4);
        gptneox::kv_cache kv;
        kv.init(n_ctx, 1, 1, 2, GPTNEOX_TYPE_F32, GPTNEOX_TYPE_F32);
        ref_cache ref;
        ref.cells.resize(n_ctx);
        std::vector<int> next(size_t(n_seq), 0);
        bool ok = true;
        for (int step = 0; step < 60 && ok; step++) {
            const int op = int(rng() % 7);
            const int s = int(rng() % n_seq), s2 = int(rng() % n_seq);
            const int p0 = int(rng() % 30) - 3, p1 = int(rng() % 34) - 3;
            if (op <= 1) { // append a few tokens of sequence s (like a decode)
                const uint32_t n = 1 + rng() % 5;
                std::vector<int32_t> cells(n);
                size_t free_ref = 0;
                for (auto &c : ref.cells) free_ref += c.seqs.empty();
                const bool fits = kv.find_slots(n, cells.data());
                if (fits != (free_ref >= n)) ok = false;
                if (fits) {
                    for (uint32_t j = 0; j < n; j++) {
                        if (!ref.cells[size_t(cells[j])].seqs.empty()) ok = false; // must be a free cell
                        kv.assign(uint32_t(cells[j]), next[size_t(s)], uint64_t(1) << s);
                        ref.cells[size_t(cells[j])].pos = next[size_t(s)];
                        ref.cells[size_t(cells[j])].seqs = {s};
                        next[size_t(s)]++;
                    }
                }
            } else if (op == 2) {
                const int ss = rng() % 4 == 0 ? -1 : s;
                kv.seq_rm(ss, p0 < 0 ? 0 : p0, p1 < 0 ? -1 : p1);
                ref.rm(ss, p0 < 0 ? 0 : p0, p1 < 0 ? -1 : p1);
            } else if (op == 3) {
                kv.seq_cp(s, s2, p0 < 0 ? 0 : p0, p1 < 0 ? -1 : p1);
                ref.cp(s, s2, p0 < 0 ? 0 : p0, p1 < 0 ? -1 : p1);
            } else if (op == 4) {
                if (rng() % 3 == 0) {
                    kv.seq_keep(s);
                    ref.keep(s);
                }
            } else if (op == 5) {
                const int d = int(rng() % 11) - 5;
                std::vector<uint32_t> moved;
                kv.seq_add(s, p0 < 0 ? 0 : p0, p1 < 0 ? -1 : p1, d, moved);
                if (moved != ref.add(s, p0 < 0 ? 0 : p0, p1 < 0 ? -1 : p1, d)) ok = false;
            } else {
                if (kv.seq_pos_min(s) != ref.pmin(s) || kv.seq_pos_max(s) != ref.pmax(s)) ok = false;
            }
            if (!same(kv, ref)) ok = false;
            if (ok && op == 6) next[size_t(s)] = ref.pmax(s) + 1;
        }
        if (!ok) {
            std::printf("round %d diverged from the reference\n", round);
            check(false, "random operations match the reference");
            return;
        }
    }
    check(true, "random operations match the reference (200 rounds)");
}

} // namespace

int main() {
    test_slots();
    test_random();
    std::printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
