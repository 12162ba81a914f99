"""The explorer page in a real headless Chromium, driven by selenium: it loads with no
console error, every panel is there, choosing another unit recolours the text, hovering
over a character shows the model's predictions, and the in-page greedy sample equals
``rnnlab sample --temperature 0`` for an LSTM, a GRU and an Elman RNN.

Needs Debian's ``chromium`` and ``chromium-driver`` and selenium (the test extra). Where
they are missing the tests skip, saying why — unless RNNLAB_REQUIRE_BROWSER=1 (set by
.ci/run), where they fail instead."""
import os
import shutil
import tempfile
import time

import pytest

from rnnlab.cli import main
from test_charlm_cli import make_text

TEXT = make_text(4000).replace("the cat", '"the cat"').replace("seeds.", "(seeds).")
MODELS = {"lstm": ["--model", "lstm", "--num-layers", "2"], "gru": ["--model", "gru", "--num-layers", "2"],
          "rnn": ["--model", "rnn", "--num-layers", "1"]}
CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1000"]


def _missing():
    """Why no browser can be driven here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'rnnlab[test]')"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "no Chromium (apt-get install chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "no chromedriver (apt-get install chromium-driver)"
    return None


def _need_browser():
    why = _missing()
    if why and os.environ.get("RNNLAB_REQUIRE_BROWSER") == "1":
        pytest.fail("RNNLAB_REQUIRE_BROWSER=1 but " + why)
    if why:
        pytest.skip(why)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """One tiny run and page per model type, trained a few steps."""
    _need_browser()
    d = tmp_path_factory.mktemp("browser")
    corpus = d / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    out = {}
    for name, opts in MODELS.items():
        run = str(d / name)
        assert main(["train", str(corpus), *opts, "--hidden-size", "16", "--seq-len", "16", "--batch-size", "8",
                     "--lr", "0.01", "--max-steps", "40", "--eval-every", "10", "--out", run, "--quiet"]) == 0
        assert main(["explore", run]) == 0
        out[name] = (run, os.path.join(run, "explore.html"))
    return out


@pytest.fixture(scope="module")
def browser(pages):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    profile = tempfile.mkdtemp(prefix="rnnlab-chromium-")
    for flag in CHROME_FLAGS + [f"--user-data-dir={profile}"]:
        opts.add_argument(flag)
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, path):
    driver.get("file://" + os.path.abspath(path))
    wait(driver, lambda: driver.execute_script("return document.body.dataset.ready") == "1")


def wait(driver, cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def css(driver, selector):
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, selector)


def greedy_in_page(browser, prime, length):
    """The open page's sampler run greedily (temperature 0) after ``prime``: its text. The
    prime is set as the box's value (chromedriver types only characters of the BMP)."""
    browser.execute_script("arguments[0].value = arguments[1]", css(browser, '[data-role="prime"]')[0], prime)
    for name, value in (("temperature", "0"), ("length", str(length))):
        field = css(browser, f'[data-role="{name}"]')[0]
        field.clear()
        field.send_keys(value)
    css(browser, '[data-role="generate"]')[0].click()
    out = css(browser, '[data-role="sample-output"]')[0]
    wait(browser, lambda: out.get_attribute("data-state") == "done")
    return out.get_property("textContent")


def test_page_loads_without_console_errors_and_has_every_panel(browser, pages):
    browser.get_log("browser")                    # drop what came before
    open_page(browser, pages["lstm"][1])
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    for panel in ("curves", "surprisal", "units", "gates", "sample"):
        assert len(css(browser, f'[data-panel="{panel}"]')) == 1, panel
    n = len(browser.execute_script("return JSON.parse(document.getElementById('rnnlab-data').textContent).text"))
    for panel in ("surprisal", "units"):
        assert browser.execute_script(f"return document.querySelectorAll('[data-panel=\"{panel}\"] "
                                      f"[data-char-index]').length") == n
    assert len(css(browser, '[data-panel="curves"] polyline')) == 2
    css(browser, '[data-role="x-axis"][value="elapsed"]')[0].click()        # against time
    assert len(css(browser, '[data-panel="curves"] polyline')) == 2
    assert "time (elapsed)" in css(browser, '[data-role="curves-chart"]')[0].text
    assert len(css(browser, '[data-panel="gates"] figure')) == 6            # 2 layers × i, f, o
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_choosing_another_unit_recolours_the_text(browser, pages):
    from selenium.webdriver.support.ui import Select
    open_page(browser, pages["lstm"][1])
    colours = ("return Array.from(document.querySelectorAll('[data-panel=\"units\"] [data-char-index]'))"
               ".slice(0, 200).map(s => s.style.backgroundColor)")
    before = browser.execute_script(colours)
    unit = Select(css(browser, 'select[data-role="unit"]')[0])
    values = browser.execute_script("return Array.from(document.querySelector('select[data-role=\"unit\"]')"
                                    ".options).map(o => o.value)")
    assert len(values) == 2 * 16 * 2                                        # h and c of 2 layers
    current = unit.first_selected_option.get_attribute("value")
    unit.select_by_value(next(v for v in values if v != current and v.endswith(":5")))
    after = browser.execute_script(colours)
    assert after != before and len(set(after)) > 1
    row = css(browser, '[data-role="ranking"] tr')[-1]                     # a ranked unit, by click
    row.click()
    assert unit.first_selected_option.get_attribute("value") == row.get_attribute("data-value")


def test_hovering_shows_the_top_5_predictions(browser, pages):
    from selenium.webdriver.common.action_chains import ActionChains
    open_page(browser, pages["lstm"][1])
    tip = css(browser, '[data-role="predictions"]')[0]
    assert not tip.is_displayed()
    span = css(browser, '[data-panel="surprisal"] [data-char-index="12"]')[0]
    ActionChains(browser).move_to_element(span).perform()
    wait(browser, tip.is_displayed)
    rows = css(browser, '[data-role="predictions"] [data-role="prediction"]')
    assert len(rows) == 5
    probs = [float(r.text.split()[-1]) for r in rows]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.001


@pytest.mark.parametrize("model,prime", [("lstm", "my bird s"), ("gru", 'a dog "'), ("rnn", "the c")])
def test_in_page_greedy_sample_equals_the_cli(browser, pages, capsys, model, prime):
    run, page = pages[model]
    open_page(browser, page)
    length = 150
    in_page = greedy_in_page(browser, prime, length)
    capsys.readouterr()
    assert main(["sample", run, "--temperature", "0", "--prime", prime, "--length", str(length)]) == 0
    cli = capsys.readouterr().out
    assert cli.endswith("\n") and in_page == cli[:-1]
    assert len(in_page) == len(prime) + length


def test_a_character_outside_the_bmp_is_one_character_on_the_page(browser, tmp_path_factory, capsys):
    """An emoji is one character to Python and two UTF-16 units to JavaScript: the page
    counts as Python does, so the spans, the predictions and the sampler line up with the
    text and the vocabulary (before, every span after the first emoji was off by one and
    the sampler's vocabulary was shifted)."""
    cat = "\U0001F408"
    d = tmp_path_factory.mktemp("emoji")
    corpus = d / "emoji.txt"
    corpus.write_text(TEXT.replace("the cat", "the " + cat), encoding="utf-8")
    run = str(d / "run")
    assert main(["train", str(corpus), "--model", "rnn", "--hidden-size", "16", "--seq-len", "16", "--batch-size",
                 "8", "--lr", "0.01", "--max-steps", "40", "--out", run, "--quiet"]) == 0
    assert main(["explore", run]) == 0
    open_page(browser, os.path.join(run, "explore.html"))
    text = browser.execute_script("return JSON.parse(document.getElementById('rnnlab-data').textContent).text")
    spans = browser.execute_script("return Array.from(document.querySelectorAll('[data-panel=\"surprisal\"] "
                                   "[data-char-index]')).map(s => s.textContent)")
    where = [i for i, ch in enumerate(text) if ch == cat]
    assert where and len(spans) == len(text) and all(spans[i] == cat for i in where)
    prime, length = "the " + cat + " ", 60
    in_page = greedy_in_page(browser, prime, length)
    capsys.readouterr()
    assert main(["sample", run, "--temperature", "0", "--prime", prime, "--length", str(length)]) == 0
    assert in_page == capsys.readouterr().out[:-1]


def test_predictions_of_a_vocabulary_under_five_characters(browser, tmp_path_factory):
    """A 4-letter alphabet (DNA) has 4 predictions per position: the page reads them with
    that stride (it read 5 apiece, so past the first character it showed a neighbour's)."""
    import numpy as np
    from selenium.webdriver.common.action_chains import ActionChains
    from rnnlab.data import Vocab
    from rnnlab.explore import build_page
    from rnnlab.explore.analysis import analyse
    from rnnlab.models import CharLM, CharLMConfig
    text = "ACGTTGCAACGGATCCTAGA" * 3
    model = CharLM(Vocab.from_text(text), CharLMConfig(model="gru", hidden_size=8, num_layers=1, seed=2))
    rng = np.random.default_rng(0)
    for p in model.params.values():                       # predictions far from uniform
        p += rng.normal(0, 1.0, p.shape).astype(p.dtype)
    path = tmp_path_factory.mktemp("dna") / "page.html"
    path.write_text(build_page(model, text)[0], encoding="utf-8")
    result = analyse(model, text)
    open_page(browser, str(path))
    for i in (1, 7, 30):
        span = css(browser, f'[data-panel="surprisal"] [data-char-index="{i}"]')[0]
        ActionChains(browser).move_to_element(span).perform()
        wait(browser, lambda: css(browser, '[data-role="predictions"]')[0].is_displayed())
        rows = [r.text.split() for r in css(browser, '[data-role="predictions"] [data-role="prediction"]')]
        assert [r[0] for r in rows] == [model.vocab.chars[k] for k in result["top"][i - 1]], i
        assert [float(r[-1]) for r in rows] == pytest.approx(list(result["top_p"][i - 1]), abs=1e-3), i
