// Sampler tests through the C API (no model needed): every sampler in long chains on random logits
// (selected index in range, candidates only shrink, ids stay distinct), chain add/get/remove/clone,
// a foreign interface wrapped with gptneox_sampler_init, seeded reproducibility, and invalid arguments
// returning errors instead of crashing. Meant to run under ASan/UBSan (make asan-ctest).
// Prints "N passed, M failed"; exits 1 on failure.
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gptneox.h"

namespace {

int g_pass = 0, g_fail = 0;

void check(bool ok, const char *what, long a = 0) {
    if (ok) {
        g_pass++;
        return;
    }
    g_fail++;
    if (g_fail <= 20) std::printf("FAIL %s (%ld)\n", what, a);
}

std::vector<gptneox_token_data> random_candidates(std::mt19937 &rng, int n) {
    std::normal_distribution<float> nd(0.0f, 3.0f);
    std::vector<gptneox_token_data> v((size_t)n);
    for (int i = 0; i < n; ++i) v[(size_t)i] = {i, nd(rng), 0.0f};
    if (n > 3) v[1].logit = -INFINITY;
    return v;
}

// A chain of every non-terminal sampler followed by `last`.
gptneox_sampler *full_chain(gptneox_sampler *last, uint32_t seed) {
    gptneox_sampler *c = gptneox_sampler_chain_init(gptneox_sampler_chain_default_params());
    const gptneox_logit_bias bias[2] = {{3, 2.0f}, {100000, 1.0f}};
    gptneox_sampler_chain_add(c, gptneox_sampler_init_logit_bias(50, 2, bias));
    gptneox_sampler_chain_add(c, gptneox_sampler_init_penalties(16, 1.2f, 0.1f, 0.1f));
    gptneox_sampler_chain_add(c, gptneox_sampler_init_dry(nullptr, 0, 0.8f, 1.75f, 2, 32, nullptr, 0));
    gptneox_sampler_chain_add(c, gptneox_sampler_init_top_n_sigma(2.0f));
    gptneox_sampler_chain_add(c, gptneox_sampler_init_top_k(30));
    gptneox_sampler_chain_add(c, gptneox_sampler_init_typical(0.9f, 1));
    gptneox_sampler_chain_add(c, gptneox_sampler_init_top_p(0.9f, 1));
    gptneox_sampler_chain_add(c, gptneox_sampler_init_min_p(0.05f, 1));
    gptneox_sampler_chain_add(c, gptneox_sampler_init_xtc(0.5f, 0.1f, 1, seed));
    gptneox_sampler_chain_add(c, gptneox_sampler_init_temp_ext(0.8f, 0.3f, 1.0f));
    gptneox_sampler_chain_add(c, last);
    return c;
}

std::vector<gptneox_token> run(gptneox_sampler *c, std::mt19937 &rng, int steps, int n_vocab) {
    std::vector<gptneox_token> out;
    for (int s = 0; s < steps; ++s) {
        auto cand = random_candidates(rng, n_vocab);
        gptneox_token_data_array cur{cand.data(), cand.size(), -1, false};
        gptneox_sampler_apply(c, &cur);
        const bool in_range = cur.selected >= 0 && (size_t)cur.selected < cur.size;
        check(in_range, "selected in range", (long)cur.selected);
        check(cur.data >= cand.data() && cur.data + cur.size <= cand.data() + cand.size(), "candidates inside");
        std::set<gptneox_token> ids;
        for (size_t i = 0; i < cur.size; ++i) ids.insert(cur.data[i].id);
        check(ids.size() == cur.size, "distinct ids");
        if (!in_range) break;
        const gptneox_token t = cur.data[cur.selected].id;
        gptneox_sampler_accept(c, t);
        out.push_back(t);
    }
    return out;
}

int g_foreign_applies = 0;
void foreign_apply(gptneox_sampler *, gptneox_token_data_array *cur) {
    ++g_foreign_applies;
    for (size_t i = 0; i < cur->size; ++i)
        if (cur->data[i].id % 2 == 0) cur->data[i].logit = -INFINITY;
}

} // namespace

int main() {
    const int n_vocab = 500;
    for (uint32_t seed : {1u, 2u, 77u}) {
        for (int kind = 0; kind < 4; ++kind) {
            auto make_last = [&]() -> gptneox_sampler * {
                switch (kind) {
                case 0: return gptneox_sampler_init_dist(seed);
                case 1: return gptneox_sampler_init_greedy();
                case 2: return gptneox_sampler_init_mirostat(n_vocab, seed, 5.0f, 0.1f, 100);
                default: return gptneox_sampler_init_mirostat_v2(seed, 5.0f, 0.1f);
                }
            };
            std::mt19937 r1(seed), r2(seed);
            gptneox_sampler *a = full_chain(make_last(), seed), *b = full_chain(make_last(), seed);
            check(gptneox_sampler_chain_n(a) == 11, "chain n", gptneox_sampler_chain_n(a));
            auto ta = run(a, r1, 60, n_vocab), tb = run(b, r2, 60, n_vocab);
            check(ta == tb && ta.size() == 60, "same seed, same tokens", kind);
            // clone mid-way continues identically
            gptneox_sampler *c = gptneox_sampler_clone(a);
            check(c != nullptr, "clone");
            std::mt19937 r3(seed + 1000), r4(seed + 1000);
            if (c) check(run(a, r3, 20, n_vocab) == run(c, r4, 20, n_vocab), "clone continues identically", kind);
            check(gptneox_sampler_get_seed(a) == seed, "seed (greedy chains: xtc's)", kind);
            gptneox_sampler_reset(a);
            gptneox_sampler_free(a);
            gptneox_sampler_free(b);
            gptneox_sampler_free(c);
        }
    }

    // foreign interface, remove without free
    static const gptneox_sampler_i foreign_iface = {nullptr, nullptr, foreign_apply, nullptr, nullptr, nullptr, {}};
    gptneox_sampler *chain = gptneox_sampler_chain_init(gptneox_sampler_chain_default_params());
    gptneox_sampler *f = gptneox_sampler_init(&foreign_iface, nullptr);
    check(gptneox_sampler_chain_add(chain, f) == 0, "add foreign");
    gptneox_sampler *greedy = gptneox_sampler_init_greedy();
    gptneox_sampler_chain_add(chain, greedy);
    std::mt19937 rng(5);
    for (int s = 0; s < 10; ++s) {
        auto cand = random_candidates(rng, 64);
        gptneox_token_data_array cur{cand.data(), cand.size(), -1, false};
        gptneox_sampler_apply(chain, &cur);
        check(cur.selected >= 0 && cur.data[cur.selected].id % 2 == 1, "foreign sampler applied");
    }
    check(g_foreign_applies == 10, "foreign apply calls", g_foreign_applies);
    check(std::string(gptneox_sampler_name(f)) == "?", "foreign name");
    gptneox_sampler *cl = gptneox_sampler_clone(chain); // foreign with NULL ctx: same iface, NULL ctx
    check(cl != nullptr, "clone with a foreign sampler of NULL ctx");
    gptneox_sampler_free(cl);
    check(gptneox_sampler_chain_remove(chain, 0) == f, "remove returns the sampler");
    check(gptneox_sampler_chain_get(chain, 0) == greedy, "get after remove");
    check(gptneox_sampler_chain_remove(chain, 5) == nullptr, "remove out of range");
    check(gptneox_sampler_chain_add(chain, chain) < 0, "a chain cannot hold itself");
    check(gptneox_sampler_chain_add(greedy, f) < 0, "add to a non-chain");
    gptneox_sampler_free(chain);
    gptneox_sampler_free(f); // still ours after remove

    // invalid arguments
    check(gptneox_sampler_init_mirostat(0, 1, 5, 0.1f, 100) == nullptr, "mirostat n_vocab 0");
    check(gptneox_sampler_init_logit_bias(10, 3, nullptr) == nullptr, "logit bias NULL");
    check(gptneox_sampler_init_penalties(8, NAN, 0, 0) == nullptr, "penalties NaN");
    const char *breakers[1] = {"\n"};
    check(gptneox_sampler_init_dry(nullptr, 0, 0.8f, 1.75f, 2, 32, breakers, 1) == nullptr, "dry breakers need a vocab");
    check(gptneox_sampler_init_grammar(nullptr, "root ::= \"a\"", "root") == nullptr, "grammar without vocab");
    check(gptneox_last_status() == GPTNEOX_STATUS_INVALID_ARGUMENT, "grammar status");
    check(gptneox_sampler_sample(nullptr, nullptr, -1) == GPTNEOX_TOKEN_NULL, "sample NULL");
    // empty candidate arrays
    for (gptneox_sampler *s : {gptneox_sampler_init_dist(1), gptneox_sampler_init_top_p(0.5f, 1),
                               gptneox_sampler_init_typical(0.5f, 1), gptneox_sampler_init_mirostat_v2(1, 5, 0.1f),
                               gptneox_sampler_init_min_p(0.1f, 1), gptneox_sampler_init_temp(0.0f)}) {
        gptneox_token_data_array cur{nullptr, 0, -1, false};
        gptneox_sampler_apply(s, &cur);
        check(cur.size == 0 && cur.selected == -1, "empty candidates");
        gptneox_sampler_free(s);
    }

    std::printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
