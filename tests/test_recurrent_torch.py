"""RNN / LSTM / GRU layers against torch.nn after a weight copy, float64, 1e-9 relative:
outputs, final states, dx, the initial state's gradient and every parameter gradient.

Every test here runs twice: with the compiled gate kernels (rnnlab._gates, when built)
and with the pure-NumPy kernels."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import rnnlab
from rnnlab import kernels as fused
from helpers import relerr, t64, torch, torch_module

WORST = {}
BACKEND = {"name": None}


@pytest.fixture(scope="module", autouse=True, params=["compiled", "numpy"])
def backend(request):
    if request.param == "compiled" and not fused.available():
        pytest.skip("the optional compiled kernels (rnnlab._gates) were not built")
    previous = fused.set_compiled(request.param == "compiled")
    BACKEND["name"] = request.param
    yield request.param
    fused.set_compiled(previous)


def _compare(mode, B, T, F, H, L, bidirectional, with_state, with_dstate, bias, nonlinearity, seed):
    rng = np.random.default_rng(seed)
    kw = dict(nonlinearity=nonlinearity) if mode == "RNN" else {}
    layer = getattr(rnnlab, mode)(F, H, L, bidirectional=bidirectional, bias=bias,
                                  dtype=np.float64, seed=seed, **kw)
    ref = torch_module(mode, layer)
    D = 2 if bidirectional else 1
    x = rng.standard_normal((B, T, F))
    shape = (L * D, B, H)
    lstm = mode == "LSTM"
    state = None
    if with_state:
        state = (rng.standard_normal(shape), rng.standard_normal(shape)) if lstm else rng.standard_normal(shape)
    dout = rng.standard_normal((B, T, D * H))
    dstate = None
    if with_dstate:
        dstate = (rng.standard_normal(shape), rng.standard_normal(shape)) if lstm else rng.standard_normal(shape)

    xt = t64(x, True)
    st_t = None
    if state is not None:
        st_t = tuple(t64(s, True) for s in state) if lstm else t64(state, True)
    out_t, sn_t = ref(xt, st_t) if st_t is not None else ref(xt)
    loss = (out_t * t64(dout)).sum()
    if dstate is not None:
        pairs = zip(sn_t, dstate) if lstm else [(sn_t, dstate)]
        loss = loss + sum((s * t64(d)).sum() for s, d in pairs)
    loss.backward()

    out, sn = layer.forward(x, state)
    dx, dstate0 = layer.backward(dout, dstate)
    errs = {"out": relerr(out, out_t.detach().numpy()), "dx": relerr(dx, xt.grad.numpy())}
    for i, (a, b) in enumerate(zip(sn if lstm else [sn], sn_t if lstm else [sn_t])):
        errs[f"state_n[{i}]"] = relerr(a, b.detach().numpy())
    if st_t is not None:
        for i, (a, b) in enumerate(zip(dstate0 if lstm else [dstate0], st_t if lstm else [st_t])):
            errs[f"dstate0[{i}]"] = relerr(a, b.grad.numpy())
    for k, p in ref.named_parameters():
        errs[k] = relerr(layer.grads[k], p.grad.numpy())
    assert set(layer.grads) == {k for k, _ in ref.named_parameters()}
    worst = max(errs.values())
    key = mode if mode == "RNN" else f"{mode} ({BACKEND['name']})"     # RNN has no compiled kernel
    WORST[key] = max(WORST.get(key, 0.0), worst)
    assert worst < 1e-9, errs


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
@given(B=st.integers(1, 4), T=st.integers(1, 8), F=st.integers(1, 6), H=st.integers(1, 6),
       L=st.integers(1, 3), bidirectional=st.booleans(), with_state=st.booleans(),
       with_dstate=st.booleans(), bias=st.booleans(), relu=st.booleans(), seed=st.integers(0, 10**6))
@settings(max_examples=40, deadline=None)
def test_layer_equals_torch_on_random_configurations(mode, B, T, F, H, L, bidirectional, with_state,
                                                     with_dstate, bias, relu, seed):
    _compare(mode, B, T, F, H, L, bidirectional, with_state, with_dstate, bias,
             "relu" if relu else "tanh", seed)


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
def test_longer_sequence_equals_torch(mode):
    _compare(mode, B=3, T=40, F=5, H=16, L=2, bidirectional=True, with_state=True, with_dstate=True,
             bias=True, nonlinearity="tanh", seed=7)


@pytest.mark.parametrize("mode", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("direction", ["rnnlab->torch", "torch->rnnlab"])
def test_state_dict_round_trip_both_ways(mode, direction, rng):
    F, H, L = 4, 5, 2
    x = rng.standard_normal((2, 6, F))
    if direction == "torch->rnnlab":
        ref = getattr(torch.nn, mode)(F, H, L, bidirectional=True, batch_first=True, dtype=torch.float64)
        layer = getattr(rnnlab, mode)(F, H, L, bidirectional=True, dtype=np.float64, seed=99)
        layer.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    else:
        layer = getattr(rnnlab, mode)(F, H, L, bidirectional=True, dtype=np.float64, seed=3)
        ref = getattr(torch.nn, mode)(F, H, L, bidirectional=True, batch_first=True, dtype=torch.float64)
        ref.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    assert list(layer.state_dict()) == list(ref.state_dict())      # same keys, same order
    out_t, _ = ref(t64(x))
    out, _ = layer.forward(x)
    assert relerr(out, out_t.detach().numpy()) < 1e-12
    again = getattr(rnnlab, mode)(F, H, L, bidirectional=True, dtype=np.float64, seed=123)
    again.load_state_dict(layer.state_dict())
    assert np.array_equal(again.forward(x)[0], out)


def test_load_state_dict_errors_name_the_key():
    layer = rnnlab.LSTM(3, 4, 2)
    good = layer.state_dict()
    missing = dict(good)
    del missing["bias_hh_l1"]
    with pytest.raises(ValueError, match="missing key.*bias_hh_l1"):
        layer.load_state_dict(missing)
    with pytest.raises(ValueError, match="unexpected key.*weight_ih_l2"):
        layer.load_state_dict({**good, "weight_ih_l2": good["weight_ih_l1"]})
    with pytest.raises(ValueError, match="'weight_hh_l0' has shape"):
        layer.load_state_dict({**good, "weight_hh_l0": np.zeros((4, 4))})
    with pytest.raises(ValueError, match="'bias_ih_l0' has dtype int64"):
        layer.load_state_dict({**good, "bias_ih_l0": np.zeros(16, dtype=np.int64)})
    # float64 arrays load into a float32 layer (cast, as torch does)
    layer.load_state_dict({k: v.astype(np.float64) for k, v in good.items()})
    assert layer.params["weight_ih_l0"].dtype == np.float32
