"""Data-parallel scaling: training characters per second against the number of ranks N,
each rank on its own batch of B streams (global batch N·B), next to torch.nn at the same
global batch using every core in the same run; the cost of the gradient all-reduce (the
gradient arrays as views of one buffer, against copying in and out); and held-out
bits/char at equal wall-clock time on tiny Shakespeare.

    python benchmarks/scaling.py [--ranks 1 2] [--budget 60] [--out benchmarks/results/scaling.txt]

Rows (as ``rnnlab bench``): char-rnn LSTM (LSTM 2×128, seq 50, batch 50 per rank, vocab
65, RMSProp) and large LSTM (LSTM 1×512, seq 100, batch 64 per rank). rnnlab runs the real
training loop (``train_charlm`` with the MPI ``dist``) under mpiexec, started as
``--workers`` starts it (cores/N BLAS threads per rank); the rate is measured between
steps after a warm-up. torch runs one process with N·B streams and all cores.
Quality: ``rnnlab train TINY --preset char-rnn --time-limit BUDGET`` with 1 and N ranks
(B = 50 each: the global batch grows, the learning rate is kept, as the README's rule for
RMSProp says) and with N ranks of 50/N streams (the single run's batch, split); one
evaluation of the held-out 5% at the end. Skipped, with a message, when
../shared/data/tinyshakespeare.txt is absent.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "..", "..", "shared", "data", "tinyshakespeare.txt")
ROWS = {  # name: (model, layers, hidden, seq, batch per rank, vocab, optimizer, warm-up, timed steps)
    "char-rnn LSTM": ("lstm", 2, 128, 50, 50, 65, "rmsprop", 10, 80),
    "large LSTM": ("lstm", 1, 512, 100, 64, 65, "rmsprop", 3, 15),
}


def worker(row, out):
    """One rank of a throughput run (under mpiexec): train_charlm on random text."""
    from rnnlab import CharLM, CharLMConfig
    from rnnlab.charlm_run import train_charlm
    from rnnlab.parallel import GradAllreduce, get_dist
    from rnnlab.trainer import TrainConfig
    model, L, H, T, B, V, opt, warm, steps = ROWS[row]
    dist = get_dist()
    config = CharLMConfig(model=model, hidden_size=H, num_layers=L, seq_len=T, batch_size=B, dropout=0.0,
                          optimizer=opt, lr=2e-3, clip=5.0, clip_mode="value", val_frac=0.0, seed=0)
    vocab = "".join(chr(33 + i) for i in range(V))
    n = dist.size * B * T * (warm + steps + 1) + 1
    text = "".join(np.array(list(vocab))[np.random.default_rng(0).integers(0, V, n)])
    lm = CharLM(vocab, config)
    stamps = []
    train_charlm(lm, text, TrainConfig(max_steps=warm + steps, eval_every=None), dist=dist, sample_chars=0,
                 grad_hook=lambda g: stamps.append(time.perf_counter()))
    seconds = stamps[-1] - stamps[warm - 1]
    result = {"row": row, "ranks": dist.size, "chars_per_s": steps * T * B * dist.size / seconds,
              "step_ms": 1e3 * seconds / steps, "params": lm.num_parameters()}
    if dist.size > 1:                                  # the all-reduce alone, both ways
        for name, copy in (("views", False), ("copy", True)):
            hook = GradAllreduce(dist, lm, copy=copy)
            times = []
            for _ in range(40):
                dist.comm.Barrier()
                t = time.perf_counter()
                hook(lm.grads)
                times.append(time.perf_counter() - t)
            result[f"allreduce_{name}_ms"] = 1e3 * float(np.median(times[5:]))
    if dist.rank == 0:
        with open(out, "w") as f:
            json.dump(result, f)


def run_ranks(row, n, tmp):
    from rnnlab.mpilaunch import find_mpiexec, launch_command
    out = os.path.join(tmp, f"{row.replace(' ', '_')}-{n}.json")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                           "MKL_NUM_THREADS")}
    cmd, env = launch_command(find_mpiexec(), n, ["--worker", row, "--worker-out", out], env=env,
                              program=[sys.executable, os.path.abspath(__file__)])
    subprocess.run(cmd, env=env, check=True, timeout=600)
    with open(out) as f:
        return json.load(f)


def torch_rate(row, n):
    try:
        import torch
    except ImportError:
        return None
    from rnnlab.bench import _median_times, _torch_train_step
    from rnnlab.parallel import cores
    torch.set_num_threads(cores())
    model, L, H, T, B, V, opt, warm, steps = ROWS[row]
    step = _torch_train_step(torch, model, L, H, T, n * B, V, opt)
    return T * n * B / _median_times([step], max(2, warm // 2), max(5, steps // 4))[0][0]


def quality(budget, ranks, tmp):
    rows = []
    runs = [(1, 50)] + [(n, 50) for n in ranks if n > 1] + [(n, 50 // n) for n in ranks if n > 1]
    for n, b in runs:
        out = os.path.join(tmp, f"q{n}-{b}")
        cmd = [sys.executable, "-m", "rnnlab", "train", TINY, "--preset", "char-rnn", "--batch-size", str(b),
               "--time-limit", str(budget), "--eval-every", "1000000000", "--json", "--quiet", "--out", out]
        if n > 1:
            cmd += ["--workers", str(n)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=budget + 600)
        if r.returncode != 0:
            raise SystemExit(f"quality run failed: {r.stderr}")
        s = json.loads(r.stdout)
        rows.append({"ranks": n, "batch": b, "steps": s["steps"], "chars": s["steps"] * 50 * n * b,
                     "bpc": s["best_val_bpc"]})
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--budget", type=float, default=60.0, help="seconds per quality run")
    p.add_argument("--out", default=os.path.join(HERE, "results", "scaling.txt"))
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(a.worker, a.worker_out)
    from rnnlab.kernels import compiled_active
    from rnnlab.parallel import cores
    lines = [f"# python benchmarks/scaling.py --ranks {' '.join(map(str, a.ranks))} --budget {a.budget:g} — "
             f"{time.strftime('%Y-%m-%d')}, {cores()} cores, kernels: "
             f"{'compiled' if compiled_active() else 'NumPy'}; each rank cores/N BLAS threads; torch: "
             f"one process, all {cores()} cores, the same global batch N·B"]

    def say(line=""):
        print(line, flush=True)
        lines.append(line)
    say(lines.pop())
    say(f"{'row':<15} {'N':>2} {'batch':>9} {'rnnlab char/s':>14} {'speed-up':>9} {'step ms':>8} "
        f"{'torch char/s':>13} {'vs torch':>9} {'allreduce views/copy ms':>24}")
    with tempfile.TemporaryDirectory() as tmp:
        for row in ROWS:
            base = None
            for n in a.ranks:
                r = run_ranks(row, n, tmp)
                base = base or r["chars_per_s"]
                shape = f"{n}x{ROWS[row][4]}"
                t = torch_rate(row, n)
                ar = (f"{r['allreduce_views_ms']:.3f} / {r['allreduce_copy_ms']:.3f}" if n > 1 else "-")
                say(f"{row:<15} {n:>2} {shape:>9} {r['chars_per_s']:>14,.0f} "
                    f"{r['chars_per_s'] / base:>8.2f}x {r['step_ms']:>8.1f} "
                    + (f"{t:>13,.0f} {r['chars_per_s'] / t:>8.2f}x" if t else f"{'-':>13} {'-':>9}")
                    + f" {ar:>24}")
        say(f"speed-up: against N = {a.ranks[0]} (the first of --ranks); vs torch: rnnlab char/s / torch "
            f"char/s (> 1: rnnlab faster; rnnlab's rate is its 80 steps' mean, torch's its median step)")
        if a.skip_quality:
            pass
        elif not os.path.exists(TINY):
            say(f"quality: skipped, {os.path.normpath(TINY)} not found")
        else:
            say()
            say(f"held-out bits/char on tiny Shakespeare after {a.budget:g} s of training "
                f"(--preset char-rnn, RMSProp 2e-3 kept; one evaluation at the end)")
            say(f"{'N':>2} {'batch':>9} {'steps':>7} {'chars trained':>14} {'bits/char':>10}")
            for q in quality(a.budget, a.ranks, tmp):
                shape = f"{q['ranks']}x{q['batch']}"
                say(f"{q['ranks']:>2} {shape:>9} {q['steps']:>7} {q['chars']:>14,} {q['bpc']:>10.4f}")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
