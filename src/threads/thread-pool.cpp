// Persistent worker pool. A job is published by bumping `generation_` under the mutex; workers spin
// on it for a short while (decode steps come back-to-back, so the wake-up is usually caught there)
// and then sleep on cv_. Every worker acknowledges every job, even one it takes no part in
// (ith >= nth), so the caller can reuse the job slot as soon as pending_ reaches 0.
#include "threads/thread-pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GPTNEOX_CPU_RELAX() _mm_pause()
#else
#define GPTNEOX_CPU_RELAX() std::this_thread::yield()
#endif

namespace gptneox {
namespace {
// Spin on the flag with _mm_pause first (tens of microseconds), then yield a while (lets another
// thread of an oversubscribed machine run), then sleep on the condition variable.
constexpr int kSpinIterations = 2000;
constexpr int kYieldIterations = 64;

inline void backoff(int i) {
    if (i < kSpinIterations) GPTNEOX_CPU_RELAX();
    else std::this_thread::yield();
}
} // namespace

thread_pool::thread_pool(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    workers_.reserve(n_threads - 1);
    for (int i = 1; i < n_threads; i++) workers_.emplace_back([this, i] { worker_main(i); });
}

thread_pool::~thread_pool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
    for (std::thread &t : workers_) t.join();
}

void thread_pool::run_impl(int n, job_fn fn, void *arg) {
    int nth = n < 1 ? 1 : (n > size() ? size() : n);
    if (nth == 1 || workers_.empty()) {
        fn(arg, 0, 1);
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = fn;
        job_arg_ = arg;
        job_nth_ = nth;
        pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    fn(arg, 0, nth);
    for (int i = 0; i < kSpinIterations + kYieldIterations; i++) {
        if (pending_.load(std::memory_order_acquire) == 0) return;
        backoff(i);
    }
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
}

void thread_pool::worker_main(int ith) {
    uint64_t seen = 0;
    for (;;) {
        bool ready = false;
        for (int i = 0; i < kSpinIterations + kYieldIterations; i++) {
            if (generation_.load(std::memory_order_acquire) != seen || stop_.load(std::memory_order_acquire)) {
                ready = true;
                break;
            }
            backoff(i);
        }
        job_fn fn;
        void *arg;
        int nth;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            if (!ready) {
                cv_.wait(lock, [&] {
                    return generation_.load(std::memory_order_acquire) != seen || stop_.load(std::memory_order_acquire);
                });
            }
            if (stop_.load(std::memory_order_acquire)) return;
            seen = generation_.load(std::memory_order_acquire);
            fn = job_;
            arg = job_arg_;
            nth = job_nth_;
        }
        if (ith < nth) fn(arg, ith, nth);
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> lock(mutex_);
            done_cv_.notify_one();
        }
    }
}

} // namespace gptneox
