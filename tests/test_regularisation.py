"""Regularisation for small texts (issue 15, AWD-LSTM): weight drop on W_hh, locked
(variational) dropout, and the averaged weights used for evaluation.

Gradients by finite differences (float64, masks held fixed by restoring the generator's
state before each forward), against torch.nn with the same masks (the weight-dropped
W_hh loaded into torch, the locked mask applied by hand between two torch layers; the
gradient w.r.t. the stored W_hh is mask/(1−p) ⊙ torch's, by the chain rule), structure
(one weight mask per call, one locked mask for all steps, eval is the identity), the
average's closed form, what the checkpoints hold, and exact resume with all three on.
Torch and gradient checks run on the compiled and the NumPy kernels."""
import json
import os

import warnings

import numpy as np
import pytest

import rnnlab
from rnnlab import checkpoint, gradcheck
from rnnlab import kernels as fused
from rnnlab.averaging import WeightAverage
from rnnlab.cli import main
from rnnlab.errors import CheckpointError, ConfigError
from rnnlab.layers import Dropout
from rnnlab.models import CharLM
from rnnlab.models.charlm_config import PRESETS, REGULARISERS_OFF, CharLMConfig
from rnnlab.module import dropout_mask
from helpers import relerr, t64, torch
from fixed_masks import fixed_masks

MODES = ["RNN", "LSTM", "GRU"]
WORST = {}          # the largest relative error per check (in pytest's summary: conftest.py)


@pytest.fixture(params=["compiled", "numpy"])
def kernels(request):
    if request.param == "compiled" and not fused.available():
        pytest.skip("the optional compiled kernels (rnnlab._gates) were not built")
    previous = fused.set_compiled(request.param == "compiled")
    yield request.param
    fused.set_compiled(previous)


def _layer(mode, F, H, L, **kw):
    return getattr(rnnlab, mode)(F, H, L, dtype=np.float64, **kw)


def _expected_masks(layer, B):
    """The masks the layer's next training forward draws, in its documented order: per
    layer k, each direction's W_hh mask, then (k < L−1) the mask of the layer's output."""
    probe = np.random.Generator(np.random.PCG64())
    probe.bit_generator.state = layer.rng.bit_generator.state
    w_masks, out_masks = {}, []
    D, H = layer.num_directions, layer.hidden_size
    for k in range(layer.num_layers):
        for d in range(D):
            name = layer.param_names(k, d)[1]
            if layer.weight_drop:
                w_masks[name] = dropout_mask(probe, layer.params[name].shape, layer.weight_drop, np.float64)
        if layer.dropout and k < layer.num_layers - 1:
            shape = (1, B, D * H) if layer.locked_dropout else None
            assert shape is not None, "only locked masks are rebuilt here"
            out_masks.append(dropout_mask(probe, shape, layer.dropout, np.float64))
    return w_masks, out_masks


def _torch_reference(mode, layer, x, state, dout, w_masks, out_masks):
    """The same computation in torch: one torch layer per rnnlab layer, its weight_hh
    replaced by the masked matrix, the locked mask applied by hand between layers.
    Returns out, final state, dx, dstate0 and the gradient w.r.t. each rnnlab parameter."""
    L, D, lstm = layer.num_layers, layer.num_directions, mode == "LSTM"
    p = layer.params
    mods = []
    for k in range(L):
        m = getattr(torch.nn, mode)(p[f"weight_ih_l{k}"].shape[1], layer.hidden_size, 1, batch_first=True,
                                    bidirectional=layer.bidirectional, dtype=torch.float64)
        sd = {}
        for d in range(D):
            for name in layer.param_names(k, d):
                w = p[name] * w_masks[name] if name in w_masks else p[name]
                sd[name.replace(f"_l{k}", "_l0")] = torch.tensor(w)
        m.load_state_dict(sd)
        mods.append(m)
    xt = t64(x, True)
    st = tuple(t64(s, True) for s in state) if lstm else t64(state, True)
    h, finals = xt, []
    for k, m in enumerate(mods):
        rows = slice(k * D, (k + 1) * D)
        s_k = (st[0][rows], st[1][rows]) if lstm else st[rows]
        h, s_n = m(h, s_k)
        finals.append(s_n)
        if k < L - 1 and out_masks:
            h = h * t64(out_masks[k].transpose(1, 0, 2))        # (1, B, DH) time-major → (B, 1, DH)
    (h * t64(dout)).sum().backward()
    grads = {}
    for k, m in enumerate(mods):
        for name, prm in m.named_parameters():
            grads[name.replace("_l0", f"_l{k}")] = prm.grad.numpy()
    if lstm:
        s_out = (torch.cat([f[0] for f in finals]).detach().numpy(),
                 torch.cat([f[1] for f in finals]).detach().numpy())
        ds0 = (st[0].grad.numpy(), st[1].grad.numpy())
    else:
        s_out, ds0 = torch.cat(finals).detach().numpy(), st.grad.numpy()
    return h.detach().numpy(), s_out, xt.grad.numpy(), ds0, grads


CASES = {                                   # name: (num_layers, bidirectional, layer options)
    "weight_drop": (2, True, dict(weight_drop=0.4)),
    "locked": (3, False, dict(dropout=0.3, locked_dropout=True)),
    "both": (2, True, dict(weight_drop=0.5, dropout=0.25, locked_dropout=True)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("mode", MODES)
def test_against_torch_with_the_same_masks(mode, case, kernels):
    L, bidirectional, opts = CASES[case]
    B, T, F, H = 3, 7, 4, 5
    D = 2 if bidirectional else 1
    rng = np.random.default_rng(11)
    layer = _layer(mode, F, H, L, bidirectional=bidirectional, seed=4, **opts)
    x = rng.standard_normal((B, T, F))
    shape = (L * D, B, H)
    state = (rng.standard_normal(shape), rng.standard_normal(shape)) if mode == "LSTM" else rng.standard_normal(shape)
    dout = rng.standard_normal((B, T, D * H))
    w_masks, out_masks = _expected_masks(layer, B)
    assert len(w_masks) == (L * D if "weight_drop" in opts else 0)
    out_t, sn_t, dx_t, ds0_t, g_t = _torch_reference(mode, layer, x, state, dout, w_masks, out_masks)

    out, sn = layer.forward(x, state)
    dx, ds0 = layer.backward(dout)
    errs = {"out": relerr(out, out_t), "dx": relerr(dx, dx_t)}
    for i, (a, b) in enumerate(zip(*((sn, sn_t) if mode == "LSTM" else ([sn], [sn_t])))):
        errs[f"state_n[{i}]"] = relerr(a, b)
    for i, (a, b) in enumerate(zip(*((ds0, ds0_t) if mode == "LSTM" else ([ds0], [ds0_t])))):
        errs[f"dstate0[{i}]"] = relerr(a, b)
    for name, g in layer.grads.items():
        # W_used = W ⊙ m/(1−p)  ⇒  dL/dW = m/(1−p) ⊙ dL/dW_used (torch's gradient)
        want = g_t[name] * w_masks[name] if name in w_masks else g_t[name]
        errs[name] = relerr(g, want)
    key = f"{mode} {case} {kernels}"
    WORST[key] = max(errs.values())
    assert max(errs.values()) < 1e-9, errs
    if w_masks:                       # the masks really dropped entries (the test is not vacuous)
        assert all((m == 0).any() and (m > 1).any() for m in w_masks.values())
        raw = {n: layer.grads[n] for n in w_masks}
        assert all(np.all(raw[n][w_masks[n] == 0] == 0) for n in w_masks)    # dropped: no gradient


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("mode", MODES)
def test_gradients_with_fixed_masks(mode, case, kernels, rng):
    L, bidirectional, opts = CASES[case]
    layer = _layer(mode, 3, 3, L, bidirectional=bidirectional, seed=5, **opts)
    errors = gradcheck(fixed_masks(layer), (rng.standard_normal((2, 4, 3)),))
    WORST[f"gradcheck {mode} {case} {kernels}"] = max(errors.values())
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("mode", MODES)
def test_weight_mask_is_one_per_call(mode, rng, kernels):
    """Within a call every step (and BPTT) uses the same masked W_hh: the output equals a
    plain layer's whose W_hh is that matrix, bit for bit; the next call draws a new mask."""
    B, T, F, H = 2, 9, 3, 8
    layer = _layer(mode, F, H, 1, weight_drop=0.5, seed=2)
    plain = _layer(mode, F, H, 1, seed=2)
    x = rng.standard_normal((B, T, F))
    masks = []
    for _ in range(2):
        m = _expected_masks(layer, B)[0]["weight_hh_l0"]
        masks.append(m)
        plain.params["weight_hh_l0"][...] = layer.params["weight_hh_l0"] * m
        out, _ = layer.forward(x)
        dout = rng.standard_normal(out.shape)
        layer.zero_grad(), plain.zero_grad()
        dx = layer.backward(dout)[0]
        assert np.array_equal(out, plain.forward(x)[0])
        assert np.array_equal(dx, plain.backward(dout)[0])
        assert np.array_equal(layer.grads["weight_hh_l0"], plain.grads["weight_hh_l0"] * m)
    assert not np.array_equal(masks[0], masks[1])
    assert 0.3 < (masks[0] == 0).mean() < 0.7


def test_locked_mask_is_the_same_at_every_step(rng):
    x = np.ones((50, 6, 8))                                       # time-major (T, B, F)
    drop = Dropout(0.5, seed=0, locked_axis=0)
    y = drop.forward(x)
    assert np.array_equal(y, np.broadcast_to(y[0], y.shape))       # one mask for all steps
    assert 0.2 < (y[0] == 0).mean() < 0.8 and set(np.unique(y)) == {0.0, 2.0}
    assert np.array_equal(drop.backward(x), y)
    assert not np.array_equal(drop.forward(x)[0], y[0])           # a new one per call
    free = Dropout(0.5, seed=0).forward(x)
    assert not np.array_equal(free, np.broadcast_to(free[0], free.shape))
    # the recurrent stack: one (1, B, D·H) mask between layers
    layer = _layer("LSTM", 3, 4, 2, dropout=0.5, locked_dropout=True, bidirectional=True, seed=1)
    layer.forward(rng.standard_normal((6, 10, 3)))
    assert layer._cache[2][0][1].shape == (1, 6, 8)


@pytest.mark.parametrize("mode", MODES)
def test_eval_mode_is_the_identity(mode, rng):
    opts = dict(weight_drop=0.5, dropout=0.5, locked_dropout=True)
    layer, plain = _layer(mode, 3, 4, 2, seed=7, **opts), _layer(mode, 3, 4, 2, seed=7)
    assert all(np.array_equal(layer.params[k], plain.params[k]) for k in plain.params)   # same init draws
    x = rng.standard_normal((2, 5, 3))
    layer.eval()
    before = layer.rng.bit_generator.state
    assert np.array_equal(layer.forward(x)[0], plain.forward(x)[0])
    assert layer.rng.bit_generator.state == before                  # nothing drawn
    layer.train()
    assert not np.allclose(layer.forward(x)[0], plain.forward(x)[0])
    # a CharLM with all three on, in eval mode, scores like one without them
    text = "abcabdabe" * 30
    a = CharLM(sorted(set(text)), CharLMConfig(hidden_size=8, num_layers=2, dropout=0.5, weight_drop=0.5,
                                               locked_dropout=True, average=0.9))
    b = CharLM(sorted(set(text)), CharLMConfig(hidden_size=8, num_layers=2, dropout=0.5, **REGULARISERS_OFF))
    assert a.evaluate(text)["loss"] == b.evaluate(text)["loss"]


def test_layer_options_are_checked():
    for bad in (-0.1, 1.0, True, "0.5", float("nan")):
        with pytest.raises(ConfigError, match="weight_drop"):
            rnnlab.LSTM(3, 4, weight_drop=bad)
    with pytest.raises(ConfigError, match="locked_dropout"):
        rnnlab.GRU(3, 4, locked_dropout="yes")
    with pytest.raises(ConfigError, match="locked_axis"):
        Dropout(0.5, locked_axis=True)


def test_dropout_on_one_layer_warns_as_torch_does_but_not_from_charlm():
    """torch.nn warns that dropout with num_layers=1 does nothing; so does rnnlab. A
    one-layer CharLM still applies its dropout before the head, and does not warn."""
    with pytest.warns(UserWarning, match="num_layers=1 changes nothing"):
        rnnlab.GRU(3, 4, dropout=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rnnlab.GRU(3, 4, 2, dropout=0.2)
        model = CharLM(list("abc"), CharLMConfig(hidden_size=8, num_layers=1, dropout=0.5, **REGULARISERS_OFF))
    assert model.drop.p == 0.5
    ids = np.array([[0, 1, 2, 0, 1]])
    model.train()
    a = model.forward(ids)[0]
    model.eval()
    assert not np.allclose(a, model.forward(ids)[0])       # the head's input was dropped


# -- the average ------------------------------------------------------------------------------
class _Weights:
    def __init__(self, **arrays):
        self.params = arrays


def test_average_equals_its_closed_form(rng):
    decay, K = 0.5, 20
    w = [rng.standard_normal((3, 4)) for _ in range(K + 1)]         # w[0]: the initial weights
    live = _Weights(a=w[0].copy(), b=np.zeros(2))
    avg = WeightAverage(live, decay)
    for t in range(1, K + 1):
        live.params["a"][...] = w[t]
        avg.update()
    d = [None] + [min(decay, (1 + t) / (10 + t)) for t in range(1, K + 1)]
    # a_K = Π_{i=1..K} d_i · w_0 + Σ_{j=1..K} (1 − d_j) Π_{i=j+1..K} d_i · w_j
    coef = [np.prod(d[1:])] + [(1 - d[j]) * np.prod(d[j + 1:]) for j in range(1, K + 1)]
    assert sum(coef) == pytest.approx(1.0, abs=1e-15)
    want = sum(c * x for c, x in zip(coef, w))
    assert relerr(avg.averages["a"], want) < 1e-13
    assert np.array_equal(avg.averages["b"], np.zeros(2))
    # after the warm-up (d_t = decay from t = 8 on) it is the plain EMA of decay 0.5
    assert d[8] == decay and d[7] < decay
    a8 = np.prod(d[1:9]) * w[0] + sum((1 - d[j]) * np.prod(d[j + 1:9]) * w[j] for j in range(1, 9))
    ema = decay ** (K - 8) * a8 + sum((1 - decay) * decay ** (K - j) * w[j] for j in range(9, K + 1))
    assert relerr(avg.averages["a"], ema) < 1e-13
    assert avg.updates == K


def test_average_swaps_in_and_back_exactly(rng):
    w = rng.standard_normal(5).astype(np.float32)
    live = _Weights(a=w.copy())
    avg = WeightAverage(live, 0.99, averages={"a": np.ones(5)}, updates=3)
    assert avg.averages["a"].dtype == np.float32
    with pytest.raises(RuntimeError):
        with avg.applied():
            assert np.array_equal(live.params["a"], np.ones(5, np.float32))
            raise RuntimeError
    assert np.array_equal(live.params["a"], w)
    for bad in (0, 1, 1.5, -0.1, True, float("nan")):
        with pytest.raises(ConfigError, match="average"):
            WeightAverage(live, bad)
    with pytest.raises(ConfigError, match="shape"):
        WeightAverage(live, 0.9, averages={"a": np.ones(4)})


# -- configuration, CLI and checkpoints ---------------------------------------------------------
def test_config_fields_default_on_absent_means_off_and_are_validated():
    c = CharLMConfig()
    assert (c.weight_drop, c.locked_dropout, c.average) == (0.25, True, 0.99)      # the sweep's choice
    old = {k: v for k, v in c.to_dict().items() if k not in ("weight_drop", "locked_dropout", "average")}
    # a checkpoint from before the regularisers existed had them off
    assert CharLMConfig.from_dict(old) == CharLMConfig(**REGULARISERS_OFF)
    for name, preset in PRESETS.items():                          # the reference recipes have none
        assert all(CharLMConfig(**preset).to_dict()[k] == v for k, v in REGULARISERS_OFF.items()), name
    for field, bad in [("weight_drop", 1.0), ("weight_drop", -0.5), ("weight_drop", "0.1"),
                       ("locked_dropout", 1), ("locked_dropout", "true"), ("average", 1.0),
                       ("average", -0.1), ("average", float("inf")), ("average", None)]:
        with pytest.raises(ConfigError, match=field):
            CharLMConfig(**{field: bad}).validate()


def make_text(n_chars=4000, seed=0):
    rng = np.random.default_rng(seed)
    words = ["the cat", "a dog", "sees", "eats", "fish.", "seeds."]
    return " ".join(rng.choice(words) for _ in range(n_chars // 5))[:n_chars] + "\n"


SMALL = ["--hidden-size", "16", "--seq-len", "12", "--batch-size", "6", "--lr", "0.01", "--quiet"]
ALL_THREE = ["--num-layers", "2", "--dropout", "0.2", "--weight-drop", "0.3", "--locked-dropout",
             "--average", "0.9"]


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_text(make_text(), encoding="utf-8")
    return str(p)


def _arrays(path):
    return checkpoint.load(path)


@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_resume_with_all_three_equals_an_uninterrupted_run(capsys, tmp_path, text_file, model):
    opts = ["--model", model, *ALL_THREE, *SMALL, "--eval-every", "7"]
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    # 4,000 chars, 10% held out, 6 streams of windows of 12: 49 steps per epoch; 56 cross one
    assert main(["train", text_file, *opts, "--max-steps", "56", "--out", straight]) == 0
    assert main(["train", text_file, *opts, "--max-steps", "28", "--out", split]) == 0
    assert main(["train", "--resume", split, "--max-steps", "56", "--eval-every", "7", "--quiet"]) == 0
    capsys.readouterr()
    a, meta_a = _arrays(os.path.join(straight, "latest.npz"))
    b, meta_b = _arrays(os.path.join(split, "latest.npz"))
    assert meta_b["step"] == 56 and meta_b["epoch"] == 1
    assert meta_b["config"]["weight_drop"] == 0.3 and meta_b["config"]["locked_dropout"] is True
    assert set(a) == set(b) and any(k.startswith("avg/") for k in a)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    with open(os.path.join(straight, "metrics.jsonl"), "rb") as f, \
            open(os.path.join(split, "metrics.jsonl"), "rb") as g:     # the same validation losses
        va = [(r["step"], r["val_loss"]) for r in map(json.loads, f.read().splitlines())]
        vb = [(r["step"], r["val_loss"]) for r in map(json.loads, g.read().splitlines())]
    assert va == vb and len(va) == 8
    best_a, _ = _arrays(os.path.join(straight, "best.npz"))
    best_b, _ = _arrays(os.path.join(split, "best.npz"))
    assert set(best_a) == set(best_b) and all(np.array_equal(best_a[k], best_b[k]) for k in best_a)
    # the weights differ from a run without the options (they did something)
    plain = str(tmp_path / "plain")
    assert main(["train", text_file, "--model", model, "--num-layers", "2", "--dropout", "0.2", *SMALL,
                 "--eval-every", "7", "--max-steps", "28", "--out", plain]) == 0
    c, _ = _arrays(os.path.join(plain, "latest.npz"))
    half, _ = _arrays(os.path.join(straight, "latest.npz"))
    assert not np.array_equal(c["param/rnn.weight_hh_l0"], half["param/rnn.weight_hh_l0"])


def test_checkpoints_hold_the_average(capsys, tmp_path, text_file):
    run_dir = str(tmp_path / "run")
    text = make_text()
    assert main(["train", text_file, *ALL_THREE, *SMALL, "--max-steps", "30", "--eval-every", "30",
                 "--val-frac", "0", "--out", run_dir]) == 0
    latest, _ = _arrays(os.path.join(run_dir, "latest.npz"))
    best, _ = _arrays(os.path.join(run_dir, "best.npz"))
    names = [k[len("param/"):] for k in latest if k.startswith("param/")]
    assert not any(k.startswith("avg/") for k in best) and not any(k.startswith("optim/") for k in best)
    for n in names:                              # best.npz: the average; latest: raw and average
        assert np.array_equal(best[f"param/{n}"], latest[f"avg/{n}"]), n
    assert any(not np.array_equal(latest[f"param/{n}"], latest[f"avg/{n}"]) for n in names)
    # every reader sees the averaged weights; a resume gets both
    used = CharLM.load(os.path.join(run_dir, "latest.npz"))
    assert all(np.array_equal(used.params[n], latest[f"avg/{n}"]) for n in names) and used.averaged is None
    model, _, _ = CharLM.load(os.path.join(run_dir, "latest.npz"), with_training_state=True)
    assert all(np.array_equal(model.params[n], latest[f"param/{n}"]) for n in names)
    assert all(np.array_equal(model.averaged[n], latest[f"avg/{n}"]) for n in names)
    # rnnlab eval of the run = the averaged weights' loss
    val = tmp_path / "val.txt"
    val.write_text(text[:500], encoding="utf-8")
    assert main(["eval", run_dir, str(val), "--json"]) == 0
    loss = json.loads(capsys.readouterr().out)["loss"]
    assert loss == pytest.approx(used.evaluate(text[:500])["loss"], rel=1e-12)
    raw = CharLM(model.vocab, model.config)
    raw.load_state_dict({n: latest[f"param/{n}"] for n in names})
    assert loss != raw.evaluate(text[:500])["loss"]


def test_validation_uses_the_average(tmp_path):
    text = make_text()
    cfg = CharLMConfig(hidden_size=12, num_layers=1, seq_len=12, batch_size=6, lr=0.01, average=0.8)
    model = CharLM(sorted(set(text)), cfg)
    summary = model.fit(text, max_steps=12, eval_every=12, out_dir=str(tmp_path / "r"), sample_chars=0)
    val = text[len(text) - int(round(len(text) * cfg.val_frac)):]
    raw_loss = model.evaluate(val)["loss"]
    with WeightAverage(model, 0.8, averages=model.averaged, updates=12).applied():
        avg_loss = model.evaluate(val)["loss"]
    assert summary["best_val_loss"] == pytest.approx(avg_loss, rel=1e-12)
    assert avg_loss != raw_loss


def test_average_members_are_checked(tmp_path, text_file, capsys):
    run_dir = str(tmp_path / "run")
    assert main(["train", text_file, *SMALL, "--average", "0.9", "--max-steps", "4", "--out", run_dir]) == 0
    arrays, meta = _arrays(os.path.join(run_dir, "latest.npz"))
    header = {k: v for k, v in meta.items()}

    def write(name, arrays, config=None):
        path = str(tmp_path / name)
        h = dict(header)
        if config:
            h["config"] = {**h["config"], **config}
        checkpoint.save(path, arrays, h)
        return path

    missing = write("missing.npz", {k: v for k, v in arrays.items() if k != "avg/head.bias"})
    with pytest.raises(CheckpointError, match="avg/head.bias"):
        CharLM.load(missing, with_training_state=True)
    with pytest.raises(CheckpointError, match="avg/head.bias"):
        CharLM.load(missing)                     # some averages but not all
    shape = write("shape.npz", {**arrays, "avg/head.bias": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointError, match="avg/head.bias"):
        CharLM.load(shape)
    nan = dict(arrays)
    nan["avg/head.bias"] = arrays["avg/head.bias"].copy()
    nan["avg/head.bias"][0] = np.nan
    with pytest.raises(CheckpointError, match="NaN"):
        CharLM.load(write("nan.npz", nan))
    with pytest.raises(CheckpointError, match="does not average"):
        CharLM.load(write("off.npz", arrays, {"average": 0.0}))
    with pytest.raises(CheckpointError, match="average"):
        CharLM.load(write("bad.npz", arrays, {"average": 2.0}))


def test_cli_flags(capsys, tmp_path, text_file):
    run_dir = str(tmp_path / "run")
    assert main(["train", text_file, *SMALL, *ALL_THREE, "--max-steps", "2", "--out", run_dir]) == 0
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    assert (config["weight_drop"], config["locked_dropout"], config["average"]) == (0.3, True, 0.9)
    capsys.readouterr()
    assert main(["train", "--resume", run_dir, "--max-steps", "4", "--average", "0.5", "--quiet"]) == 2
    assert "--average" in capsys.readouterr().err
    assert main(["train", text_file, *SMALL, "--weight-drop", "1.5", "--max-steps", "2",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--weight-drop must be in [0, 1)" in capsys.readouterr().err
    assert main(["train", text_file, *SMALL, "--average", "1", "--max-steps", "2",
                 "--out", str(tmp_path / "y")]) == 2
    assert "--average must be in [0, 1)" in capsys.readouterr().err


def test_train_leaves_them_off_for_a_large_text_unless_asked(capsys, tmp_path, text_file, monkeypatch):
    """``rnnlab train`` builds its config with CharLMConfig.for_text: the regularisers on
    up to LARGE_TEXT characters; above, off and dropout 0.1; a flag given always wins
    (the threshold is lowered here so a 4,000-character text counts as large)."""
    import rnnlab.models.charlm_config as cc

    def trained_config(*flags, name):
        run_dir = str(tmp_path / name)
        assert main(["train", text_file, *SMALL, *flags, "--max-steps", "1", "--out", run_dir]) == 0
        with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
            c = json.load(f)
        return c["dropout"], c["weight_drop"], c["locked_dropout"], c["average"]
    with open(text_file, encoding="utf-8") as f:
        n = len(f.read())
    assert trained_config(name="small") == (0.25, 0.25, True, 0.99)
    monkeypatch.setattr(cc, "LARGE_TEXT", n - 1)
    assert trained_config(name="large") == (0.1, 0.0, False, 0.0)
    assert trained_config("--weight-drop", "0.2", "--dropout", "0.3", name="asked") == (0.3, 0.2, False, 0.0)
    assert trained_config("--preset", "char-rnn", "--weight-drop", "0.1", name="preset") == (0.0, 0.1, False, 0.0)
    monkeypatch.setattr(cc, "LARGE_TEXT", n)                      # "more than": a text of exactly n is small
    assert trained_config(name="edge") == (0.25, 0.25, True, 0.99)
    assert CharLMConfig.for_text(n + 1, locked_dropout=True, seed=3) == CharLMConfig(
        dropout=0.1, weight_drop=0.0, locked_dropout=True, average=0.0, seed=3)
