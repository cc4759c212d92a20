// Persistent worker pool. A job is published by writing the job slot and storing a new generation in
// state_ (release); workers spin on it with _mm_pause for a while (decode steps come back-to-back, so
// the wake-up is normally caught there, in well under a microsecond), then yield, then sleep on cv_.
// The caller takes the mutex and notifies only if some worker has registered itself in `sleepers_`:
// the seq_cst pairs (state_ then sleepers_ on the caller's side, sleepers_ then state_ on the worker's)
// guarantee that either the caller sees the sleeper or the sleeper sees the job. Completion mirrors
// it: finished parts are counted in done_, and the finisher of the last part notifies only if the
// caller has announced (caller_sleeping_) that it went to sleep.
#include "threads/thread-pool.h"

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GPTNEOX_CPU_RELAX() _mm_pause()
#else
#define GPTNEOX_CPU_RELAX() std::this_thread::yield()
#endif

namespace gptneox {
namespace {
// Spin with pause (some tens of microseconds: the gap between two parallel regions of a forward pass
// is far shorter), then yield a while (another thread of an oversubscribed machine runs, and the next
// job is still caught soon), then sleep.
constexpr int kSpinIterations = 4096;
constexpr int kYieldIterations = 128;
constexpr int kMaxThreads = 4095; // nth and part indices have 12 bits in state_

constexpr uint64_t generation_of(uint64_t s) { return s >> 24; }
constexpr int nth_of(uint64_t s) { return static_cast<int>((s >> 12) & 0xFFF); }
constexpr int next_of(uint64_t s) { return static_cast<int>(s & 0xFFF); }

// Wait until pred() holds, spinning then yielding; false if it still does not hold afterwards.
template <typename P> inline bool spin_until(P pred) {
    for (int i = 0; i < kSpinIterations; i++) {
        if (pred()) return true;
        GPTNEOX_CPU_RELAX();
    }
    for (int i = 0; i < kYieldIterations; i++) {
        if (pred()) return true;
        std::this_thread::yield();
    }
    return pred();
}
} // namespace

thread_pool::thread_pool(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > kMaxThreads) n_threads = kMaxThreads;
    workers_.reserve(n_threads - 1);
    for (int i = 1; i < n_threads; i++) workers_.emplace_back([this] { worker_main(); });
}

thread_pool::~thread_pool() {
    stop_.store(true, std::memory_order_seq_cst);
    { std::lock_guard<std::mutex> lock(mutex_); } // a sleeper is either waiting or has not checked yet
    cv_.notify_all();
    for (std::thread &t : workers_) t.join();
}

// Claim the next part of the job published as generation gen; -1 if it is over or fully claimed.
// On success the job slot is that generation's (the CAS reads the publishing store's release sequence).
int thread_pool::claim(uint64_t gen, int *nth) {
    uint64_t s = state_.load(std::memory_order_acquire);
    while (generation_of(s) == gen && next_of(s) < nth_of(s)) {
        if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
            *nth = nth_of(s);
            return next_of(s);
        }
    }
    return -1;
}

void thread_pool::finish_part() {
    if (done_.fetch_add(1, std::memory_order_seq_cst) == last_part_ - 1 &&
        caller_sleeping_.load(std::memory_order_seq_cst)) {
        { std::lock_guard<std::mutex> lock(mutex_); } // the caller is either waiting or has not checked yet
        done_cv_.notify_one();
    }
}

void thread_pool::run_impl(int n, job_fn fn, void *arg) {
    int nth = n < 1 ? 1 : (n > size() ? size() : n);
    if (nth == 1) {
        fn(arg, 0, 1);
        return;
    }
    job_ = fn;
    job_arg_ = arg;
    last_part_ = nth - 1;
    done_.store(0, std::memory_order_relaxed);
    const uint64_t gen = generation_of(state_.load(std::memory_order_relaxed)) + 1;
    // part 0 is the caller's: the next unclaimed part is 1
    state_.store(gen << 24 | static_cast<uint64_t>(nth) << 12 | 1u, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
        { std::lock_guard<std::mutex> lock(mutex_); } // a sleeper is either waiting or has not checked yet
        cv_.notify_all();
    }
    fn(arg, 0, nth);
    // parts no worker has claimed yet: run them here rather than wait for a worker to be scheduled
    int part, nth_claimed;
    while ((part = claim(gen, &nth_claimed)) >= 0) {
        fn(arg, part, nth);
        finish_part();
    }
    auto done = [&] { return done_.load(std::memory_order_seq_cst) == nth - 1; };
    if (spin_until(done)) return;
    std::unique_lock<std::mutex> lock(mutex_);
    caller_sleeping_.store(true, std::memory_order_seq_cst);
    done_cv_.wait(lock, done);
    caller_sleeping_.store(false, std::memory_order_relaxed);
}

void thread_pool::worker_main() {
    uint64_t seen = 0; // the last generation this worker has finished with
    auto ready = [&] {
        return generation_of(state_.load(std::memory_order_seq_cst)) != seen || stop_.load(std::memory_order_seq_cst);
    };
    for (;;) {
        if (!spin_until(ready)) {
            std::unique_lock<std::mutex> lock(mutex_);
            sleepers_.fetch_add(1, std::memory_order_seq_cst);
            cv_.wait(lock, ready);
            sleepers_.fetch_sub(1, std::memory_order_relaxed);
        }
        if (stop_.load(std::memory_order_acquire)) return;
        const uint64_t gen = generation_of(state_.load(std::memory_order_acquire));
        int part, nth;
        while ((part = claim(gen, &nth)) >= 0) {
            job_(job_arg_, part, nth);
            finish_part();
        }
        seen = gen;
    }
}

} // namespace gptneox
