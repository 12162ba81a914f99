"""Data-parallel training (rnnlab/parallel.py, rnnlab/mpilaunch.py): N ranks with B streams
each are one process with N·B streams — float64 weights to 1e-12 after 20 steps, the
float32 CLI's loss curve to 1e-5 —, resume with the same and with another N, and the
faults: bad input on one rank, a rank killed with -9, SIGINT to the launcher. Two ranks
on loopback; every job bounded by a timeout; skipped when mpi4py or mpiexec is missing.
The pure helpers (partition, resume rule, flattened gradients, the fallback) run always."""
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rnnlab import CharLM, CharLMConfig
from rnnlab.models.charlm_config import REGULARISERS_OFF
from rnnlab.data.text import Vocab
from rnnlab.mpilaunch import _filter, find_mpiexec, launch_command, without_workers
from rnnlab.parallel import Dist, plan_resume, rank_slice

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_helper.py")
MPIEXEC = find_mpiexec()
HAVE_MPI = importlib.util.find_spec("mpi4py") is not None and MPIEXEC is not None
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="data-parallel tests need mpi4py and mpiexec "
                                                    "(pip install 'rnnlab[mpi]')")
TIMEOUT = 120
TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog {i * 7 % 13}.\n" for i in range(300))
# no dropout or weight drop (their masks are drawn per rank) and no weight average
SMALL = ["--model", "lstm", "--hidden-size", "16", "--num-layers", "2", "--dropout", "0", "--weight-drop", "0",
         "--no-locked-dropout", "--average", "0", "--seq-len", "10",
         "--optimizer", "adam", "--lr", "0.01", "--val-frac", "0.1", "--quiet"]


# -- always: the pure pieces ------------------------------------------------------------------
def test_importing_rnnlab_does_not_import_mpi4py():
    code = "import sys, rnnlab, rnnlab.cli, rnnlab.charlm_run; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT)
    assert out.stdout.strip() == "False", out.stderr


def test_without_workers():
    assert without_workers(["t.txt", "--workers", "2", "--quiet"]) == ["t.txt", "--quiet"]
    assert without_workers(["--workers=3", "t.txt"]) == ["t.txt"]
    assert without_workers(["--work", "4", "--out", "d"]) == ["--out", "d"]


def test_resume_rule():
    assert plan_resume(2, 8, 2) == (8, True)           # same N
    assert plan_resume(2, 8, 1) == (16, True)          # one process takes all 16 streams
    assert plan_resume(2, 8, 4) == (4, True)
    assert plan_resume(2, 8, 3) == (8, False)          # 16 streams do not split in 3: cut anew


def test_rank_slice_is_the_partition_of_one_batch():
    X = np.arange(3 * 4 * 6).reshape(3, 4, 6)             # (steps, seq_len, N·B streams)

    class R:
        size, rank = 3, 1
    assert np.array_equal(rank_slice(X, R, 2), X[..., 2:4])
    assert rank_slice(X, Dist(), 6) is X


def test_flatten_grads_keeps_values_and_shares_one_buffer():
    model = CharLM(Vocab.from_text(TEXT), CharLMConfig(hidden_size=8, num_layers=2, batch_size=2, seq_len=4,
                                                                 dropout=0.0, **REGULARISERS_OFF))
    x = np.zeros((4, 2), np.int64)
    model.loss_and_grad(x, x)
    before = {k: g.copy() for k, g in model.grads.items()}
    flat = model.flatten_grads()
    for k, g in model.grads.items():
        assert np.shares_memory(g, flat) and np.array_equal(g, before[k])
    model.zero_grad()
    assert not flat.any()
    model.loss_and_grad(x, x)                          # backward adds into the views
    assert all(np.allclose(g, before[k]) for k, g in model.grads.items())


def test_workers_without_mpi_is_one_line(monkeypatch, capsys, tmp_path):
    from rnnlab import mpilaunch
    from rnnlab.cli import main
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    monkeypatch.setattr(mpilaunch, "find_mpiexec", lambda: None)
    assert main(["train", str(text), "--workers", "2", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rnnlab[mpi]" in err[0]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "mpi4py" else real(n, *a))
    assert main(["train", str(text), "--workers", "2", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mpi4py" in err[0]
    assert not (tmp_path / "r").exists()


def test_the_filter_drops_mpi_banners():
    raw = (b"rnnlab: error: rank 1: x: no such file\n" + b"-" * 74 + b"\nprterun detected that one or more\n"
           + b"-" * 74 + b"\n[vm:123] PMIX ERROR: UNREACH\n" + b"\x00")     # prterun ends an abort with a NUL
    out = io.StringIO()
    _filter(io.BytesIO(raw), out)
    assert out.getvalue() == "rnnlab: error: rank 1: x: no such file\n"


# -- under mpiexec -------------------------------------------------------------------------------
def _mpi(n, args, program, **kw):
    cmd, env = launch_command(MPIEXEC, n, args, program=program)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT, **kw)


def _helper(tmp_path, name, n, *args):
    out = str(tmp_path / f"{name}.npz")
    argv = [out, *args]
    r = (_mpi(n, argv, [sys.executable, HELPER]) if n > 1 else
         subprocess.run([sys.executable, HELPER, *argv], capture_output=True, text=True, timeout=TIMEOUT))
    assert r.returncode == 0, r.stderr
    return [np.load(str(tmp_path / f"{name}.rank{k}.npz")) for k in range(n)]


def _worst(a, b):
    return max(float(np.max(np.abs(a[k] - b[k])) / np.max(np.abs(b[k]))) for k in b.files if k.startswith("param/"))


@needs_mpi
@pytest.mark.parametrize("case", [["--model", "lstm", "--optimizer", "adam"],
                                  ["--model", "gru", "--optimizer", "rmsprop", "--reduction", "sum", "--copy"]],
                         ids=["lstm-adam-mean", "gru-rmsprop-sum-copy"])
def test_float64_two_ranks_equal_one_process(tmp_path, case):
    one = _helper(tmp_path, "one", 1, "--batch", "8", *case)[0]
    r0, r1 = _helper(tmp_path, "two", 2, "--batch", "4", *case)
    assert _worst(r1, r0) == 0.0                       # every rank holds the same weights
    worst = _worst(r0, one)
    print(f"float64, 20 steps, 2×4 vs 1×8 streams ({' '.join(case)}): max relative weight difference {worst:.1e}")
    assert worst <= 1e-12
    assert np.allclose(r0["curve"], one["curve"], rtol=1e-12, atol=0)


def _cli(args, timeout=TIMEOUT, **kw):
    return subprocess.run([sys.executable, "-m", "rnnlab", "train", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def _curve(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return np.array([[r["train_loss"], r["val_loss"]] for r in map(json.loads, f)])


def _weights(run, name="latest.npz"):
    m = CharLM.load(os.path.join(run, name))
    return m.params


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "text.txt"
    p.write_text(TEXT)
    return str(p)


@needs_mpi
def test_cli_float32_two_workers_equal_one_process_and_resume(tmp_path, text):
    one, two, part = (str(tmp_path / n) for n in ("one", "two", "part"))
    budget = ["--max-steps", "20", "--eval-every", "2"]
    assert _cli([text, *SMALL, "--batch-size", "8", "--out", one, *budget], cwd=tmp_path).returncode == 0
    r = _cli([text, *SMALL, "--batch-size", "4", "--out", two, "--workers", "2", *budget], cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    a, b = _curve(one), _curve(two)
    rel = float(np.max(np.abs(a - b) / np.abs(a)))
    print(f"float32 CLI, 20 steps, 2 workers × 4 vs 1 × 8 streams: max relative loss difference {rel:.1e}")
    assert a.shape == b.shape == (10, 2) and rel <= 1e-5
    # stopped at step 10 and resumed with the same N: the same weights, bit for bit
    r = _cli([text, *SMALL, "--batch-size", "4", "--out", part, "--workers", "2", "--max-steps", "10",
              "--eval-every", "2"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert CharLM.load(os.path.join(part, "latest.npz"), with_training_state=True)[2][0].shape == (2, 8, 16)
    r = _cli(["--resume", part, "--workers", "2", "--max-steps", "20", "--eval-every", "2", "--quiet"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    w2, wp = _weights(two), _weights(part)
    assert all(np.array_equal(w2[k], wp[k]) for k in w2)
    assert np.array_equal(_curve(part), b)


@needs_mpi
def test_resume_with_another_number_of_ranks(tmp_path, text):
    one, part = str(tmp_path / "one"), str(tmp_path / "part")
    budget = ["--eval-every", "5", "--quiet"]
    assert _cli([text, *SMALL, "--batch-size", "8", "--out", one, "--max-steps", "20", *budget],
                cwd=tmp_path).returncode == 0
    r = _cli([text, *SMALL, "--batch-size", "4", "--out", part, "--workers", "2", "--max-steps", "10", *budget],
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # 2 ranks × 4 streams resumed by one process: it takes the 8 streams and their carried state
    r = _cli(["--resume", part, "--max-steps", "20", *budget], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    w1, wp = _weights(one), _weights(part)
    assert max(float(np.max(np.abs(w1[k] - wp[k]))) for k in w1) < 1e-5
    assert np.allclose(_curve(part), _curve(one), rtol=1e-5, atol=0)
    model = CharLM.load(os.path.join(part, "latest.npz"))
    assert model.config.batch_size == 8 and model.meta.get("workers", 1) == 1
    # 8 streams do not split into 3 ranks: 3 × 8 streams cut anew, zero carried state, said so
    r = _cli(["--resume", part, "--max-steps", "25", "--workers", "3", "--eval-every", "5"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "cut anew" in r.stderr
    _, _, state = CharLM.load(os.path.join(part, "latest.npz"), with_training_state=True)
    assert state[0].shape == (2, 24, 16)


@needs_mpi
def test_bad_input_on_one_rank_stops_every_rank_with_one_line(tmp_path, text):
    out = str(tmp_path / "run")
    args = ["train", text, *SMALL, "--max-steps", "5", "--out", out]
    bad = ["train", str(tmp_path / "missing.txt"), *SMALL, "--max-steps", "5", "--out", out]
    cmd, env = launch_command(MPIEXEC, 1, args)
    cmd += [":", "-n", "1", sys.executable, "-m", "rnnlab", *bad]     # rank 1 is given a missing file
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=TIMEOUT, cwd=tmp_path)
    assert r.returncode == 2
    shown = io.StringIO()
    _filter(io.BytesIO(r.stderr), shown)
    lines = shown.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnlab: error: rank 1:") and "missing.txt" in lines[0]
    assert not os.path.exists(out)
    # the launcher: a bad option value, one line, exit 2, nothing written
    r = _cli([text, *SMALL, "--batch-size", "0", "--out", out, "--workers", "2"], cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not os.path.exists(out)


@needs_mpi
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the rank processes through /proc")
def test_an_error_on_rank_0_during_training_ends_the_job_in_one_line(tmp_path, text):
    """Rank 0 alone writes the run: its error comes while the others wait in a collective.
    The job must end (MPI_Abort), not hang, with rank 0's one line and exit 2."""
    out = str(tmp_path / "run")
    budget = ["--eval-every", "5", "--quiet"]
    r = _cli([text, *SMALL, "--batch-size", "4", "--out", out, "--workers", "2", "--max-steps", "10", *budget],
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    start = os.path.join(out, "start.npz")
    os.rename(os.path.join(out, "latest.npz"), start)
    os.mkdir(os.path.join(out, "latest.npz"))                     # replacing it fails on rank 0 only
    r = _cli(["--resume", start, "--workers", "2", "--max-steps", "20", *budget], cwd=tmp_path, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [f"rnnlab: error: {os.path.join(out, 'latest.npz')}: Is a directory"]
    assert not _ranks_of(out)
    assert CharLM.load(start).meta["step"] == 10


@needs_mpi
def test_resume_after_a_killed_write_cleans_up_once(tmp_path, text):
    """Only rank 0 repairs and cleans the run directory: with every rank removing the same
    leftovers, one found a file another had just removed and the job was refused."""
    out = str(tmp_path / "run")
    budget = ["--eval-every", "5", "--quiet"]
    r = _cli([text, *SMALL, "--batch-size", "4", "--out", out, "--workers", "2", "--max-steps", "10", *budget],
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for i in range(3000):                                           # interrupted checkpoint writes
        open(os.path.join(out, f".tmp-{i:05d}.npz"), "w").close()
    r = _cli(["--resume", out, "--workers", "2", "--max-steps", "15", *budget], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]
    assert CharLM.load(os.path.join(out, "latest.npz")).meta["step"] == 15


def _ranks_of(out):
    """pids of the rank processes training into ``out`` (children of mpiexec)."""
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if (os.path.basename(cmd[0]).startswith(b"python") and b"-m" in cmd and out.encode() in cmd
                    and b"--workers" not in cmd):
                pids.append(int(p))
    return pids


def _start_long_run(tmp_path, text, out):
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "train", text, *SMALL, "--batch-size", "4",
                             "--out", out, "--workers", "2", "--max-steps", "1000000", "--eval-every", "10"],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and not os.path.exists(os.path.join(out, "latest.npz")):
        time.sleep(0.2)
    assert os.path.exists(os.path.join(out, "latest.npz")), "no checkpoint within 60 s"
    return proc


@needs_mpi
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the rank processes through /proc")
def test_a_rank_killed_ends_the_job_and_resume_continues(tmp_path, text):
    out = str(tmp_path / "run")
    proc = _start_long_run(tmp_path, text, out)
    ranks = _ranks_of(out)
    assert len(ranks) == 2
    t0 = time.time()
    os.kill(ranks[-1], signal.SIGKILL)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    print(f"a rank killed with -9: the job ended after {time.time() - t0:.1f} s, exit {proc.returncode}")
    assert proc.returncode != 0 and time.time() - t0 < 30
    assert "continue with --resume" in err
    assert not _ranks_of(out)
    model = CharLM.load(os.path.join(out, "latest.npz"))          # intact
    step = model.meta["step"]
    r = _cli(["--resume", out, "--workers", "2", "--max-steps", str(step + 5), "--quiet"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert CharLM.load(os.path.join(out, "latest.npz")).meta["step"] == step + 5


@needs_mpi
def test_sigint_to_the_launcher_stops_every_rank_and_saves(tmp_path, text):
    out = str(tmp_path / "run")
    proc = _start_long_run(tmp_path, text, out)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted by SIGINT" in err and "--resume" in err
    model = CharLM.load(os.path.join(out, "latest.npz"))
    assert model.meta["workers"] == 2 and model.meta["step"] >= 10


@needs_mpi
def test_time_limit_every_rank_stops_at_the_same_step(tmp_path, text):
    out = str(tmp_path / "run")
    r = _cli([text, *SMALL, "--batch-size", "4", "--out", out, "--workers", "2", "--time-limit", "2",
              "--json"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["stop_reason"] == "time_limit" and summary["steps"] > 0


def test_ranks_on_one_machine_share_the_memory_check(monkeypatch):
    """Each of N ranks checked its whole model against all of the machine's memory, and N
    of them together needed N times that (a review, 2026-12-06): each now checks against
    its share, from the local rank count the MPI launcher sets (--workers or a user's own
    mpiexec alike)."""
    from rnnlab import memory
    for k in memory.LOCAL_SIZE_VARS:
        monkeypatch.delenv(k, raising=False)
    whole = memory.available_memory()
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4")
    assert abs(memory.available_memory() - whole // 4) < whole // 100      # MemAvailable moves a little
    for junk in ("not a count", "\u00b2", "0"):                           # not a launcher's: passed over
        monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", junk)
        assert abs(memory.available_memory() - whole) < whole // 100


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason="--workers needs mpi4py to start")
def test_a_launcher_that_fails_before_any_rank_says_so(tmp_path, text):
    """mpiexec's own errors are among the banners the filter drops: a launcher that could
    not start the job exited 1 with nothing printed, or said a worker had died (a review,
    2026-12-06). Now one line says the launcher ended before any rank started."""
    env = {**os.environ, "RNNLAB_MPIEXEC": "/bin/false"}
    r = _cli([text, *SMALL, "--out", str(tmp_path / "run"), "--workers", "2", "--max-steps", "3"],
             env=env, timeout=60)
    assert r.returncode != 0 and r.stderr.count("\n") == 1, r.stderr
    assert "ended with exit code 1 before any rank started training" in r.stderr and not (tmp_path / "run").exists()
