"""The recurrent GEMM's two orientations, timed side by side (the reason the fused
kernels form it transposed: rnnlab/kernels/compiled.py).

Each time step multiplies a (B, H) state by the (G·H, H) recurrent matrix. Forward:
    rows    h·W_hhᵀ  -> (B, G·H)      what the NumPy kernels compute
    cols    W_hh·hᵀ  -> (G·H, B)      what the fused kernels compute (then copy into place)
Backward, dh = dgh·W_hh:
    rows    dgh·W_hh      -> (B, H)
    cols    W_hhᵀ·dghᵀ    -> (H, B)   (W_hhᵀ contiguous, as the fused backward loop holds it)
    view    the same product on W_hhᵀ as a transposed view of W_hh (no copy)
Both produce the same numbers up to the order of summation. Printed per batch size:
the median time of each (µs) over alternated rounds, and rows / cols (> 1: the fused
kernels' orientation is faster). The "+copy" columns add the transposing copy into
the row layout (NumPy's copyto here; the C step does it in its own pass). "W copy" is
the contiguous W_hhᵀ's own price, paid once per backward loop, and "even T" the loop
length from which it pays for itself against the view: (W copy) / (view − cols), "-"
where the view is not slower.

    python benchmarks/gemm_orientation.py [--hidden 256] [--gates 3] [--dtype float32]
                                          [--batches 1,6,32,56,64,128] [--rounds 7]
"""
import argparse
import time

import numpy as np

from rnnlab.kernels.compiled import FusedGRUKernel


def median_us(fns, calls, rounds):
    """{name: median µs per call}, the functions timed in alternated rounds."""
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            f()
            t = time.perf_counter()
            for _ in range(calls):
                f()
            times[k].append((time.perf_counter() - t) / calls * 1e6)
    return {k: float(np.median(v)) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--gates", type=int, default=3, help="3: GRU, 4: LSTM")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--batches", default="1,6,32,56,64,128")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    H, GH, dt = args.hidden, args.gates * args.hidden, np.dtype(args.dtype)
    W = rng.standard_normal((GH, H)).astype(dt)
    W_T = np.ascontiguousarray(W.T)
    transpose = FusedGRUKernel().transpose           # the fused backward loop's copy of W_hhᵀ
    print(f"H = {H}, G·H = {GH}, {dt.name}; µs per GEMM, medians of {args.rounds} alternated rounds")
    print(f"{'B':>4} | {'fwd rows':>9} {'cols':>7} {'+copy':>7} {'rows/cols':>9} | "
          f"{'bwd rows':>9} {'cols':>7} {'+copy':>7} {'rows/cols':>9} {'view':>7} {'W copy':>7} {'even T':>7}")
    for B in (int(b) for b in args.batches.split(",")):
        h = rng.standard_normal((B, H)).astype(dt)
        dg = rng.standard_normal((B, GH)).astype(dt)
        out, out_T = np.empty((B, GH), dt), np.empty((GH, B), dt)
        dh, dh_T = np.empty((B, H), dt), np.empty((H, B), dt)

        def fwd_copy():
            np.matmul(W, h.T, out=out_T)
            np.copyto(out, out_T.T)

        def bwd_copy():
            np.matmul(W_T, dg.T, out=dh_T)
            np.copyto(dh, dh_T.T)
        calls = max(20, 20000 // B)
        t = median_us({"fr": lambda: np.matmul(h, W_T, out=out), "fc": lambda: np.matmul(W, h.T, out=out_T),
                       "fcc": fwd_copy, "br": lambda: np.matmul(dg, W, out=dh),
                       "bc": lambda: np.matmul(W_T, dg.T, out=dh_T), "bcc": bwd_copy,
                       "bv": lambda: np.matmul(W.T, dg.T, out=dh_T), "wt": lambda: transpose(W)},
                      calls, args.rounds)
        even = f"{t['wt'] / (t['bv'] - t['bc']):7.0f}" if t["bv"] > t["bc"] else f"{'-':>7}"
        print(f"{B:4d} | {t['fr']:9.1f} {t['fc']:7.1f} {t['fcc']:7.1f} {t['fr'] / t['fc']:8.2f}x | "
              f"{t['br']:9.1f} {t['bc']:7.1f} {t['bcc']:7.1f} {t['br'] / t['bc']:8.2f}x {t['bv']:7.1f} "
              f"{t['wt']:7.1f} {even}")


if __name__ == "__main__":
    main()
