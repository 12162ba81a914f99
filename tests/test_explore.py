"""``rnnlab explore`` without a browser: the analysis (features, correlations, saturation,
surprisal), the page's data and size, the default text, errors; and the check behind the
in-page sampler's float64 arithmetic — float64 greedy decoding equals the float32 CLI's
on these models. The page in a real browser: test_explore_browser.py."""
import base64
import json
import math
import os
import re

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.data.text import Vocab
from rnnlab.explore import build_page, explore
from rnnlab.explore.analysis import analyse, correlations, run_model, saturation, text_features
from rnnlab.explore.page import dequantise, quantise, read_metrics
from rnnlab.models import CharLM, CharLMConfig
from test_charlm_cli import make_text

TEXT = make_text(3000).replace("the cat", '"the cat"').replace("seeds.", "(seeds).")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def page_json(html):
    blob = re.search(r'<script type="application/json" id="rnnlab-data">(.*?)</script>', html, re.S).group(1)
    return json.loads(blob)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("explore")
    (d / "corpus.txt").write_text(TEXT, encoding="utf-8")
    assert main(["train", str(d / "corpus.txt"), "--model", "lstm", "--hidden-size", "16", "--seq-len", "16",
                 "--batch-size", "8",
                 "--max-steps", "20", "--eval-every", "10", "--out", str(d / "run"), "--quiet"]) == 0
    return d


def test_text_features():
    f = text_features('a "b" (c [d])\n  x')
    assert f["in_double_quotes"].tolist()[:6] == [0, 0, 1, 1, 1, 0]
    assert f["bracket_depth"].tolist()[6:13] == [1, 1, 1, 2, 2, 1, 0]
    assert f["line_position"].tolist()[-4:] == [0, 1, 2, 3]
    assert f["after_newline"].tolist()[13] == 1 and f["after_space"].tolist()[1] == 1
    g = text_features("don't 'x' y")
    assert g["in_single_quotes"].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0]   # the apostrophe is not a quote


def test_correlations_and_saturation():
    x = np.array([[0.0, 1.0, 5.0], [1.0, 0.0, 5.0], [2.0, -1.0, 5.0]])
    r = correlations(x, {"up": np.array([0.0, 1.0, 2.0]), "flat": np.zeros(3)})
    assert r["up"] == pytest.approx([1.0, -1.0, 0.0]) and r["flat"].tolist() == [0, 0, 0]
    left, right = saturation(np.array([[0.05, 0.5], [0.95, 0.5], [0.02, 0.99], [0.5, 0.5]]))
    assert left.tolist() == [0.5, 0.0] and right.tolist() == [0.25, 0.25]


@pytest.mark.parametrize("bits", [4, 8])
def test_quantisation_round_trip(bits, rng):
    x = rng.uniform(-3, 3, (7, 5)) * np.array([1, 0.1, 10, 1, 0.5])
    scale, raw = quantise(x, bits)
    m = 127 if bits == 8 else 7
    assert np.abs(dequantise(scale, raw, 7, bits) - x).max() <= (scale / m / 2).max() * 1.0001


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn"])
def test_analysis_matches_the_model(mode):
    model = CharLM(Vocab.from_text(TEXT), CharLMConfig(model=mode, hidden_size=8, num_layers=2, seed=1))
    text = TEXT[:300]
    layers, logp = run_model(model, model.vocab.encode(text))
    model.eval()                                          # no dropout
    logits, _ = model.forward(model.vocab.encode(text)[:, None])           # (T, 1, V)
    z = logits[:, 0].astype(np.float64)
    ref = z - z.max(1, keepdims=True)
    ref -= np.log(np.exp(ref).sum(1, keepdims=True))
    assert np.abs(logp - ref).max() < 1e-4
    assert layers[-1]["h"].shape == (300, 8)
    res = analyse(model, text)
    ids = model.vocab.encode(text)
    nats = -np.mean(logp[np.arange(299), ids[1:]])
    assert res["mean_bits"] == pytest.approx(nats / math.log(2))
    assert nats == pytest.approx(model.evaluate_ids(ids, streams=1), rel=1e-5)
    assert (res["top"][:, 0] == logp[:-1].argmax(1)).all()
    gates = {"lstm": {"input", "forget", "output"}, "gru": {"reset", "update"}, "rnn": set()}[mode]
    assert set(res["saturation"][1]) == gates
    for name, (left, right) in res["saturation"][0].items():
        assert left.shape == (8,) and ((0 <= left + right) & (left + right <= 1)).all()
    assert ((0, "c") in res["corr"]) == (mode == "lstm") and (1, "h") in res["corr"]


def test_page_is_self_contained_and_holds_what_the_panels_need(run_dir):
    info = explore(str(run_dir / "run"))
    out = str(run_dir / "run" / "explore.html")
    assert info["out"] == out and os.path.isfile(out)
    html = read(out)
    for panel in ("curves", "surprisal", "units", "gates", "sample"):
        assert f'data-panel="{panel}"' in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)     # nothing fetched
    assert "<link" not in html.replace('<link rel="icon" href="data:,">', "")
    data = page_json(html)
    val = TEXT[len(TEXT) - round(len(TEXT) * 0.1):]
    assert data["text"] == val and info["source"].startswith("the validation tail of ")
    assert [r["step"] for r in data["metrics"]] == [10, 20]
    model = CharLM.load(str(run_dir / "run" / "best.npz"))
    for name, p in model.params.items():                  # the weights, exactly
        shape, b64 = data["model"]["params"][name]
        got = np.frombuffer(base64.b64decode(b64), "<f4").reshape(shape)
        assert np.array_equal(got, p), name
    assert len(data["acts"]["series"]) == 4 and data["acts"]["bits"] == 8


def test_text_argument_max_chars_and_oov(run_dir, capsys):
    other = run_dir / "other.txt"
    other.write_text("the cat€ sees fish. " * 400, encoding="utf-8")
    out = str(run_dir / "other.html")
    code = main(["explore", str(run_dir / "run" / "best.npz"), str(other), "--out", out,
                 "--max-chars", "1000", "--json"])
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["chars"] == 1000 and info["oov"] == 400 and info["out"] == out
    assert page_json(read(out))["text"] == ("the cat sees fish. " * 60)[:1000]


def test_errors_are_one_line(run_dir, capsys, tmp_path):
    model = CharLM(Vocab.from_text(TEXT), CharLMConfig(hidden_size=4, num_layers=1))
    model.save(str(tmp_path / "m.npz"))               # no text_source in its metadata
    for argv, match in [(["explore", str(tmp_path / "m.npz")], "pass TEXT"),
                        (["explore", str(tmp_path / "nope")], "no such run directory"),
                        (["explore", str(run_dir / "run"), "--max-chars", "1"], "--max-chars"),
                        # a review's 2,000,000 ran 25 s and then failed allocating 954 MiB (a traceback)
                        (["explore", str(run_dir / "run"), "--max-chars", "2000000"], "from 2 to 50,000")]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("rnnlab: error:") and match in err and len(err.strip().splitlines()) == 1


def test_out_never_replaces_anything_but_a_page(run_dir, capsys, tmp_path):
    """--out is checked before the analysis: a checkpoint, a directory, another kind of
    file or a missing directory is refused in one line, and nothing is left behind."""
    run = run_dir / "run"
    best = (run / "best.npz").read_bytes()
    (tmp_path / "a-dir.html").mkdir()
    for out, match in [(run / "best.npz", "ending in .html"), (tmp_path, "ending in .html"),
                       (tmp_path / "page.txt", "ending in .html"), (tmp_path / "a-dir.html", "not a plain file"),
                       (tmp_path / "nope" / "p.html", "no such directory")]:
        assert main(["explore", str(run), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert match in err and "--out" in err and len(err.strip().splitlines()) == 1, err
    assert (run / "best.npz").read_bytes() == best
    assert sorted(os.listdir(tmp_path)) == ["a-dir.html"] and not os.listdir(tmp_path / "a-dir.html")
    assert main(["explore", str(run), "--out", str(tmp_path / "p.html")]) == 0
    assert sorted(os.listdir(tmp_path)) == ["a-dir.html", "p.html"]            # no temporary file left
    trained_on = tmp_path / "trained_on.html"        # the training text as --out, TEXT not given: replaced too
    trained_on.write_text(TEXT, encoding="utf-8")
    assert main(["train", str(trained_on), "--hidden-size", "4", "--num-layers", "1", "--max-steps", "2", "--quiet",
                 "--out", str(tmp_path / "r2")]) == 0
    capsys.readouterr()
    assert main(["explore", str(tmp_path / "r2"), "--out", str(trained_on)]) == 2
    assert "the training text" in capsys.readouterr().err and trained_on.read_text(encoding="utf-8") == TEXT
    shown = tmp_path / "shown.html"                  # TEXT given as --out: the page replaced the text
    shown.write_text(TEXT, encoding="utf-8")
    assert main(["explore", str(run), str(shown), "--out", str(shown)]) == 2
    assert "would replace it" in capsys.readouterr().err and shown.read_text(encoding="utf-8") == TEXT


def test_a_path_that_is_not_utf8_is_shown_not_a_crash(run_dir, capsys, tmp_path):
    """A file name from another system (byte 0xff) reaches Python as a lone surrogate,
    which the page cannot encode: it is shown with U+FFFD instead of a traceback."""
    odd = os.path.join(os.fsencode(tmp_path), b"text\xff.txt")
    try:
        with open(odd, "wb") as f:
            f.write(TEXT.encode("utf-8"))
    except OSError:
        pytest.skip("this file system refuses a file name that is not UTF-8")
    out = str(tmp_path / "p.html")
    assert main(["explore", str(run_dir / "run"), os.fsdecode(odd), "--out", out]) == 0, capsys.readouterr().err
    assert page_json(read(out))["source"].endswith("text\ufffd.txt")


def test_read_metrics_keeps_the_last_run(tmp_path):
    p = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "train_loss": 1.0, "val_bpc": 2.0, "elapsed": s / 10} for s in (10, 20, 10)]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n", encoding="utf-8")
    got = read_metrics(str(p))
    assert [r["step"] for r in got] == [10] and got[0]["train_bits"] == pytest.approx(1 / math.log(2), abs=1e-4)
    assert read_metrics(str(tmp_path / "absent.jsonl")) == []


def test_read_metrics_skips_what_is_not_a_record_and_stays_bounded(tmp_path, monkeypatch):
    """Bytes that are not UTF-8, a step of 1e400 or 10**400, a loss beyond float's range, a
    list, a boolean step: each was a traceback in ``rnnlab explore`` or NaN in its page, or
    is now simply skipped; a file of many records is thinned to MAX_ROWS points."""
    from rnnlab.explore import page
    p = tmp_path / "metrics.jsonl"
    p.write_bytes(b'{"step": 1, "train_loss": 1.0}\n\xff\xfe{"step": 2}\n{"step": 1e400}\n{"step": 1' + b"0" * 400
                  + b'}\n{"step": 3, "train_loss": 1e999, "elapsed": 1' + b"0" * 400 + b'}\n[1, 2]\n{"step": true}\n'
                  b'{"step": 4, "val_bpc": 2.5}\n')
    got = read_metrics(str(p))
    assert [r["step"] for r in got] == [1, 3, 4]
    assert got[1]["train_bits"] is None and got[1]["elapsed"] is None and got[2]["val_bpc"] == 2.5
    monkeypatch.setattr(page, "MAX_ROWS", 100)
    for n in (1000, 1001, 1023):                  # the latest record stays the curve's end, whatever is thinned
        p.write_text("".join(json.dumps({"step": s, "val_bpc": 1.0}) + "\n" for s in range(1, n + 1)),
                     encoding="utf-8")
        steps = [r["step"] for r in read_metrics(str(p))]
        assert 50 <= len(steps) <= 100 and steps == sorted(steps) and steps[-1] == n, (n, len(steps), steps[-3:])


def test_a_2x256_lstm_page_stays_under_10_mb():
    text = make_text(20000)
    model = CharLM(Vocab(sorted(set(text) | set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789()[]{}<>=+-*/_:;,'\"#@!?%&|\\^~`$"))),
                   CharLMConfig(model="lstm", hidden_size=256, num_layers=2))
    html, info = build_page(model, text)
    assert info["chars"] == 5000 and info["activation_bits"] == 4
    assert info["bytes"] < 10_000_000, info


@pytest.mark.parametrize("mode,layers", [("lstm", 2), ("gru", 2), ("rnn", 1)])
def test_float64_greedy_decoding_equals_the_float32_models(mode, layers):
    """The page samples in float64; the CLI in float32. Their greedy texts agree, 300
    characters long, for weights of a trained model's size."""
    model = CharLM(Vocab.from_text(TEXT), CharLMConfig(model=mode, hidden_size=16, num_layers=layers, seed=3))
    rng = np.random.default_rng(0)
    for p in model.params.values():                   # weights of a trained model's size
        p += rng.normal(0, 0.5, p.shape).astype(p.dtype)
    wide = CharLM(model.vocab, model.config, dtype=np.float64)
    wide.load_state_dict({k: v.astype(np.float64) for k, v in model.state_dict().items()})
    a = model.generate(300, temperature=0, prime="the c")
    b = wide.generate(300, temperature=0, prime="the c")
    assert a == b


def test_text_that_looks_like_markup_stays_data():
    text = 'a "</script><!-- {{JS}} & <b>x</b>' * 3
    model = CharLM(Vocab.from_text(text), CharLMConfig(hidden_size=4, num_layers=1), dtype=np.float64)
    html, _ = build_page(model, text)
    assert html.count("</script>") == 2                 # the data's and the script's own
    data = page_json(html)
    assert data["text"] == text and data["model"]["dtype"] == "float64"
    shape, b64 = data["model"]["params"]["head.weight"]
    assert np.array_equal(np.frombuffer(base64.b64decode(b64), "<f8").reshape(shape), model.params["head.weight"])
