/* Memory read bandwidth with N threads: each thread sums its own slice of a buffer far larger than the
 * caches, repeatedly; prints the best GB/s over the repetitions. Built by bench/sysinfo.py with plain
 * -O2 (no -march: 16-byte loads are enough to saturate DRAM from 2 cores).
 *   bandwidth <threads> <MiB> <reps>
 * Odd repetitions also ask for the line 2 KiB ahead (prefetcht1), as our decode kernels do: on a Xeon the
 * plain sum read 21-30 GB/s while those kernels streamed more, so a roofline from the plain sum alone
 * flattered every engine. The best of both is printed. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct job {
    const uint64_t *p;
    size_t n;
    int prefetch;
    uint64_t sum;
};

static void *run(void *arg) {
    struct job *j = (struct job *)arg;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    if (j->prefetch) {
        for (size_t i = 0; i + 8 <= j->n; i += 8) { /* one 64-byte line per step */
            __builtin_prefetch(j->p + i + 256, 0, 2);
            s0 += j->p[i] + j->p[i + 4];
            s1 += j->p[i + 1] + j->p[i + 5];
            s2 += j->p[i + 2] + j->p[i + 6];
            s3 += j->p[i + 3] + j->p[i + 7];
        }
    } else {
        for (size_t i = 0; i + 4 <= j->n; i += 4) {
            s0 += j->p[i];
            s1 += j->p[i + 1];
            s2 += j->p[i + 2];
            s3 += j->p[i + 3];
        }
    }
    j->sum = s0 + s1 + s2 + s3;
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    int nt = argc > 1 ? atoi(argv[1]) : 2;
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 1024;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (nt < 1 || nt > 256 || mib < 1 || reps < 1) {
        fprintf(stderr, "usage: bandwidth <threads> <MiB> <reps>\n");
        return 2;
    }
    size_t n = mib * 1024 * 1024 / sizeof(uint64_t);
    uint64_t *buf = malloc(n * sizeof(uint64_t));
    if (!buf) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) buf[i] = i;
    pthread_t th[256];
    struct job jobs[256];
    double best = 0;
    uint64_t check = 0;
    for (int r = 0; r < reps; r++) {
        double t = now();
        for (int k = 0; k < nt; k++) {
            size_t a = n / (size_t)nt * (size_t)k, b = k == nt - 1 ? n : n / (size_t)nt * (size_t)(k + 1);
            jobs[k].p = buf + a;
            jobs[k].n = b - a;
            jobs[k].prefetch = r % 2;
            pthread_create(&th[k], NULL, run, &jobs[k]);
        }
        for (int k = 0; k < nt; k++) {
            pthread_join(th[k], NULL);
            check += jobs[k].sum;
        }
        double gbs = (double)(n * sizeof(uint64_t)) / (now() - t) / 1e9;
        if (gbs > best) best = gbs;
    }
    printf("%.2f %llu\n", best, (unsigned long long)(check & 1));
    free(buf);
    return 0;
}
