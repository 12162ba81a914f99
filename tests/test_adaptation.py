"""Issue #15's evaluation side: modified Kneser-Ney, the cache n-gram, dynamic
evaluation and n-gram mixing — exact where an exact statement exists, and end to end
through the CLI."""
import json
import math
import os
from collections import Counter

import numpy as np
import pytest

from rnnlab import CharLM, CharLMConfig, KneserNeyLM
from rnnlab.errors import CheckpointError, ConfigError, DataError
from rnnlab.models.mixing import NgramMixture, fit_mixture
from rnnlab.models import mixing, scoring
from rnnlab.models.scoring import dynamic_logprobs, gradient_stats, layout, static_logprobs
from test_charlm_cli import SMALL, make_text, run


# -- n-grams ---------------------------------------------------------------------------------------
def test_modified_discounts_follow_chen_and_goodman():
    text = "abracadabra abracadabra cadabra"
    lm = KneserNeyLM(3, modified=True).fit(text)
    raw = Counter(text[i:i + 3] for i in range(len(text) - 2))
    n = {k: sum(1 for c in raw.values() if c == k) for k in (1, 2, 3, 4)}
    Y = n[1] / (n[1] + 2 * n[2])
    expected = (1 - 2 * Y * n[2] / n[1], 2 - 3 * Y * n[3] / n[2], 3 - 4 * Y * n[4] / n[3])
    assert lm.discount[3] == pytest.approx(tuple(min(max(d, 0), m) for d, m in zip(expected, (1, 2, 3))))


@pytest.mark.parametrize("modified", [False, True])
def test_ngram_distributions_sum_to_one_even_while_adapting(modified):
    text = make_text(3000)
    vocab = sorted(set(text) | set("XYZ"))
    lm = KneserNeyLM(4, modified=modified).fit(text[:2000], vocab=vocab)
    for h in ["the c", "XYZ", "", "a d"]:
        assert lm.probs(h).sum() == pytest.approx(1.0, abs=1e-12)
        assert np.array_equal(lm.probs(h), [lm.prob(w, h) for w in lm.vocab])    # the vectorised form
    for i in range(2000, 2100):
        lm._add(text[i - 3:i + 1])          # what adapt=True does after each character
    for h in ["the c", "my b", "Z"]:
        assert lm.probs(h).sum() == pytest.approx(1.0, abs=1e-12)
        assert np.array_equal(lm.probs(h), [lm.prob(w, h) for w in lm.vocab])    # the vectorised form


@pytest.mark.parametrize("modified", [False, True])
def test_a_text_without_singletons_still_scores_every_character(modified):
    """A passage repeated has no singleton n-grams (n1 = 0): Chen & Goodman's formulas give
    a discount of 0, which freed no mass, so a continuation unseen in a fully covered
    context had probability 0 and scoring failed with log(0). Every discount is now at
    least MIN_DISCOUNT, and the distributions still sum to one."""
    from rnnlab.ngram import MIN_DISCOUNT
    for text, scored in (("abcabcabc", "acb"), (make_text(2000, seed=5) * 3, make_text(400, seed=6))):
        lm = KneserNeyLM(5, modified=modified).fit(text, vocab=sorted(set(text + scored)))
        assert min(min(d) for d in lm.discount.values()) >= MIN_DISCOUNT
        assert np.isfinite(lm.logprobs(scored)[0]).all() and np.isfinite(lm.logprobs(scored, adapt=True)[0]).all()
        for h in ("abc", "cab", scored[:4]):
            assert lm.probs(h).sum() == pytest.approx(1.0, abs=1e-12)


def test_cache_ngram_equals_refitting_on_what_it_has_read():
    """The adaptive n-gram at position i = the static model refitted on the training
    grams plus the scored text's grams up to i (the training discounts kept)."""
    train, scored = make_text(2000, seed=1), make_text(300, seed=2)
    N = 4
    lm = KneserNeyLM(N, modified=True).fit(train, vocab=sorted(set(train + scored)))
    adaptive, _ = lm.logprobs(scored, adapt=True)
    static, _ = lm.logprobs(scored)
    assert np.array_equal(static, lm.logprobs(scored)[0])        # the model was left as it was
    for i in (5, 60, 150, 299):
        ref = KneserNeyLM(N, modified=True)
        ref.vocab = lm.vocab
        top = Counter(train[j:j + N] for j in range(len(train) - N + 1))
        top.update(scored[j:j + N] for j in range(0, i - N + 1))           # grams ending before i
        counts = {N: top}
        for n in range(N - 1, 0, -1):
            counts[n] = Counter(g[1:] for g in counts[n + 1])
        ref.counts = counts
        ref._derive(lm.discount)
        h = scored[max(0, i - N + 1):i]
        assert adaptive[i - 1] == pytest.approx(math.log(ref.prob(scored[i], h)), rel=1e-12)


def test_ngram_storage_round_trip(tmp_path):
    text = make_text(3000)
    lm = KneserNeyLM(5, modified=True).fit(text)
    back = KneserNeyLM.from_arrays(lm.to_arrays())
    assert np.array_equal(lm.logprobs(text[:500])[0], back.logprobs(text[:500])[0])


# -- dynamic evaluation ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    text = make_text(6000, seed=3)
    model = CharLM(sorted(set(text)), CharLMConfig(hidden_size=24, num_layers=1, dropout=0.0, seq_len=16,
                                                    batch_size=8, lr=0.01), dtype=np.float64)
    model.fit(text, max_steps=60, sample_chars=0)
    return model, text


def test_dynamic_with_zero_step_is_static(trained):
    model, text = trained
    ids = model.vocab.encode(text[:1500])
    stats = gradient_stats(model, model.vocab.encode(text[:3000]))
    for streams in (1, 3):                  # one stream, the default, and side by side
        assert np.allclose(dynamic_logprobs(model, ids, stats, lr=0.0, decay=0.0, seg_len=7, streams=streams),
                           static_logprobs(model, ids, streams=streams), rtol=0, atol=1e-12)


def test_static_scoring_holds_one_chunk_of_activations_at_a_time():
    """A text of one and a half chunks (or two and a half) needs no more memory than one
    chunk: each chunk's activations are dropped before the next runs. (Kept, the full
    chunk's were still held while the shorter last one allocated its own: +32%.) Each
    model is fresh, so its work arrays are allocated inside the measurement; chunks scored
    in pieces give the same log-probabilities as one pass."""
    import tracemalloc
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc is already tracing (PYTHONTRACEMALLOC or -X tracemalloc): the peak would "
                    "include what was allocated before")
    text = make_text(3000, seed=3)

    def peak(steps, chunk):
        model = CharLM(sorted(set(text)), CharLMConfig(model="gru", hidden_size=64))
        ids = model.vocab.encode(text)[:16 * steps + 1]
        tracemalloc.start()
        try:
            out = static_logprobs(model, ids, streams=16, chunk=chunk)
            return tracemalloc.get_traced_memory()[1], out
        finally:
            tracemalloc.stop()
    one = peak(64, 64)[0]
    assert peak(96, 64)[0] < 1.15 * one and peak(160, 64)[0] < 1.15 * one
    assert np.allclose(peak(160, 64)[1], peak(160, 1000)[1], rtol=0, atol=1e-5)


def test_the_memory_estimate_of_a_longer_segment_grows_at_least_as_its_measured_peak():
    """The estimate behind the --dyn-seg check counts dynamic evaluation's per-position
    float64 arrays (logits, log-softmax, softmax): a review measured ~40·V bytes a
    position where it counted 16·V, so a large vocabulary's long segment could pass the
    check and then run out. Measured with tracemalloc, 64 → 512 steps, V = 1,500."""
    import tracemalloc
    from rnnlab.models import charlm_config
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc is already tracing (PYTHONTRACEMALLOC or -X tracemalloc): the peak would "
                    "include what was allocated before")
    chars = "".join(chr(0x4E00 + i) for i in range(1500))
    model = CharLM(chars, CharLMConfig(model="gru", hidden_size=8, num_layers=1))
    ids = np.random.default_rng(0).integers(0, len(chars), 600)
    stats = gradient_stats(model, ids[:200], seg_len=16, wide=2)

    def peak(seg):
        tracemalloc.start()
        try:
            dynamic_logprobs(model, ids[:seg + 1], stats, seg_len=seg)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def estimate(seg):
        return charlm_config.memory_needed(model.config, len(chars), 4, training=False, window=seg)
    assert estimate(512) - estimate(64) >= peak(512) - peak(64) > 0


def test_dynamic_evaluation_never_uses_later_text(trained):
    """Read as one stream (the default), changing character p changes no prediction before
    it — not even the distribution of the prediction of p itself. With streams side by side
    (a review found it) the weights that scored a stream's later segments had stepped on the
    next stream's start: changing the first character of stream 2 moved earlier scores."""
    model, text = trained
    stats = gradient_stats(model, model.vocab.encode(text[:3000]))
    ids = model.vocab.encode(text[:201])
    other = ids.copy()
    p = 100
    other[p] = (other[p] + 1) % len(model.vocab)
    a = dynamic_logprobs(model, ids, stats, lr=1e-2, seg_len=7)
    b = dynamic_logprobs(model, other, stats, lr=1e-2, seg_len=7)
    assert np.array_equal(a[:p - 1], b[:p - 1]) and not np.array_equal(a[p - 1:], b[p - 1:])
    a2 = dynamic_logprobs(model, ids, stats, lr=1e-2, seg_len=7, streams=2)
    b2 = dynamic_logprobs(model, other, stats, lr=1e-2, seg_len=7, streams=2)
    assert not np.array_equal(a2[:p - 1], b2[:p - 1])           # what the default avoids


def test_dynamic_scores_each_segment_before_updating_and_restores_weights(trained):
    model, text = trained
    before = {k: v.copy() for k, v in model.params.items()}
    ids = model.vocab.encode(text[:2001])
    stats = gradient_stats(model, model.vocab.encode(text[:3000]))
    dyn = dynamic_logprobs(model, ids, stats, lr=1e-2, decay=0.0, seg_len=10, streams=4)
    static = static_logprobs(model, ids, streams=4)
    _, _, valid, S, L = layout(ids, 4)
    first = np.zeros((L, S), bool)
    first[:10] = True                                   # the first segment of every stream
    mask = first.T[valid.T]
    assert np.allclose(dyn[mask], static[mask], atol=1e-12)      # scored before any update
    assert not np.allclose(dyn[~mask], static[~mask])             # later ones by adapted weights
    assert all(np.array_equal(before[k], v) for k, v in model.params.items())


def test_gradient_stats_give_the_rms_at_any_stream_count(trained):
    """rms_S² = μ² + σ²/S reproduces the two measured moments exactly (where nothing was
    clipped) and predicts layouts it never measured: 6 streams, and one stream read from
    the text's start."""
    model, text = trained
    ids = model.vocab.encode(text)
    stats = gradient_stats(model, ids, seg_len=10, wide=32)
    m1, mw, W = scoring._mean_squares(model, ids, 10, 32, scoring.STATS_STEPS)
    assert W == 32
    for S, measured in ((1, m1), (W, mw)):
        for k, ms in measured.items():
            kept = (stats.var[k] > 0) & (stats.mu2[k] > 0)
            assert np.allclose(stats.rms(S)[k][kept] ** 2, ms[kept], rtol=1e-9), (S, k)
    batched = {S: scoring._mean_squares(model, ids, 10, S, scoring.STATS_STEPS)[1] for S in (6, 1)}

    def median_ratio(S, measured):             # over the weights that have a gradient at all
        return np.median(np.concatenate([stats.rms(S)[k][ms > 0] / np.sqrt(ms[ms > 0])
                                         for k, ms in measured.items()]))
    assert 0.8 < median_ratio(6, batched[6]) < 1.25
    assert 0.8 < median_ratio(1, batched[1]) < 1.25
    assert median_ratio(6, batched[1]) < 0.7       # and 6 streams are not one


@pytest.mark.parametrize("segments, streams_taken", [(3, {0, 1, 3}), (30, {0, 1, 2, 3, 4})])
def test_one_stream_passes_run_after_the_batched_ones_from_the_states_the_batch_had(trained, segments,
                                                                                   streams_taken):
    """_mean_squares runs its one-stream segments after the batched pass: m₁ is bit for
    bit what interleaving them gives — segment n of N's stream ⌊n·W/N⌋ (spread over every
    stream of the text, not only the first N), from the batched state at that segment's
    start."""
    model, text = trained
    ids = model.vocab.encode(text)
    seg, wide = 9, 5
    inp, tgt, valid, _, L = scoring.layout(ids, wide)
    m1 = {k: np.zeros(p.shape) for k, p in model.params.items()}
    state, n1, taken = None, 0, set()
    starts = range(0, min(L, seg * segments), seg)
    model.eval()
    try:
        for n, s in enumerate(starts):
            sl, j = slice(s, s + seg), n * wide // len(starts)
            if valid[sl, j].any():
                scoring._segment_grad(model, inp[sl, j:j + 1], tgt[sl, j:j + 1], valid[sl, j:j + 1],
                                      scoring._column(state, j))
                for k, g in model.grads.items():
                    m1[k] += np.square(g, dtype=np.float64)
                n1 += 1
                taken.add(j)
            state = scoring._detach(scoring._segment_grad(model, inp[sl], tgt[sl], valid[sl], state)[1])
    finally:
        model.zero_grad()
        model.train()
    got = scoring._mean_squares(model, ids, seg, wide, seg * segments)[0]     # the first segments' steps
    assert taken == streams_taken and n1 == len(starts) and all(np.array_equal(got[k], m1[k] / n1) for k in m1)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_a_stream_cut_from_the_batched_state_goes_on_as_in_the_batch(kind):
    """What m₁ relies on: stream j's state taken from the batched pass and continued
    alone gives the batch's own outputs for stream j."""
    text = make_text(3000, seed=4)
    model = CharLM(sorted(set(text)), CharLMConfig(model=kind, hidden_size=16, num_layers=2),
                   dtype=np.float64)
    inp = layout(model.vocab.encode(text), 8)[0]
    model.eval()
    _, state = model.forward(inp[:10])
    batched, _ = model.forward(inp[10:20], state)
    for j in (0, 5):
        alone, _ = model.forward(inp[10:20, j:j + 1], scoring._column(state, j))
        assert np.allclose(alone[:, 0], batched[:, j], rtol=0, atol=1e-12)
    assert not np.allclose(batched[:, 0], batched[:, 5])
    model.train()


@pytest.mark.parametrize("streams", [1, 4])
def test_one_dynamic_step_is_the_stated_update(trained, streams):
    """θ' = θ − lr·√S·g/(rms_S+ε) + min(decay·rms_S/mean(rms_S), 1)·(θ₀ − θ'') with g the
    gradient of the segment's mean loss over the S streams — one segment covering the text —
    and each tensor's rms_S floored at RMS_FLOOR × its mean (here binding on one head row,
    whose statistics are zeroed)."""
    model, text = trained
    ids = model.vocab.encode(text[:41])                   # 40 predictions: 4 streams of 10, no padding
    stats = gradient_stats(model, model.vocab.encode(text[:3000]))
    row = ids[5]                                          # a character the segment predicts
    stats.mu2["head.weight"][row] = stats.var["head.weight"][row] = 0.0
    theta0 = {k: v.copy() for k, v in model.params.items()}
    inp, tgt, valid, S, L = layout(ids, streams)
    assert S == streams and valid.all()
    model.eval()
    model.zero_grad()
    model.loss_and_grad(inp, tgt)
    g = {k: v.copy() for k, v in model.grads.items()}
    lr, decay = 0.05, 0.3
    dynamic_logprobs(model, ids, stats, lr=lr, decay=decay, seg_len=L, streams=streams, restore=False)
    raw = stats.rms(streams)
    rms = stats.step_rms(streams)
    for k, r in raw.items():
        assert np.array_equal(rms[k], np.maximum(r, scoring.RMS_FLOOR * r.mean())), k
    assert np.all(rms["head.weight"][row] == scoring.RMS_FLOOR * raw["head.weight"].mean())
    mean_rms = np.mean([r.mean() for r in rms.values()])
    for k, p in model.params.items():
        stepped = theta0[k] - lr * np.sqrt(streams) / (rms[k] + 1e-8) * g[k]
        rate = np.minimum(decay * rms[k] / mean_rms, 1.0)
        assert np.allclose(p, stepped + rate * (theta0[k] - stepped), rtol=1e-10, atol=1e-12), k
        p[...] = theta0[k]
    model.train()


def test_a_tensor_the_statistics_never_moved_is_floored_by_the_overall_mean(trained):
    model, text = trained
    stats = gradient_stats(model, model.vocab.encode(text[:3000]))
    stats.mu2["head.bias"][:] = stats.var["head.bias"][:] = 0.0
    overall = np.mean([r.mean() for r in stats.rms(6).values()])
    assert overall > 0
    assert np.all(stats.step_rms(6)["head.bias"] == scoring.RMS_FLOOR * overall)


def test_a_character_the_statistics_never_saw_does_not_blow_up_dynamic_evaluation(trained):
    """Statistics from a text without 'e': its input column has RMS 0 and its output row a
    tiny one. Scoring a text full of 'e' must not diverge (the RMS floor; without it the
    first step on that column is lr·√S·g/1e-8)."""
    model, text = trained
    assert "e" in model.vocab.index
    stats = gradient_stats(model, model.vocab.encode(text[:3000].replace("e", "")))
    assert stats.rms(1)["rnn.weight_ih_l0"][:, model.vocab.index["e"]].max() == 0
    ids = model.vocab.encode(text[3000:5000])
    static = float(-np.mean(static_logprobs(model, ids)))
    dynamic = float(-np.mean(dynamic_logprobs(model, ids, stats)))
    assert np.isfinite(dynamic) and dynamic < static + 0.05


def test_dynamic_evaluation_learns_a_repeated_passage(trained):
    model, text = trained
    passage = "the quick brown fox jumps over the lazy dog. " * 40
    passage = "".join(ch for ch in passage if ch in model.vocab.index)
    static = model.evaluate(passage)["bpc"]
    dynamic = model.evaluate(passage, dynamic=True, train_text=text, dyn_lr=3e-3)["bpc"]
    assert dynamic < static - 0.2
    with pytest.raises(ConfigError, match="train_text"):
        model.evaluate(passage, dynamic=True)


# -- mixing --------------------------------------------------------------------------------------------
def test_mixture_is_fitted_on_the_validation_tail_and_beats_both_there(trained):
    model, text = trained
    train, val = text[:5400], text[5400:]
    mix = fit_mixture(model, train, val, 3)
    logp_rnn = static_logprobs(model, model.vocab.encode(val))
    logp_ng, ctx = mix.ngram.logprobs(val)
    mixed = mix.mix(logp_rnn, logp_ng, ctx)
    # EM climbs from λ = ½ to (near) the best weighting: never worse than the better part
    # beyond the λ clip at 1e-4 (here the n-gram alone is almost exact on this grammar)
    assert -mixed.mean() <= min(-logp_rnn.mean(), -logp_ng.mean()) + 1e-3
    assert np.all((mix.lambdas > 0) & (mix.lambdas < 1))
    p = mix.distribution(np.full(len(model.vocab), 1 / len(model.vocab)), "the c", model.vocab.chars)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_mixture_storage_and_damage(trained, tmp_path):
    model, text = trained
    mix = fit_mixture(model, text[:5400], text[5400:], 3)
    path = str(tmp_path / "ngram.npz")
    mix.save(path)
    back = NgramMixture.load(path, model.vocab.chars)
    assert np.array_equal(back.lambdas, mix.lambdas) and back.val_text == mix.val_text
    assert np.array_equal(back.ngram.logprobs(text[:300])[0], mix.ngram.logprobs(text[:300])[0])
    with pytest.raises(CheckpointError, match="vocabulary"):
        NgramMixture.load(path, model.vocab.chars + "\u2603")
    data = bytearray((tmp_path / "ngram.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.npz").write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        NgramMixture.load(str(tmp_path / "bad.npz"), model.vocab.chars)


def test_a_segment_too_large_for_memory_is_refused_before_anything_runs(trained, monkeypatch, capsys, tmp_path):
    """--dyn-seg is bounded by the text, not the machine: a segment whose forward and
    backward would not fit is refused with the sizes named, before a single pass runs —
    for the gradient statistics (64 streams at once) and for the scored text (one stream),
    in Python and as the CLI's one-line error, exit 2. The default segment still runs."""
    from rnnlab.models import charlm_config
    model, text = trained
    need = charlm_config.memory_needed(model.config, len(model.vocab), model.dtype.itemsize, training=False,
                                       window=64 * scoring.DYN_SEG)
    monkeypatch.setattr(charlm_config, "available_memory", lambda: need)
    ids = model.vocab.encode(text)
    real_pass = scoring._segment_grad
    monkeypatch.setattr(scoring, "_segment_grad", lambda *a: pytest.fail("a pass ran before the check"))
    with pytest.raises(ConfigError, match=r"dyn_seg=5000 \(the gradient statistics .*64 streams × 94 steps"):
        gradient_stats(model, ids, seg_len=5000)
    with pytest.raises(ConfigError, match=r"dyn_seg=5000 \(dynamic evaluation of the text: 1 stream × 5,000 steps"):
        dynamic_logprobs(model, ids[:5001], None, seg_len=5000)
    monkeypatch.setattr(scoring, "_segment_grad", real_pass)
    stats = gradient_stats(model, ids[:3000])                       # the default segment fits
    assert np.isfinite(dynamic_logprobs(model, ids[:1500], stats)).all()
    path = tmp_path / "m.npz"
    model.save(str(path))
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    code, out, err = run(capsys, "eval", str(path), str(tmp_path / "t.txt"), "--dynamic", "--dyn-seg", "5000",
                         "--train-text", str(tmp_path / "t.txt"))
    assert (code, out) == (2, "") and err.count("\n") == 1 and "--dyn-seg 5000 (" in err and "MiB" in err
    assert not os.path.exists(tmp_path / "m-gradstats.npz")


# -- the command line -----------------------------------------------------------------------------------
def test_cli_train_ngram_eval_and_sample_adapted(capsys, tmp_path, monkeypatch):
    text = tmp_path / "t.txt"
    text.write_text(make_text(5000, seed=4), encoding="utf-8")
    out = str(tmp_path / "run")
    code, _, err = run(capsys, "train", str(text), *SMALL, "--max-steps", "30", "--out", out, "--ngram", "3")
    assert code == 0, err
    assert os.path.isfile(os.path.join(out, "ngram.npz"))
    results = {}
    for name, extra in (("static", []), ("mix", ["--mix-ngram"]), ("dynamic", ["--dynamic"]),
                        ("both", ["--dynamic", "--mix-ngram"])):
        code, stdout, err = run(capsys, "eval", out, str(text), "--json", *extra)
        assert code == 0, err
        m = json.loads(stdout)
        assert (m["dynamic"], m["mix_ngram"]) == ("--dynamic" in extra, "--mix-ngram" in extra)
        results[name] = m["bpc"]
    assert results["mix"] < results["static"]
    code, stdout, err = run(capsys, "sample", out, "--prime", "the cat ", "--length", "30", "--seed", "1",
                            "--dynamic", "--mix-ngram")
    assert code == 0, err
    assert stdout.startswith("the cat ") and stdout.endswith("\n") and len(stdout) - 1 == len("the cat ") + 30
    again = run(capsys, "sample", out, "--prime", "the cat ", "--length", "30", "--seed", "1",
                "--dynamic", "--mix-ngram")
    assert again == (0, stdout, "")
    scores = {}
    for name, extra in (("static", []), ("adaptive", ["--adapt"])):
        code, stdout, err = run(capsys, "ngram", str(text), "--order", "4", "--modified", "--json", *extra)
        assert code == 0, err
        scores[name] = json.loads(stdout)
        assert scores[name]["order"] == 4
    assert (scores["adaptive"]["chars"], scores["adaptive"]["oov"]) == (scores["static"]["chars"], scores["static"]["oov"])
    assert scores["static"]["chars"] > 0
    assert scores["adaptive"]["bpc"] != scores["static"]["bpc"]      # --adapt: the cache reads the scored text
    code, _, err = run(capsys, "eval", out, str(text), "--dynamic", "--train-text", str(tmp_path / "nope.txt"))
    assert code == 2 and "nope.txt" in err
    other = tmp_path / "other.txt"                    # another text: statistics of the wrong text, kept
    other.write_text(make_text(5000, seed=5), encoding="utf-8")
    original = text.read_text(encoding="utf-8")
    for extra in (["--train-text", str(other)], []):
        if not extra:                                 # the run's own text, edited since training
            text.write_text(original + "x", encoding="utf-8")
        code, stdout, err = run(capsys, "eval", out, str(other), "--dynamic", *extra)
        assert code == 2 and stdout == "" and err.count("\n") == 1 and "is not the text this model was trained on" in err
    text.write_text(original, encoding="utf-8")
    code, stdout, err = run(capsys, "eval", out, str(text), "--dynamic", "--dyn-lr", "1e300", "--json")
    assert code == 2 and stdout == "" and err.count("\n") == 1 and "--dyn-lr 1e+300 is too large" in err
    for cmd, extra, says in ((["eval", out, str(text)], ["--dyn-lr", "1e-3"], "--dyn-lr applies to dynamic"),
                             (["sample", out], ["--train-text", str(text)], "--train-text applies to dynamic"),
                             (["eval", out, str(text)], ["--dynamic", "--dyn-decay", "2"], "--dyn-decay must be")):
        code, stdout, err = run(capsys, *cmd, *extra)      # an option that would change nothing, or be clamped
        assert code == 2 and stdout == "" and err.count("\n") == 1 and says in err, err
    monkeypatch.setattr(mixing.NgramMixture, "load",        # options and prime refused before the n-gram is read
                        classmethod(lambda *a: pytest.fail("the n-gram was read before the options were checked")))
    for extra, says in ((["--dynamic"], "give --prime"), (["--dyn-lr", "1e-3"], "--dyn-lr applies to dynamic")):
        code, stdout, err = run(capsys, "sample", out, "--mix-ngram", *extra)
        assert code == 2 and stdout == "" and says in err, err
    code, _, err = run(capsys, "train", str(text), *SMALL, "--max-steps", "3", "--out", str(tmp_path / "x"),
                       "--ngram", "50")
    assert code == 2 and "--ngram" in err and not os.path.exists(tmp_path / "x")
    code, _, err = run(capsys, "train", str(text), *SMALL, "--max-steps", "3", "--out", str(tmp_path / "x"),
                       "--ngram", "3", "--val-frac", "0")          # no tail to fit the λs on: they stayed ½
    assert code == 2 and "--val-frac 0 leaves none" in err and not os.path.exists(tmp_path / "x")


@pytest.mark.parametrize("restore", [True, False])
def test_a_step_that_overflows_the_weights_is_an_error_and_leaves_them_trained(trained, restore):
    """--dyn-lr 1e300: the weights overflow to inf/NaN. That is one ConfigError naming the
    step — not NaN scores, a JSON error or an overflow warning — and the trained weights
    come back even where the adapted ones were to be kept (sample --dynamic)."""
    trained64, text = trained
    model = CharLM(trained64.vocab, trained64.config)              # float32, as the CLI trains
    model.load_state_dict(trained64.state_dict())
    before = {k: p.copy() for k, p in model.params.items()}
    stats = gradient_stats(model, model.vocab.encode(text[:3000]))
    for ids in (model.vocab.encode(text[:1500]), model.vocab.encode(text[:12])):   # many segments, and one
        with pytest.raises(ConfigError, match="dyn_lr=1e[+]300 is too large"):
            dynamic_logprobs(model, ids, stats, lr=1e300, restore=restore)
        assert all(np.array_equal(p, before[k]) for k, p in model.params.items())


def test_dynamic_mixing_leaves_the_callers_lambdas_alone(trained):
    model, text = trained
    mix = fit_mixture(model, text[:5400], text[5400:], 3)
    before = mix.lambdas.copy()
    model.evaluate(text[:800], dynamic=True, train_text=text, mixture=mix)
    assert np.array_equal(mix.lambdas, before)


def test_sampling_adapted_to_a_prime_mixes_as_dynamic_evaluation_scores(trained):
    """``sample --dynamic --mix-ngram`` (CharLM.adapt_to): the weights are those dynamic
    evaluation leaves after reading the prime as one stream; the n-gram has read the
    prime, so it predicts the next character exactly as the cache model does at that
    point of the text; the λs are the ones ``evaluate(dynamic=True, mixture=...)`` refits
    from the trained weights (not the adapted ones). The caller's model state aside,
    its mixture is unchanged."""
    trained64, text = trained
    prime, nxt = text[6000 - 400:-1], text[-1]
    mix = fit_mixture(trained64, text[:5400], text[5400:], 2)     # order 2: λs between 0 and 1 here
    lambdas, counts = mix.lambdas.copy(), dict(mix.ngram.counts[2])
    stats = trained64.gradient_stats(text)

    def fresh():
        model = CharLM(trained64.vocab, trained64.config, dtype=np.float64)
        model.load_state_dict(trained64.state_dict())
        return model
    expect_lambdas = mix.adaptive(lambda t: dynamic_logprobs(fresh(), trained64.vocab.encode(t), stats)).lambdas
    reference = fresh()
    dynamic_logprobs(reference, reference.vocab.encode(prime), stats, streams=1, restore=False)

    model = fresh()
    adapted = model.adapt_to(prime, train_text=text, mixture=mix)
    assert all(np.array_equal(p, reference.params[k]) for k, p in model.params.items())
    assert np.array_equal(adapted.lambdas, expect_lambdas) and not np.array_equal(adapted.lambdas, lambdas)
    cache = mix.ngram.logprobs(prime + nxt, adapt=True)[0][-1]
    assert math.log(adapted.ngram.prob(nxt, prime)) == cache
    assert adapted.ngram.context_count(prime) > mix.ngram.context_count(prime)
    assert np.array_equal(mix.lambdas, lambdas) and dict(mix.ngram.counts[2]) == counts
    assert fresh().adapt_to(prime, train_text=text) is None


def test_a_runs_ngram_follows_its_model_and_refuses_another_text(capsys, tmp_path):
    """ngram.npz records what its λs were fitted for. After the run trains on (a resume
    without --ngram) they are refitted for the new best weights, so --mix-ngram scores as
    a mixture fitted now; an ngram.npz counted on another text is refused; a damaged
    record is a damaged file."""
    from rnnlab import checkpoint
    text, other = tmp_path / "t.txt", tmp_path / "o.txt"
    text.write_text(make_text(5000, seed=4), encoding="utf-8")
    other.write_text(make_text(5000, seed=5), encoding="utf-8")          # the same characters
    out, out2 = str(tmp_path / "run"), str(tmp_path / "run2")
    for d, t in ((out, text), (out2, other)):
        code, _, err = run(capsys, "train", str(t), *SMALL, "--max-steps", "20", "--out", d, "--ngram", "3")
        assert code == 0, err
    path = os.path.join(out, "ngram.npz")
    stale = NgramMixture.load(path, CharLM.load(os.path.join(out, "best.npz")).vocab.chars)
    code, _, err = run(capsys, "train", "--resume", out, "--max-steps", "60", "--quiet")
    assert code == 0, err
    model = CharLM.load(os.path.join(out, "best.npz"))
    fresh = NgramMixture.load(path, model.vocab.chars).refit(model)
    assert not np.array_equal(fresh.lambdas, stale.lambdas)
    code, stdout, err = run(capsys, "eval", out, str(text), "--mix-ngram", "--json")
    assert code == 0, err
    assert json.loads(stdout)["bpc"] == model.evaluate(text.read_text(encoding="utf-8"), mixture=fresh)["bpc"]

    os.replace(os.path.join(out2, "ngram.npz"), path)
    code, stdout, err = run(capsys, "eval", out, str(text), "--mix-ngram")
    assert code == 2 and stdout == "" and "another text" in err and err.count("\n") == 1
    for bad in ({"weights": 5}, {"nonsense": "x"}, ["weights"]):
        stale.fitted_for = {}
        stale.save(path)
        with checkpoint.Checkpoint(path) as ck:
            arrays = {n: ck.read(n, ck.members[n][1], (ck.members[n][0],)) for n in ck.members if n != "__meta__"}
        checkpoint.save(path, arrays, {"kind": "NgramMixture", "fitted_for": bad})
        with pytest.raises(CheckpointError, match="fitted_for"):
            NgramMixture.load(path, model.vocab.chars)


def test_a_forged_ngram_file_is_refused_before_its_contents_are_used(trained, tmp_path):
    """Well-formed archives whose contents lie: a count beyond any text's length, code
    points no str can hold (NumPy's own conversion raised SystemError on them), a
    surrogate, a gram shorter than its order or with a character outside the vocabulary,
    a validation "text" of many strings (sized by its header to escape the memory check)."""
    from rnnlab import checkpoint
    model, text = trained
    path = str(tmp_path / "ngram.npz")
    fit_mixture(model, text[:5400], text[5400:], 3).save(path)
    with checkpoint.Checkpoint(path) as ck:
        good = {n: ck.read(n, ck.members[n][1], (ck.members[n][0],)) for n in ck.members if n != "__meta__"}
        meta = ck.meta

    def units(a, change):
        u = a.copy().view(np.uint32)
        change(u)
        return u.view(a.dtype)

    def bump_first(value):
        def change(u):
            u.reshape(-1)[0] = value
        return change
    forged = {
        "huge count": {"ngram/counts3": np.full_like(good["ngram/counts3"], 1 << 62)},
        "code point beyond U+10FFFF": {"ngram/grams2": units(good["ngram/grams2"], bump_first(0x110000))},
        "surrogate in the vocabulary": {"ngram/vocab": units(good["ngram/vocab"], bump_first(0xD800))},
        "gram shorter than its order": {"ngram/grams3": units(good["ngram/grams3"], bump_first(0))},
        "gram outside the vocabulary": {"ngram/grams1": units(good["ngram/grams1"], bump_first(ord("\u2603")))},
        "many validation strings": {"val_text": np.array(["abc"] * 1000)},
    }
    for name, change in forged.items():
        checkpoint.save(path, {**good, **change}, meta)
        with pytest.raises(CheckpointError):
            NgramMixture.load(path, model.vocab.chars)


def _tiny():
    text = "the quick brown fox jumps over the lazy dog. " * 40
    return CharLM(sorted(set(text)), CharLMConfig(hidden_size=16, num_layers=1, dropout=0.0)), text


@pytest.mark.parametrize("call,match", [
    (lambda m, t: m.evaluate_ids([0.7, 1.9, 2.2]), "ids must be a 1-D array of integer"),   # were truncated
    (lambda m, t: m.evaluate_ids(np.zeros((2, 3), int)), "ids must be a 1-D array"),
    (lambda m, t: m.evaluate_ids([1, 2, 3], chunk=-1), "chunk must be a positive integer"),   # mean of empty
    (lambda m, t: m.gradient_stats(t, seg_len=0), "dyn_seg must be a positive integer"),
    (lambda m, t: gradient_stats(m, m.vocab.encode(t), max_steps=0), "max_steps must be a positive integer"),
    (lambda m, t: m.gradient_stats(np.arange(5)), "train_text"),
    (lambda m, t: m.evaluate(t, mixture="x"), "mixture must be an NgramMixture"),
    (lambda m, t: m.evaluate(None), "text must be a str"),
    (lambda m, t: CharLMConfig.for_text("abc"), "n_chars must be an integer"),
    (lambda m, t: CharLMConfig.for_text(10, hiden_size=3), "unknown CharLMConfig field"),
    (lambda m, t: CharLMConfig.for_text(10, hidden_size=-3), "hidden_size must be a positive integer"),
    (lambda m, t: CharLMConfig(num_layers=10 ** 9).validate(), "num_layers must be at most"),   # 60 s, GBs
])
def test_the_scoring_api_refuses_what_it_cannot_use(call, match):
    """A review's findings: each gave a NumPy error, a silent wrong number, or (num_layers)
    per-layer work before the refusal."""
    model, text = _tiny()
    with pytest.raises(ConfigError, match=match):
        call(model, text)


def test_a_mixture_of_another_vocabulary_is_refused_and_length_zero_is_empty():
    model, text = _tiny()
    other = CharLM(sorted(set(text.upper())), CharLMConfig(hidden_size=16, num_layers=1, dropout=0.0))
    mix = fit_mixture(model, text[:1500], text[1500:], 3)
    for call in (lambda: other.generate(5, mixture=mix), lambda: other.evaluate(text.upper(), mixture=mix)):
        with pytest.raises(ConfigError, match="vocabulary is not this model's"):
            call()                        # mixed positions meant other characters, silently
    assert model.generate(0, seed=1) == "" and model.generate(0, prime="the") == ""
    assert len(model.generate(3, seed=1, temperature=np.float32(0.5), top_k=np.int64(2))) == 3   # NumPy scalars


@pytest.mark.parametrize("chars", ["ab.", ".ba"])
def test_sampling_from_a_mixture_follows_the_models_own_character_order(chars):
    """A review found it (2026-12-06): the n-gram's distribution is in sorted order, and
    a model built from the API keeps the order it is given — mixed as they were, ".ba"'s
    samples took the n-gram's probability of another character. With λ at its floor the
    samples are the n-gram's, whatever the model's order."""
    text = "ab." * 200
    model = CharLM(chars, CharLMConfig(hidden_size=8, num_layers=1, dropout=0.0))
    ngram = KneserNeyLM(3).fit(text, vocab=chars)
    mix = NgramMixture(ngram, np.full(len(mixing.EDGES) + 1, 1e-4))
    assert model.generate(12, prime="ab", top_k=1, mixture=mix) == ".ab.ab.ab.ab"


def test_an_interrupted_adaptation_leaves_the_trained_weights(monkeypatch):
    """adapt_to keeps its adapted weights; interrupted half-way it left them half-adapted."""
    model, text = _tiny()
    before = {k: v.copy() for k, v in model.params.items()}
    calls = {"n": 0}
    real = scoring._decayed_step

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt
        return real(*args)
    monkeypatch.setattr(scoring, "_decayed_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.adapt_to(text[:300], train_text=text, dyn_lr=1e-2)
    assert all(np.array_equal(before[k], v) for k, v in model.params.items())


@pytest.mark.parametrize("arg", [dict(train_text="abc"), dict(dyn_lr=1e-3), dict(dyn_decay=0.1), dict(dyn_seg=5),
                                 dict(stats_cache="x.npz")])
def test_static_evaluation_refuses_the_dynamic_options(arg):
    """They changed nothing without dynamic=True, silently (a user asking for a step size
    got static scores)."""
    model, text = _tiny()
    with pytest.raises(ConfigError, match=f"^{next(iter(arg))} applies to dynamic evaluation"):
        model.evaluate(text, **arg)


@pytest.mark.parametrize("dynamic", [False, True])
def test_an_evaluation_between_two_batches_keeps_the_accumulated_gradients(dynamic):
    """Gradient accumulation over two batches with an evaluation between them: the sum is
    the same as without it (evaluation zeroed model.grads), and a backward after the
    evaluation raises instead of pairing its gradient with the evaluation's activations."""
    text = _tiny()[1]                   # no weight drop: no masks drawn per batch
    model = CharLM(sorted(set(text)), CharLMConfig(hidden_size=16, num_layers=1, dropout=0.0, weight_drop=0.0))
    ids = model.vocab.encode(text)
    x, y = ids[:160].reshape(16, 10), ids[1:161].reshape(16, 10)
    model.zero_grad()
    model.loss_and_grad(x, y)
    model.loss_and_grad(x[:, ::-1].copy(), y[:, ::-1].copy())
    want = {k: g.copy() for k, g in model.grads.items()}
    model.zero_grad()
    model.loss_and_grad(x, y)
    model.evaluate(text[:400], **(dict(dynamic=True, train_text=text) if dynamic else {}))
    model.loss_and_grad(x[:, ::-1].copy(), y[:, ::-1].copy())
    assert all(np.array_equal(want[k], g) for k, g in model.grads.items())
    logits, _ = model.forward(x)
    model.evaluate(text[:400], **(dict(dynamic=True, train_text=text) if dynamic else {}))
    with pytest.raises(RuntimeError, match="after an evaluation"):
        model.backward(np.ones_like(logits))


def test_each_adaptation_starts_from_the_trained_weights():
    """adapt_to twice: the second prime adapts the trained weights, not the first
    prime's (it stacked both, and decayed toward the first one's weights); weights
    trained on in between count as the trained ones."""
    model, text = _tiny()
    trained = {k: v.copy() for k, v in model.params.items()}
    model.adapt_to(text[:200], train_text=text, dyn_lr=1e-2)
    model.adapt_to(text[300:500], train_text=text, dyn_lr=1e-2)
    twice = {k: v.copy() for k, v in model.params.items()}
    for bad in (dict(train_text=text, dyn_lr=-1.0), dict(train_text=""), dict(train_text="ab"),
                dict(train_text=text, dyn_lr=1e300)):          # refused or diverged: nothing undone
        with pytest.raises((ConfigError, DataError)):
            model.adapt_to(text[:200], **bad)
        assert all(np.array_equal(twice[k], p) for k, p in model.params.items()), bad
    for k, p in model.params.items():
        p[...] = trained[k]
    model._adapted = None
    model.adapt_to(text[300:500], train_text=text, dyn_lr=1e-2)
    assert all(np.array_equal(twice[k], p) for k, p in model.params.items())
    assert not all(np.array_equal(trained[k], p) for k, p in model.params.items())
    model.params["head.weight"][0, 0] += 0.5             # trained on since: these are the weights now
    changed = {k: v.copy() for k, v in model.params.items()}
    model.adapt_to(text[300:500], train_text=text, dyn_lr=0.0, dyn_decay=0.0)
    assert all(np.array_equal(changed[k], p) for k, p in model.params.items())


def test_gradient_statistics_read_a_bounded_number_of_steps_whatever_the_segment_length(trained, monkeypatch):
    """A bound on segments (100) made segments of 64 read 3.2x the steps of segments of 20:
    tiny Shakespeare's first dynamic evaluation went from 6.7 s to 17.6 s. The bound is on
    steps: the segments that start in the first max_steps steps, batched and one-stream."""
    model, text = trained
    ids = model.vocab.encode(text * 4)                  # 24k characters: 750 steps at 32 streams
    lengths = []
    real = scoring._segment_grad

    def counted(model, inp, *args):
        lengths.append(inp.shape[0])
        return real(model, inp, *args)
    monkeypatch.setattr(scoring, "_segment_grad", counted)
    for seg in (20, 64):
        lengths.clear()
        gradient_stats(model, ids, seg_len=seg, wide=32, max_steps=300)
        assert len(lengths) == 2 * -(-300 // seg) and sum(lengths) <= 2 * (300 + seg), seg
