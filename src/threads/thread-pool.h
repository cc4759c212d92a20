// A persistent pool of worker threads for the forward pass: workers stay alive for the context's life
// and wait (spin briefly, then sleep) between jobs, so a decode step costs no thread creation.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace gptneox {

class thread_pool {
public:
    // A pool that can run jobs on up to n_threads threads (the calling thread is thread 0, so
    // n_threads - 1 workers are started). n_threads < 1 is treated as 1.
    explicit thread_pool(int n_threads);
    ~thread_pool();
    thread_pool(const thread_pool &) = delete;
    thread_pool &operator=(const thread_pool &) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Run fn(ith, nth) for ith = 0..nth-1, nth = min(n, size()), each on its own thread (ith 0 on the
    // caller's); returns when all have returned. fn must not throw. Not reentrant.
    template <typename F> void run(int n, F &&fn) {
        using G = std::remove_reference_t<F>; // F is an lvalue reference when fn is a named lambda
        run_impl(n, [](void *f, int ith, int nth) { (*static_cast<G *>(f))(ith, nth); },
                 const_cast<void *>(static_cast<const void *>(&fn)));
    }

private:
    using job_fn = void (*)(void *, int, int);
    void run_impl(int n, job_fn fn, void *arg);
    void worker_main(int ith);

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable cv_;      // workers sleep here between jobs
    std::condition_variable done_cv_; // the caller sleeps here until the last worker finishes
    job_fn job_ = nullptr;
    void *job_arg_ = nullptr;
    int job_nth_ = 0;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0}; // workers that have not yet finished (or skipped) the current job
    std::atomic<bool> stop_{false};
};

// Split [0, n) into nth nearly equal parts; part ith is [*begin, *end).
inline void split_range(int64_t n, int ith, int nth, int64_t *begin, int64_t *end) {
    int64_t per = n / nth, rem = n % nth;
    *begin = ith * per + (ith < rem ? ith : rem);
    *end = *begin + per + (ith < rem ? 1 : 0);
}

} // namespace gptneox
