"""Checkpoints written before the redesign keep loading and resuming.

``tests/data/charlm_v1_lstm.npz`` is the ``latest.npz`` of a run made with rnnlab at
commit cf8eb93 (checkpoint format version 1): an LSTM 2×12 with dropout 0.25, trained
30 of 40 steps on the text in ``charlm_v1_lstm.json``. The JSON also holds what that
version computed from it: the greedy sample after the prime "One ", the loss on the
first 300 characters, and — from an uninterrupted 40-step run — the final training
loss and the sum of each parameter array. Loading and resuming under today's code must
reproduce them (to float32 rounding: the fixture may have been written on the other
kernel path)."""
import json
import os

import numpy as np
import pytest

from rnnlab import CharLM

HERE = os.path.join(os.path.dirname(__file__), "data")
CKPT = os.path.join(HERE, "charlm_v1_lstm.npz")


@pytest.fixture(scope="module")
def expected():
    with open(os.path.join(HERE, "charlm_v1_lstm.json"), encoding="utf-8") as f:
        return json.load(f)


def test_v1_checkpoint_loads_and_predicts_as_before(expected):
    model = CharLM.load(CKPT)
    assert model.generate(40, temperature=0, prime="One ") == expected["sample_greedy_prime_One"]
    loss = model.evaluate(expected["text"][:300])["loss"]
    assert loss == pytest.approx(expected["eval_loss_first_300"], rel=1e-5)


def test_v1_checkpoint_resumes_exactly(expected, tmp_path):
    model, opt_state, state = CharLM.load(CKPT, with_training_state=True)
    summary = model.fit(expected["text"], max_steps=40, eval_every=10, out_dir=str(tmp_path),
                        sample_chars=0, resume=(opt_state, state))
    assert summary["steps"] == 40
    assert summary["train_loss"] == pytest.approx(expected["resumed_to_40_train_loss"], rel=1e-5)
    sums = {k: float(v.astype(np.float64).sum()) for k, v in model.params.items()}
    assert sums.keys() == expected["resumed_to_40_param_sums"].keys()
    for k, v in expected["resumed_to_40_param_sums"].items():
        assert sums[k] == pytest.approx(v, rel=1e-4, abs=1e-5), k
