"""The optional compiled gate kernels (rnnlab._gates via rnnlab.kernels.compiled) against the
pure-NumPy kernels: same outputs, states and gradients (float64 to 1e-12, float32 to a
few units in the last place — only tanh differs), in layers, cells and training; and the
switch between them. The torch-parity tests run on both paths too."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnlab
from rnnlab import kernels as fused
from rnnlab.kernels import compiled
from rnnlab.models import scoring
from rnnlab.models.charlm import CharLM, CharLMConfig
from rnnlab.models.scoring import dynamic_logprobs, gradient_stats

needs_compiled = pytest.mark.skipif(not fused.available(),
                                    reason="the optional compiled kernels (rnnlab._gates) were not built")


def _relerr(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max(initial=0) / max(np.abs(b).max(initial=0), 1e-300))


def _run_layer(compiled, mode, dtype, ids, bidirectional, seed=3):
    previous = fused.set_compiled(compiled)
    try:
        rng = np.random.default_rng(seed)
        B, T, F, H, L = 5, 13, 7, 9, 2
        layer = getattr(rnnlab, mode)(F, H, L, bidirectional=bidirectional, dtype=dtype, seed=seed)
        D = 2 if bidirectional else 1
        x = rng.integers(0, F, (B, T)) if ids else rng.standard_normal((B, T, F)).astype(dtype)
        shape = (L * D, B, H)
        state = rng.standard_normal(shape).astype(dtype)
        dstate = rng.standard_normal(shape).astype(dtype)
        if mode == "LSTM":
            state = (state, rng.standard_normal(shape).astype(dtype))
            dstate = (dstate, rng.standard_normal(shape).astype(dtype))
        out, state_n = layer.forward(x, state)
        dx, dstate0 = layer.backward(rng.standard_normal(out.shape).astype(dtype), dstate)
        flat = lambda s: list(s) if isinstance(s, tuple) else [s]   # noqa: E731
        results = {"out": out, **{f"state_n{i}": s for i, s in enumerate(flat(state_n))},
                   **{f"dstate0{i}": s for i, s in enumerate(flat(dstate0))}, **layer.grads}
        if dx is not None:
            results["dx"] = dx
        return results
    finally:
        fused.set_compiled(previous)


@needs_compiled
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("ids", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("orientation", ["cols", "cols, W_hh copied", "rows"])
def test_compiled_layer_equals_numpy_layer(mode, dtype, tol, ids, bidirectional, orientation, monkeypatch):
    """Both orientations of the recurrent GEMM (W_hh·hᵀ at small batches, h·W_hhᵀ above
    COLS_MAX_BATCH — here forced by moving the limit below the batch), and in the first
    both forms of W_hhᵀ in the backward loop: a view for these 13 steps, the contiguous
    copy that loops of COPY_MIN_STEPS or more use (here forced by lowering it)."""
    if orientation == "rows":
        monkeypatch.setattr(compiled, "COLS_MAX_BATCH", 0)
    if orientation == "cols, W_hh copied":
        monkeypatch.setattr(compiled, "COPY_MIN_STEPS", 1)
    a = _run_layer(True, mode, dtype, ids, bidirectional)
    b = _run_layer(False, mode, dtype, ids, bidirectional)
    assert a.keys() == b.keys()
    errs = {k: _relerr(a[k], b[k]) for k in a}
    assert max(errs.values()) < tol, errs
    assert all(a[k].dtype == dtype for k in a)


@needs_compiled
def test_compiled_path_is_really_taken():
    layer = rnnlab.LSTM(3, 4)
    layer.forward(np.zeros((2, 5, 3), np.float32))
    assert isinstance(layer._cache[3], compiled.FusedLSTMKernel)
    previous = fused.set_compiled(False)
    try:
        layer.forward(np.zeros((2, 5, 3), np.float32))
        assert type(layer._cache[3]) is rnnlab.kernels.LSTMKernel
    finally:
        fused.set_compiled(previous)


@needs_compiled
@pytest.mark.parametrize("twin", ["FusedLSTMKernel", "FusedGRUKernel"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_twins_take_the_weights_as_given(twin, dtype, rng):
    """The fused steps halve the sigmoid pre-activations themselves, so their weights are
    views of the parameters (nothing copied when the weights change, as in dynamic
    evaluation) and unscaled, where the NumPy kernel's are halved copies; the folded bias
    and the scale/offset vectors are the same apart from that ½."""
    fused_k = getattr(compiled, twin)()
    numpy_k = type(fused_k).__mro__[2]()                      # FusedX(FusedKernel, XKernel)
    G, H, F = fused_k.gates, 5, 3
    w_ih, w_hh = (rng.standard_normal((G * H, n)).astype(dtype) for n in (F, H))
    b_ih, b_hh = (rng.standard_normal(G * H).astype(dtype) for _ in range(2))
    got, ref = fused_k.prepare_weights(w_ih, w_hh, b_ih, b_hh), numpy_k.prepare_weights(w_ih, w_hh, b_ih, b_hh)
    assert np.shares_memory(got.w_ih_T, w_ih) and np.shares_memory(got.w_hh_T, w_hh)
    assert np.array_equal(got.w_ih_T, w_ih.T) and np.array_equal(got.w_hh_T, w_hh.T)
    s = ref.scale
    assert np.array_equal(ref.w_ih_T, (w_ih * s[:, None]).T) and np.array_equal(ref.w_hh_T, (w_hh * s[:, None]).T)
    assert np.array_equal(got.bias * s, ref.bias)
    assert np.array_equal(got.scale, ref.scale) and np.array_equal(got.offset, ref.offset)


@needs_compiled
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(768, 256), (12, 5), (1, 1), (256, 30), (3, 0)])
def test_compiled_transpose_is_exact(dtype, shape, rng):
    """The backward loop's W_hhᵀ (the tiled C copy) is w.T exactly, for sizes that are and
    are not multiples of the tile, non-contiguous inputs and an empty matrix included."""
    w = rng.standard_normal(shape).astype(dtype)
    got = compiled.FusedGRUKernel().transpose(w)
    assert got.flags.c_contiguous and got.dtype == dtype and np.array_equal(got, w.T)
    assert np.array_equal(compiled.FusedGRUKernel().transpose(w[:, ::-1]), w[:, ::-1].T)


@needs_compiled
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_dynamic_update_is_numpys_bit_for_bit(dtype, rng, monkeypatch):
    """Dynamic evaluation's update p ← p − step⊙g; p ← p + rate⊙(θ₀ − p) in one C pass
    gives NumPy's five passes exactly; arrays it cannot take (mixed dtype, a view, the
    compiled path off) are left to NumPy, and a dynamic evaluation does call it."""
    p, g, step, rate, theta0 = (rng.standard_normal(1001).astype(dtype) for _ in range(5))
    want = p.copy()
    want -= step * g
    want += rate * (theta0 - want)
    got = p.copy()
    assert fused.decayed_step(got, g, step, rate, theta0) and np.array_equal(got, want)
    for args in ((got, g.astype(np.float16), step, rate, theta0), (got[::2], g[::2], step[::2], rate[::2], theta0[::2])):
        before = args[0].copy()
        assert not fused.decayed_step(*args) and np.array_equal(args[0], before)
    previous = fused.set_compiled(False)
    try:
        assert not fused.decayed_step(got, g, step, rate, theta0)
        by_numpy = p.copy()
        scoring._decayed_step(by_numpy, g, step, rate, theta0, np.empty_like(p))   # its NumPy passes
        assert np.array_equal(by_numpy, want)
    finally:
        fused.set_compiled(previous)

    from rnnlab.data import Vocab
    calls = []
    c_function = compiled._gates.decayed_step
    monkeypatch.setattr(compiled._gates, "decayed_step", lambda *a: calls.append(a) or c_function(*a))
    text = "the cat sat on the mat. " * 20
    model = CharLM(Vocab.from_text(text), CharLMConfig(hidden_size=8, num_layers=1, seq_len=8, batch_size=2))
    ids = model.vocab.encode(text)
    dynamic_logprobs(model, ids, gradient_stats(model, ids), seg_len=50, streams=1)
    assert len(calls) == len(model.params) * -(-(len(ids) - 1) // 50)


@needs_compiled
@pytest.mark.parametrize("cell", ["LSTMCell", "GRUCell"])
def test_compiled_cell_step_and_backward_equal_numpy(cell, rng):
    B, F, H = 3, 4, 5
    x = rng.standard_normal((B, F))
    h = rng.standard_normal((B, H))
    state = (h, rng.standard_normal((B, H))) if cell == "LSTMCell" else h
    dnext = (rng.standard_normal((B, H)), rng.standard_normal((B, H))) if cell == "LSTMCell" \
        else rng.standard_normal((B, H))
    runs = []
    for compiled in (True, False):
        previous = fused.set_compiled(compiled)
        try:
            c = getattr(rnnlab, cell)(F, H, dtype=np.float64, seed=1)
            new, cache = c.step(x, state)
            dx, dstate = c.backward_step(dnext, cache)
            runs.append((new, dx, dstate, c.grads))
        finally:
            fused.set_compiled(previous)
    (n1, dx1, ds1, g1), (n2, dx2, ds2, g2) = runs
    for a, b in [(n1, n2), (ds1, ds2)]:
        for u, v in zip(a if isinstance(a, tuple) else [a], b if isinstance(b, tuple) else [b]):
            assert _relerr(u, v) < 1e-12
    assert _relerr(dx1, dx2) < 1e-12
    assert all(_relerr(g1[k], g2[k]) < 1e-12 for k in g1)


@needs_compiled
def test_compiled_training_is_reproducible_and_tracks_numpy():
    text = "the quick brown fox jumps over the lazy dog. " * 30

    def train(compiled):
        previous = fused.set_compiled(compiled)
        try:
            lm = CharLM("".join(sorted(set(text))), CharLMConfig(model="lstm", hidden_size=16, num_layers=2, seq_len=12,
                                           batch_size=4, dropout=0.0, lr=0.01, seed=0))
            opt = lm.make_optimizer()
            ids = lm.vocab.encode(text)
            x = ids[:48].reshape(4, 12).T
            y = ids[1:49].reshape(4, 12).T
            losses = []
            for _ in range(40):
                lm.zero_grad()
                loss, _ = lm.loss_and_grad(x, y)
                opt.step(lm.params, lm.grads)
                losses.append(loss)
            return np.array(losses), lm.params
        finally:
            fused.set_compiled(previous)

    l1, p1 = train(True)
    l1b, p1b = train(True)
    l2, _ = train(False)
    assert np.array_equal(l1, l1b) and all(np.array_equal(p1[k], p1b[k]) for k in p1)   # bit for bit
    assert l1[-1] < l1[0] - 0.5                     # it learns (3.3 → 2.4 nats)
    assert np.abs(l1 - l2).max() < 1e-4             # float32: the two paths stay together


def test_switch_and_environment_variable():
    previous = fused.set_compiled(False)
    try:
        assert not fused.compiled_active()
        assert fused.set_compiled(False) is False          # it returns the setting it replaces
        k = rnnlab.kernels.LSTMKernel()
        assert fused.select(k, np.float32) is k
    finally:
        assert fused.set_compiled(previous) is False
    assert fused.set_compiled(True) is previous
    assert fused.compiled_active() == fused.available()
    fused.set_compiled(previous)
    env = dict(os.environ, RNNLAB_PURE_NUMPY="1")
    code = "import rnnlab.kernels as f; print(f.compiled_active())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_bench_reports_rows_ratios_and_kernels():
    from rnnlab.bench import run_bench
    pytest.importorskip("torch", reason="the ratio column needs torch")
    result = run_bench(repeats=1, warmup=0, rows=["char-rnn GRU", "default", "sample min-char-rnn"], memory=False)
    assert [r["row"] for r in result["rows"]] == ["char-rnn GRU", "default", "sample min-char-rnn"]
    for r in result["rows"]:                  # (shares of the peak are timings: no bound asserted)
        assert r["time_s"] > 0 and r["ratio"] > 0 and r["peak_share"] > 0
    c = CharLMConfig()                        # the default row is CharLMConfig()'s, described
    assert result["default"].startswith("default = CharLMConfig() (rnnlab train's setting for a text of up to")
    assert f": {c.model.upper()} {c.num_layers}x{c.hidden_size}, seq {c.seq_len}" in result["default"]
    assert result["kernels"].startswith("compiled" if fused.compiled_active() else "NumPy")


def test_bench_times_in_alternated_rounds_and_pairs_the_ratio(monkeypatch):
    """The ratio is taken per round (both timed back to back, the order reversed every
    other round), so a machine that slows down mid-row does not bias it: here the clock
    runs 10× slower in the second half, and the pairs still give torch/rnnlab = 3."""
    import rnnlab.bench as bench
    clock, calls = [0.0], []

    def timed(name, cost):
        def fn():
            calls.append(name)
            clock[0] += cost * (10 if len(calls) - calls.count("settle") > 6 else 1)
        return fn
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(bench, "settle", lambda: calls.append("settle"))
    times, ratios = bench._median_times([timed("a", 1.0), timed("b", 3.0)], warmup=1, repeats=4)
    assert calls == ["a", "b"] + ["settle", "a", "settle", "b", "settle", "b", "settle", "a"] * 2
    assert ratios == [1.0, 3.0]
    assert times == [5.5, 16.5]          # medians of (1, 1, 10, 10) and (3, 3, 30, 30)


def test_bench_settles_spinning_blas_threads_before_each_timed_call():
    """After a matmul OpenBLAS's idle workers spin (CPU time with the main thread
    asleep); after ``settle()`` the process is quiet, so the next library timed does not
    share the cores with them."""
    import time
    import rnnlab.bench as bench
    a = np.ones((256, 768), np.float32)
    b = np.ones((768, 32), np.float32)
    for _ in range(20):
        a @ b
    bench.settle()
    c0 = time.process_time()
    time.sleep(0.05)
    assert time.process_time() - c0 < 0.01


@needs_compiled
@pytest.mark.parametrize("cell,B", [("LSTMCell", 3), ("GRUCell", 60)])
def test_a_fortran_ordered_state_gradient_gives_the_numpy_gradients(cell, B):
    """The C steps read dh, dc as rows: a Fortran-ordered dstate was read scrambled (LSTM
    dc always, dh above COLS_MAX_BATCH) — off by up to 3.5 against the NumPy kernels."""
    res = []
    for compiled_path in (True, False):
        previous = fused.set_compiled(compiled_path)
        try:
            m = getattr(rnnlab, cell)(2, 4, seed=0)
            _, cache = m.step(np.random.default_rng(1).standard_normal((B, 2)).astype(np.float32))
            g = np.random.default_rng(2)
            dh = np.asfortranarray(g.standard_normal((B, 4)).astype(np.float32))
            dstate = (dh, np.asfortranarray(g.standard_normal((B, 4)).astype(np.float32))) if cell == "LSTMCell" else dh
            dx, d0 = m.backward_step(dstate, cache)
            res.append([dx, *(d0 if isinstance(d0, tuple) else (d0,))])
        finally:
            fused.set_compiled(previous)
    assert max(_relerr(a, b) for a, b in zip(*res)) < 2e-5


@needs_compiled
def test_ids_changed_after_forward_do_not_reach_the_backward():
    """Backward adds into dW_ih's rows by the forward's ids: a caller reusing its batch buffer
    (here to an id out of range) wrote outside dW_ih from C. The layer keeps its own copy."""
    layer = rnnlab.GRU(5, 4, seed=0)
    xs = np.zeros((3, 4), np.int64)
    out, _ = layer.forward_time_major(xs, is_ids=True)
    xs[:] = 7
    layer.backward_time_major(np.ones_like(out))
    reference = rnnlab.GRU(5, 4, seed=0)
    out, _ = reference.forward_time_major(np.zeros((3, 4), np.int64), is_ids=True)
    reference.backward_time_major(np.ones_like(out))
    assert all(np.array_equal(layer.grads[k], reference.grads[k]) for k in layer.grads)
    with pytest.raises(rnnlab.errors.ConfigError, match="ids must be integers"):
        layer.forward_time_major(np.array([[4.5]]), is_ids=True)   # was truncated to 4 in C


def test_a_build_of_another_calling_convention_is_not_used():
    """A stale extension (an older install's) with the same step_args names but entry
    points that read their arguments differently was used; the ABI number refuses it."""
    from types import SimpleNamespace
    same = SimpleNamespace(ABI=compiled.ABI, STEP_ARGS=compiled.FIELDS)
    assert compiled.mismatch(same) is None
    assert "calling convention 1" in compiled.mismatch(SimpleNamespace(ABI=1, STEP_ARGS=compiled.FIELDS))
    assert "unnumbered" in compiled.mismatch(SimpleNamespace(STEP_ARGS=compiled.FIELDS))
    assert "step_args" in compiled.mismatch(SimpleNamespace(ABI=compiled.ABI, STEP_ARGS=compiled.FIELDS[:-1]))
    source = (Path(__file__).resolve().parent.parent / "rnnlab" / "_gates.c").read_text(encoding="utf-8")
    assert re.search(r"#define RNNLAB_GATES_ABI (\d+)", source).group(1) == str(compiled.ABI)   # the two agree
    try:                                   # the extension itself, not compiled's view of it (None if refused)
        import rnnlab._gates as built
    except ImportError:
        return
    assert built.ABI == compiled.ABI and compiled.available()
