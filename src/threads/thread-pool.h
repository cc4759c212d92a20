// A persistent pool of worker threads for the forward pass: workers stay alive for the context's life
// and wait (spin briefly, then sleep) between jobs, so a decode step costs no thread creation and, when
// jobs come back-to-back, no system call either: publishing a job is one atomic store the spinning
// workers see within a fraction of a microsecond, and the caller learns of completion from a counter.
// The mutex and condition variables are only touched when a thread has actually gone to sleep.
//
// The parts (ith) of a job are claimed, not assigned: the caller runs part 0, then claims whatever
// parts no worker has taken yet. On a machine busy with other processes a worker may not get a CPU for
// milliseconds; the job then completes on the threads that are running instead of waiting for it.
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

    // Run fn(ith, nth) exactly once for each ith = 0..nth-1, nth = min(n, size()); ith 0 on the caller's
    // thread, the others on whichever threads claim them first (usually one each; a late worker's part is
    // run by the caller after its own). Returns when all have returned. fn must not throw. Not reentrant.
    template <typename F> void run(int n, F &&fn) {
        using G = std::remove_reference_t<F>; // F is an lvalue reference when fn is a named lambda
        run_impl(n, [](void *f, int ith, int nth) { (*static_cast<G *>(f))(ith, nth); },
                 const_cast<void *>(static_cast<const void *>(&fn)));
    }

private:
    using job_fn = void (*)(void *, int, int);
    void run_impl(int n, job_fn fn, void *arg);
    void worker_main();
    int claim(uint64_t gen, int *nth);
    void finish_part();

    std::vector<std::thread> workers_;
    // The job slot: written by the caller before it publishes the job in state_ (release), read by a
    // thread only after it claimed a part of that job (so never while being rewritten).
    job_fn job_ = nullptr;
    void *job_arg_ = nullptr;
    int last_part_ = 0; // nth - 1: parts finished by claimers when the job is complete
    // state_ = generation << 24 | nth << 12 | next unclaimed part: parts are claimed by compare-and-swap,
    // so a worker that wakes after the job is over (generation changed, or every part taken) takes none.
    alignas(64) std::atomic<uint64_t> state_{0};
    alignas(64) std::atomic<int> done_{0};         // parts 1..nth-1 finished
    alignas(64) std::atomic<int> sleepers_{0};     // workers blocked (or about to block) on cv_
    std::atomic<bool> caller_sleeping_{false};     // the caller blocked (or about to) on done_cv_
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable cv_;      // workers sleep here between jobs
    std::condition_variable done_cv_; // the caller sleeps here until the last worker finishes
};

// Split [0, n) into nth nearly equal parts; part ith is [*begin, *end).
inline void split_range(int64_t n, int ith, int nth, int64_t *begin, int64_t *end) {
    int64_t per = n / nth, rem = n % nth;
    *begin = ith * per + (ith < rem ? ith : rem);
    *end = *begin + per + (ith < rem ? 1 : 0);
}

} // namespace gptneox
