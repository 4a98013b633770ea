#!/usr/bin/python3
"""fidelity_trees: TAP test that mlfcgi --predict matches scikit-learn's trees and tree ensembles.

Every tree family (DecisionTree, ExtraTree, RandomForest, ExtraTrees,
GradientBoosting, HistGradientBoosting) on the bundled data sets, plus
HistGradientBoosting with missing values (null) and a native categorical
feature. Besides held-out rows, each case sends probe rows that put a
feature exactly on split thresholds and their float32 / float64 neighbours,
where a comparison done in the wrong precision takes the other branch.
Classes must be identical; probabilities, decision values and regression
outputs equal to 1e-9 relative (absolute floor 1e-12). Also: the loader
refuses malformed trees naming the field, the exporter refuses what it
cannot represent naming the parameter, and a 100-tree forest stays small.
Each case's --predict answers (lines predicted together in blocks) must
also be, bit for bit, those of one {"instances"} request predicted one
instance at a time (the prediction cache on), and those of --predict
--no-simd (the portable walk, where the default takes the first levels of
each tree eight rows at a time with AVX2; for complete trees, every tree
at most 8 deep, extra cases of depth 4 to 8; for fully grown trees, walked
in passes, a 300-tree forest, more trees than one row's walks take at once).
"""

import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fidelity_lib import (  # noqa: E402
    Comparison, MLFCGI_BIN, Tap, guarded, one_by_one, plain, same_as_one_by_one, unready)

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
# HistGradientBoosting's OpenMP threads spin; on a busy machine (make -j2 check)
# one thread is many times faster. Read when scikit-learn is first imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REL_TOL = 1e-9
ABS_TOL = 1e-12
N_TEST = 80
N_TREES = 20
PROBE_NODES = 12
MAX_DIAGNOSTICS = 10
TIMEOUT = 60
FOREST_LIMIT_BYTES = 16 * 1024 * 1024  # a 100-tree forest on digits, generously


# ---------------------------------------------------------------- TAP

# ---------------------------------------------------------------- data

def load(name):
    """Return (X, y) of a bundled or generated data set, as float64."""
    import numpy as np
    from sklearn import datasets
    if name == "make_regression":
        X, y = datasets.make_regression(n_samples=400, n_features=10, n_informative=6,
                                        noise=5.0, random_state=0)
    elif name == "make_classification":
        X, y = datasets.make_classification(n_samples=400, n_features=10, n_informative=6,
                                            random_state=0)
    else:
        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return np.asarray(X, dtype=np.float64), y


def split(X, y, seed=0):
    """Deterministic split: (X_train, y_train, X_test) with N_TEST test rows."""
    import numpy as np
    order = np.random.RandomState(seed).permutation(len(X))
    return X[order[N_TEST:]], y[order[N_TEST:]], X[order[:N_TEST]]


def with_missing(X, seed, rate=0.1):
    """Return a copy of X with a fraction rate of its values set to NaN."""
    import numpy as np
    X = X.copy()
    X[np.random.RandomState(seed).rand(*X.shape) < rate] = np.nan
    return X


def with_category(X, y, classification, seed=0):
    """Append a categorical column (codes 0-7) that shifts y; return (X, y).

    Code 6 is left out of training later, so that it is an unknown category.
    """
    import numpy as np
    rs = np.random.RandomState(seed)
    codes = rs.randint(0, 8, len(X)).astype(np.float64)
    if classification:
        y = np.where(codes >= 4, (y + 1) % (int(y.max()) + 1), y)
    else:
        y = y + 40.0 * np.sin(codes)
    return np.column_stack([X, codes]), y


# ---------------------------------------------------------------- probes

def thresholds(model):
    """Return [(feature, threshold)] of the first numeric splits of the model's first trees."""
    found = []
    for tree in model["estimator"]["trees"][:3]:
        cats = tree.get("categories") or [None] * len(tree["feature"])
        for f, t, c in zip(tree["feature"], tree["threshold"], cats):
            if f >= 0 and c is None and len(found) < PROBE_NODES:
                found.append((f, t))
    return found


def neighbours(t):
    """Values at and around threshold t: t, its float64 neighbours, and float32 values near it."""
    import numpy as np
    t32 = float(np.float32(t))
    up32 = float(np.nextafter(np.float32(t), np.float32(np.inf)))
    down32 = float(np.nextafter(np.float32(t), np.float32(-np.inf)))
    values = [t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf), t32, up32, down32,
              (t + t32) / 2]
    return sorted({float(v) for v in values if np.isfinite(v)})


def probe_rows(model, X_test):
    """Rows of X_test with one feature set on or next to a split threshold."""
    rows = []
    for i, (f, t) in enumerate(thresholds(model)):
        for v in neighbours(t):
            row = X_test[i % len(X_test)].copy()
            row[f] = v
            rows.append(row)
    return rows


# ---------------------------------------------------------------- running mlfcgi

def scored(model_path, rows, tmpdir, options=()):
    """Score rows with mlfcgi --predict (and options); return its output lines as dicts."""
    import numpy as np
    in_path = Path(tmpdir) / "rows.jsonl"
    with open(in_path, "w") as f:
        for row in rows:
            values = [None if np.isnan(v) else float(v) for v in row]
            f.write(json.dumps({"features": values}) + "\n")
    proc = subprocess.run([MLFCGI_BIN, "--model", str(model_path), "--predict", str(in_path),
                           *options], capture_output=True, timeout=TIMEOUT, text=True)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or len(lines) != len(rows):
        raise RuntimeError(f"mlfcgi --predict exited {proc.returncode} with {len(lines)} "
                           f"lines for {len(rows)} rows: {proc.stderr.strip()[:500]} "
                           f"{proc.stdout[:500]}")
    return lines


# ---------------------------------------------------------------- comparing

def compare(est, model, X, lines):
    """Compare mlfcgi's answers for X with est's predict / predict_proba / decision_function."""
    import numpy as np
    cmp = Comparison(REL_TOL, ABS_TOL)
    labels = est.predict(X)
    if model["task"] == "regression":
        for r, line in enumerate(lines):
            cmp.number(r, "prediction", float(labels[r]), line.get("prediction"))
        return cmp
    proba = est.predict_proba(X)
    scores = est.decision_function(X) if hasattr(est, "decision_function") else None
    names = [str(c) for c in model["classes"]]
    for r, line in enumerate(lines):
        cmp.equal(r, "prediction", plain(labels[r]), line.get("prediction"))
        got = line.get("probabilities") or {}
        for k, name in enumerate(names):
            cmp.number(r, f"probabilities[{name}]", float(proba[r][k]), got.get(name))
        if scores is not None:
            want = np.atleast_1d(scores[r])
            got_scores = line.get("decision_function")
            got_scores = [got_scores] if len(want) == 1 else (got_scores or [])
            if len(got_scores) != len(want):
                cmp.problems.append(f"row {r} decision_function: {line.get('decision_function')}")
                continue
            for k, (w, g) in enumerate(zip(want, got_scores)):
                cmp.number(r, f"decision_function[{k}]", float(w), g)
    return cmp


def report(tap, description, n_rows, n_probes, cmp, size):
    """Emit the TAP line for one case."""
    summary = (f"{description}: {n_rows} rows + {n_probes} threshold probes "
               f"(max abs err {cmp.max_abs:.3g}, max rel err {cmp.max_rel:.3g}, "
               f"{size / 1024:.0f} KiB)")
    shown = cmp.problems[:MAX_DIAGNOSTICS]
    if len(cmp.problems) > len(shown):
        shown.append(f"... and {len(cmp.problems) - len(shown)} more mismatches")
    tap.result(not cmp.problems, summary, shown)


# ---------------------------------------------------------------- cases

def estimators(classification):
    """Return [(short name, estimator factory)] for every supported family."""
    from sklearn import ensemble, tree
    if classification:
        return [
            ("DecisionTreeClassifier", lambda: tree.DecisionTreeClassifier(random_state=0)),
            ("RandomForestClassifier",
             lambda: ensemble.RandomForestClassifier(N_TREES, random_state=0)),
            ("ExtraTreesClassifier",
             lambda: ensemble.ExtraTreesClassifier(N_TREES, random_state=0)),
            ("GradientBoostingClassifier",
             lambda: ensemble.GradientBoostingClassifier(n_estimators=N_TREES, random_state=0)),
            ("HistGradientBoostingClassifier",
             lambda: ensemble.HistGradientBoostingClassifier(max_iter=N_TREES, random_state=0)),
        ]
    return [
        ("DecisionTreeRegressor", lambda: tree.DecisionTreeRegressor(random_state=0)),
        ("RandomForestRegressor", lambda: ensemble.RandomForestRegressor(N_TREES, random_state=0)),
        ("ExtraTreesRegressor", lambda: ensemble.ExtraTreesRegressor(N_TREES, random_state=0)),
        ("GradientBoostingRegressor",
         lambda: ensemble.GradientBoostingRegressor(n_estimators=N_TREES, random_state=0)),
        ("HistGradientBoostingRegressor",
         lambda: ensemble.HistGradientBoostingRegressor(max_iter=N_TREES, random_state=0)),
    ]


def plain_case(data, make):
    """A case: fit make() on data minus N_TEST rows; test on those rows."""
    def thunk():
        X, y = load(data)
        X_train, y_train, X_test = split(X, y)
        return make().fit(X_train, y_train), X_test
    return thunk


def missing_case(data, make):
    """A case with 10% of the values missing (NaN) in training and test rows."""
    def thunk():
        X, y = load(data)
        X_train, y_train, X_test = split(with_missing(X, seed=1), y)
        return make().fit(X_train, y_train), X_test
    return thunk


def category_case(data, classification, make):
    """A case with a native categorical feature: unknown, negative, fractional codes, NaN."""
    def thunk():
        import numpy as np
        X, y = load(data)
        X, y = with_category(X, y, classification)
        X_train, y_train, X_test = split(X, y)
        keep = X_train[:, -1] != 6  # code 6 is never seen in training
        X_test = X_test.copy()
        X_test[:6, -1] = [6, -1, 2.5, 7.9, np.nan, 0.0]
        est = make(categorical_features=[X.shape[1] - 1])
        return est.fit(X_train[keep], y_train[keep]), X_test
    return thunk


def cases():
    """Return [(description, thunk returning (fitted estimator, X_test))]."""
    from sklearn import ensemble, tree
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    out = []
    for data in ("iris", "wine", "breast_cancer", "digits"):
        for name, make in estimators(True):
            out.append((f"{data} {name}", plain_case(data, make)))
    for data in ("diabetes", "make_regression"):
        for name, make in estimators(False):
            out.append((f"{data} {name}", plain_case(data, make)))
    hgbc = ensemble.HistGradientBoostingClassifier
    hgbr = ensemble.HistGradientBoostingRegressor
    out += [
        # Complete trees (every tree at most 8 deep) are walked eight rows at
        # a time, the first 3 levels together: deeper ones, several outputs.
        ("make_classification GradientBoostingClassifier(max_depth=6)",
         plain_case("make_classification", lambda: ensemble.GradientBoostingClassifier(
             n_estimators=N_TREES, max_depth=6, random_state=0))),
        ("digits GradientBoostingClassifier(max_depth=5)",
         plain_case("digits", lambda: ensemble.GradientBoostingClassifier(
             n_estimators=5, max_depth=5, random_state=0))),
        ("wine RandomForestClassifier(max_depth=4)",
         plain_case("wine", lambda: ensemble.RandomForestClassifier(
             N_TREES, max_depth=4, random_state=0))),
        ("make_regression GradientBoostingRegressor(max_depth=8)",
         plain_case("make_regression", lambda: ensemble.GradientBoostingRegressor(
             n_estimators=N_TREES, max_depth=8, random_state=0))),
        ("iris ExtraTreeClassifier",
         plain_case("iris", lambda: tree.ExtraTreeClassifier(random_state=0))),
        ("diabetes ExtraTreeRegressor",
         plain_case("diabetes", lambda: tree.ExtraTreeRegressor(random_state=0))),
        # Fully grown trees are walked in passes (deep walks gathered between
        # them); one row's walks take up to 256 trees at a time: two chunks.
        ("diabetes RandomForestRegressor(300 trees)",
         plain_case("diabetes", lambda: ensemble.RandomForestRegressor(300, random_state=0))),
        ("wine Pipeline(StandardScaler, RandomForestClassifier)",
         plain_case("wine", lambda: make_pipeline(
             StandardScaler(), ensemble.RandomForestClassifier(N_TREES, random_state=0)))),
        ("breast_cancer GradientBoostingClassifier(init='zero', subsample=0.7)",
         plain_case("breast_cancer", lambda: ensemble.GradientBoostingClassifier(
             n_estimators=N_TREES, init="zero", subsample=0.7, random_state=0))),
        ("breast_cancer HistGradientBoostingClassifier with 10% missing (null)",
         missing_case("breast_cancer", lambda: hgbc(max_iter=N_TREES, random_state=0))),
        ("wine HistGradientBoostingClassifier with 10% missing (null)",
         missing_case("wine", lambda: hgbc(max_iter=N_TREES, random_state=0))),
        ("diabetes HistGradientBoostingRegressor with 10% missing (null)",
         missing_case("diabetes", lambda: hgbr(max_iter=N_TREES, random_state=0))),
        ("wine HistGradientBoostingClassifier with a categorical feature",
         category_case("wine", True, lambda **kw: hgbc(max_iter=N_TREES, random_state=0, **kw))),
        ("breast_cancer HistGradientBoostingClassifier with a categorical feature",
         category_case("breast_cancer", True,
                       lambda **kw: hgbc(max_iter=N_TREES, random_state=0, **kw))),
        ("diabetes HistGradientBoostingRegressor with a categorical feature",
         category_case("diabetes", False,
                       lambda **kw: hgbr(max_iter=N_TREES, random_state=0, **kw))),
    ]
    return out


def run_case(tap, description, thunk, tmpdir):
    """Fit, export, score held-out and probe rows, compare."""
    import numpy as np
    from mlfcgi_export import export_model, write_model
    est, X_test = thunk()
    model = export_model(est, name="trees", version="1")
    hgb = type(est).__name__.startswith("HistGradientBoosting")
    nullable = [f.get("nullable", False) for f in model["features"]]
    if nullable != [hgb] * len(nullable):
        raise AssertionError(f"features nullable {nullable}, expected all {hgb}")
    path = Path(tmpdir) / "model.json"
    write_model(model, str(path))
    probes = probe_rows(model, X_test)
    X = np.vstack([X_test] + probes) if probes else X_test
    lines = scored(path, X, tmpdir)
    cmp = compare(est, model, X, lines)
    cmp.problems += same_as_one_by_one(lines, one_by_one(path, X))
    # The vector walk (AVX2, where the CPU has it) against the portable code.
    plain = scored(path, X, tmpdir, ["--no-simd"])
    cmp.problems += [f"row {r}: {a} but with --no-simd {b}"
                     for r, (a, b) in enumerate(zip(lines, plain)) if a != b][:MAX_DIAGNOSTICS]
    report(tap, description, len(X_test), len(probes), cmp, path.stat().st_size)


# ---------------------------------------------------------------- loader and exporter refusals

def tiny_model(**estimator):
    """A one-feature regression model whose estimator is a two-leaf tree, changed by estimator."""
    tree = {"feature": [0, -1, -1], "threshold": [0.5, 0, 0], "left": [1, -1, -1],
            "right": [2, -1, -1], "value": [0, 1.0, 2.0]}
    est = {"type": "tree_ensemble", "aggregation": "mean", "input_dtype": "float32",
           "n_outputs": 1, "trees": [tree]}
    for key, value in estimator.items():
        if key.startswith("tree_"):
            tree[key[5:]] = value
        else:
            est[key] = value
    return {"format": "mlfcgi-model/1", "name": "bad", "version": "1", "task": "regression",
            "features": [{"name": "x", "type": "number"}], "estimator": est}


def check_loader_refusals(tap, tmpdir):
    """Malformed tree models fail to load with a message naming the field."""
    bad = [
        ({"tree_left": [0, -1, -1]}, "estimator.trees[0].left[0]"),
        ({"tree_right": [2, -1, 1]}, "estimator.trees[0].right[2]"),
        ({"tree_feature": [1, -1, -1]}, "estimator.trees[0].feature[0]"),
        ({"tree_value": [0, 1.0]}, "estimator.trees[0].value"),
        ({"tree_threshold": [0.5, 0, "x"]}, "estimator.trees[0].threshold[2]"),
        ({"tree_categories": [[1, 70000], None, None]}, "estimator.trees[0].categories[0][1]"),
        ({"tree_output": 0}, "estimator.trees[0].output"),
        ({"tree_color": 1}, "estimator.trees[0].color"),
        ({"link": "logistic"}, "estimator.link"),
        ({"aggregation": "sum", "link": "logistic", "base": [0]}, "estimator.link"),
        ({"aggregation": "sum", "link": "identity"}, "estimator.base"),
        ({"n_outputs": 2}, "estimator.n_outputs"),
        ({"input_dtype": "float16"}, "estimator.input_dtype"),
        ({"trees": []}, "estimator.trees"),
        ({"known_categories": [{"feature": 3, "codes": [1]}]},
         "estimator.known_categories[0].feature"),
    ]
    problems = []
    for i, (change, field) in enumerate(bad):
        path = Path(tmpdir) / f"bad{i}.json"
        path.write_text(json.dumps(tiny_model(**change)))
        proc = subprocess.run([MLFCGI_BIN, "--model", str(path), "--check"],
                              capture_output=True, text=True, timeout=TIMEOUT)
        if proc.returncode != 1 or f"{field}:" not in proc.stderr:
            problems.append(f"{change}: exit {proc.returncode}, expected 1 naming {field}: "
                            f"{proc.stderr.strip()[:300]}")
    good = Path(tmpdir) / "good.json"
    good.write_text(json.dumps(tiny_model()))
    proc = subprocess.run([MLFCGI_BIN, "--model", str(good), "--check"],
                          capture_output=True, text=True, timeout=TIMEOUT)
    if proc.returncode != 0:
        problems.append(f"the well-formed tiny model fails: {proc.stderr.strip()[:300]}")
    tap.result(not problems, f"loader refuses {len(bad)} malformed tree models, naming the "
                             f"field", problems)


def check_exporter_refusals(tap):
    """Estimators the format cannot represent are refused, naming the parameter."""
    import numpy as np
    from sklearn import ensemble
    from sklearn.dummy import DummyClassifier
    from mlfcgi_export import ExportError, export_model
    X, y = load("breast_cancer")
    Xr, yr = load("diabetes")
    bad = [
        (ensemble.GradientBoostingClassifier(n_estimators=3, loss="exponential"), X, y,
         "loss='exponential'"),
        (ensemble.GradientBoostingClassifier(n_estimators=3, init=DummyClassifier()), X, y,
         "init=DummyClassifier"),
        (ensemble.GradientBoostingRegressor(n_estimators=3, loss="huber"), Xr, yr,
         "loss='huber'"),
        (ensemble.HistGradientBoostingRegressor(max_iter=3, loss="absolute_error"), Xr, yr,
         "loss='absolute_error'"),
        (ensemble.RandomForestRegressor(3), Xr, np.column_stack([yr, yr]), "n_outputs_=2"),
    ]
    problems = []
    for est, X_fit, y_fit, needle in bad:
        est.fit(X_fit, y_fit)
        try:
            export_model(est, name="bad", version="1")
            problems.append(f"{type(est).__name__} ({needle}) was exported")
        except ExportError as e:
            if needle not in str(e) or type(est).__name__ not in str(e):
                problems.append(f"message {e!s} does not name {type(est).__name__} and {needle}")
    tap.result(not problems, f"exporter refuses {len(bad)} unsupported estimators, naming the "
                             f"parameter", problems)


def check_forest_size(tap, tmpdir):
    """A 100-tree RandomForestClassifier on digits exports to a file of reasonable size."""
    from sklearn import ensemble
    from mlfcgi_export import export_model, write_model
    X, y = load("digits")
    est = ensemble.RandomForestClassifier(100, random_state=0).fit(X, y)
    path = Path(tmpdir) / "forest.json"
    write_model(export_model(est, name="forest", version="1"), str(path))
    size = path.stat().st_size
    nodes = sum(t.tree_.node_count for t in est.estimators_)
    tap.result(size <= FOREST_LIMIT_BYTES,
               f"100-tree RandomForestClassifier on digits ({nodes} nodes): "
               f"{size / 1e6:.1f} MB (limit {FOREST_LIMIT_BYTES / 1e6:.0f} MB)")


# ---------------------------------------------------------------- main

def main():
    """Run every case; exit 1 if any failed."""
    status = unready()
    if status is not None:
        return status
    warnings.simplefilter("ignore", FutureWarning)
    all_cases = cases()
    tap = Tap(len(all_cases) + 3)
    with tempfile.TemporaryDirectory(prefix="mlfcgi-fidelity-trees-") as tmpdir:
        for description, thunk in all_cases:
            guarded(tap, description, run_case, tap, description, thunk, tmpdir)
        guarded(tap, "loader refusals", check_loader_refusals, tap, tmpdir)
        guarded(tap, "exporter refusals", check_exporter_refusals, tap)
        guarded(tap, "forest size", check_forest_size, tap, tmpdir)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
