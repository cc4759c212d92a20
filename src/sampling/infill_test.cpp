// Infill sampler tests on a small sentencepiece vocabulary built here: llama.h's own example ("hel" 0.5,
// "hell" 0.2, "hello" 0.1, "dummy" 0.1 -> "hel" wins), the EOG rule, the single-EOS fallback, and random
// candidate sets against a scalar reference of the rules written in this file (see infill.cpp's header).
// Prints "N passed, M failed"; exits 1 on failure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "gptneox.h"
#include "sampling/sampling.h"
#include "vocab/vocab-impl.h"
#include "vocab/vocab.h"

namespace {

int g_pass = 0, g_fail = 0;

void check(bool ok, const std::string &what) {
    if (ok) {
        g_pass++;
        return;
    }
    g_fail++;
    if (g_fail <= 30) std::printf("FAIL %s\n", what.c_str());
}

const std::string SP = "\xE2\x96\x81"; // U+2581

struct cand {
    int32_t id;
    float logit, p;
};

// The rules, on a vector (text[id] = piece without special tokens; eog[id]).
std::vector<cand> reference(std::vector<cand> c, const std::vector<std::string> &text,
                            const std::vector<bool> &eog, int32_t eos) {
    std::sort(c.begin(), c.end(), [](const cand &a, const cand &b) {
        return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    });
    float sum = 0.0f;
    for (cand &x : c) sum += (x.p = std::exp(x.logit - c[0].logit));
    for (cand &x : c) x.p /= sum;
    float pt = 0.0f, pe = 0.0f;
    for (const cand &x : c) (eog[(size_t)x.id] ? pe : pt) += x.p;
    auto renorm = [](std::vector<cand> &v) {
        float s = 0.0f;
        for (const cand &x : v) s += x.p;
        for (cand &x : v) x.p /= s;
    };
    if (3.0f * pe * (float)c.size() > pt) {
        std::vector<cand> out;
        for (const cand &x : c)
            if (eog[(size_t)x.id]) out.push_back(x);
        renorm(out);
        return out;
    }
    const float ninf = -INFINITY;
    for (size_t a = 0; a < c.size(); ++a)
        for (size_t b = 0; b < c.size() && c[a].logit != ninf; ++b) {
            if (a == b || c[b].logit == ninf) continue;
            const std::string &ta = text[(size_t)c[a].id], &tb = text[(size_t)c[b].id];
            if (ta.empty() || tb.compare(0, ta.size(), ta) != 0) continue;
            const size_t hi = c[b].p > c[a].p ? b : a, lo = hi == a ? b : a;
            c[hi].p += c[lo].p;
            c[lo].p = 0.0f;
            c[lo].logit = ninf;
        }
    auto keep = [&](const std::vector<cand> &v, float t, size_t &n_txt) {
        std::vector<cand> out;
        n_txt = 0;
        for (const cand &x : v) {
            if (!eog[(size_t)x.id] && x.p < t) continue;
            n_txt += eog[(size_t)x.id] ? 0 : 1;
            out.push_back(x);
        }
        return out;
    };
    size_t n_txt = 0;
    std::vector<cand> k1 = keep(c, 0.2f, n_txt);
    if (n_txt == 0) return {{eos, 1.0f, k1.empty() ? c[0].p : k1[0].p}};
    renorm(k1);
    std::vector<cand> k2 = keep(k1, (float)(1.0 / double(n_txt + 1)), n_txt);
    renorm(k2);
    return k2;
}

std::vector<cand> run(gptneox_sampler *s, const std::vector<cand> &in) {
    std::vector<gptneox_token_data> d;
    for (const cand &x : in) d.push_back({x.id, x.logit, 0.0f});
    gptneox_token_data_array a{d.data(), d.size(), -1, false};
    gptneox_sampler_apply(s, &a);
    std::vector<cand> out;
    for (size_t i = 0; i < a.size; ++i) out.push_back({a.data[i].id, a.data[i].logit, a.data[i].p});
    return out;
}

bool same(const std::vector<cand> &a, const std::vector<cand> &b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].id != b[i].id || a[i].logit != b[i].logit || std::fabs(a[i].p - b[i].p) > 1e-6f) return false;
    return true;
}

} // namespace

int main() {
    using gptneox::SP_CONTROL;
    using gptneox::SP_NORMAL;
    using gptneox::SP_UNKNOWN;
    gptneox::vocab_source s;
    s.model = "llama";
    s.sp_model_type = "unigram";
    const std::vector<std::string> words = {"hel", "hell", "hello", "dummy", "he", "w", "wor", "world", "x", "yz"};
    std::vector<std::string> text;
    auto add = [&](const std::string &t, int32_t type, const std::string &txt) {
        s.tokens.push_back(t);
        s.scores.push_back(-1.0f);
        s.types.push_back(type);
        text.push_back(txt);
        return (int32_t)s.tokens.size() - 1;
    };
    s.unk = add("<unk>", SP_UNKNOWN, "");
    s.bos = add("<s>", SP_CONTROL, "");
    s.eos = add("</s>", SP_CONTROL, "");
    for (const std::string &w : words) add(SP + w, SP_NORMAL, " " + w);
    for (const std::string &w : words) add(w, SP_NORMAL, w);
    gptneox::vocab v;
    v.load_from(std::move(s));
    gptneox_vocab gv{&v};
    const int32_t n = v.n_tokens(), eos = v.eos();
    std::vector<bool> eog((size_t)n);
    for (int32_t i = 0; i < n; ++i) eog[(size_t)i] = v.is_eog(i);
    for (int32_t i = 1; i < n; ++i) check(v.piece(i, false) == text[(size_t)i], "piece of " + std::to_string(i));
    text[0] = v.piece(0, false); // <unk> (not used as a candidate)
    check(gptneox_sampler_init_infill(nullptr) == nullptr, "NULL vocab is an error");

    gptneox_sampler *smp = gptneox_sampler_init_infill(&gv);
    check(smp && std::string(gptneox_sampler_name(smp)) == "infill", "name");
    const int32_t hel = 3, hell = 4, hello = 5, dummy = 6; // " hel" ...

    // llama.h's example: p 0.5 / 0.2 / 0.1 / 0.1 (+ a tiny EOS) -> " hel" absorbs " hell" and " hello".
    std::vector<cand> ex = {{hel, std::log(0.5f), 0}, {hell, std::log(0.2f), 0}, {hello, std::log(0.1f), 0},
                            {dummy, std::log(0.1f), 0}, {eos, std::log(0.001f), 0}};
    std::vector<cand> got = run(smp, ex), want = reference(ex, text, eog, eos);
    check(same(got, want), "llama.h example vs reference");
    check(!got.empty() && got[0].id == hel, "llama.h example: hel first");
    // EOG rule: a likely EOS leaves only EOS.
    std::vector<cand> e = {{eos, 1.0f, 0}, {hel, 0.5f, 0}, {dummy, 0.4f, 0}};
    got = run(smp, e);
    check(got.size() == 1 && got[0].id == eos && std::fabs(got[0].p - 1.0f) < 1e-6f, "EOG rule");
    // Flat unrelated text: no candidate reaches 0.2 -> the single EOS (logit 1).
    std::vector<cand> f;
    for (int32_t id : {dummy, 8 /* " w" */, 11 /* " x" */, 12 /* " yz" */, 16 /* "dummy" */, 21 /* "x" */})
        f.push_back({id, 0.0f, 0});
    got = run(smp, f);
    check(got.size() == 1 && got[0].id == eos && got[0].logit == 1.0f, "single EOS");
    check(same(got, reference(f, text, eog, eos)), "single EOS vs reference");

    std::mt19937 rng(7);
    for (int t = 0; t < 2000; ++t) {
        std::vector<int32_t> ids;
        for (int32_t i = 2; i < n; ++i)
            if (rng() % 3 == 0) ids.push_back(i);
        if (ids.empty()) ids.push_back(eos);
        std::normal_distribution<float> nd(0.0f, 0.5f + float(rng() % 4));
        std::vector<cand> c;
        for (int32_t id : ids) c.push_back({id, nd(rng) - (id == eos ? float(rng() % 6) : 0.0f), 0});
        got = run(smp, c);
        want = reference(c, text, eog, eos);
        check(same(got, want), "random case " + std::to_string(t));
        gptneox_sampler *cl = gptneox_sampler_clone(smp); // clones share the vocabulary copy
        check(cl && same(run(cl, c), want), "clone, case " + std::to_string(t));
        gptneox_sampler_free(cl);
    }
    gptneox_sampler_free(smp);
    std::printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
