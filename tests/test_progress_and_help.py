"""Progress (rnnlab/progress.py): a live bar with steps, rate and ETA on a terminal, a
plain line every log_every seconds elsewhere, phases; and the CLI's help: every option
of every subcommand explains itself and names its default."""
import argparse
import io

import pytest

from rnnlab.cli.parser import build_parser
from rnnlab.progress import Progress, clock


class Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_terminal_bar_shows_steps_rate_and_eta():
    s, t = Stream(True), Clock()
    p = Progress(total=100, stream=s, clock=t, min_interval=0.0)
    p.update(1, loss=2.5)
    t.t += 10
    p.update(21, loss=2.0, **{"char/s": 1234})
    line = s.getvalue().split("\r")[-1]
    assert "[####................] 21/100  21%" in line
    assert "2 step/s" in line and "ETA 0:40" in line          # 79 steps at 2 steps/s
    assert "loss 2" in line and "char/s 1234" in line and line.endswith("\033[K")
    p.report(21, loss=2.0, val=1.9)
    assert s.getvalue().endswith("val 1.9\n") and "\r\033[K[####" in s.getvalue()
    p.close()


def test_time_budget_gives_the_eta_and_the_sooner_one_wins():
    s, t = Stream(True), Clock()
    p = Progress(total=1000, time_limit=60, stream=s, clock=t, min_interval=0.0)
    p.update(1)
    t.t += 20
    p.update(11)                                              # 0.5 step/s: 1978 s by steps, 40 s by time
    assert "ETA 0:40" in s.getvalue().split("\r")[-1] and " 33%" in s.getvalue().split("\r")[-1]
    assert p.eta() == pytest.approx(40)


def test_an_epoch_budget_gives_the_bar_its_steps_and_an_eta():
    """Training for --max-epochs alone: the bar counts toward the step the last epoch ends
    on (and, with a step budget as well, toward the sooner of the two)."""
    import numpy as np
    from rnnlab.models import CharLM, CharLMConfig
    text = "the cat sat on the mat and the dog sat on the log. " * 20
    config = CharLMConfig(hidden_size=8, num_layers=1, seq_len=8, batch_size=2, dropout=0.0, val_frac=0.1)
    for max_steps, expected_total in ((None, None), (5, 5)):
        s = Stream(True)
        p = Progress(total=max_steps, stream=s, min_interval=0.0)
        model = CharLM(sorted(set(text)), config, dtype=np.float64)
        summary = model.fit(text, max_epochs=2, max_steps=max_steps, sample_chars=0, progress=p)
        total = expected_total or summary["steps"]
        assert p.total == total and summary["steps"] == total
        assert summary["steps"] == 5 or summary["epochs"] == 2
        assert f"/{total} " in s.getvalue() and "ETA" in s.getvalue()


def test_plain_lines_every_log_every_seconds_when_not_a_terminal():
    s, t = Stream(False), Clock()
    p = Progress(total=None, stream=s, clock=t, log_every=10.0)
    for step in range(1, 31):
        t.t += 1
        p.update(step, loss=1.0)
    lines = s.getvalue().splitlines()
    assert len(lines) == 2 and all("\r" not in x and "\033" not in x for x in lines)
    assert lines[0].startswith("step 11  1 step/s  elapsed 0:10  loss 1")
    p.message("evaluation")                                   # a line resets the interval
    t.t += 5
    p.update(31)
    assert s.getvalue().splitlines()[-1] == "evaluation"


def test_a_new_phase_restarts_the_rate_and_the_time_budget():
    s, t = Stream(False), Clock()
    p = Progress(time_limit=30, stream=s, clock=t, log_every=None)
    p.update(1)
    t.t += 10
    p.update(11)
    assert p.eta() == pytest.approx(20)
    p.close()                                                 # the tasks train several models
    t.t += 100
    p.update(1)
    t.t += 5
    p.update(6)
    assert p.rate() == pytest.approx(1.0) and p.eta() == pytest.approx(25)
    assert s.getvalue() == ""                                 # log_every None: no periodic lines


def test_disabled_progress_prints_nothing():
    s = Stream(True)
    p = Progress(total=10, stream=s, enabled=False)
    p.update(1)
    p.report(1, loss=1.0)
    p.message("x")
    p.close()
    assert s.getvalue() == ""


def test_clock_format():
    assert clock(5) == "0:05" and clock(75) == "1:15" and clock(3725) == "1:02:05" and clock(-3) == "0:00"


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def test_every_option_of_every_command_has_help_and_a_default():
    subs = _subparsers(build_parser())
    assert {"train", "sample", "eval", "explore", "ngram", "task", "bench", "demo"} <= set(subs)
    for name, sub in subs.items():
        fmt = sub._get_formatter()
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            where = f"rnnlab {name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help.strip(), where + " has no help"
            text = fmt._expand_help(action) if hasattr(fmt, "_expand_help") else action.help
            takes_value = action.nargs != 0
            optional = bool(action.option_strings) or action.nargs in ("?", "*")
            if takes_value and optional:
                assert "default" in text, where + " does not name its default: " + text
            assert "\n" not in action.help, where + ": one line"
        sub.format_help()                                     # every help string formats


def test_close_erases_the_bar():
    s, t = Stream(True), Clock()
    p = Progress(total=10, stream=s, clock=t, min_interval=0.0)
    p.update(3)
    p.close()
    assert s.getvalue().endswith("\r\033[K") and "\n" not in s.getvalue()


def test_the_readme_command_table_names_every_option():
    """Each subcommand's row in the README's command table names all of its options, so
    the table a user reads first stays the whole list (it had lost eight of them)."""
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        rows = [line for line in f if line.startswith("| `rnnlab ")]
    subs = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, sub in subs.items():
        row = next((r for r in rows if r.startswith(f"| `rnnlab {name}")), None)
        assert row is not None, name
        missing = [a.option_strings[-1] for a in sub._actions
                   if a.option_strings and a.option_strings[-1] != "--help" and a.option_strings[-1] not in row]
        assert not missing, (name, missing)
