// thread_pool tests: every (ith, nth) of every job runs exactly once, nth is capped at the pool size,
// a pool of 1 runs inline, results written by workers are visible to the caller after run() returns,
// and workers that went to sleep wake up again. Prints "N passed, M failed"; exits 1 on failure.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "threads/thread-pool.h"

using namespace gptneox;

namespace {

int g_pass = 0, g_fail = 0;

void check(bool ok, const char *what, int a = 0, int b = 0) {
    if (ok) {
        g_pass++;
        return;
    }
    g_fail++;
    if (g_fail <= 20) std::printf("FAIL %s (%d, %d)\n", what, a, b);
}

// Run `jobs` jobs asking for `want` threads each; check each slot ran once with the right nth.
void run_jobs(thread_pool &pool, int want, int jobs) {
    int expect_nth = want < 1 ? 1 : (want > pool.size() ? pool.size() : want);
    int bad_nth = 0, bad_count = 0;
    std::vector<std::atomic<int>> hits(64);
    std::vector<int> plain(64); // written without atomics: run() must publish it to the caller
    for (int j = 0; j < jobs; j++) {
        for (auto &h : hits) h.store(0);
        std::atomic<int> seen_nth{-1};
        std::thread::id caller = std::this_thread::get_id();
        std::atomic<int> ith0_on_caller{0};
        pool.run(want, [&](int ith, int nth) {
            hits[ith].fetch_add(1);
            plain[ith] = j;
            seen_nth.store(nth);
            if (ith == 0 && std::this_thread::get_id() == caller) ith0_on_caller.store(1);
        });
        bad_nth += seen_nth.load() != expect_nth;
        for (int i = 0; i < 64; i++) {
            int want_hits = i < expect_nth ? 1 : 0;
            bad_count += hits[i].load() != want_hits;
            if (i < expect_nth) bad_count += plain[i] != j;
        }
        bad_count += ith0_on_caller.load() != 1;
    }
    check(bad_nth == 0, "nth", want, pool.size());
    check(bad_count == 0, "each (ith, nth) exactly once, ith 0 on the caller", want, pool.size());
}

} // namespace

int main() {
    for (int size : {1, 2, 3, 4, 8}) {
        thread_pool pool(size);
        check(pool.size() == size, "size", pool.size(), size);
        for (int want : {-1, 0, 1, 2, 3, 4, 8, 100}) run_jobs(pool, want, 200);
        // after the workers fall asleep (spin timeout), jobs still run
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        run_jobs(pool, size, 3);
        // a parallel sum
        std::vector<long long> part(size, 0);
        pool.run(size, [&](int ith, int nth) {
            int64_t b, e;
            split_range(1000000, ith, nth, &b, &e);
            long long s = 0;
            for (int64_t i = b; i < e; i++) s += i;
            part[ith] = s;
        });
        long long total = 0;
        for (long long p : part) total += p;
        check(total == 999999LL * 1000000LL / 2, "parallel sum", size);
    }
    {
        thread_pool pool(0);
        check(pool.size() == 1, "n_threads < 1 means 1", pool.size());
        run_jobs(pool, 4, 10);
    }
    // split_range covers [0, n) exactly, in order, with sizes differing by at most 1
    int bad = 0;
    for (int64_t n : {0, 1, 5, 37, 100}) {
        for (int nth = 1; nth <= 9; nth++) {
            int64_t prev = 0, mn = n, mx = 0;
            for (int i = 0; i < nth; i++) {
                int64_t b, e;
                split_range(n, i, nth, &b, &e);
                bad += b != prev || e < b;
                prev = e;
                mn = e - b < mn ? e - b : mn;
                mx = e - b > mx ? e - b : mx;
            }
            bad += prev != n || mx - mn > 1;
        }
    }
    check(bad == 0, "split_range", bad);
    // construction/destruction with no job run, many times
    for (int i = 0; i < 50; i++) thread_pool p(3);
    check(true, "create/destroy");
    std::printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
