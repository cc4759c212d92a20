// Unit tests of the forward-pass helpers against straightforward double-precision references written
// the way Hugging Face states them (LayerNorm, rotate_half RoPE, softmax, erf GELU).
#include <cmath>
#include <cstring>
#include <cstdio>
#include <random>
#include <vector>

#include "arch/gptneox.h"
#include "common/test-check.h"

using namespace gptneox_test;

namespace {

bool close(double a, double b, double rel, double abs_tol = 1e-7) {
    return std::fabs(a - b) <= abs_tol + rel * std::fabs(b);
}

std::vector<float> randn(std::mt19937 &rng, size_t n, float scale = 1.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto &x : v) x = d(rng);
    return v;
}

void test_layer_norm(std::mt19937 &rng) {
    for (int64_t n : {1, 7, 64, 513}) {
        auto x = randn(rng, size_t(n), 3.0f), w = randn(rng, size_t(n)), b = randn(rng, size_t(n));
        for (auto &v : x) v += 5.0f; // a large mean exercises the two-pass variance
        std::vector<float> out(static_cast<size_t>(n));
        gptneox::layer_norm(out.data(), x.data(), w.data(), b.data(), n, 1e-5f);
        double mean = 0, var = 0;
        for (float v : x) mean += v;
        mean /= double(n);
        for (float v : x) var += (v - mean) * (v - mean);
        var /= double(n); // biased, as torch.nn.LayerNorm
        bool ok = true;
        for (int64_t i = 0; i < n; i++) {
            const double ref = (x[size_t(i)] - mean) / std::sqrt(var + 1e-5) * w[size_t(i)] + b[size_t(i)];
            if (!close(out[size_t(i)], ref, 1e-5, 1e-5)) {
                check(false, "layer_norm value", out[size_t(i)], ref);
                ok = false;
                break;
            }
        }
        check(ok, "layer_norm");
    }
}

// HF: q_embed = q * cos + rotate_half(q) * sin on the first rd dims, emb = cat(freqs, freqs).
void rope_ref(std::vector<double> &x, int n_head, int hd, int rd, double pos, double base) {
    for (int h = 0; h < n_head; h++) {
        double *xh = x.data() + h * hd;
        std::vector<double> rot(static_cast<size_t>(rd)), out(static_cast<size_t>(rd));
        for (int i = 0; i < rd; i++) rot[size_t(i)] = i < rd / 2 ? -xh[i + rd / 2] : xh[i - rd / 2];
        for (int i = 0; i < rd; i++) {
            const double inv = std::pow(base, -double(2 * (i % (rd / 2))) / rd);
            const double th = pos * inv;
            out[size_t(i)] = xh[i] * std::cos(th) + rot[size_t(i)] * std::sin(th);
        }
        for (int i = 0; i < rd; i++) xh[i] = out[size_t(i)];
    }
}

void test_rope(std::mt19937 &rng) {
    struct cfg { int n_head, hd, rd; float pos, base; };
    for (cfg c : {cfg{2, 8, 8, 3, 10000}, cfg{3, 16, 4, 17, 10000}, cfg{4, 64, 16, 200, 10000},
                  cfg{1, 80, 20, 1023, 5000}, cfg{2, 8, 0, 5, 10000}}) {
        auto x = randn(rng, size_t(c.n_head * c.hd));
        std::vector<double> ref(x.begin(), x.end());
        std::vector<float> inv(size_t(c.rd / 2 + 1));
        gptneox::rope_inv_freq(inv.data(), c.rd, c.base);
        gptneox::rope_neox(x.data(), c.n_head, c.hd, c.rd, c.pos, inv.data());
        if (c.rd > 0) rope_ref(ref, c.n_head, c.hd, c.rd, c.pos, c.base);
        bool ok = true;
        for (size_t i = 0; i < x.size(); i++) {
            // f32 angles (as HF computes them) differ from the double reference by ~pos * 1e-7
            if (!close(x[i], ref[i], 1e-4, 1e-4 * (1 + c.pos * 1e-3))) {
                check(false, "rope value", x[i], ref[i]);
                ok = false;
                break;
            }
        }
        check(ok, "rope vs rotate_half reference");
        // the forward pass's split form (angles once per token) is the same arithmetic
        auto y = randn(rng, size_t(c.n_head * c.hd));
        auto z = y;
        std::vector<float> cs(size_t(c.rd + 2));
        gptneox::rope_neox(y.data(), c.n_head, c.hd, c.rd, c.pos, inv.data());
        gptneox::rope_angles(cs.data(), c.rd, c.pos, inv.data());
        gptneox::rope_neox_cs(z.data(), c.n_head, c.hd, c.rd, cs.data());
        check(std::memcmp(y.data(), z.data(), y.size() * sizeof(float)) == 0, "rope_neox_cs == rope_neox (bits)");
    }
    // rotations compose: rope(p) then rope(d) == rope(p + d) (what seq_add relies on)
    {
        const int H = 2, hd = 16, rd = 8;
        std::vector<float> inv(rd / 2);
        gptneox::rope_inv_freq(inv.data(), rd, 10000.0f);
        auto a = randn(rng, H * hd);
        auto b = a;
        gptneox::rope_neox(a.data(), H, hd, rd, 7.0f, inv.data());
        gptneox::rope_neox(a.data(), H, hd, rd, 5.0f, inv.data());
        gptneox::rope_neox(b.data(), H, hd, rd, 12.0f, inv.data());
        bool ok = true;
        for (size_t i = 0; i < a.size(); i++) ok = ok && close(a[i], b[i], 1e-5, 1e-5);
        check(ok, "rope composes");
        // and a negative shift undoes a positive one
        auto orig = randn(rng, H * hd);
        auto c = orig;
        gptneox::rope_neox(c.data(), H, hd, rd, 12.0f, inv.data());
        gptneox::rope_neox(c.data(), H, hd, rd, -12.0f, inv.data());
        ok = true;
        for (size_t i = 0; i < c.size(); i++) ok = ok && close(c[i], orig[i], 1e-5, 1e-5);
        check(ok, "rope by -d undoes rope by d");
    }
}

void test_softmax(std::mt19937 &rng) {
    for (float scale : {1.0f, 50.0f, 1000.0f}) {
        auto x = randn(rng, 37, scale);
        x[3] = -INFINITY; // a masked entry
        std::vector<double> ref(x.size());
        double mx = -INFINITY, sum = 0;
        for (float v : x) mx = std::max(mx, double(v));
        for (size_t i = 0; i < x.size(); i++) sum += (ref[i] = std::exp(double(x[i]) - mx));
        gptneox::softmax(x.data(), int64_t(x.size()));
        bool ok = x[3] == 0.0f;
        for (size_t i = 0; i < x.size(); i++) ok = ok && close(x[i], ref[i] / sum, 1e-5, 1e-7) && std::isfinite(x[i]);
        check(ok, "softmax (large inputs, masked entry)");
    }
    std::vector<float> all_masked(4, -INFINITY);
    gptneox::softmax(all_masked.data(), 4);
    check(all_masked[0] == 0.0f && all_masked[3] == 0.0f, "softmax all masked gives zeros");
}

void test_gelu() {
    std::vector<float> x;
    for (float v = -12.0f; v <= 12.0f; v += 0.37f) x.push_back(v);
    std::vector<float> y = x;
    gptneox::gelu(y.data(), int64_t(y.size()));
    bool ok = true;
    for (size_t i = 0; i < x.size(); i++) {
        const double ref = 0.5 * x[i] * (1.0 + std::erf(double(x[i]) / std::sqrt(2.0)));
        if (!close(y[i], ref, 1e-6, 1e-7)) {
            check(false, "gelu value", y[i], ref);
            ok = false;
            break;
        }
    }
    check(ok, "gelu is the exact erf form");
    // it must not be the tanh approximation: they differ by ~1e-4 near x = -2.5
    float v = -2.5f;
    gptneox::gelu(&v, 1);
    const double tanh_v = 0.5 * -2.5 * (1.0 + std::tanh(0.7978845608 * (-2.5 + 0.044715 * -15.625)));
    check(std::fabs(v - tanh_v) > 1e-5, "gelu differs from the tanh approximation", v, tanh_v);
}

// set_n_threads past the creation count: every thread gets an attention row and scratch slot (attention
// uses min(threads, slots) threads, so a table left small would silently cap it).
void test_grow_threads() {
    gptneox::hparams hp;
    hp.n_embd = 64;
    hp.n_head = 4;
    hp.head_dim = 16;
    hp.n_rot = 16;
    hp.n_ff = 256;
    gptneox::run_state rs;
    rs.init(hp, 8, 100, 1, 10000.0f);
    const size_t slot = rs.attn_slot_floats;
    check(rs.attn_slots == 1 && rs.scores.size() == 100, "one thread at creation", rs.attn_slots);
    rs.grow_threads(3, 100);
    check(rs.attn_slots == 3, "three slots after growing", rs.attn_slots);
    check(rs.attn_work.size() >= 3 * slot + 16 && rs.scores.size() == 300, "room for three threads",
          double(rs.attn_work.size()), double(rs.scores.size()));
    rs.grow_threads(2, 100);
    check(rs.attn_slots == 3 && rs.scores.size() == 300, "never shrinks", rs.attn_slots);
}

} // namespace

int main() {
    std::mt19937 rng(1234);
    test_layer_norm(rng);
    test_rope(rng);
    test_softmax(rng);
    test_gelu();
    test_grow_threads();
    return report("");
}
