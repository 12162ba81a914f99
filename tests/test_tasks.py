"""Each task on a small seeded budget must learn: beat its baseline or chance by a
stated margin. Bad inputs of forecast give their errors."""
import json
import os

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.data.series import fill_missing, load_series, make_windows, read_csv_column
from rnnlab.errors import DataError, RnnlabError
from rnnlab.tasks import public, run_task


def test_detector_finds_the_word():
    r = run_task("detect", model="rnn", max_steps=600, seed=0)
    m = r["metrics"]
    assert m["rnn"]["f1"] > 0.9, m                          # chance F1 is about 0.02
    assert m["rnn"]["f1"] > m["chance"]["f1"] + 0.8


def test_detector_works_for_another_word_length():
    r = run_task("detect", model="rnn", word="rnn", max_steps=400, seed=1)
    assert r["metrics"]["rnn"]["f1"] > 0.9, r["metrics"]


def test_forecaster_beats_last_value_on_sunspots():
    r = run_task("forecast", model="lstm", series="sunspots", max_steps=300, seed=0)
    m = r["metrics"]
    assert m["lstm"]["rmse"] < 0.8 * m["last_value"]["rmse"], m
    t = run_task("forecast", model="tdnn", series="sunspots", max_steps=300, seed=0)["metrics"]
    assert t["tdnn"]["rmse"] < 0.8 * t["last_value"]["rmse"], t


def test_classifier_beats_chance_by_far():
    pytest.importorskip("sklearn", reason="the digits ship inside scikit-learn (the tasks extra)")
    r = run_task("classify", model="gru", max_steps=150, seed=0)
    assert r["metrics"]["gru"]["accuracy"] > 0.8, r["metrics"]      # chance: 0.1
    assert r["metrics"]["mlp"]["accuracy"] > 0.8


def test_lstm_solves_the_adding_problem_at_t20():
    r = run_task("adding", model="lstm", length=20, max_steps=800, seed=0)
    m = r["metrics"]
    assert m["lstm"]["success_rate"] > 0.5, m
    assert m["lstm"]["success_rate"] > m["baseline"]["success_rate"] + 0.4
    assert r["training"]["sequences"] == 800 * 32


def test_temporal_order_beats_chance():
    # the problem has a plateau whose length varies with rounding and seed; the GRU at
    # 1000 steps left it on every seed and kernel tried (the LSTM needs ~2500)
    r = run_task("order", model="gru", length=20, max_steps=1000, seed=0)
    assert r["metrics"]["gru"]["success_rate"] > 0.9, r["metrics"]     # chance: 0.25


def test_gradflow_splits_its_time_limit_among_its_trainings(monkeypatch):
    """--time-limit is the task's: four models and the exploding RNN twice share it (before,
    each of the six trainings took the whole limit, 6x what was asked)."""
    from rnnlab.tasks import gradflow
    limits = []

    def fake_fit(net, batches, loss, train, **kw):
        limits.append(train.time_limit)
        return {"losses": [1.0], "steps": 1, "seconds": 0.0, "grad_norms": [1.0]}
    monkeypatch.setattr(gradflow, "fit", fake_fit)
    run_task("gradflow", model="all", length=10, time_limit=6.0)
    assert limits == [1.0] * 6
    limits.clear()
    run_task("gradflow", model="gru", length=10, time_limit=6.0)
    assert limits == [2.0] * 3


def test_gradflow_text_reports_the_exploding_experiment_too(capsys):
    assert main(["task", "gradflow", "--max-steps", "3", "--length", "10"]) == 0
    out = capsys.readouterr().out
    assert "exploding: RNN with recurrent spectral radius 3" in out
    assert all(any(line.split()[:1] == [name] and "max grad norm" in line for line in out.splitlines())
               for name in ("unclipped", "clipped"))


def test_gradflow_shows_vanishing_and_exploding_gradients():
    r = run_task("gradflow", model="all", length=40, max_steps=60, seed=0)
    init = {k: v["init"] for k, v in r["table"].items()}
    assert len(init["rnn"]) == 41
    # vanishing: the simple RNN's gradient reaching the first step is a tiny fraction of
    # the last's, and so is the LSTM's with torch's init (forget gate ≈ σ(0) = ½) ...
    assert init["rnn"][0] < 1e-6 * init["rnn"][-1]
    assert init["lstm"][0] < 1e-6 * init["lstm"][-1]
    # ... while a forget-gate bias of 1 keeps orders of magnitude more of it
    assert init["lstm_fb1"][0] / init["lstm_fb1"][-1] > 1e3 * init["lstm"][0] / init["lstm"][-1]
    # after training the gated nets carry more gradient to the first step than the RNN
    trained = {k: v["trained"][0] / v["trained"][-1] for k, v in r["table"].items()}
    assert trained["gru"] > 100 * trained["rnn"]
    # exploding: with spectral radius 3 the gradient grows backwards in time ...
    ex = r["exploding"]
    assert ex["state_grad_norms_init"][0] > 100 * ex["state_grad_norms_init"][-1]
    # ... and clipping bounds the update that such a gradient would cause
    assert ex["unclipped"]["max_grad_norm"] > 100
    assert ex["unclipped"]["first_update_norm"] > 100 * ex["clipped"]["first_update_norm"]
    assert ex["clipped"]["first_update_norm"] <= 0.05 + 1e-12


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_gradflow_norms_are_per_example_and_batch_averaged(kind):
    """‖∂E_T/∂h_t‖ of a batch is the mean of each example's own, measured alone (so the
    batch size does not scale it); at t = T it is ‖(y − d)·W_head‖ per example."""
    from rnnlab.data.synthetic import adding_problem
    from rnnlab.models.seq import SeqNet
    from rnnlab.tasks.gradflow import state_gradient_norms
    net = SeqNet(kind, 2, 8, 1, seed=0)
    x, y = adding_problem(np.random.default_rng(1), 5, 12)
    batch = state_gradient_norms(net, x, y)
    alone = np.mean([state_gradient_norms(net, x[b:b + 1], y[b:b + 1]) for b in range(5)], axis=0)
    assert np.allclose(batch, alone, rtol=1e-10, atol=0)
    last = np.linalg.norm((net.forward(x) - y) @ net.head.params["weight"], axis=-1).mean()
    assert batch[-1] == pytest.approx(last, rel=1e-10)


def test_univariate_two_weight_rnn():
    r = run_task("univariate", series="sunspots", max_steps=300, seed=0)
    assert np.isfinite(r["w"]) and np.isfinite(r["u"])
    assert r["metrics"]["rnn"]["corr_h_ewma"] > 0.9
    assert r["metrics"]["rnn"]["mse"] < r["metrics"]["last_value"]["mse"]


# -- forecast inputs -------------------------------------------------------------------------------
def test_bundled_series_load():
    s = load_series("sunspots")
    assert s.shape == (309,) and s[0] == 5.0 and not np.isnan(s).any()
    c = load_series("co2")
    assert c.shape == (2284,) and np.isnan(c).sum() == 59


def test_fill_policies():
    v = np.array([1.0, np.nan, 3.0, np.nan, np.nan, 6.0])
    assert np.allclose(fill_missing(v, "ffill"), [1, 1, 3, 3, 3, 6])
    assert np.allclose(fill_missing(v, "interpolate"), [1, 2, 3, 4, 5, 6])
    assert np.allclose(fill_missing(v, "drop"), [1, 3, 6])
    with pytest.raises(DataError, match="3 missing value.*position 1.*fill="):
        fill_missing(v, "none")
    with pytest.raises(DataError, match="start of the series"):
        fill_missing(np.array([np.nan, 1.0]), "ffill")


def test_windows():
    X, y, idx = make_windows(np.arange(10.0), window=3, horizon=2)
    assert X.shape == (6, 3) and np.array_equal(X[0], [0, 1, 2]) and y[0] == 4 and idx[-1] == 9
    with pytest.raises(DataError, match="need at least"):
        make_windows(np.arange(4.0), window=3, horizon=2)


@pytest.fixture
def csv_files(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("t,value\n" + "".join(f"{i},{np.sin(i / 3):.5f}\n" for i in range(80)))
    bad = tmp_path / "bad.csv"
    bad.write_text("t,value\n1,0.5\n2,oops\n3,0.7\n")
    short = tmp_path / "short.csv"
    short.write_text("t,value\n1,0.5\n2,0.6\n")
    gaps = tmp_path / "gaps.csv"
    gaps.write_text("t,value\n1,0.5\n2,\n3,0.7\n")
    latin = tmp_path / "latin.csv"                   # "déjà" in Latin-1: not UTF-8
    latin.write_bytes("t,value,note\n".encode() + b"".join(f"{i},{i / 7:.4f},d\xe9j\xe0\n".encode("latin-1")
                                                            for i in range(60)))
    return {"good": good, "bad": bad, "short": short, "gaps": gaps, "latin": latin}


def test_read_csv_column_errors(csv_files):
    assert read_csv_column(csv_files["good"], "value").shape == (80,)
    with pytest.raises(DataError, match="row 3.*'oops' is not a number"):
        read_csv_column(csv_files["bad"], "value")
    with pytest.raises(DataError, match="no column 'v'"):
        read_csv_column(csv_files["good"], "v")
    # a review's (2026-12-06): a duplicated column name took the last silently; "1_000" and other
    # scripts' digits were numbers; "NAN" and "-nan" were errors where "nan" was missing
    odd = csv_files["good"].parent / "odd.csv"
    odd.write_text("v,v\n1,2\n")
    with pytest.raises(DataError, match="2 columns are named 'v'"):
        read_csv_column(odd, "v")
    for cell in ("1_000", "\u0661\u0662"):
        odd.write_text(f"v\n1\n{cell}\n", encoding="utf-8")
        with pytest.raises(DataError, match="row 3"):
            read_csv_column(odd, "v")
    odd.write_text("v\n1\nNAN\n-nan\nNa\n2\n")
    assert np.isnan(read_csv_column(odd, "v")[1:4]).all()


@pytest.mark.parametrize("argv,match", [
    (["--series", "co2"], "59 missing value(s)"),
    (["--csv", "{bad}", "--column", "value"], "'oops' is not a number"),
    (["--csv", "{short}", "--column", "value"], "--window 10 and --horizon 1 need at least 11"),
    (["--csv", "{gaps}", "--column", "value"], "missing value"),
    (["--csv", "{good}"], "--csv needs --column"),
    (["--csv", "{good}", "--column", "value", "--word", "abc"], "does not apply"),
    (["--csv", "{missing}", "--column", "value"], "no such file"),
    # a review's findings: options silently ignored, the wrong error, one found only after training
    (["--column", "value"], "--column value applies to a CSV file: give --csv too"),
    (["--series", "co2", "--csv", "{good}", "--column", "value"], "--series and --csv are two sources"),
    (["--window", "1000000"], "the series has 309 values"),           # not "the task needs 168 GiB"
    (["--test-frac", "0.999"], "too short for --test-frac 0.999"),
    (["--plot", "{missing}/f.png"], "--plot: cannot write into"),
    (["--encoding", "latin-1"], "--encoding latin-1 applies to a CSV file"),
    (["--csv", "{latin}", "--column", "value"], "give it (--encoding NAME)"),      # task has it now
])
def test_forecast_bad_inputs_exit_2(capsys, csv_files, tmp_path, argv, match):
    paths = {k: str(v) for k, v in csv_files.items()}
    paths["missing"] = str(tmp_path / "nope.csv")
    argv = [a.format(**paths) for a in argv]
    code = main(["task", "forecast", "--max-steps", "5", *argv])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and match in err, err


def test_forecast_reads_a_csv_in_its_encoding(capsys, csv_files):
    code = main(["task", "forecast", "--csv", str(csv_files["latin"]), "--column", "value", "--encoding", "latin-1",
                 "--window", "5", "--max-steps", "3", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["metrics"]


def test_task_cli_json_and_plot(capsys, tmp_path, csv_files):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (the plot extra)")
    png = tmp_path / "f.png"
    code = main(["task", "forecast", "--csv", str(csv_files["good"]), "--column", "value", "--window", "5",
                 "--model", "gru", "--max-steps", "100", "--json", "--plot", str(png)])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r["metrics"]) == {"gru", "linear_ar", "last_value"}
    assert r["metrics"]["gru"]["rmse"] < r["metrics"]["last_value"]["rmse"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_a_step_and_plot_over_a_link(capsys, tmp_path):
    """A review's (2026-12-06): a time limit that ended before the first step made --plot a
    traceback (TypeError, "a cannot be empty"); a link named as --plot was written through
    (to /dev/null, or to whatever it points at)."""
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (the plot extra)")
    for task in ("gradflow", "adding"):
        assert main(["task", task, "--time-limit", "1e-9", "--plot", str(tmp_path / "g.png")]) == 0
        assert "no plot" in capsys.readouterr().out and not (tmp_path / "g.png").exists()
    assert main(["task", "adding", "--time-limit", "1e-9", "--plot", str(tmp_path / "g.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plot"] is None                   # said in JSON too
    from rnnlab.tasks import _steps                                              # one training of several
    assert not all(_steps({"a": {"steps": 5}, "exploding": {"unclipped": {"steps": 3}, "clipped": {"steps": 0}}}))
    target = tmp_path / "mine.png"
    target.write_bytes(b"my picture")
    os.symlink(target, tmp_path / "link.png")
    assert main(["task", "adding", "--max-steps", "3", "--plot", str(tmp_path / "link.png")]) == 2
    assert "not a plain file" in capsys.readouterr().err and target.read_bytes() == b"my picture"


def test_tasks_are_reproducible():
    a = public(run_task("forecast", model="rnn", max_steps=30, seed=3))
    b = public(run_task("forecast", model="rnn", max_steps=30, seed=3))
    assert a["metrics"] == b["metrics"]


def test_forecast_memory_check_lets_a_long_csv_through(tmp_path, monkeypatch):
    """The check counts what the network reads at once (a batch, or the test windows), not
    every window of the series: 100,000 rows (~0.7 GB at its peak) pass with 2 GiB free
    (the first estimate said 5.3 GiB), while a window too wide for memory is still refused."""
    import rnnlab.models.seq as seq
    from rnnlab.errors import ConfigError
    monkeypatch.setattr(seq, "available_memory", lambda: 2 << 30)
    csv = tmp_path / "long.csv"
    values = np.random.default_rng(0).standard_normal(100_000).cumsum()
    csv.write_text("v\n" + "\n".join(f"{x:.4f}" for x in values) + "\n", encoding="utf-8")
    r = run_task("forecast", csv=str(csv), column="v", max_steps=2)
    assert r["metrics"]["lstm"]["rmse"] > 0
    with pytest.raises(ConfigError, match="window=20000"):
        run_task("forecast", csv=str(csv), column="v", window=20_000, max_steps=2)


def test_a_csv_with_a_byte_order_mark_or_spaced_header_reads_by_name(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM; "a, b" names its second column b."""
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfa, b\n1,2\n3,4\n")
    assert read_csv_column(path, "a").tolist() == [1.0, 3.0]
    assert read_csv_column(path, "b").tolist() == [2.0, 4.0]


@pytest.mark.parametrize("task,options,match", [
    ("forecast", dict(window=2.5), "window must be a positive integer"),
    ("forecast", dict(horizon=0), "horizon must be a positive integer"),
    ("detect", dict(batch_size=0), "batch_size must be a positive integer"),
    ("detect", dict(threshold=None), "threshold must be a number in"),
    ("detect", dict(word="a" * 65), "word must be at most 64 letters"),
    ("detect", dict(word="héllo"), "word must be lowercase letters a-z"),   # the stream has a-z only
    ("adding", dict(length=2.5), "length must be a positive integer"),
    ("classify", dict(test_frac=1.0), "test_frac must be a number in"),
    ("classify", dict(test_frac=1e-5), "leaves 0 of the 1797 digits"),
    ("gradflow", dict(explode_radius=float("nan")), "explode_radius must be a finite number"),
    ("detect", dict(model="all"), "model rnn, lstm or gru"),           # listed tdnn, which detect refuses
    ("order", dict(model="all"), "model rnn, lstm or gru"),
])
def test_task_api_arguments_are_checked_before_training(task, options, match):
    """Each gave a traceback (IndexError, ValueError, TypeError), or trained and then
    failed, or ran to a NaN result."""
    with pytest.raises(RnnlabError, match=match):
        run_task(task, max_steps=1, **options)


def test_gradflow_json_is_strict_when_gradients_overflow(capsys):
    """An unclipped RNN on T = 1500 overflows float64: its norms are null in strict JSON
    (the output had Infinity and NaN), the overflowed steps are counted, no first update is
    made up, and no NumPy warning reaches stderr."""
    assert main(["task", "gradflow", "--model", "rnn", "--max-steps", "2", "--length", "1500",
                 "--hidden-size", "256", "--json"]) == 0
    out, err = capsys.readouterr()
    r = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    unclipped = r["exploding"]["unclipped"]
    assert unclipped["overflowed_steps"] >= 1 and None in unclipped["grad_norms"]
    assert unclipped["first_update_norm"] is None
    assert "Warning" not in err
