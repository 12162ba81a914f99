"""Speed benchmark: rnnlab against torch.nn on the CPU, same model, shapes and dtype
(float32), in one process. Each row times one training step (forward, backward,
clip, optimizer update) or the sampling of 1,000 characters at batch 1: warm-up,
then the median of several repeats.

Columns: time per step, characters per second, achieved GFLOP/s, ratio to torch
(torch time / rnnlab time: > 1 means rnnlab is faster) and the share of the float32
GEMM peak measured on the spot with NumPy (a 2048³ product).

FLOPs are the model's nominal dense count: a forward pass costs
2·G·H·(F + H) per character per layer and direction plus 2·H·V for the head (F is the
one-hot width for the first layer, though both libraries may do it as a gather); a
training step counts 3× the forward.
"""
from __future__ import annotations

import gc
import statistics
import time
import tracemalloc

import numpy as np

from .errors import ConfigError

ROWS = [
    # name, model, layers, hidden, seq, batch, vocab (or input features), optimizer, dropout, inputs
    ("min-char-rnn", "rnn", 1, 100, 25, 1, 80, "adagrad", 0.0, "ids"),
    ("char-rnn LSTM", "lstm", 2, 128, 50, 50, 65, "rmsprop", 0.0, "ids"),
    ("char-rnn GRU", "gru", 2, 128, 50, 50, 65, "rmsprop", 0.0, "ids"),
    ("large LSTM", "lstm", 1, 512, 100, 64, 65, "rmsprop", 0.0, "ids"),
    # CharLMConfig's defaults, whatever they are (default_row): its shape, optimizer and
    # dropout, and in rnnlab its regularisers (weight drop, locked dropout, the weight
    # average's update) — torch.nn has none of those, so its step is the plain one
    # (nn.GRU/nn.LSTM(dropout=) and nn.Dropout before the head)
    "default",
    # float inputs (B, T, F): 32 features in, the same 32 predicted, squared error
    ("float-input LSTM", "lstm", 2, 256, 64, 32, 32, "adam", 0.0, "float"),
]
DEFAULT_VOCAB = 96          # printable ASCII and newline: the order of an English text's


def default_row():
    """The bench row of ``CharLMConfig()``: (row fields as in ROWS, its regularisers)."""
    from .models.charlm_config import CharLMConfig
    c = CharLMConfig()
    return (("default", c.model, c.num_layers, c.hidden_size, c.seq_len, c.batch_size, DEFAULT_VOCAB,
             c.optimizer, c.dropout, "ids"),
            {"weight_drop": c.weight_drop, "locked_dropout": c.locked_dropout, "average": c.average})


def describe_default():
    from .models.charlm_config import LARGE_TEXT, CharLMConfig
    c = CharLMConfig()
    regs = [f"weight drop {c.weight_drop:g}"] * bool(c.weight_drop) + ["locked dropout"] * c.locked_dropout \
        + [f"weight average {c.average:g}"] * bool(c.average)
    return (f"default = CharLMConfig() (rnnlab train's setting for a text of up to {LARGE_TEXT:,} characters): "
            f"{c.model.upper()} {c.num_layers}x{c.hidden_size}, seq {c.seq_len}, "
            f"batch {c.batch_size}, {c.optimizer}, dropout {c.dropout:g}" + "".join(", " + r for r in regs))


def train_rows():
    """ROWS with the default row filled in: [(row fields, CharLMConfig regularisers)]."""
    from .models.charlm_config import REGULARISERS_OFF
    return [default_row() if r == "default" else (r, REGULARISERS_OFF) for r in ROWS]


SAMPLE_ROWS = [("sample min-char-rnn", "rnn", 1, 100, 80), ("sample char-rnn", "lstm", 2, 128, 65)]
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def gemm_peak(n=2048, repeats=5):
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.T.copy()
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / min(times) / 1e9


def forward_flops_per_char(model, layers, H, V):
    G = GATES[model]
    total = 0
    for k in range(layers):
        F = V if k == 0 else H
        total += 2 * G * H * (F + H)
    return total + 2 * H * V


def settle(slice_s=0.02, quiet=0.2, max_wait=1.0):
    """Wait until this process's idle threads stop spinning: sleep in slices until one
    slice uses less than ``quiet`` of its length in CPU time (at most ``max_wait``).
    After each call OpenBLAS's worker threads spin for about 0.1 s before they sleep
    (measured: 0.1 s of CPU time in a sleep right after a matmul); timed right after
    rnnlab, torch would share the cores with them and run at half its own speed."""
    end = time.monotonic() + max_wait
    while time.monotonic() < end:
        c0 = time.process_time()
        time.sleep(slice_s)
        if time.process_time() - c0 < quiet * slice_s:
            return


def _median_times(fns, warmup, repeats):
    """Time the functions in rounds, each once per round, the order reversed every other
    round; returns (median time of each, median over rounds of each one's time divided by
    the first's in the same round). Paired rounds keep the ratio honest on a noisy machine
    where the speed drifts between the start and the end of a row. Each timed call starts
    after ``settle()``, so it does not share the cores with the previous call's spinning
    threads: each library is timed as it runs alone."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for r in range(repeats):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            settle()
            t = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - t)
    ratios = [statistics.median(t / t0 for t, t0 in zip(ts, times[0])) for ts in times]
    return [statistics.median(ts) for ts in times], ratios


def _rnnlab_train_step(model, layers, H, T, B, V, opt_name, dropout=0.0, inputs="ids", regularisers=None):
    """One training step of CharLM as ``charlm_run`` takes it (the weight average's update
    included when ``regularisers`` has ``average``); returns (step, model)."""
    from .averaging import WeightAverage
    from .models.charlm import CharLM, CharLMConfig
    from .optim import clip_by_value
    if inputs == "float":
        return _rnnlab_float_step(model, layers, H, T, B, V, opt_name)
    cfg = CharLMConfig(model=model, hidden_size=H, num_layers=layers, seq_len=T, batch_size=B,
                       dropout=dropout, optimizer=opt_name, lr=1e-3 if opt_name != "adagrad" else 0.1,
                       seed=0, **(regularisers or {}))      # the torch model has the same dropout
    lm = CharLM("".join(chr(33 + i) for i in range(V)), cfg)
    rng = np.random.default_rng(0)
    x = rng.integers(0, V, size=(T, B))
    y = rng.integers(0, V, size=(T, B))
    opt = lm.make_optimizer()
    avg = WeightAverage(lm, cfg.average) if cfg.average else None
    state = [None]

    def step():
        lm.zero_grad()
        _, s = lm.loss_and_grad(x, y, state[0])
        clip_by_value(lm.grads, 5.0)
        opt.step(lm.params, lm.grads)
        if avg is not None:
            avg.update()
        state[0] = s
    return step, lm


def _rnnlab_float_step(model, layers, H, T, B, F, opt_name):
    """Float inputs (B, T, F) → recurrent stack → Linear(H, F), squared error."""
    from .losses import mse
    from .models.seq import SeqNet
    from .optim import clip_by_value, make_optimizer
    net = SeqNet(model, F, H, F, many_to_one=False, num_layers=layers, dtype=np.float32, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, F)).astype(np.float32)
    y = rng.standard_normal((B, T, F)).astype(np.float32)
    opt = make_optimizer(opt_name, lr=1e-3)

    def step():
        net.zero_grad()
        _, dy = mse(net.forward(x), y)
        net.backward(dy)
        clip_by_value(net.grads, 5.0)
        opt.step(net.params, net.grads)
    net.dtype = np.dtype(np.float32)
    return step, net


def _torch_train_step(torch, model, layers, H, T, B, V, opt_name, dropout=0.0, inputs="ids"):
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[model]
    rnn = cls(V, H, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
    head = torch.nn.Linear(H, V)
    drop = torch.nn.Dropout(dropout)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = {"adagrad": lambda: torch.optim.Adagrad(params, lr=0.1),
           "adam": lambda: torch.optim.Adam(params, lr=1e-3),
           "rmsprop": lambda: torch.optim.RMSprop(params, lr=1e-3, alpha=0.95)}[opt_name]()
    g = torch.Generator().manual_seed(0)
    if inputs == "float":
        xf, yf = torch.randn(B, T, V, generator=g), torch.randn(B, T, V, generator=g)
    else:
        x = torch.randint(0, V, (B, T), generator=g)
        y = torch.randint(0, V, (B, T), generator=g)
    state = [None]

    def step():
        opt.zero_grad()
        if inputs == "float":
            out, _ = rnn(xf)
            loss = 0.5 * ((head(out) - yf) ** 2).sum(-1).mean()
            s = None
        else:
            inp = torch.nn.functional.one_hot(x, V).float()
            out, s = rnn(inp, state[0])
            loss = torch.nn.functional.cross_entropy(head(drop(out)).reshape(-1, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_value_(params, 5.0)
        opt.step()
        if s is not None:
            state[0] = tuple(t.detach() for t in s) if isinstance(s, tuple) else s.detach()
    return step


def _rnnlab_sampler(model, layers, H, V, n_chars):
    from .models.charlm import CharLM, CharLMConfig
    lm = CharLM("".join(chr(33 + i) for i in range(V)),
                CharLMConfig(model=model, hidden_size=H, num_layers=layers, seed=0))
    return lambda: lm.generate(n_chars, temperature=1.0, seed=0)


def _torch_sampler(torch, model, layers, H, V, n_chars):
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[model]
    rnn, head = cls(V, H, layers, batch_first=True), torch.nn.Linear(H, V)
    g = torch.Generator().manual_seed(0)

    def run():
        with torch.no_grad():
            state, idx = None, torch.zeros(1, 1, dtype=torch.long)
            for _ in range(n_chars):
                out, state = rnn(torch.nn.functional.one_hot(idx, V).float(), state)
                p = torch.softmax(head(out[0, -1]), dim=-1)
                idx = torch.multinomial(p, 1, generator=g).view(1, 1)
    return run


def peak_memory(make_step, n_steps=20):
    """Memory of training steps as tracemalloc sees NumPy's allocations, from a freshly
    built model: the peak from before the model is built to the end of its first step
    (weights, gradients, optimizer slots and the step's workspace) and the growth of
    the bytes held between the end of step 2 and the end of step ``n_steps`` (a leak
    would show here)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    step, _ = make_step()
    step()
    peak = tracemalloc.get_traced_memory()[1] - base
    step()
    held = tracemalloc.get_traced_memory()[0]
    for _ in range(n_steps - 2):
        step()
    growth = tracemalloc.get_traced_memory()[0] - held
    tracemalloc.stop()
    return peak, growth


def check_rows(rows):
    """ConfigError unless every name in ``rows`` (None: all) is a row of the benchmark."""
    known = [r[0] for r, _ in train_rows()] + [r[0] for r in SAMPLE_ROWS]
    if rows and not set(rows) <= set(known):
        raise ConfigError(f"row must be one of {known}, got {sorted(set(rows) - set(known))}")


def run_bench(repeats=7, warmup=2, rows=None, with_torch=True, memory=True, log=None):
    """Run the benchmark; return {"gemm_peak_gflops", "torch", "rows": [...]}."""
    check_rows(rows)
    torch = None
    torch_reason = None
    if with_torch:
        try:
            import torch
            torch.set_num_threads(max(1, torch.get_num_threads()))
        except ImportError:
            torch_reason = "torch is not installed (pip install 'rnnlab[test]'); ratios are missing"
    else:
        torch_reason = "torch disabled (--no-torch)"
    peak = gemm_peak()
    from .kernels import available, compiled_active
    kernels = ("compiled (rnnlab._gates)" if compiled_active() else
               "NumPy (compiled kernels " + ("switched off)" if available() else "not built)"))
    result = {"gemm_peak_gflops": peak, "torch": torch.__version__ if torch else None,
              "torch_missing_reason": torch_reason, "kernels": kernels, "default": describe_default(),
              "rows": []}
    wanted = set(rows) if rows else None
    rows_now = train_rows()
    for (name, model, L, H, T, B, V, opt, drop, inputs), reg in rows_now:
        if wanted and name not in wanted:
            continue
        step, lm = _rnnlab_train_step(model, L, H, T, B, V, opt, drop, inputs, reg)
        fns = [step] + ([_torch_train_step(torch, model, L, H, T, B, V, opt, drop, inputs)] if torch else [])
        times, ratios = _median_times(fns, warmup, repeats)
        t_ours = times[0]
        flops = 3 * forward_flops_per_char(model, L, H, V) * T * B
        row = {"row": name, "kind": "train", "time_s": t_ours, "chars_per_s": T * B / t_ours,
               "gflops": flops / t_ours / 1e9, "peak_share": flops / t_ours / 1e9 / peak}
        if torch is not None:
            row.update(torch_time_s=times[1], torch_chars_per_s=T * B / times[1], ratio=ratios[1])
        if memory and B > 1:
            peak_b, growth = peak_memory(lambda: _rnnlab_train_step(model, L, H, T, B, V, opt, drop, inputs, reg))
            # what BPTT must keep per layer: the gates, h and c (LSTM), for every step
            acts = L * T * B * H * (GATES[model] + 1 + (model == "lstm")) * lm.dtype.itemsize
            row.update(peak_mem_mb=peak_b / 2**20, activations_mb=acts / 2**20, growth_mb=growth / 2**20)
        result["rows"].append(row)
        if log:
            log(format_row(row))
    for name, model, L, H, V in SAMPLE_ROWS:
        if wanted and name not in wanted:
            continue
        n = 1000
        fns = [_rnnlab_sampler(model, L, H, V, n)] + ([_torch_sampler(torch, model, L, H, V, n)] if torch else [])
        times, ratios = _median_times(fns, 1, max(3, repeats // 2))
        t_ours = times[0]
        row = {"row": name, "kind": "sample", "time_s": t_ours, "chars_per_s": n / t_ours,
               "gflops": forward_flops_per_char(model, L, H, V) * n / t_ours / 1e9}
        row["peak_share"] = row["gflops"] / peak
        if torch is not None:
            row.update(torch_time_s=times[1], torch_chars_per_s=n / times[1], ratio=ratios[1])
        result["rows"].append(row)
        if log:
            log(format_row(row))
    return result


HEADER = (f"{'row':<22}{'time':>10}{'char/s':>11}{'GFLOP/s':>9}{'peak':>7}"
          f"{'torch char/s':>14}{'vs torch':>10}{'peak MB':>9}{'acts MB':>9}{'growth':>8}")


def format_row(r):
    def f(key, fmt, width):
        v = r.get(key)
        return f"{format(v, fmt):>{width}}" if v is not None else f"{'-':>{width}}"
    return (f"{r['row']:<22}{r['time_s'] * 1e3:>8.2f}ms{r['chars_per_s']:>11,.0f}{r['gflops']:>9.1f}"
            f"{r['peak_share'] * 100:>6.1f}%" + f("torch_chars_per_s", ",.0f", 14)
            + (f"{r['ratio']:>9.2f}x" if "ratio" in r else f"{'-':>10}")
            + f("peak_mem_mb", ".1f", 9) + f("activations_mb", ".1f", 9) + f("growth_mb", ".2f", 8))
