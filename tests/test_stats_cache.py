"""Dynamic evaluation's gradient statistics kept beside a checkpoint (models/stats_cache.py):
read back bit for bit, used only for exactly the weights, text and segment length they
were gathered for, and a damaged, foreign or unwritable file is never more than a miss."""
import os
from pathlib import Path

import numpy as np
import pytest

from rnnlab import checkpoint, kernels
from rnnlab.models import stats_cache
from rnnlab.models.scoring import DYN_SEG, gradient_stats
from test_adaptation import trained  # noqa: F401  (the module's small trained model, a fixture)
from test_charlm_cli import SMALL, make_text, run


def same(a, b):
    return all(np.array_equal(a.mu2[k], b.mu2[k]) and np.array_equal(a.var[k], b.var[k]) for k in a.mu2)


@pytest.fixture
def counted(monkeypatch):
    """Counts the statistics actually gathered (not read from a file)."""
    calls = []

    def gather(*args, **kwargs):
        calls.append(1)
        return gradient_stats(*args, **kwargs)
    monkeypatch.setattr(stats_cache, "gradient_stats", gather)
    return calls


def test_kept_statistics_are_the_gathered_ones_bit_for_bit(trained, tmp_path, counted):
    model, text = trained
    path = str(tmp_path / "m-gradstats.npz")
    first = model.gradient_stats(text, cache=path)
    assert os.path.isfile(path) and len(counted) == 1
    again = model.gradient_stats(text, cache=path)
    assert len(counted) == 1                                       # read, not gathered
    assert same(again, first) and same(again, model.gradient_stats(text))


def test_other_weights_text_or_segment_length_gather_again(trained, tmp_path, counted):
    model, text = trained
    path = str(tmp_path / "m-gradstats.npz")
    model.gradient_stats(text, cache=path)
    model.gradient_stats(text, seg_len=7, cache=path)             # another segment length
    model.gradient_stats(text[:-50], seg_len=7, cache=path)       # another training text
    assert len(counted) == 3
    previous = kernels.set_compiled(not kernels.compiled_active())   # the other kernels: other last bits
    try:
        model.gradient_stats(text[:-50], seg_len=7, cache=path)
    finally:
        kernels.set_compiled(previous)
    assert len(counted) == 4 - (not kernels.available())           # no twin built: the same kernels ran
    counted.clear()
    model.gradient_stats(text[:-50], seg_len=7, cache=path)
    assert len(counted) == kernels.available()
    counted.clear()
    model.gradient_stats(text[:-50], seg_len=np.int64(7), cache=path)   # a NumPy integer: the same key
    assert len(counted) == 0                                       # (it was a JSON TypeError)
    w = model.params["head.bias"]
    kept = w.copy()
    try:
        w[0] = np.nextafter(w[0], np.inf)                          # one weight, one ulp
        changed = model.gradient_stats(text[:-50], seg_len=7, cache=path)
        assert len(counted) == 1 and same(changed, model.gradient_stats(text[:-50], seg_len=7))
    finally:
        w[...] = kept


def _train_split(model, text):
    from rnnlab.data.text import split_train_val
    return split_train_val(model.vocab.known(text), model.config.val_frac)[0]


def _key(model, text):
    return stats_cache.stats_key(model, model.vocab.encode(_train_split(model, text)), DYN_SEG)


def _forged(path, model, text, tamper):
    """A file under the right key whose arrays ``tamper`` changed."""
    stats = model.gradient_stats(text)
    arrays = {**{f"mu2/{k}": v.copy() for k, v in stats.mu2.items()},
              **{f"var/{k}": v.copy() for k, v in stats.var.items()}}
    tamper(arrays)
    checkpoint.save(path, arrays, {"kind": stats_cache.KIND, "key": _key(model, text)})


def _set(name, value):
    def tamper(arrays):
        arrays[name].flat[0] = value
    return tamper


def test_damaged_or_foreign_files_are_misses_and_are_replaced(trained, tmp_path, counted):
    model, text = trained
    truth = model.gradient_stats(text)
    good = str(tmp_path / "good.npz")
    model.gradient_stats(text, cache=good)
    data = (tmp_path / "good.npz").read_bytes()
    cases = {
        "truncated": lambda p: Path(p).write_bytes(data[:len(data) // 2]),
        "garbage": lambda p: Path(p).write_bytes(b"not a zip file at all" * 100),
        "a checkpoint, not statistics": lambda p: model.save(p),
        "NaN": lambda p: _forged(p, model, text, _set("mu2/head.bias", np.nan)),
        "negative": lambda p: _forged(p, model, text, _set("var/head.weight", -1.0)),
        "wrong shape": lambda p: _forged(p, model, text, lambda a: a.update({"mu2/head.bias": np.zeros(3)})),
        "float32": lambda p: _forged(p, model, text, lambda a: a.update(
            {"var/head.bias": a["var/head.bias"].astype(np.float32)})),
        "an extra array": lambda p: _forged(p, model, text, lambda a: a.update({"extra": np.zeros(2)})),
        "a missing array": lambda p: _forged(p, model, text, lambda a: a.pop("var/head.bias")),
        # a review's forgeries (2026-12-06), key recomputed: 1e308 gave overflow warnings and blamed
        # --dyn-lr; zeros (or denormals) gave a loss of 722,827 and exit 0
        "huge": lambda p: _forged(p, model, text, _set("var/head.bias", 1e31)),
        "zeros": lambda p: _forged(p, model, text, lambda a: [v.fill(0.0) for v in a.values()]),
        "denormals": lambda p: _forged(p, model, text, lambda a: [v.fill(5e-324) for v in a.values()]),
    }
    for offset in range(0, len(data), len(data) // 7):
        flipped = bytearray(data)
        flipped[offset] ^= 0xFF
        cases[f"byte {offset} flipped"] = lambda p, b=bytes(flipped): Path(p).write_bytes(b)
    shapes = {k: p.shape for k, p in model.params.items()}
    for name, write in cases.items():
        path = str(tmp_path / f"{name}.npz")
        write(path)
        before = len(counted)
        assert same(model.gradient_stats(text, cache=path), truth), name
        # every crafted file is a miss; a flipped byte is one too unless it fell where the zip
        # does not look (the CRC of each member catches any flip in the arrays themselves)
        assert len(counted) == before + 1 or name.startswith("byte"), name
        assert same(stats_cache.load(path, _key(model, text), shapes), truth), name    # now a good file


def test_an_unwritable_location_only_loses_the_caching(trained, tmp_path, counted):
    model, text = trained
    path = tmp_path / "a-directory"
    path.mkdir()
    stats = model.gradient_stats(text, cache=str(path))
    assert same(stats, model.gradient_stats(text)) and path.is_dir() and not os.listdir(path)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]     # no temporary left behind


def test_cli_eval_and_sample_dynamic_keep_the_statistics_beside_the_checkpoint(capsys, tmp_path, counted):
    text = tmp_path / "t.txt"
    text.write_text(make_text(5000, seed=4), encoding="utf-8")
    out = str(tmp_path / "run")
    code, _, err = run(capsys, "train", str(text), *SMALL, "--max-steps", "30", "--out", out)
    assert code == 0, err
    kept = os.path.join(out, "best-gradstats.npz")
    sample = ("sample", out, "--prime", "the cat ", "--length", "40", "--seed", "1", "--dynamic")
    first = [run(capsys, "eval", out, str(text), "--dynamic", "--json"), run(capsys, *sample)]
    assert os.path.isfile(kept) and len(counted) == 1
    second = [run(capsys, "eval", out, str(text), "--dynamic", "--json"), run(capsys, *sample)]
    assert len(counted) == 1 and first == second and first[0][0] == 0 and first[1][0] == 0
    os.unlink(kept)
    assert run(capsys, *sample) == first[1] and len(counted) == 2      # gathered again: the same sample
