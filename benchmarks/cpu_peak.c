/* This CPU's real clock and fp32 FMA throughput (AVX2), for the "% of the arithmetic
 * limit" figures of benchmarks/bench_visual_backends.py (run through benchmarks/cpu_peak.py).
 *
 * clock: a chain of dependent 64-bit integer adds retires one add per cycle on every x86
 *        core since the Pentium 4, so adds / second = cycles / second (the clock the core
 *        actually runs at, turbo included; /proc/cpuinfo shows the nominal one in a VM).
 * fma:   10 independent chains of 256-bit fused multiply-adds per thread (enough to cover
 *        the FMA latency of 4-5 cycles on 2 pipes), 8 lanes x 2 flops each.
 * Usage: cpu_peak THREADS   (prints one JSON line)
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define FMA_ITERS 200000000L
#define ADD_ITERS 1000000000L

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double clock_ghz(void) {
    unsigned long x = 0;
    double t0 = now();
    for (long i = 0; i < ADD_ITERS / 10; i++) {
        /* 10 dependent adds per iteration; the loop counter runs on another port */
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                         : "+r"(x));
    }
    return ADD_ITERS / (now() - t0) / 1e9;
}

static void *fma_worker(void *out) {
    __m256 a0 = _mm256_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0, a8 = a0, a9 = a0;
    const __m256 m = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < FMA_ITERS; i++) {
        a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c); a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c); a9 = _mm256_fmadd_ps(a9, m, c);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(a8, a9));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    *(float *)out = lanes[0];  /* keeps the chains alive */
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 256) return 2;
    double ghz = clock_ghz();
    pthread_t *ids = malloc(sizeof(pthread_t) * threads);
    float *sink = malloc(sizeof(float) * threads);
    double t0 = now();
    for (int i = 0; i < threads; i++) pthread_create(&ids[i], NULL, fma_worker, &sink[i]);
    for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
    double seconds = now() - t0;
    double gflops = (double)threads * FMA_ITERS * 10 * 8 * 2 / seconds / 1e9;
    printf("{\"threads\": %d, \"clock_ghz\": %.3f, \"fma_gflops\": %.1f}\n", threads, ghz, gflops);
    return 0;
}
