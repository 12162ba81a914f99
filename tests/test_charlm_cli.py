"""End to end through the CLI on small texts made here (no ../shared needed)."""
import json
import math
import os

import numpy as np
import pytest

from rnnlab import checkpoint
from rnnlab.cli import main
from rnnlab.models import CharLM

SMALL = ["--hidden-size", "24", "--seq-len", "16", "--batch-size", "8", "--lr", "0.01", "--quiet"]


def make_text(n_chars=6000, seed=0):
    """A small structured text: sentences from a tiny grammar, so a model can learn."""
    rng = np.random.default_rng(seed)
    subjects, verbs, objects = ["the cat", "a dog", "my bird"], ["sees", "eats", "likes"], ["fish.", "seeds.", "milk."]
    words = []
    while sum(len(w) + 1 for w in words) < n_chars:
        words += [rng.choice(subjects), rng.choice(verbs), rng.choice(objects)]
    return " ".join(words)[:n_chars] + "\n"


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_text(make_text(), encoding="utf-8")
    return str(p)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def snapshot(directory):
    return {f: read_bytes(os.path.join(directory, f)) for f in sorted(os.listdir(directory))}


def test_training_lowers_validation_loss_and_eval_matches(capsys, tmp_path, text_file):
    out_dir = str(tmp_path / "run")
    code, out, err = run(capsys, "train", text_file, *SMALL, "--max-steps", "300", "--eval-every", "50",
                         "--out", out_dir, "--json")
    assert code == 0, err
    summary = json.loads(out)
    records = [json.loads(line) for line in read_text(os.path.join(out_dir, "metrics.jsonl")).splitlines()]
    assert len(records) == 6
    first, best = records[0]["val_loss"], summary["best_val_loss"]
    assert best < first - 0.3, (first, best)              # it learned
    assert best < math.log(len(set(make_text()))) - 1.0    # far below a uniform guess
    assert {"config.json", "vocab.json", "metrics.jsonl", "latest.npz", "best.npz"} <= set(os.listdir(out_dir))

    # eval of the best checkpoint on the validation tail = the training loop's own number
    text = read_text(text_file)
    n_val = int(round(len(text) * 0.1))
    val_file = tmp_path / "val.txt"
    val_file.write_text(text[len(text) - n_val:], encoding="utf-8")
    code, out, err = run(capsys, "eval", out_dir, str(val_file), "--json")
    assert code == 0, err
    m = json.loads(out)
    assert set(m) >= {"loss", "bpc", "perplexity", "chars"}
    assert m["loss"] == pytest.approx(best, rel=1e-9)
    assert m["bpc"] == pytest.approx(best / math.log(2), rel=1e-9)
    assert m["perplexity"] == pytest.approx(math.exp(best), rel=1e-9)


def test_seeded_sampling_is_reproducible(capsys, tmp_path, text_file):
    out_dir = str(tmp_path / "run")
    assert run(capsys, "train", text_file, *SMALL, "--max-steps", "30", "--out", out_dir)[0] == 0
    a = run(capsys, "sample", out_dir, "--length", "80", "--seed", "7", "--prime", "the ")[1]
    b = run(capsys, "sample", out_dir, "--length", "80", "--seed", "7", "--prime", "the ")[1]
    c = run(capsys, "sample", out_dir, "--length", "80", "--seed", "8", "--prime", "the ")[1]
    assert a == b and a != c
    assert a.startswith("the ") and len(a) == len("the ") + 80 + 1
    greedy = [run(capsys, "sample", out_dir, "--length", "40", "--temperature", "0", "--seed", str(s),
                  "--prime", "the ")[1] for s in (1, 2)]
    assert greedy[0] == greedy[1]                       # greedy decoding draws nothing: the seed is moot
    model = CharLM.load(os.path.join(out_dir, "best.npz"))
    assert greedy[0] == "the " + model.generate(40, temperature=0, prime="the ") + "\n"
    two = run(capsys, "sample", out_dir, "--length", "20", "--num-samples", "2", "--seed", "3",
              "--top-k", "3")[1]
    assert two.count("\n\n") >= 1


def test_resume_keeps_the_runs_evaluation_cadence_and_patience(capsys, tmp_path, text_file):
    """--eval-every and --patience are the run's, like its model options: a resume without
    them evaluates on the same steps and stops as patiently (they fell back to the defaults)."""
    out = str(tmp_path / "run")
    assert run(capsys, "train", text_file, *SMALL, "--max-steps", "10", "--eval-every", "5", "--patience", "50",
               "--out", out)[0] == 0
    assert run(capsys, "train", "--resume", out, "--max-steps", "20", "--quiet")[0] == 0
    with open(os.path.join(out, "metrics.jsonl"), encoding="utf-8") as f:
        assert [json.loads(line)["step"] for line in f] == [5, 10, 15, 20]
    meta = CharLM.load(os.path.join(out, "latest.npz")).meta
    assert (meta["eval_every"], meta["patience"]) == (5, 50)
    assert run(capsys, "train", "--resume", out, "--max-steps", "24", "--eval-every", "2", "--quiet")[0] == 0
    assert CharLM.load(os.path.join(out, "latest.npz")).meta["eval_every"] == 2     # given again: it wins


def test_a_run_that_stopped_early_goes_on_with_patience_0(capsys, tmp_path, text_file):
    """The saved patience comes back on a resume, with the count of evaluations that did
    not improve: it stops again at once, unless --patience is raised or 0 (no early stop)."""
    out = str(tmp_path / "run")
    code, stdout, err = run(capsys, "train", text_file, *SMALL, "--max-steps", "400", "--eval-every", "1",
                            "--patience", "1", "--lr", "1.0", "--optimizer", "sgd", "--out", out, "--json")
    assert code == 0 and json.loads(stdout)["stop_reason"] == "early_stopping", err
    step = CharLM.load(os.path.join(out, "latest.npz")).meta["step"]
    code, stdout, err = run(capsys, "train", "--resume", out, "--max-steps", "400", "--json")
    assert json.loads(stdout)["stop_reason"] == "early_stopping"
    assert CharLM.load(os.path.join(out, "latest.npz")).meta["step"] == step
    code, stdout, err = run(capsys, "train", "--resume", out, "--max-steps", str(step + 6), "--patience", "0", "--json")
    assert code == 0 and json.loads(stdout)["stop_reason"] == "max_steps", err
    meta = CharLM.load(os.path.join(out, "latest.npz")).meta
    assert meta["step"] == step + 6 and meta["patience"] is None


def test_the_runs_own_text_is_read_in_the_encoding_it_was_trained_in(capsys, tmp_path):
    """A run trained on a Latin-1 file: --resume, eval --dynamic (whose gradient statistics
    read the training text) and explore read it as Latin-1 whatever --encoding says about
    the scored text (eval --dynamic read it with the scored text's encoding: an error, or
    with --encoding latin-1 on a UTF-8 run, a mis-decoded training text and other scores)."""
    text = make_text(6000).replace("the", "thé")
    latin, utf8 = tmp_path / "latin.txt", tmp_path / "tail.txt"
    latin.write_bytes(text.encode("latin-1"))
    utf8.write_text(text[-1500:], encoding="utf-8")
    (tmp_path / "tail-latin.txt").write_bytes(text[-1500:].encode("latin-1"))
    out = str(tmp_path / "run")
    assert run(capsys, "train", str(latin), *SMALL, "--max-steps", "10", "--encoding", "latin-1", "--out", out)[0] == 0
    code, _, err = run(capsys, "train", "--resume", out, "--max-steps", "12", "--quiet")
    assert code == 0, err
    scores = []
    for scored, extra in ((utf8, []), (tmp_path / "tail-latin.txt", ["--encoding", "latin-1"])):
        code, stdout, err = run(capsys, "eval", out, str(scored), "--dynamic", "--json", *extra)
        assert code == 0, err
        scores.append(json.loads(stdout)["bpc"])
    assert scores[0] == scores[1]
    code, _, err = run(capsys, "explore", out, "--out", str(tmp_path / "page.html"))
    assert code == 0, err


def test_resume_equals_an_uninterrupted_run(capsys, tmp_path, text_file):
    opts = ["--model", "lstm", "--num-layers", "2", "--dropout", "0.2", *SMALL, "--eval-every", "10",
            "--optimizer", "adam"]
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    # 42 steps per epoch here (5,400 training chars, 8 streams, windows of 16): 60 cross an epoch
    assert run(capsys, "train", text_file, *opts, "--max-steps", "60", "--out", straight)[0] == 0
    assert run(capsys, "train", text_file, *opts, "--max-steps", "30", "--out", split)[0] == 0
    code, _, err = run(capsys, "train", "--resume", split, "--max-steps", "60", "--quiet")
    assert code == 0, err
    a, _ = checkpoint.load(os.path.join(straight, "latest.npz"))
    b, meta = checkpoint.load(os.path.join(split, "latest.npz"))
    assert meta["step"] == 60 and meta["epoch"] >= 1
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_min_char_rnn_preset_prints_smoothed_loss(capsys, tmp_path, text_file):
    code, out, err = run(capsys, "train", text_file, "--preset", "min-char-rnn", "--max-steps", "600",
                         "--eval-every", "600", "--out", str(tmp_path / "m"), "--json")
    assert code == 0, err
    s = json.loads(out)
    V = len(set(make_text()))
    # min-char-rnn's smoothed summed loss starts at −ln(1/V)·25 and moves 0.1% a step towards
    # the window's summed loss: after 600 steps it has come down, though far from the raw loss
    start = 25 * math.log(V)
    assert s["smooth_loss"] < start - 5
    assert s["smooth_loss"] > 25 * s["train_loss"]
    model = CharLM.load(os.path.join(str(tmp_path / "m"), "best.npz"))
    c = model.config
    assert (c.model, c.hidden_size, c.seq_len, c.batch_size, c.optimizer, c.lr, c.clip, c.clip_mode) == \
           ("rnn", 100, 25, 1, "adagrad", 0.1, 5.0, "value")


def test_ngram_perplexity_equals_the_hand_computed_value(capsys, tmp_path):
    """Order 2 on "abab", scored on "abba". Counts: c(ab)=2, c(ba)=1; continuation counts
    N1+(•a)=N1+(•b)=1; D2 = n1/(n1+2n2) = 1/3, D1 = 1. Then P1(a)=P1(b)=½ and
    P(b|a) = (2−⅓)/2 + ⅓·½·½ = 11/12, P(a|b) = (1−⅓) + ⅓·½ = 5/6, P(b|b) = ⅓·½ = 1/6."""
    train, held = tmp_path / "train.txt", tmp_path / "held.txt"
    train.write_text("abab", encoding="utf-8")
    held.write_text("abba", encoding="utf-8")
    code, out, err = run(capsys, "ngram", str(train), "--order", "2", "--eval", str(held), "--val-frac", "0",
                         "--json")
    assert code == 0, err
    m = json.loads(out)
    expected_ppl = (11 / 12 * 1 / 6 * 5 / 6) ** (-1 / 3)
    assert m["perplexity"] == pytest.approx(expected_ppl, rel=1e-12)
    assert m["chars"] == 3


def test_ngram_eval_file_learns_the_same_head_as_train(capsys, tmp_path):
    """``ngram TEXT --eval FILE`` learns what ``train TEXT`` trains on (all but the last
    --val-frac), so it is compared with the char model on equal text; --val-frac 0 learns
    all of TEXT. The tail here holds the only "z": learning it changes the score."""
    text, held = tmp_path / "text.txt", tmp_path / "held.txt"
    text.write_text("ab" * 45 + "z" * 10, encoding="utf-8")
    held.write_text("abzab", encoding="utf-8")
    lines = {}
    for frac in ("0.1", "0"):
        code, out, err = run(capsys, "ngram", str(text), "--order", "2", "--eval", str(held), "--val-frac", frac)
        assert code == 0, err
        lines[frac] = out
    assert "on 90 characters" in lines["0.1"] and "on 100 characters" in lines["0"]
    assert lines["0.1"].split("scored:")[1] != lines["0"].split("scored:")[1]


def test_metrics_line_stays_readable_for_a_diverged_model():
    """A diverged dynamic evaluation (``--dyn-lr 1e30``) scores ~1e33 nats/char: the line
    keeps its shape instead of printing 300-digit fixed-point numbers, and the saturated
    perplexity is shown as e^L rather than as the cap's value."""
    from rnnlab.metrics import describe_lm, lm_metrics
    assert describe_lm(lm_metrics(1.6455, 10)) == "1.6455 nats/char, 2.3740 bits/char, perplexity 5.184"
    assert describe_lm(lm_metrics(20.0, 10)).endswith("perplexity 4.852e+08")
    huge = describe_lm(lm_metrics(3.724e33, 10))
    assert huge == "3.724e+33 nats/char, 5.373e+33 bits/char, perplexity e^3.724e+33"
    assert describe_lm(lm_metrics(6443.1457, 10)).endswith("perplexity e^6443")


def test_negative_seeds_are_usage_errors(capsys, trained):
    """NumPy refuses negative seeds; the commands that take --seed say so in one line."""
    for argv in (("sample", trained, "--seed", "-1"), ("task", "detect", "--seed", "-1"), ("demo", "--seed", "-1")):
        code, out, err = run(capsys, *argv)
        assert code == 2 and "--seed" in err and ">= 0" in err and out == "", argv
    code, out, err = run(capsys, "demo", "--delay", "0")          # the checks come before the heading
    assert code == 2 and out == "" and "--delay" in err
    from rnnlab.errors import ConfigError
    with pytest.raises(ConfigError, match="seed must be None or an integer >= 0"):
        CharLM.load(os.path.join(trained, "best.npz")).generate(5, seed=-1)


def test_ngram_probabilities_sum_to_one(text_file):
    from rnnlab import KneserNeyLM
    text = read_text(text_file)
    lm = KneserNeyLM(4).fit(text[:4000])
    for history in ["the c", "zzz", "", "a d", "milk."]:
        assert sum(lm.prob(w, history) for w in lm.vocab) == pytest.approx(1.0, abs=1e-12)


# -- bad input: one line on stderr, exit code 2, nothing changed ------------------------------------
@pytest.fixture
def trained(capsys, tmp_path, text_file):
    out_dir = str(tmp_path / "run")
    assert run(capsys, "train", text_file, *SMALL, "--max-steps", "20", "--out", out_dir)[0] == 0
    return out_dir


def _bad(capsys, run_dir, *argv, match):
    before = snapshot(run_dir)
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("rnnlab: error:"), err
    assert match in err, err
    assert snapshot(run_dir) == before


def test_bad_text_files(capsys, tmp_path, trained):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\u00e9 au lait\n".encode("latin-1"))
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"ab\x00\x00cd")
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("hello world\n", encoding="utf-8")
    for argv, match in [
        (["train", str(tmp_path / "nope.txt"), "--out", trained], "no such file"),
        (["train", str(empty), "--out", trained, "--force"], "empty"),
        (["train", str(latin), "--out", trained, "--force"], "byte offset 3 (line 1)"),
        (["train", str(binary), "--out", trained, "--force"], "binary"),
        (["train", str(tiny), *SMALL, "--out", trained, "--force"], "too short"),
        (["eval", trained, str(latin)], "undecodable byte 0xe9"),
    ]:
        _bad(capsys, trained, *argv, match=match)


def test_bad_options(capsys, text_file, trained):
    for argv, match in [
        (["train", text_file, "--lr", "-1", "--out", trained, "--force"], "--lr must be positive"),
        (["train", text_file, "--hidden-size", "0", "--out", trained, "--force"], "--hidden-size"),
        (["train", text_file, "--dropout", "1.5", "--out", trained, "--force"], "--dropout"),
        (["train", text_file, "--preset", "nanogpt", "--out", trained, "--force"], "--preset"),
        (["train", text_file, "--model", "transformer"], "invalid choice"),
        (["train", text_file, "--out", trained], "already holds a run"),
        (["train", "--resume", trained, "--hidden-size", "8"], "drop --hidden-size"),
        (["sample", trained, "--temperature", "-1"], "--temperature"),
        (["sample", trained, "--prime", "the €"], "not in the model's vocabulary: '€'"),
        (["sample", trained, "--length", "-3"], "--length"),
    ]:
        _bad(capsys, trained, *argv, match=match)


def test_bad_checkpoints(capsys, tmp_path, trained):
    good = read_bytes(os.path.join(trained, "best.npz"))
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(good[: len(good) // 2])
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    other = tmp_path / "other.npz"
    np.savez(other, __meta__=np.frombuffer(json.dumps({"format": "keras"}).encode(), np.uint8))
    newer = tmp_path / "newer.npz"
    np.savez(newer, __meta__=np.frombuffer(json.dumps({"format": "rnnlab-checkpoint", "version": 99}).encode(), np.uint8))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __meta__=np.frombuffer(b"{}", np.uint8), evil=np.array([{"a": 1}], dtype=object))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    for path, match in [(damaged, "damaged"), (foreign, "not an rnnlab checkpoint"),
                        (other, "another program"), (newer, "newer"), (pickled, "damaged"),
                        (garbage, "damaged"), (tmp_path / "missing.npz", "no such")]:
        _bad(capsys, trained, "sample", str(path), match=match)
    _bad(capsys, trained, "train", "--resume", str(damaged), match="damaged")


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "ck.npz"
    checkpoint.save(target, {"a": np.arange(3)}, {"note": "first"})
    before = target.read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(RuntimeError):
        checkpoint.save(target, {"a": np.arange(5)}, {"note": "second"})
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["ck.npz"]       # no temporary file left behind


def test_divergence_stops_training_and_keeps_best(capsys, tmp_path, text_file):
    out_dir = str(tmp_path / "run")
    code, out, err = run(capsys, "train", text_file, *SMALL[:-1], "--max-steps", "400", "--eval-every", "1",
                         "--optimizer", "sgd", "--lr", "1e4", "--clip", "0", "--out", out_dir, "--json")
    summary = json.loads(out)
    assert code == 1 and summary["stop_reason"] == "diverged" and summary["steps"] < 400
    assert "training stopped" in err and "best checkpoint is unchanged" in err
    arrays, meta = checkpoint.load(os.path.join(out_dir, "best.npz"))
    assert meta["step"] <= summary["steps"]
    assert all(np.all(np.isfinite(v)) for k, v in arrays.items() if k.startswith("param/"))
    best = CharLM.load(os.path.join(out_dir, "best.npz"))
    assert best.meta["best_val"] == pytest.approx(summary["best_val_loss"])


def test_training_says_where_its_wall_clock_went(capsys, tmp_path, text_file):
    """Evaluation and the samples/checkpoints are timed apart from the steps: the JSON
    summary has the seconds of each, and the closing report their shares."""
    small = [a for a in SMALL if a != "--quiet"]
    code, out, err = run(capsys, "train", text_file, *small, "--max-steps", "40", "--eval-every", "10",
                         "--out", str(tmp_path / "a"))
    assert code == 0, err
    line = [s for s in out.splitlines() if s.startswith("wall clock")]
    assert len(line) == 1 and "validation" in line[0] and "samples and checkpoints" in line[0], out
    code, out, err = run(capsys, "train", text_file, *SMALL, "--max-steps", "40", "--eval-every", "10",
                         "--out", str(tmp_path / "b"), "--json")
    s = json.loads(out)
    assert 0 < s["eval_seconds"] and 0 < s["report_seconds"]
    assert s["eval_seconds"] + s["report_seconds"] < s["run_seconds"] <= s["elapsed"] + 0.5


def test_default_eval_cadence_keeps_evaluation_a_small_share():
    """200 steps, or more when the validation text is large: an evaluation (n_val
    characters at half a trained character's cost) is about 2.5% of the time between two."""
    from rnnlab.charlm_run import EVAL_COST, auto_eval_every
    assert auto_eval_every(11_857, 64, 32) == 200                   # the story's 10%: 200
    every = auto_eval_every(111_539, 64, 32)                        # tiny Shakespeare's 10%
    assert every > 200
    share = 111_539 * EVAL_COST / (111_539 * EVAL_COST + 64 * 32 * every)
    assert 0.02 < share <= 0.025


def test_train_without_eval_every_uses_the_automatic_cadence(capsys, tmp_path, text_file):
    from rnnlab.charlm_run import auto_eval_every
    out_dir = str(tmp_path / "run")
    every = auto_eval_every(int(len(make_text()) * 0.3), 16, 8)
    assert 200 < every < 300
    code, out, err = run(capsys, "train", text_file, *SMALL, "--val-frac", "0.3", "--max-steps", "300",
                         "--out", out_dir, "--json")
    assert code == 0, err
    steps = [json.loads(line)["step"] for line in read_text(os.path.join(out_dir, "metrics.jsonl")).splitlines()]
    assert steps == [every, 300]


def test_a_run_that_saved_nothing_does_not_point_to_sample(capsys, tmp_path):
    """A run diverged at its first step has no best.npz: its last line says so instead of
    "sample with: ..." (which then failed), and the huge loss is in exponent form."""
    text = tmp_path / "t.txt"
    text.write_text(make_text(6000), encoding="utf-8")
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", str(text), "--hidden-size", "8", "--seq-len", "16", "--batch-size", "4",
                            "--optimizer", "sgd", "--lr", "1e30", "--clip", "0", "--max-steps", "30",
                            "--eval-every", "1", "--out", str(out))
    assert code == 1 and not (out / "best.npz").exists(), err
    assert stdout.rstrip().endswith("no checkpoint was saved (nothing to sample from)")
    assert "sample with" not in stdout and "e+" in stdout.splitlines()[-3]


def test_a_quiet_run_that_diverges_says_so_in_one_line(capsys, tmp_path):
    """Under --quiet a divergence exited 1 with nothing printed."""
    text = tmp_path / "t.txt"
    text.write_text(make_text(6000), encoding="utf-8")
    code, stdout, err = run(capsys, "train", str(text), *SMALL, "--optimizer", "sgd", "--lr", "1e30", "--clip", "0",
                            "--max-steps", "40", "--out", str(tmp_path / "run"))
    assert (code, stdout) == (1, "") and err.count("\n") == 1 and "training diverged after" in err, err


# -- sample_next: the one draw behind sample, the progress sample and the mixture's sampling ------------
def test_sample_next_draws_from_the_tempered_softmax():
    from rnnlab.generate import sample_next
    rng = np.random.default_rng(0)
    logits = np.array([0.5, 2.0, -1.0, 1.0])
    for t in (0.5, 2.0):
        p = np.exp(logits / t) / np.exp(logits / t).sum()
        freq = np.bincount([sample_next(logits, t, 0, rng) for _ in range(20000)], minlength=4) / 20000
        assert np.abs(freq - p).max() < 0.015, (t, freq, p)
    assert sample_next(logits, 0, 0, rng) == 1                     # temperature 0: the argmax
    with np.errstate(all="raise"):                                  # a tiny temperature: still the argmax
        assert all(sample_next(logits, 1e-310, 0, rng) == 1 for _ in range(20))


def test_sample_next_top_k_keeps_exactly_k():
    from rnnlab.generate import sample_next
    rng = np.random.default_rng(0)
    assert {sample_next(np.zeros(4), 1.0, 1, rng) for _ in range(200)} == {0}      # ties: the first
    drawn = {sample_next(np.array([3.0, 2, 2, 2, 0]), 1.0, 2, rng) for _ in range(2000)}
    assert drawn == {0, 1}
    drawn = {sample_next(np.array([0.0, 5, 1, 4, 2]), 1.0, 3, rng) for _ in range(2000)}
    assert drawn == {1, 3, 4}


def test_ngram_says_what_it_dropped_and_how_it_scored(capsys, tmp_path):
    (tmp_path / "ab.txt").write_text("ab" * 200, encoding="utf-8")
    (tmp_path / "held.txt").write_text("abcab", encoding="utf-8")
    args = ["ngram", str(tmp_path / "ab.txt"), "--order", "2", "--val-frac", "0", "--eval", str(tmp_path / "held.txt")]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert out.splitlines()[-1] == "1 character(s) outside the vocabulary were dropped before scoring"
    code, out, err = run(capsys, *args, "--modified", "--json")
    m = json.loads(out)
    assert (m["oov"], m["chars"], m["modified"], m["adapt"]) == (1, 3, True, False)


def test_sample_encoding_needs_a_prime_file(capsys, tmp_path, text_file):
    out_dir = str(tmp_path / "run")
    assert run(capsys, "train", text_file, *SMALL, "--max-steps", "5", "--out", out_dir)[0] == 0
    code, out, err = run(capsys, "sample", out_dir, "--prime", "the ", "--encoding", "latin-1")
    assert code == 2 and out == "" and "--prime-file" in err
    (tmp_path / "prime.txt").write_bytes("the ".encode("utf-16"))
    code, out, err = run(capsys, "sample", out_dir, "--prime-file", str(tmp_path / "prime.txt"), "--encoding",
                         "utf-16", "--length", "5", "--seed", "0")
    assert code == 0 and out.startswith("the ") and len(out) == len("the ") + 5 + 1, err


def test_an_error_names_the_users_paths_as_typed(capsys, tmp_path):
    """The CLI says its flags where a library message names a parameter ("seed=1" is
    "--seed 1"), and rewrote the user's own paths with them: "exp/seed=1/t.txt" came out
    as "exp/--seed 1/t.txt" (a review, 2026-12-06)."""
    path = str(tmp_path / "exp" / "seed=1" / "t.txt")
    code, _, err = run(capsys, "train", path, "--max-steps", "2")
    assert code == 2 and f"{path}: no such file" in err, err
    code, _, err = run(capsys, "train", path, "--hidden-size", "0", "--max-steps", "2")
    assert code == 2 and "--hidden-size must be a positive integer" in err, err
    code, _, err = run(capsys, "task", "detect", "--word", "size", "--hidden-size", "0")   # a word inside a name
    assert code == 2 and "--hidden-size must be a positive integer" in err, err
