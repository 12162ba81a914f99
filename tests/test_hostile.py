"""Hostile input (issue #11), by class: damaged checkpoints, damaged training state,
run directories, options. Every case ends in one line on stderr and exit code 2 (or the
stated behaviour), with the run directory unchanged; memory is bounded where a file or
an option asks for too much (checked in a subprocess under ``resource.setrlimit``).
Crafted checkpoints are built here from a real one, never committed."""
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
import zipfile

import numpy as np
import pytest

import rnnlab
from rnnlab import checkpoint
from rnnlab.cli import main
from rnnlab.errors import ConfigError
from rnnlab.models import CharLM
from test_charlm_cli import SMALL, make_text, read_bytes, run, snapshot


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A trained run (20 steps, evaluations at 10 and 20) and its text."""
    d = tmp_path_factory.mktemp("hostile")
    text = d / "corpus.txt"
    text.write_text(make_text(4000), encoding="utf-8")
    out = d / "run"
    assert main(["train", str(text), *SMALL, "--max-steps", "20", "--eval-every", "10", "--out", str(out)]) == 0
    return {"text": str(text), "run": str(out), "dir": d}


def members(path):
    """{name: (raw .npy bytes)} and the metadata dict of a checkpoint."""
    with zipfile.ZipFile(path) as z:
        raw = {i.filename: z.read(i) for i in z.infolist()}
    meta = json.loads(np.load(io.BytesIO(raw["__meta__.npy"])).tobytes())
    return raw, meta


def npy(a):
    b = io.BytesIO()
    np.save(b, a, allow_pickle=False)
    return b.getvalue()


def write_ckpt(path, raw, meta=None, compression=zipfile.ZIP_STORED):
    raw = dict(raw)
    if meta is not None:
        raw["__meta__.npy"] = npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in raw.items():
            z.writestr(name, data)
    return str(path)


def one_line_exit_2(capsys, *argv, match=None):
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("rnnlab: error:"), err
    if match:
        assert match in err, err
    return err


def run_limited(argv, limit_bytes, timeout=60):
    """``rnnlab argv`` in a subprocess whose address space is capped."""
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (%d, %d)); "
            "from rnnlab.cli import main; sys.exit(main(%r))" % (limit_bytes, limit_bytes, list(argv)))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


# -- checkpoints -----------------------------------------------------------------------------------
def _variants(base, tmp):
    best = os.path.join(base["run"], "best.npz")
    raw, meta = members(best)
    out = {}

    def put(name, **kw):
        out[name] = write_ckpt(tmp / f"{name}.npz", kw.get("raw", raw), kw.get("meta", meta),
                               kw.get("compression", zipfile.ZIP_STORED))
    put("config_is_a_string", meta={**meta, "config": "lstm"})
    put("vocab_is_a_number", meta={**meta, "vocab": 12})
    put("hidden_size_a_string", meta={**meta, "config": {**meta["config"], "hidden_size": "big"}})
    put("negative_layers", meta={**meta, "config": {**meta["config"], "num_layers": -2}})
    put("dtype_complex", meta={**meta, "dtype": "complex128"})
    put("kind_missing", meta={k: v for k, v in meta.items() if k != "kind"})
    put("version_newer", meta={**meta, "version": 99})
    nested = "[" * 100000 + "]" * 100000
    raw2 = dict(raw)
    raw2["__meta__.npy"] = npy(np.frombuffer(('{"format": "rnnlab-checkpoint", "version": 1, "x": %s}'
                                              % nested).encode(), np.uint8))
    put("deeply_nested_json", raw=raw2, meta=None)
    raw3 = dict(raw)
    raw3["__meta__.npy"] = json.dumps(meta).encode()          # stored raw, not as .npy
    put("meta_not_npy", raw=raw3, meta=None)
    for key in ("param/head.bias.npy", "param/rnn.weight_hh_l0.npy"):
        a = np.load(io.BytesIO(raw[key]))
        bad = a.copy()
        bad.flat[0] = np.nan
        put(f"nan_{key.split('/')[1][:-4]}", raw={**raw, key: npy(bad)})
        bad = a.copy()
        bad.flat[-1] = np.inf
        put(f"inf_{key.split('/')[1][:-4]}", raw={**raw, key: npy(bad)})
        put(f"complex_{key.split('/')[1][:-4]}", raw={**raw, key: npy(a.astype(np.complex64))})
        put(f"int_{key.split('/')[1][:-4]}", raw={**raw, key: npy(a.astype(np.int32))})
    put("wrong_shape", raw={**raw, "param/head.bias.npy": npy(np.zeros(3, np.float32))})
    put("missing_param", raw={k: v for k, v in raw.items() if k != "param/head.weight.npy"})
    put("extra_member", raw={**raw, "evil.npy": npy(np.zeros(2))})
    put("object_member", raw={**raw, "param/head.bias.npy": b"\x93NUMPY\x01\x00v\x00{'descr': '|O', "
                                                                   b"'fortran_order': False, 'shape': (3,), }"
                                                                   + b" " * 50 + b"\n" + b"\x00" * 24})
    # a header that declares a huge shape: nothing of that size may be allocated
    huge = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000, 1000000), }"
    huge = b"\x93NUMPY\x01\x00" + (len(huge) + 1).to_bytes(2, "little") + huge + b"\n"
    put("huge_shape_header", raw={**raw, "param/head.bias.npy": huge + b"\x00" * 64})
    # metadata declaring a huge model around small arrays
    put("huge_model_metadata", meta={**meta, "config": {**meta["config"], "hidden_size": 1000000}})
    put("large_model_metadata", meta={**meta, "config": {**meta["config"], "hidden_size": 12000}})
    # a member that inflates far beyond what its header says (zip bomb)
    bias = np.load(io.BytesIO(raw["param/head.bias.npy"]))
    put("inflating_member", raw={**raw, "param/head.bias.npy": npy(bias) + b"\x00" * (300 << 20)},
        compression=zipfile.ZIP_DEFLATED)
    (tmp / "not_a_zip.npz").write_bytes(b"hello, this is not a checkpoint" * 10)
    out["not_a_zip"] = str(tmp / "not_a_zip.npz")
    (tmp / "empty.npz").write_bytes(b"")
    out["empty"] = str(tmp / "empty.npz")
    return out


@pytest.fixture(scope="module")
def variants(base, tmp_path_factory):
    return _variants(base, tmp_path_factory.mktemp("variants"))


CASES = ["config_is_a_string", "vocab_is_a_number", "hidden_size_a_string", "negative_layers",
         "dtype_complex", "kind_missing", "version_newer", "deeply_nested_json", "meta_not_npy",
         "nan_head.bias", "inf_head.bias", "complex_head.bias", "int_head.bias", "nan_rnn.weight_hh_l0",
         "inf_rnn.weight_hh_l0", "complex_rnn.weight_hh_l0", "int_rnn.weight_hh_l0", "wrong_shape",
         "missing_param", "extra_member", "object_member", "huge_shape_header", "huge_model_metadata",
         "large_model_metadata", "inflating_member", "not_a_zip", "empty"]


@pytest.mark.parametrize("case", CASES)
def test_damaged_checkpoint_one_line_exit_2(capsys, variants, case):
    for argv in (["sample", variants[case], "--length", "5"], ["eval", variants[case], variants[case]]):
        one_line_exit_2(capsys, *argv)


@pytest.mark.parametrize("case", ["huge_shape_header", "huge_model_metadata", "large_model_metadata",
                                  "inflating_member"])
def test_damaged_checkpoint_memory_is_bounded(variants, case):
    """Under a 1 GiB address-space cap (Python + NumPy take ~0.4 of it) the refusal is
    clean and quick: nothing of the declared size is allocated, nothing inflated."""
    t = time.perf_counter()
    r = run_limited(["sample", variants[case], "--length", "5"], 1 << 30)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert time.perf_counter() - t < 30


def test_random_byte_damage_never_gives_a_traceback(capsys, base, tmp_path):
    """150 random byte changes in the headers (the first and last 2 KB of the file, where
    the zip headers, the central directory and the .npy headers are): each run exits 0
    (harmless change) or 2 (one line), never with a traceback. (A fuzz of 3,000 such
    files found NumPy's header parser raising tokenize.TokenError, now caught.)"""
    good = read_bytes(os.path.join(base["run"], "best.npz"))
    rng = np.random.default_rng(0)
    outcomes = {0: 0, 2: 0}
    for i in range(150):
        data = bytearray(good)
        region = rng.integers(0, 2)
        pos = int(rng.integers(0, 2048)) if region == 0 else len(data) - 1 - int(rng.integers(0, 2048))
        data[pos] = int(rng.integers(0, 256))
        p = tmp_path / f"d{i}.npz"
        p.write_bytes(bytes(data))
        code, out, err = run(capsys, "sample", str(p), "--length", "3", "--seed", "0")
        assert code in (0, 2), (i, pos, err)
        if code == 2:
            assert len(err.strip().splitlines()) == 1, err
        outcomes[code] += 1
    assert outcomes[2] > 30                  # most changes are caught, not ignored


def test_damaged_zip_flags(capsys, base, tmp_path):
    """Central-directory damage: the encrypted flag, an unknown compression method, a
    version that zipfile does not support."""
    good = read_bytes(os.path.join(base["run"], "best.npz"))
    cd = good.rfind(b"PK\x01\x02")                     # last central-directory entry
    for offset, value in ((8, b"\x01\x00"), (10, b"\x63\x00"), (6, b"\xff\x00")):
        data = bytearray(good)
        data[cd + offset:cd + offset + 2] = value
        p = tmp_path / f"flag{offset}.npz"
        p.write_bytes(bytes(data))
        one_line_exit_2(capsys, "sample", str(p), "--length", "3")


def test_the_api_raises_checkpoint_error(variants, base):
    for case in ("nan_head.bias", "huge_model_metadata", "deeply_nested_json"):
        with pytest.raises(rnnlab.errors.CheckpointError):
            CharLM.load(variants[case])
    with pytest.raises(rnnlab.errors.CheckpointError, match="a directory, not a checkpoint file"):
        CharLM.load(base["run"])                     # said "no such checkpoint file" of a run directory


# -- damaged training state --------------------------------------------------------------------------
@pytest.mark.parametrize("field,value,match", [
    ("pos", 1000000, "pos"), ("pos", -3, "pos"), ("pos", "0", "pos"), ("step", "sixty", "step"),
    ("initial_loss", "high", "initial_loss"), ("best_val", float("nan"), "best_val"),
    ("rngs", {"rnn": {"bit_generator": "PCG64", "state": "bogus"}}, "generator"),
    ("rngs", {"nowhere": {"bit_generator": "PCG64", "state": {"state": 1, "inc": 3},
                          "has_uint32": 0, "uinteger": 0}}, "nowhere"),
    ("text_source", 12345, "text_source"), ("steps_per_epoch", 7, "steps_per_epoch"),
    ("eval_every", 0, "eval_every"), ("patience", True, "patience"), ("eval_every", "10", "eval_every"),
    ("text_encoding", 5, "text_encoding"),
    # a review's (2026-12-06): each gave a traceback (TypeError, UnicodeEncodeError), or a resume that ran 10
    # steps and then reported a divergence (a negative initial loss; 0 is a one-character vocabulary's)
    ("elapsed", None, "elapsed"), ("initial_loss", -1.0, "initial_loss"), ("best_val", -0.5, "best_val"),
    ("text_source", "\ud800", "text_source"), ("text_encoding", "\ud800", "text_encoding"),
])
def test_damaged_training_state_is_refused(capsys, base, tmp_path, field, value, match):
    run_dir = tmp_path / "run"
    os.makedirs(run_dir)
    for f in os.listdir(base["run"]):
        (run_dir / f).write_bytes(read_bytes(os.path.join(base["run"], f)))
    raw, meta = members(run_dir / "latest.npz")
    meta[field] = value
    if field == "text_source":
        meta.pop("text_fingerprint", None)
    write_ckpt(run_dir / "latest.npz", raw, meta)
    before = snapshot(run_dir)
    err = one_line_exit_2(capsys, "train", "--resume", str(run_dir), "--max-steps", "30", "--quiet")
    assert match in err, err
    assert snapshot(run_dir) == before


def test_a_resume_refused_for_its_text_prints_the_error_alone(capsys, base, tmp_path):
    """Without --quiet the "training ..." line came first, then the error: a user error is
    one line, and nothing on stdout."""
    other = tmp_path / "other.txt"
    other.write_text(make_text(4000, seed=1), encoding="utf-8")
    before = snapshot(base["run"])
    code, out, err = run(capsys, "train", str(other), "--resume", base["run"], "--max-steps", "30")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "different text" in err, (out, err)
    assert snapshot(base["run"]) == before


def test_a_run_without_best_npz_points_to_its_latest(capsys, base, tmp_path):
    """A run stopped before its first evaluation has latest.npz only: sample, eval and
    explore said "no best.npz" and nothing more."""
    folder = tmp_path / "early"
    folder.mkdir()
    shutil.copy(os.path.join(base["run"], "latest.npz"), folder / "latest.npz")
    for argv in (("sample", str(folder)), ("eval", str(folder), base["text"]), ("explore", str(folder))):
        one_line_exit_2(capsys, *argv, match=f"its last state is {folder / 'latest.npz'}")
    assert run(capsys, "sample", str(folder / "latest.npz"), "--length", "5")[0] == 0


def test_a_carried_state_of_more_workers_than_memory_holds_is_refused_before_it_is_read(capsys, base, tmp_path,
                                                                                        monkeypatch):
    """``workers`` sizes state/h as (L, workers·B, H): a review's checkpoint declared 2^20
    workers and an 8 GiB deflated state in an 8.5 MB file, and the resume allocated it
    (here: 2^20 workers of this small model, 3.2 GB, against 1 GiB said to be free)."""
    from rnnlab.models import charlm_io
    run_dir = tmp_path / "run"
    shutil.copytree(base["run"], run_dir)
    raw, meta = members(run_dir / "latest.npz")
    meta["workers"] = 1 << 20
    write_ckpt(run_dir / "latest.npz", raw, meta)
    monkeypatch.setattr(charlm_io, "available_memory", lambda: 1 << 30)
    one_line_exit_2(capsys, "train", "--resume", str(run_dir), "--max-steps", "30", "--quiet",
                    match="its carried state (1,048,576 workers × batch 8) would need")


@pytest.mark.parametrize("member", ["exp_avg", "state/h"])
def test_an_optimizer_slot_or_carried_state_near_float32s_limit_is_refused(capsys, base, tmp_path, member):
    """Only the weights were bounded: a review's slots (and carried state) of 3e38 were
    taken, and the resume printed a page of overflow warnings and then a "divergence"."""
    run_dir = tmp_path / "run"
    shutil.copytree(base["run"], run_dir)
    raw, meta = members(run_dir / "latest.npz")
    for name in raw:
        if name.endswith(f"/{member}.npy") or name == f"{member}.npy":
            raw[name] = npy(np.full_like(np.load(io.BytesIO(raw[name])), 3e38))
    write_ckpt(run_dir / "latest.npz", raw, meta)
    one_line_exit_2(capsys, "train", "--resume", str(run_dir), "--max-steps", "30", "--quiet",
                    match="beyond ±1e+30")


def test_resume_from_best_npz_is_refused(capsys, base):
    before = snapshot(base["run"])
    one_line_exit_2(capsys, "train", "--resume", os.path.join(base["run"], "best.npz"), "--max-steps", "30",
                    match="no training state")
    assert snapshot(base["run"]) == before


def test_divergence_never_saves_non_finite_weights(capsys, base, tmp_path, monkeypatch):
    """The weights blow up after step 5 (finite but ~1e28, beyond what the loader takes):
    the evaluation at step 6 and the divergence at step 7 must not overwrite the
    checkpoints of step 4, and the run samples from them afterwards."""
    from rnnlab.optim import SGD
    update = SGD._update

    def exploding(self, k, p, g):
        update(self, k, p, g)
        if self.t == 5:
            p *= 1e30
    monkeypatch.setattr(SGD, "_update", exploding)
    out = str(tmp_path / "div")
    code, _, err = run(capsys, "train", base["text"], *SMALL, "--optimizer", "sgd", "--max-steps", "40",
                       "--eval-every", "2", "--out", out)
    assert code == 1, err
    for name in ("latest.npz", "best.npz"):
        model = CharLM.load(os.path.join(out, name))
        assert model.meta["step"] == 4, (name, model.meta["step"])
        assert all(np.isfinite(p).all() and np.abs(p).max() < 1e3 for p in model.params.values())
    monkeypatch.undo()
    code, out_text, err = run(capsys, "sample", out, "--length", "20", "--seed", "0")
    assert code == 0 and len(out_text.rstrip("\n")) == 20, err


def test_a_training_state_gone_infinite_is_not_saved(capsys, base, tmp_path, monkeypatch):
    """Adam's second moment overflowing while the weights stay finite (the update then
    divides by inf and moves nothing): latest.npz would hold an inf slot its loader
    refuses. Every checkpoint the run leaves loads, with its training state."""
    from rnnlab.optim import Adam
    update = Adam._update

    def overflowing(self, k, p, g):
        update(self, k, p, g)
        if self.t >= 6:
            self.state[k]["exp_avg_sq"][...] = np.inf
    monkeypatch.setattr(Adam, "_update", overflowing)
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", base["text"], *SMALL, "--max-steps", "12", "--eval-every", "4",
                       "--out", str(out))
    assert code == 0, err
    for name in ("latest.npz", "best.npz"):
        CharLM.load(str(out / name), with_training_state=(name == "latest.npz"))
    assert CharLM.load(str(out / "latest.npz"), with_training_state=True)[0].meta["step"] == 4


# -- run directories ---------------------------------------------------------------------------------
def test_out_dir_with_user_files_is_refused_without_force(capsys, base, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text('{"my": "settings"}')
    (mine / "metrics.jsonl").write_text('{"my": 1}\n')
    before = snapshot(mine)
    one_line_exit_2(capsys, "train", base["text"], *SMALL, "--max-steps", "5", "--out", str(mine),
                    match="not empty")
    assert snapshot(mine) == before
    one_line_exit_2(capsys, "train", base["text"], *SMALL, "--max-steps", "5", "--out", base["run"],
                    match="already holds a run")


def test_force_never_replaces_a_directory_that_is_not_a_run(capsys, base, tmp_path):
    """--force deleted a user's files when --out named a directory that was not a run;
    the refusal suggested --resume, which cannot apply there."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    before = snapshot(mine)
    err = one_line_exit_2(capsys, "train", base["text"], *SMALL, "--max-steps", "2", "--out", str(mine), "--force",
                          match="not an rnnlab run")
    assert "--resume" not in err and snapshot(mine) == before
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".mine.")]


@pytest.mark.parametrize("how", ["diverged", "interrupted"])
def test_a_forced_run_that_stops_before_its_first_evaluation_keeps_the_old_run(capsys, base, tmp_path,
                                                                              monkeypatch, how):
    """A review found it (2026-12-06): --force swapped the new run in at its first
    latest.npz, so a run that diverged or was interrupted before its first evaluation
    deleted the old run's best.npz and metrics, and said "the best checkpoint is
    unchanged". Now the old run stays, bit for bit, the new run's staging is gone, and
    the message says what happened."""
    from rnnlab.cli import train_cmd
    out = tmp_path / "old"
    assert main(["train", base["text"], *SMALL, "--max-steps", "6", "--eval-every", "3", "--out", str(out)]) == 0
    before = snapshot(out)
    extra = ["--optimizer", "sgd", "--lr", "1e30", "--clip", "0"] if how == "diverged" else []
    if how == "interrupted":
        class Stop(train_cmd.SignalStop):
            calls = 0

            def __call__(self):
                Stop.calls += 1
                if Stop.calls > 4:
                    self.signum, self.name = 2, "SIGINT"
                return Stop.calls > 4
        monkeypatch.setattr(train_cmd, "SignalStop", Stop)
    code, stdout, err = run(capsys, "train", base["text"], *SMALL[:-1], *extra, "--max-steps", "100",
                            "--eval-every", "1000", "--seed", "9", "--out", str(out), "--force")
    assert code == (1 if how == "diverged" else 130), err
    assert "still holds the run --force was to replace" in (stdout if how == "diverged" else err)
    assert snapshot(out) == before
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".old.")]


def test_force_replaces_the_run_and_its_metrics(capsys, base, tmp_path):
    out = tmp_path / "forced"
    assert run(capsys, "train", base["text"], *SMALL, "--max-steps", "10", "--eval-every", "5",
               "--out", str(out))[0] == 0
    assert run(capsys, "train", base["text"], *SMALL, "--max-steps", "4", "--eval-every", "2",
               "--seed", "7", "--out", str(out), "--force")[0] == 0
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4]
    assert json.loads((out / "config.json").read_text())["seed"] == 7
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".forced.")]


def test_force_refuses_to_replace_a_directory_holding_the_training_text(capsys, base, tmp_path):
    """A text kept inside the run directory would be deleted by the run it trains."""
    out = tmp_path / "run"
    assert run(capsys, "train", base["text"], *SMALL, "--max-steps", "2", "--out", str(out))[0] == 0
    text = out / "corpus.txt"
    shutil.copy(base["text"], text)
    one_line_exit_2(capsys, "train", str(text), *SMALL, "--max-steps", "2", "--out", str(out), "--force",
                    match="lies inside --out")
    assert text.is_file() and (out / "best.npz").is_file()


def test_force_then_crash_before_the_first_checkpoint_keeps_the_old_run(base, tmp_path):
    """kill -9 after --force started but before its first checkpoint: the old run is
    intact (config and checkpoints agree), and the next start removes the leftovers."""
    out = tmp_path / "old"
    assert main(["train", base["text"], *SMALL, "--max-steps", "6", "--eval-every", "3", "--out", str(out)]) == 0
    before = snapshot(out)
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "train", base["text"], *SMALL,
                             "--seed", "9", "--max-steps", "100000000", "--eval-every", "100000000",
                             "--out", str(out), "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not [f for f in os.listdir(tmp_path) if f.startswith(".old.new-")]:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.kill()
    proc.wait(timeout=30)
    assert snapshot(out) == before
    assert CharLM.load(str(out / "best.npz")).config.seed == 0
    assert main(["train", base["text"], *SMALL, "--max-steps", "3", "--out", str(tmp_path / "other")]) == 0
    assert main(["train", "--resume", str(out), "--max-steps", "8", "--quiet"]) == 0
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".old.")]


def test_resuming_a_checkpoint_copied_elsewhere_leaves_that_folders_files_alone(capsys, base, tmp_path):
    """Only a run directory (its marker) is cleaned of interrupted writes: a latest.npz
    copied into a folder of the user's must not cost them files named like rnnlab's."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "latest.npz").write_bytes(read_bytes(os.path.join(base["run"], "latest.npz")))
    mine = [folder / ".tmp-draft.npz", folder / "notes.json.tmp", folder / "log.jsonl.tmp"]
    for f in mine:
        f.write_text("the user's")
    assert run(capsys, "train", "--resume", str(folder / "latest.npz"), "--max-steps", "22", "--quiet",
               "--out", str(tmp_path / "continued"))[0] == 0
    assert all(f.read_text() == "the user's" for f in mine)


def test_resume_cleans_leftovers_and_cuts_metrics_back(capsys, base, tmp_path):
    out = tmp_path / "r"
    assert main(["train", base["text"], *SMALL, "--max-steps", "10", "--eval-every", "5", "--out", str(out)]) == 0
    (out / ".tmp-abc123.npz").write_bytes(b"half a checkpoint")
    with open(out / "metrics.jsonl", "a") as f:          # a record written after latest.npz was saved
        f.write(json.dumps({"step": 15, "val_loss": 1.0}) + "\n")
    assert run(capsys, "train", "--resume", str(out), "--max-steps", "20", "--eval-every", "5",
               "--quiet")[0] == 0
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20]
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]


def test_sigterm_saves_the_latest_state_and_exits_143(base, tmp_path):
    out = tmp_path / "term"
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "train", base["text"], *SMALL,
                             "--max-steps", "100000000", "--eval-every", "50", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "latest.npz").exists():
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "SIGTERM" in err and "--resume" in err
    model = CharLM.load(str(out / "latest.npz"), with_training_state=True)[0]
    assert model.meta["step"] >= 50
    assert main(["train", "--resume", str(out), "--max-steps", str(model.meta["step"] + 2), "--quiet"]) == 0


# -- options -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,match", [
    (["sample", "{run}", "--length", "0"], "--length"),
    (["sample", "{run}", "--temperature", "nan"], "temperature"),
    (["sample", "{run}", "--temperature", "-1"], "temperature"),
    (["demo", "--steps", "0"], "steps"), (["demo", "--steps", "-5"], "steps"),
    (["demo", "--delay", "-1"], "delay"), (["demo", "--delay", "1000000"], "delay"),
    (["bench", "--row", "bogus"], "--row"),
    (["task", "adding", "--max-steps", "2", "--plot", "{dir}"], "--plot"),
    (["task", "adding", "--max-steps", "2", "--plot", "{dir}/fig.txt"], "--plot"),
    (["ngram", "{text}", "--order", "50"], "--order"),
    (["task", "detect", "--word", "", "--max-steps", "2"], "--word must be lowercase letters a-z"),
    (["ngram", "{dir}/tiny.txt", "--order", "3", "--eval", "{text}"], "--val-frac 0 learns all of TEXT"),
    (["train", "{text}", "--workers", "100000", "--out", "{dir}/big"], "--workers 100000: at most"),
    (["train", "{text}", "--hidden-size", "100000", "--max-steps", "1", "--out", "{dir}/big"], "--hidden-size"),
])
def test_bad_options_one_line_exit_2(capsys, base, tmp_path, argv, match):
    (tmp_path / "tiny.txt").write_text("abcabcabcab", encoding="utf-8")
    argv = [a.format(run=base["run"], text=base["text"], dir=str(tmp_path)) for a in argv]
    one_line_exit_2(capsys, *argv, match=match)
    assert not (tmp_path / "big").exists()


def test_huge_model_refused_before_allocating(base, tmp_path):
    r = run_limited(["train", base["text"], "--hidden-size", "20000", "--max-steps", "1",
                     "--out", str(tmp_path / "big")], 1 << 30)
    assert r.returncode == 2 and "--hidden-size" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv,flag", [
    (["task", "detect", "--hidden-size", "100000"], "--hidden-size 100000"),
    (["task", "order", "--length", "100000000"], "--length 100000000"),
    (["task", "gradflow", "--length", "100000000"], "--length 100000000"),
    (["task", "classify", "--hidden-size", "200000"], "--hidden-size 200000"),
    (["task", "forecast", "--model", "tdnn", "--window", "100", "--hidden-size", "10000000"], "--window 100"),
    (["demo", "--hidden", "1000000"], "--hidden 1000000"),
])
def test_task_sizes_that_cannot_fit_are_refused_before_allocating(argv, flag):
    """Before, these died in NumPy's allocator with a traceback (or were killed for memory)."""
    r = run_limited(argv + (["--max-steps", "1"] if argv[0] == "task" else []), 1 << 30)
    assert r.returncode == 2 and flag in r.stderr and "GiB" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["train", "/dev/zero", "--out", "{dir}/run"],
                                  ["task", "forecast", "--csv", "/dev/zero", "--column", "v"]])
def test_an_endless_input_is_refused_at_what_memory_holds(tmp_path, argv):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    r = run_limited([a.format(dir=tmp_path) for a in argv], 1 << 30)
    assert r.returncode == 2 and "/dev/zero: larger than" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("content,encoding,match", [
    (b"ab\\ud800cd " * 50, "raw_unicode_escape", "lone surrogate"),
    (b"hello world " * 50, "punycode", "not valid punycode"),
    (b"hello world " * 50, "rot13", "not a text encoding"),
    (b"hello world " * 50, "no-such-codec", "unknown encoding"),
])
def test_text_that_decodes_to_no_text_is_refused(capsys, tmp_path, content, encoding, match):
    """A decoder that fails with its own error, a str-to-str codec, or a lone surrogate
    (which no checkpoint or fingerprint can encode) is one line, not a traceback."""
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    one_line_exit_2(capsys, "train", str(path), "--encoding", encoding, "--out", str(tmp_path / "run"),
                    match=match)
    assert not (tmp_path / "run").exists()


def test_a_file_name_holding_nul_is_a_data_error():
    """open() raises ValueError for it (reached through a forged checkpoint's text_source)."""
    from rnnlab.data.text import read_text
    from rnnlab.errors import DataError
    with pytest.raises(DataError, match="NUL"):
        read_text("corpus\x00.txt")


def test_weights_too_large_for_float_arithmetic(capsys, base, tmp_path):
    """A finite weight of float32's ±3.4e38 overflows the first product: eval --json died on
    NaN in its JSON and the explorer page held NaN. Such a file is refused on loading;
    at the bound (±1e15) the scores stay finite, and dynamic evaluation, whose gradients
    do overflow there, is one line instead of a screen of overflow warnings."""
    model = CharLM.load(os.path.join(base["run"], "best.npz"))
    signs = {k: np.sign(np.random.default_rng(0).standard_normal(p.shape)) for k, p in model.params.items()}
    for scale, name in ((3.4e38, "max.npz"), (1e15, "edge.npz")):
        for k, p in model.params.items():
            p[...] = np.float32(scale) * signs[k]
        model.save(str(tmp_path / name))
    one_line_exit_2(capsys, "eval", str(tmp_path / "max.npz"), base["text"], "--json", match="beyond")
    code, out, err = run(capsys, "eval", str(tmp_path / "edge.npz"), base["text"], "--json")
    assert code == 0 and np.isfinite(json.loads(out)["loss"]), err
    code, out, err = run(capsys, "explore", str(tmp_path / "edge.npz"), base["text"], "--out",
                         str(tmp_path / "p.html"), "--json")
    assert code == 0 and np.isfinite(json.loads(out)["mean_bits"]), err
    one_line_exit_2(capsys, "eval", str(tmp_path / "edge.npz"), base["text"], "--dynamic", "--train-text",
                    base["text"], match="overflow")


def test_a_path_that_is_not_utf8_prints_as_its_bytes_on_a_strict_stdout(tmp_path):
    """Under a strict UTF-8 stdout (PYTHONIOENCODING=utf-8:strict, or a desktop locale)
    train's closing lines, which name the run directory, raised UnicodeEncodeError after the
    run was saved; the CLI writes such a path back as the bytes it was."""
    out = os.path.join(os.fsencode(tmp_path), b"run\xff")
    try:
        os.mkdir(out)
        os.rmdir(out)
    except OSError:
        pytest.skip("this file system refuses a file name that is not UTF-8")
    (tmp_path / "t.txt").write_text(make_text(4000), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "rnnlab", "train", os.fsencode(tmp_path / "t.txt"), b"--hidden-size",
                        b"8", b"--seq-len", b"16", b"--batch-size", b"4", b"--max-steps", b"2", b"--out", out],
                       capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"}, timeout=120)
    assert r.returncode == 0, r.stderr.decode("utf-8", "replace")
    assert r.stdout.rstrip().endswith(b"sample with: rnnlab sample " + out)


def test_forecast_csv_with_huge_values(capsys, tmp_path):
    csv = tmp_path / "s.csv"
    csv.write_text("value\n" + "\n".join(["1.0", "2.0", "1e300"] * 30) + "\n")
    one_line_exit_2(capsys, "task", "forecast", "--csv", str(csv), "--column", "value", "--max-steps", "2",
                    match="1e300")


def test_api_arguments_are_checked():
    with pytest.raises(ConfigError, match="input_size"):
        rnnlab.LSTM(8.5, 16)
    with pytest.raises(ConfigError, match="hidden_size"):
        rnnlab.GRU(3, True)
    model = CharLM("abc", rnnlab.CharLMConfig(hidden_size=8, num_layers=1))
    for bad in (float("nan"), float("inf"), -1.0, 10**400, True, "1"):      # 10**400: no float holds it
        with pytest.raises(ConfigError, match="temperature"):
            model.generate(5, temperature=bad)
    from rnnlab.models.scoring import check_dynamic
    from rnnlab.tasks.common import check_options
    with pytest.raises(ConfigError, match="dyn_lr"):
        check_dynamic(10**400, 0.02, 64)
    with pytest.raises(ConfigError, match="x must be a number in"):
        check_options(fractions={"x": 10**400})
    from rnnlab.averaging import check_decay
    from rnnlab.trainer import TrainConfig
    for bad in (True, float("inf"), 0, "60"):         # True was taken as a one-second budget
        with pytest.raises(ConfigError, match="time_limit"):
            TrainConfig(time_limit=bad).validate()
    assert TrainConfig(time_limit=np.float32(2.5)).validate().time_limit == 2.5      # a float, for JSON
    assert check_decay(np.float32(0.5)) == 0.5 and check_decay(np.int64(0) + 0.25) == 0.25
    with pytest.raises(ConfigError, match="average"):
        check_decay(True)
    with pytest.raises(ConfigError, match="order"):
        rnnlab.KneserNeyLM(50)
    # the vocabulary and the scoring layout: a DataError/ConfigError, not a raw Python error
    from rnnlab.data import Vocab
    from rnnlab.errors import DataError
    from rnnlab.models.scoring import layout
    with pytest.raises(DataError, match="single characters"):
        Vocab(["ab", "c"])
    with pytest.raises(DataError, match="surrogate"):             # it reached text_fingerprint's encode
        CharLM(Vocab.from_text("ab\ud800" * 20), rnnlab.CharLMConfig(hidden_size=8, num_layers=1))
    with pytest.raises(DataError, match="ids"):
        Vocab("abc").decode([-1])                                   # it decoded as the last character
    assert Vocab("abc").decode(np.array([2, 0])) == "ca" and Vocab(["b", "a"]).chars == "ba"
    assert Vocab(c for c in "ba").chars == "ba"                     # any iterable of characters
    for bad in (-1, 0, 2.0, True):
        with pytest.raises(ConfigError, match="streams"):
            layout(np.arange(5), bad)


def test_a_bug_is_not_a_user_error(monkeypatch, capsys, base):
    """Only rnnlab's own user errors become one line and exit 2: a ValueError from a bug
    keeps its traceback (exit 1 through Python)."""
    def broken(*a, **k):
        raise ValueError("an internal bug")
    monkeypatch.setattr(CharLM, "generate", broken)
    with pytest.raises(ValueError, match="internal bug"):
        main(["sample", base["run"], "--length", "3"])


def test_a_swap_cut_between_its_renames_is_undone(capsys, base, tmp_path):
    """A crash between the two renames of --force's swap leaves the run directory missing,
    the old run in .NAME.old-*/NAME and the new one in .NAME.new-*: the next start puts
    the old run back and removes the rest."""
    out = tmp_path / "cut"
    assert main(["train", base["text"], *SMALL, "--max-steps", "6", "--eval-every", "3", "--out", str(out)]) == 0
    before = snapshot(out)
    (tmp_path / ".cut.old-x1").mkdir()
    os.rename(out, tmp_path / ".cut.old-x1" / "cut")
    (tmp_path / ".cut.new-y2").mkdir()                     # a staged run: its marker comes first
    (tmp_path / ".cut.new-y2" / "rnnlab-run.json").write_text('{"format": "rnnlab-run", "version": 1}')
    (tmp_path / ".cut.new-y2" / "config.json").write_text("{}")
    one_line_exit_2(capsys, "train", "--resume", str(out), "--max-steps", "6", "--quiet",   # a budget reached:
                    match="--max-steps 6: the run is already at step 6")   # refused, once the swap is undone
    assert snapshot(out) == before                          # the old run back, as it was
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".cut.")]
    assert run(capsys, "train", "--resume", str(out), "--max-steps", "7", "--quiet")[0] == 0
    assert CharLM.load(str(out / "latest.npz")).meta["step"] == 7    # it went on from the old run's step 6


def test_a_refused_directory_keeps_files_that_only_look_like_leftovers(capsys, base, tmp_path):
    """Leftover-cleaning touches only what rnnlab made: in a directory that is not a run,
    files named like interrupted writes and a sibling named like a staging directory
    that holds the user's files all stay when --out or --resume is refused."""
    mine = tmp_path / "mine"
    mine.mkdir()
    for f in ("notes.txt", "settings.json.tmp", ".tmp-backup.npz"):
        (mine / f).write_text(f)
    (tmp_path / ".mine.new-keep").mkdir()
    (tmp_path / ".mine.new-keep" / "thesis.txt").write_text("years of work")
    (tmp_path / ".mine.old-keep").mkdir()
    (tmp_path / ".mine.old-keep" / "other.txt").write_text("mine too")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for argv in (("train", base["text"], *SMALL, "--max-steps", "3", "--out", str(mine)),
                 ("train", "--resume", str(mine)), ("train", "--resume", str(mine / "x.npz"))):
        code, _, err = run(capsys, *argv)
        assert code == 2, (argv, err)
        assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before, argv


def test_an_ngram_too_large_for_memory_is_refused_before_training(capsys, base, tmp_path, monkeypatch):
    """train --ngram N counts the n-gram after training; its memory is checked before, so
    a forced run over an old one leaves the old run as it was."""
    out = tmp_path / "kept"
    assert main(["train", base["text"], *SMALL, "--max-steps", "3", "--out", str(out), "--quiet"]) == 0
    before = snapshot(out)
    monkeypatch.setattr("rnnlab.ngram.available_memory", lambda: 10**6)
    one_line_exit_2(capsys, "train", base["text"], *SMALL, "--max-steps", "3", "--out", str(out), "--force",
                    "--ngram", "7", "--quiet", match="--ngram 7: order 7: counting the n-grams")
    assert snapshot(out) == before


def test_a_torn_metrics_line_does_not_stop_a_resume(capsys, base, tmp_path):
    out = tmp_path / "torn"
    assert main(["train", base["text"], *SMALL, "--max-steps", "10", "--eval-every", "5", "--out", str(out)]) == 0
    with open(out / "metrics.jsonl", "ab") as f:
        f.write(b'{"step": 1\xff\xfe')                     # a write cut mid-record, not even UTF-8
    assert run(capsys, "train", "--resume", str(out), "--max-steps", "15", "--eval-every", "5",
               "--quiet")[0] == 0
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15]


def test_an_unwritable_ngram_file_is_named_in_the_error(capsys, base, tmp_path):
    """A checkpoint write goes through a temporary file and a rename: the error names the
    file the user knows (ngram.npz), not the temporary one."""
    run_dir = str(tmp_path / "run")
    assert run(capsys, "train", base["text"], *SMALL, "--max-steps", "4", "--out", run_dir)[0] == 0
    os.mkdir(os.path.join(run_dir, "ngram.npz"))
    code, _, err = run(capsys, "train", "--resume", run_dir, "--max-steps", "6", "--ngram", "3", "--quiet")
    assert code == 2 and err.splitlines() == [f"rnnlab: error: {os.path.join(run_dir, 'ngram.npz')}: Is a directory"]


def test_losses_cells_and_jordan_check_what_they_are_given():
    """From a review against torch.nn: an integer prediction cut float targets to integers
    (mse 1.25 for 0.625); an empty batch divided by zero; a cell at batch 0 and the Jordan
    net's backward with a wrong-shaped dy gave NumPy errors or broadcast silently."""
    assert rnnlab.mse(np.array([[1], [2]]), np.array([[0.5], [0.5]]))[0] == pytest.approx(0.625)
    assert rnnlab.bce_with_logits(np.array([1, 2]), np.array([0.5, 0.5]))[0] == pytest.approx(
        rnnlab.bce_with_logits(np.array([1.0, 2.0]), np.array([0.5, 0.5]))[0])
    with pytest.raises(ConfigError, match="empty"):
        rnnlab.mse(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ConfigError, match="B >= 1"):
        rnnlab.GRUCell(4, 6).forward(np.zeros((0, 4)))
    net = rnnlab.JordanRNN(2, 3, 1, dtype=np.float64, seed=0)
    net.forward(np.zeros((2, 5, 2)))
    for bad in (np.zeros((2, 5, 2)), np.zeros((2, 6, 1)), np.zeros((5, 1))):
        with pytest.raises(ConfigError, match="dy"):
            net.backward(bad)
    with pytest.raises(ConfigError, match="dstate"):
        net.backward(np.zeros((2, 5, 1)), dstate=np.zeros((1, 2)))     # (O, B): reshaped silently before


# -- the zip's own sizes, duplicate members, the optimizer's slots (a review's findings) -------------
def _header_only(descr, shape):
    """A .npy header declaring ``shape``, followed by 64 bytes instead of its data."""
    h = ("{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, tuple(shape))).encode()
    h += b" " * (64 - (10 + len(h) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + b"\0" * 64


def _copy_run(base, tmp_path):
    run_dir = tmp_path / "run"
    os.makedirs(run_dir)
    for f in os.listdir(base["run"]):
        (run_dir / f).write_bytes(read_bytes(os.path.join(base["run"], f)))
    return run_dir


def _slot(raw, name):
    return np.load(io.BytesIO(raw[name]))


@pytest.mark.parametrize("case,match", [
    # a forged worker count makes the carried state's expected shape 1.5 TiB, and the header agrees
    ("workers_huge", "does not match its size"),
    ("negative_dimension", "does not match its size"),
    ("t_negative", "step count"),
    ("lr_negative", "lr"),
    ("second_moment_negative", "negative values"),
    ("slot_missing", "missing"),
    ("slot_of_another_optimizer", "unexpected"),
])
def test_damaged_state_is_refused_before_it_allocates_or_trains(capsys, base, tmp_path, case, match):
    """Each gave a traceback (MemoryError, ZeroDivisionError), a divergence blamed on
    training, or an inexact resume that said nothing (a missing slot restarted at zero)."""
    run_dir = _copy_run(base, tmp_path)
    raw, meta = members(run_dir / "latest.npz")
    bias = _slot(raw, "optim/head.bias/exp_avg_sq.npy")
    if case == "workers_huge":
        W = 1 << 20
        h = _slot(raw, "state/h.npy")
        raw["state/h.npy"] = _header_only("<f4", (h.shape[0], h.shape[1] * W, h.shape[2]))
        meta["workers"] = W
    elif case == "negative_dimension":
        raw["optim/head.bias/exp_avg.npy"] = _header_only("<f4", (-5,))
    elif case == "t_negative":
        raw["optim/__t__.npy"] = npy(np.array(-1, np.int64))
    elif case == "lr_negative":
        raw["optim/__lr__.npy"] = npy(np.array(-5.0))
    elif case == "second_moment_negative":
        raw["optim/head.bias/exp_avg_sq.npy"] = npy(-np.ones_like(bias))
    elif case == "slot_missing":
        del raw["optim/head.bias/exp_avg_sq.npy"]
    else:
        raw["optim/head.bias/velocity.npy"] = npy(np.zeros_like(bias))
    write_ckpt(run_dir / "latest.npz", raw, meta)
    before = snapshot(run_dir)
    one_line_exit_2(capsys, "train", "--resume", str(run_dir), "--max-steps", "30", "--quiet", match=match)
    assert snapshot(run_dir) == before


def test_a_member_named_twice_is_refused(capsys, base, tmp_path):
    """Zip readers disagree on which copy counts (Python's: the last); rnnlab takes neither."""
    raw, meta = members(os.path.join(base["run"], "best.npz"))
    path = write_ckpt(tmp_path / "dup.npz", raw, meta)
    bias = _slot(raw, "param/head.bias.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                          # zipfile: "Duplicate name"
        with zipfile.ZipFile(path, "a") as z:
            z.writestr("param/head.bias.npy", npy(np.zeros_like(bias)))
    one_line_exit_2(capsys, "sample", path, "--length", "5", match="twice")


def test_an_lstm_state_without_its_cell_is_refused(capsys, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(make_text(3000), encoding="utf-8")
    assert main(["train", str(text), *SMALL, "--model", "lstm", "--max-steps", "4", "--out",
                 str(tmp_path / "run")]) == 0
    raw, meta = members(tmp_path / "run" / "latest.npz")
    del raw["state/c.npy"]
    write_ckpt(tmp_path / "run" / "latest.npz", raw, meta)
    one_line_exit_2(capsys, "train", "--resume", str(tmp_path / "run"), "--max-steps", "8", "--quiet",
                    match="state/h and state/c")


def test_checkpoints_get_the_permissions_of_a_new_file(tmp_path):
    """mkstemp makes 0600; a checkpoint is made readable as config.json is (the umask)."""
    old = os.umask(0o022)
    try:
        path = checkpoint.save(tmp_path / "c.npz", {"a": np.zeros(2)}, {})
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_a_write_error_names_the_checkpoint(capsys, monkeypatch, base, tmp_path):
    """A full disk said ": No space left on device", naming nothing."""
    import errno
    def full(f, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(np, "savez", full)
    out = tmp_path / "run"
    err = one_line_exit_2(capsys, "train", base["text"], *SMALL, "--max-steps", "3", "--out", str(out))
    assert re.search(r"rnnlab: error: \S*run/\w+\.npz: No space left on device", err), err


def test_an_ngram_counting_a_gram_twice_is_refused(capsys, base, tmp_path):
    """A dict built from the arrays keeps the last copy: the score silently changed."""
    run_dir = str(tmp_path / "run")
    assert run(capsys, "train", base["text"], *SMALL, "--max-steps", "4", "--ngram", "3", "--out", run_dir)[0] == 0
    raw, meta = members(os.path.join(run_dir, "ngram.npz"))
    grams, counts = (_slot(raw, f"ngram/{k}3.npy") for k in ("grams", "counts"))
    raw["ngram/grams3.npy"] = npy(np.concatenate([grams, grams[:1]]))
    raw["ngram/counts3.npy"] = npy(np.concatenate([counts, counts[:1] + 5]))
    write_ckpt(os.path.join(run_dir, "ngram.npz"), raw, meta)
    one_line_exit_2(capsys, "eval", run_dir, base["text"], "--mix-ngram", match="counted twice")


def test_force_refuses_a_symlink_to_a_run(capsys, base, tmp_path):
    """--force replaced the link itself and left the run it pointed to as it was."""
    real = tmp_path / "real"
    assert run(capsys, "train", base["text"], *SMALL, "--max-steps", "2", "--out", str(real))[0] == 0
    link = tmp_path / "link"
    link.symlink_to(real)
    before = snapshot(real)
    one_line_exit_2(capsys, "train", base["text"], *SMALL, "--max-steps", "2", "--out", str(link), "--force",
                    match="symbolic link")
    assert link.is_symlink() and snapshot(real) == before


@pytest.mark.parametrize("how", ["long_header", "bzip2"])
def test_a_member_that_would_inflate_to_gigabytes_is_refused_before_it_is_read(capsys, base, tmp_path, how):
    """A review's zip bombs (2026-12-06): a version 2 .npy header declaring a length of
    gigabytes (NumPy reads a header whole before its own size check), and a bzip2 member
    (zipfile inflates bzip2 and LZMA without a bound). Each gave a MemoryError traceback
    from a 2-32 kB file; now each is one line, read through a cap or not read at all."""
    import struct
    src = os.path.join(base["run"], "best.npz")
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(bomb, "w") as out:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "param/head.bias.npy" and how == "long_header":
                declared = 64 << 20                            # 64 MiB of header, deflated to ~64 kB
                out.writestr(info.filename, b"\x93NUMPY\x02\x00" + struct.pack("<I", declared) + b" " * declared,
                             compress_type=zipfile.ZIP_DEFLATED)
            elif info.filename == "param/head.bias.npy":
                out.writestr(info.filename, data, compress_type=zipfile.ZIP_BZIP2)
            else:
                out.writestr(info, data)
    one_line_exit_2(capsys, "eval", str(bomb), base["text"],
                    match="longer than 65,536 bytes" if how == "long_header" else "a method rnnlab does not read")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo (POSIX)")
def test_a_fifo_in_a_run_or_at_its_recorded_text_is_refused_not_waited_on(base, tmp_path):
    """A review's FIFOs (2026-12-06): at RUN/metrics.jsonl the resume blocked at its first
    evaluation (12 minutes, SIGTERM absorbed, best.npz already rewritten) and explore
    blocked reading it; at the text a checkpoint records, train --resume and explore
    without TEXT blocked. Each runs in a subprocess with a timeout, so a regression fails
    instead of hanging the suite."""
    def cli(*argv):
        r = subprocess.run([sys.executable, "-m", "rnnlab", *argv], capture_output=True, text=True, timeout=120)
        return r.returncode, r.stderr
    fifo_run = tmp_path / "fifo_run"
    shutil.copytree(base["run"], fifo_run)
    os.unlink(fifo_run / "metrics.jsonl")
    os.mkfifo(fifo_run / "metrics.jsonl")
    before = {f: read_bytes(fifo_run / f) for f in os.listdir(fifo_run) if f != "metrics.jsonl"}
    code, err = cli("train", "--resume", str(fifo_run), "--max-steps", "30", "--quiet")
    assert code == 2 and "metrics.jsonl is not a regular file" in err, err
    assert {f: read_bytes(fifo_run / f) for f in before} == before
    code, err = cli("explore", str(fifo_run), base["text"], "--out", str(tmp_path / "page.html"))
    assert code == 0 and (tmp_path / "page.html").is_file(), err          # no curve, no hang
    moved = tmp_path / "moved_run"                   # the text the checkpoint records is now a FIFO
    shutil.copytree(base["run"], moved)
    raw, meta = members(moved / "latest.npz")
    meta["text_source"] = str(tmp_path / "text_fifo")
    meta.pop("text_fingerprint")
    write_ckpt(moved / "latest.npz", raw, meta)
    write_ckpt(moved / "best.npz", *members(moved / "latest.npz"))
    os.mkfifo(tmp_path / "text_fifo")
    for argv in (("train", "--resume", str(moved), "--max-steps", "30", "--quiet"),
                 ("explore", str(moved), "--out", str(tmp_path / "p2.html"))):
        code, err = cli(*argv)
        assert code == 2 and "not a regular file" in err, (argv, err)


def test_an_out_below_a_file_is_refused_before_training_says_anything(capsys, base, tmp_path):
    """--out text.txt/sub failed at the run's first write, after the "training ..." line."""
    for out in (os.path.join(base["text"], "sub"), "/dev/null/x"):
        code, stdout, err = run(capsys, "train", base["text"], *SMALL[:-1], "--max-steps", "2", "--out", out)
        assert (code, stdout) == (2, "") and err.count("\n") == 1 and "is not a directory" in err, err


def test_a_forced_run_is_swapped_in_at_its_first_evaluation_even_without_a_better_loss(capsys, base, tmp_path):
    """A review found it (2026-12-06): swapping in at the first best.npz lost a whole run
    resumed into another directory (--resume A --out B --force) whose evaluations never
    beat A's best: it was discarded, exit 0. Now any first evaluation of savable weights
    swaps it in."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(base["run"], a)
    raw, meta = members(a / "latest.npz")
    meta["best_val"] = 0.0                                # nothing beats it
    write_ckpt(a / "latest.npz", raw, meta)
    assert main(["train", base["text"], *SMALL, "--max-steps", "4", "--out", str(b)]) == 0
    code, _, err = run(capsys, "train", "--resume", str(a), "--out", str(b), "--force", "--max-steps", "30",
                       "--eval-every", "5", "--quiet")
    assert code == 0, err
    assert CharLM.load(str(b / "latest.npz")).meta["step"] == 30 and not (b / "best.npz").exists()


def test_ngram_of_a_forced_run_that_kept_the_old_one_is_not_written_into_it(capsys, base, tmp_path):
    """--ngram after a forced run that stopped before any evaluation counted the new text
    and saved it into the old run, labelled as the old run's text."""
    old = tmp_path / "old"
    assert main(["train", base["text"], *SMALL, "--max-steps", "4", "--out", str(old)]) == 0
    before = snapshot(old)
    other = tmp_path / "other.txt"
    other.write_text(make_text(4000, seed=2), encoding="utf-8")
    code, stdout, err = run(capsys, "train", str(other), *SMALL[:-1], "--time-limit", "1e-9", "--ngram", "3",
                            "--out", str(old), "--force")
    assert code == 0 and "still holds the run --force was to replace" in stdout, (stdout, err)
    assert "ngram.npz" not in stdout and snapshot(old) == before


def test_a_one_character_run_resumes(capsys, tmp_path):
    """Its loss is exactly 0 from the first step; a check for an initial loss > 0 refused
    its resume as damaged."""
    text = tmp_path / "a.txt"
    text.write_text("a" * 3000, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", str(text), *SMALL, "--max-steps", "4", "--out", str(out)]) == 0
    assert run(capsys, "train", "--resume", str(out), "--max-steps", "6", "--quiet")[0] == 0


def test_an_out_through_a_missing_folder_and_dotdot_is_the_run_it_names(capsys, base, tmp_path):
    """'nope/../R' with nope missing: the checks asked the system, which cannot resolve it
    (not a directory: a new run), while the run wrote to the absolute path, R — a run
    replaced without --force (a review, 2026-12-06)."""
    r = tmp_path / "R"
    shutil.copytree(base["run"], r)
    before = snapshot(r)
    one_line_exit_2(capsys, "train", base["text"], *SMALL, "--max-steps", "2",
                    "--out", str(tmp_path / "nope" / ".." / "R"), match="already holds a run")
    assert snapshot(r) == before
