#!/usr/bin/python3
"""fidelity_lib: what the fidelity tiers (tests/integration/fidelity*.py)
share: where mlfcgi and the sources are, the environment a CGI run of
mlfcgi keeps, TAP output with a fixed plan (and a case that raises as a
failing test, not a crash), the comparison of mlfcgi's answers with a
library's, and the check that --predict
(lines predicted together in blocks) answers each row exactly as a request
would (rows predicted one at a time, with the prediction cache on)."""

import importlib.util
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

SRCDIR = Path(os.environ.get("SRCDIR") or Path(__file__).resolve().parents[2])
MLFCGI_BIN = os.environ.get("MLFCGI_BIN", "")
TIMEOUT = 60
# What a CGI run of mlfcgi keeps from this environment (the sanitizer tier's
# options among it).
PASSTHROUGH_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "LD_LIBRARY_PATH",
                   "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "MALLOC_PERTURB_")


class Tap:
    """Numbered TAP output with a fixed plan."""

    def __init__(self, planned):
        self.number = 0
        self.failed = 0
        print(f"1..{planned}", flush=True)

    def result(self, ok, description, diagnostics=()):
        """Print one ok / not ok line, then diagnostics as # comments."""
        self.number += 1
        self.failed += not ok
        print(f"{'ok' if ok else 'not ok'} {self.number} - {description}")
        for line in diagnostics:
            for part in str(line).splitlines():
                print(f"# {part}")
        sys.stdout.flush()

    def skip(self, description, reason):
        """Print a skipped test."""
        self.number += 1
        print(f"ok {self.number} - {description} # SKIP {reason}", flush=True)


def skip_all(reason):
    """Skip the whole test (TAP plan 1..0); returns the exit status, 0."""
    print(f"1..0 # SKIP {reason}")
    return 0


def unready(modules=(("sklearn", "python3-sklearn"),)):
    """Check what a tier needs before its plan: MLFCGI_BIN an executable, the Python modules
    (module, Debian package) installed. Returns None when all is there (and puts SRCDIR/tools,
    the exporter's folder, on sys.path); else prints the TAP skip or bail-out line and returns
    the exit status."""
    if not MLFCGI_BIN:
        return skip_all("MLFCGI_BIN is not set")
    if not os.access(MLFCGI_BIN, os.X_OK) or os.path.isdir(MLFCGI_BIN):
        print(f"Bail out! MLFCGI_BIN={MLFCGI_BIN} is not an executable file")
        return 1
    for module, package in modules:
        if importlib.util.find_spec(module) is None:
            return skip_all(f"{module} is not installed (Debian package {package})")
    sys.path.insert(0, str(SRCDIR / "tools"))
    return None


def guarded(tap, description, fn, *args):
    """Run one test function; an exception is a failure with its traceback as diagnostics."""
    try:
        fn(*args)
    except Exception:  # a crash in one case must not hide the others
        tap.result(False, f"{description}: error", [traceback.format_exc()])


def plain(x):
    """A numpy scalar as the Python value JSON gives back (anything else as it is)."""
    return x.item() if hasattr(x, "item") else x


def is_number(x):
    """JSON number (not a bool)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class Comparison:
    """Collects mismatches with a library's answers: a float within rel_tol relative (an
    absolute floor of abs_tol), anything else exactly, JSON type included (1 is not "1", 1.0
    or true). Keeps the largest errors per kind of output and counts the floats that were
    bit-identical."""

    def __init__(self, rel_tol, abs_tol, library="scikit-learn"):
        self.rel_tol, self.abs_tol, self.library = rel_tol, abs_tol, library
        self.problems = []
        self.max_err = {}  # kind of output -> (largest relative, largest absolute error)
        self.numbers = self.identical = 0

    @property
    def max_rel(self):
        return max((rel for rel, _ in self.max_err.values()), default=0.0)

    @property
    def max_abs(self):
        return max((ab for _, ab in self.max_err.values()), default=0.0)

    def number(self, row, what, expected, got, kind=""):
        """Compare one float field (of kind: proba, decision, value; as the summary names it)."""
        expected = float(expected)
        if not is_number(got):
            self.problems.append(f"row {row} {what}: expected number {expected!r}, got {got!r}")
            return
        diff = abs(expected - got)
        scale = max(abs(expected), abs(got))
        rel = diff / scale if scale else 0.0
        self.numbers += 1
        self.identical += diff == 0
        old_rel, old_abs = self.max_err.get(kind, (0.0, 0.0))
        self.max_err[kind] = (max(old_rel, rel), max(old_abs, diff))
        if diff > max(self.rel_tol * scale, self.abs_tol):
            self.problems.append(f"row {row} {what}: {self.library} {expected!r}, mlfcgi "
                                 f"{got!r} (rel err {rel:.3g})")

    def equal(self, row, what, expected, got):
        """Compare exactly, JSON type included."""
        if type(expected) is not type(got) or expected != got:
            self.problems.append(f"row {row} {what}: expected {expected!r}, got {got!r}")

    def summary(self):
        """Return "max rel err decision 0 (abs 0), proba 1e-16 (abs 1e-17)" for the kinds seen."""
        parts = [f"{kind} {rel:.2g} (abs {ab:.2g})" for kind, (rel, ab) in
                 sorted(self.max_err.items())]
        return "max rel err " + ", ".join(parts) if parts else "no numbers compared"


def one_by_one(model_path, rows):
    """Score rows as one {"instances"} CGI request with the prediction cache on.

    With a cache, mlfcgi predicts the instances one at a time (model_predict),
    where --predict predicts blocks of lines together (model_predict_rows):
    the answers must be the same numbers, bit for bit.
    """
    import numpy as np
    body = json.dumps({"instances": [[None if np.isnan(v) else float(v) for v in row]
                                     for row in rows]}).encode()
    env = {k: v for k, v in os.environ.items() if k in PASSTHROUGH_ENV}
    env.update(REQUEST_METHOD="POST", PATH_INFO="/predict", CONTENT_TYPE="application/json",
               CONTENT_LENGTH=str(len(body)), GATEWAY_INTERFACE="CGI/1.1",
               MLFCGI_MODEL=str(model_path), MLFCGI_CACHE_SIZE="100000",
               MLFCGI_MAX_BATCH=str(max(len(rows), 1)), MLFCGI_MAX_BODY=str(len(body) + 1))
    proc = subprocess.run([MLFCGI_BIN], input=body, env=env, capture_output=True,
                          timeout=TIMEOUT)
    head, _, payload = proc.stdout.partition(b"\r\n\r\n")
    if proc.returncode != 0 or not head.startswith(b"Status: 200"):
        raise RuntimeError(f"CGI instances request: exit {proc.returncode}, "
                           f"{proc.stdout[:300]!r} {proc.stderr[:300]!r}")
    return json.loads(payload)["predictions"]


def same_as_one_by_one(lines, singles):
    """Problems where a --predict line's answer differs from the one-at-a-time answer."""
    problems = []
    for r, (line, single) in enumerate(zip(lines, singles)):
        got = {k: v for k, v in line.items()
               if k not in ("model", "version", "request_id", "line")}
        if got != single:  # floats compared exactly
            problems.append(f"row {r}: --predict {got} != one at a time {single}")
    if len(lines) != len(singles):
        problems.append(f"{len(lines)} --predict lines, {len(singles)} one at a time")
    return problems
