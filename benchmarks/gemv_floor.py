"""The floor under one-stream dynamic evaluation: how fast can one recurrent step's
matrix-vector product (W_hh·h, the default GRU's 768×256 float32 W_hh) go on this machine?

Dynamic evaluation reads the scored text as one stream, in order (models/scoring.py), so
every step is a GEMV per layer, forward and backward, that cannot be batched; static
scoring reads 6 (the story's test text) to 56 (tiny Shakespeare's) streams side by side as
one GEMM. Three ways to do the GEMV, timed per step with the next h made from the result
(so the steps are sequential, as in a recurrence):

  numpy     np.dot(W, h, out=y): what the layers run (OpenBLAS here), the call alone
  c1        a C loop, 4 rows at a time with AVX2 FMA, one thread
  c2        the same rows split between two threads that each keep their half of W
            (393 KB) in their own L2 cache and meet at a spin barrier every step

c1 and c2 are written to a temporary directory and compiled with the system's cc
(-O3 -march=native); without a compiler or AVX2 only numpy is timed. This is a probe for
the record (benchmarks/results/gemv_floor.txt), not code the package uses: its sums run in
another order than the BLAS's, and a spinning thread is no library's business.

    python benchmarks/gemv_floor.py [--steps 20000] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np

ROWS, COLS = 768, 256          # GRU: 3·H × H at H = 256

C_SOURCE = r"""
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#define R 768
#define C 256
static float W[R * C] __attribute__((aligned(64)));
static float h[C] __attribute__((aligned(64)));
static float y[R] __attribute__((aligned(64)));
static atomic_int go, done;
static int steps;

static void rows(int r0, int r1) {
    for (int r = r0; r < r1; r += 4) {
        const float *w = W + r * C;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < C; c += 8) {
            __m256 hv = _mm256_load_ps(h + c);
            a0 = _mm256_fmadd_ps(_mm256_load_ps(w + c), hv, a0);
            a1 = _mm256_fmadd_ps(_mm256_load_ps(w + C + c), hv, a1);
            a2 = _mm256_fmadd_ps(_mm256_load_ps(w + 2 * C + c), hv, a2);
            a3 = _mm256_fmadd_ps(_mm256_load_ps(w + 3 * C + c), hv, a3);
        }
        __m256 acc[4] = {a0, a1, a2, a3};
        float t[8];
        for (int k = 0; k < 4; k++) {
            _mm256_storeu_ps(t, acc[k]);
            y[r + k] = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
        }
    }
}
static void next_h(void) { for (int c = 0; c < C; c++) h[c] = 0.5f + 1e-4f * (y[c] + y[c + C] + y[c + 2 * C]); }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static void *second_half(void *unused) {
    for (int t = 0; t < steps; t++) {
        while (atomic_load_explicit(&go, memory_order_acquire) <= t) {}
        rows(R / 2, R);
        atomic_store_explicit(&done, t + 1, memory_order_release);
    }
    return unused;
}
int main(int argc, char **argv) {
    steps = atoi(argv[1]);
    for (int i = 0; i < R * C; i++) W[i] = (float)((i * 2654435761u) % 1000) / 1000.0f * 2.0f - 1.0f;
    for (int c = 0; c < C; c++) h[c] = 0.1f;
    double t0 = now();
    for (int t = 0; t < steps; t++) { rows(0, R); next_h(); }
    printf("c1 %.4f\n", (now() - t0) / steps * 1e6);
    for (int c = 0; c < C; c++) h[c] = 0.1f;
    pthread_t th;
    pthread_create(&th, 0, second_half, 0);
    t0 = now();
    for (int t = 0; t < steps; t++) {
        atomic_store_explicit(&go, t + 1, memory_order_release);
        rows(0, R / 2);
        while (atomic_load_explicit(&done, memory_order_acquire) <= t) {}
        next_h();
    }
    printf("c2 %.4f\n", (now() - t0) / steps * 1e6);
    pthread_join(th, 0);
    return 0;
}
"""


def numpy_us(steps):
    rng = np.random.default_rng(0)
    W = rng.uniform(-1, 1, (ROWS, COLS)).astype(np.float32)
    h = np.full(COLS, 0.1, np.float32)
    y = np.empty(ROWS, np.float32)
    t = time.perf_counter()
    for _ in range(steps):                # the call alone (no next h: that would add NumPy calls it does not need)
        np.dot(W, h, out=y)
    return (time.perf_counter() - t) / steps * 1e6


def compiled(steps, workdir):
    """{"c1": µs, "c2": µs} from the C probe, or None with the reason it could not run."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler"
    src, exe = os.path.join(workdir, "gemv.c"), os.path.join(workdir, "gemv")
    with open(src, "w") as f:
        f.write(C_SOURCE)
    r = subprocess.run([cc, "-O3", "-march=native", "-pthread", "-o", exe, src], capture_output=True, text=True)
    if r.returncode != 0:
        return None, f"the probe did not compile (AVX2/FMA needed): {r.stderr.strip().splitlines()[-1:]}"
    out = subprocess.run([exe, str(steps)], capture_output=True, text=True, check=True).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines())}, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    runs = {"numpy": [], "c1": [], "c2": []}
    why = None
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.repeats):
            runs["numpy"].append(numpy_us(args.steps))
            got, why = compiled(args.steps, workdir)
            for k, v in (got or {}).items():
                runs[k].append(v)
    print(f"one {ROWS}x{COLS} float32 GEMV and the next h, µs per step (median [min, max] of {args.repeats} "
          f"runs of {args.steps:,} steps; {os.cpu_count()} CPUs)")
    base = np.median(runs["numpy"])
    for k, v in runs.items():
        if v:
            print(f"  {k:6s} {np.median(v):6.2f} [{min(v):.2f}, {max(v):.2f}]   numpy / {k}: {base / np.median(v):.2f}x")
    if why:
        print(f"  c1, c2 not timed: {why}")


if __name__ == "__main__":
    main()
