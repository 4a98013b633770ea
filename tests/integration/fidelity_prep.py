#!/usr/bin/python3
"""fidelity_prep: TAP test that mlfcgi --predict matches scikit-learn Pipelines with scalers,
SimpleImputer (null = NaN), OneHotEncoder (string categories) and ColumnTransformer, to 1e-9.

Each case fits a Pipeline on a bundled or synthetic data set, exports it with
mlfcgi-export, scores held-out rows (missing values sent as null, categories as
strings, unknown ones included where the encoder ignores them) and compares
labels, probabilities, decision values and regression outputs with the library.
Then: the 422s an unknown category, a number or a null get from an encoder that
raises; the exporter's refusals; the audit row of a categorical request.
"""

import importlib.util
import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fidelity_lib import (  # noqa: E402
    Comparison, MLFCGI_BIN, PASSTHROUGH_ENV, Tap, guarded, plain, unready)

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

REL_TOL = 1e-9
ABS_TOL = 1e-12
N_TEST = 60
MAX_DIAGNOSTICS = 10
TIMEOUT = 60


CITIES = ["Paris", "Oslo", "Rome", "Lima"]
PLANS = ["basic", "pro"]
MIXED_NAMES = ["age", "city", "income", "plan", "score", "noise"]


# ---------------------------------------------------------------- TAP

# ---------------------------------------------------------------- data

def rng(seed):
    import numpy as np
    return np.random.RandomState(seed)


def split(X, y, n_test=N_TEST, seed=0):
    """Deterministic split: (X_train, y_train, X_test)."""
    order = rng(seed).permutation(len(X))
    return X[order[n_test:]], y[order[n_test:]], X[order[:n_test]]


def with_missing(X, rate, seed, columns=None):
    """Return a float copy of X with about rate of the values (in columns) set to NaN."""
    import numpy as np
    X = np.array(X, dtype=np.float64)
    mask = rng(seed).rand(*X.shape) < rate
    if columns is not None:
        keep = np.ones(X.shape[1], dtype=bool)
        keep[columns] = False
        mask[:, keep] = False
    X[mask] = np.nan
    return X


def bundled(name):
    """Return (X, y, feature names) of a bundled data set, names made valid."""
    from sklearn import datasets
    data = getattr(datasets, f"load_{name}")()
    names = [str(n).replace(" ", "_").replace("(", "").replace(")", "").replace("/", "_")
             for n in data.feature_names]
    return data.data, data.target, names


def mixed(n, seed, task, missing=True):
    """A synthetic table with numbers, string categories and missing values.

    Columns: age (number, NaN), city (string, NaN), income (number, NaN),
    plan (string), score (integer 0-9), noise (number). Returns (X object array, y).
    """
    import numpy as np
    r = rng(seed)
    age = r.normal(40, 12, n)
    city = r.choice(CITIES, n).astype(object)
    income = r.lognormal(3, 0.5, n)
    plan = r.choice(PLANS, n).astype(object)
    score = r.randint(0, 10, n).astype(np.float64)
    noise = r.normal(size=n)
    signal = (0.05 * (age - 40) + 0.8 * (city == "Oslo") - 0.6 * (city == "Lima")
              + 0.02 * income + 0.7 * (plan == "pro") + 0.1 * score + 0.3 * r.normal(size=n))
    if missing:
        age[r.rand(n) < 0.1] = np.nan
        city[r.rand(n) < 0.08] = np.nan
        income[r.rand(n) < 0.06] = np.nan
    X = np.empty((n, 6), dtype=object)
    for j, col in enumerate([age, city, income, plan, score, noise]):
        X[:, j] = col
    if task == "classification":
        y = np.digitize(signal, np.quantile(signal, [0.4, 0.75]))  # 3 classes
    else:
        y = 10 * signal + 3
    return X, y


def with_unknown(X, column, every=5, value="Berlin"):
    """Return a copy of X with an unseen category in every few rows of a string column."""
    X = X.copy()
    X[::every, column] = value
    return X


# ---------------------------------------------------------------- mlfcgi

def request_value(x):
    """The JSON value of one cell: null for NaN/None, strings as they are, else a float."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    if isinstance(x, str):
        return x
    return float(x)


def rows_file(path, X, names):
    """Write X as JSON lines: even rows positional, odd rows by name."""
    with open(path, "w") as f:
        for i, row in enumerate(X):
            values = [request_value(x) for x in row]
            doc = {"features": values} if i % 2 == 0 else dict(zip(names, values))
            f.write(json.dumps(doc) + "\n")


def score(model_path, X, names, tmpdir):
    """Run mlfcgi --predict over X; return the list of answers (one dict per row)."""
    rows = Path(tmpdir) / "rows.jsonl"
    rows_file(rows, X, names)
    proc = subprocess.run([MLFCGI_BIN, "--model", str(model_path), "--predict", str(rows)],
                          capture_output=True, text=True, timeout=TIMEOUT)
    out = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if len(out) != len(X):
        raise RuntimeError(f"mlfcgi --predict: {len(out)} answers for {len(X)} rows "
                           f"(status {proc.returncode}): {proc.stderr.strip()[:400]}")
    return out


# ---------------------------------------------------------------- comparing

def compare(out, model, estimator, X):
    """Compare mlfcgi's answers with estimator on X; return a Comparison."""
    import numpy as np
    cmp = Comparison(REL_TOL, ABS_TOL)
    labels = estimator.predict(X)
    classification = model["task"] == "classification"
    proba = estimator.predict_proba(X) if classification else None
    decision = estimator.decision_function(X) if classification else None
    for row, body in enumerate(out):
        if "detail" in body:
            cmp.problems.append(f"row {row}: refused: {json.dumps(body)[:300]}")
            continue
        if not classification:
            cmp.number(row, "prediction", labels[row], body.get("prediction"))
            continue
        cmp.equal(row, "prediction", plain(labels[row]), body.get("prediction"))
        probs = body.get("probabilities") or {}
        for name, p in zip([str(c) for c in model["classes"]], proba[row]):
            cmp.number(row, f"probabilities[{name}]", p, probs.get(name))
        got = body.get("decision_function")
        if got is None:  # only estimators that declare decision scores give them
            continue
        want = np.atleast_1d(decision[row])
        got = [got] if not isinstance(got, list) else got
        if len(got) != len(want):
            cmp.problems.append(f"row {row}: decision_function {got!r}, expected {want!r}")
            continue
        for k, (w, g) in enumerate(zip(want, got)):
            cmp.number(row, f"decision_function[{k}]", w, g)
    return cmp


def report(tap, description, rows, cmp):
    summary = (f"{description}: {rows} rows match scikit-learn "
               f"(max rel err {cmp.max_rel:.2g}, max abs err {cmp.max_abs:.2g})")
    shown = cmp.problems[:MAX_DIAGNOSTICS]
    if len(cmp.problems) > len(shown):
        shown.append(f"... and {len(cmp.problems) - len(shown)} more mismatches")
    tap.result(not cmp.problems, summary, shown)


def export(estimator, tmpdir, name, **kwargs):
    """Export estimator to tmpdir/name.json; return (path, model document)."""
    from mlfcgi_export import export_model, write_model
    model = export_model(estimator, name, "1", **kwargs)
    path = Path(tmpdir) / f"{name}.json"
    write_model(model, str(path))
    return path, model


def run_case(tap, tmpdir, description, make):
    """make() -> (fitted estimator, X_test, names, export kwargs, check(model) -> problems)."""
    estimator, X_test, names, kwargs, check = make()
    name = "case-" + str(tap.number + 1)
    path, model = export(estimator, tmpdir, name, feature_names=names, **kwargs)
    out = score(path, X_test, [f["name"] for f in model["features"]], tmpdir)
    cmp = compare(out, model, estimator, X_test)
    if check is not None:
        cmp.problems.extend(check(model))
    report(tap, description, len(X_test), cmp)


# ---------------------------------------------------------------- cases

def fitted(pipe, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pipe.fit(X, y)


def numeric_case(data, pipe, missing=0.0, stretch=False, check=None):
    """A bundled data set through pipe; missing: rate of NaNs; stretch: scale half the
    test rows by 1.5 (out of the training range, for clipping)."""
    def make():
        X, y, names = bundled(data)
        if missing:
            X = with_missing(X, missing, seed=1)
        X_train, y_train, X_test = split(X, y)
        if stretch:
            X_test = X_test.copy()
            X_test[::2] *= 1.5
        return fitted(pipe, X_train, y_train), X_test, names, {}, check
    return make


def mixed_case(task, pipe, unknown=False, missing=True, check=None, n=600):
    """The synthetic mixed table through pipe; unknown: unseen cities in the test rows, and
    plans missing (null) though training had none."""
    def make():
        X, y = mixed(n, seed=3, task=task, missing=missing)
        X_train, y_train, X_test = split(X, y)
        if unknown:
            X_test = with_unknown(X_test, 1)
            X_test[1::6, 3] = float("nan")
        return fitted(pipe, X_train, y_train), X_test, MIXED_NAMES, {}, check
    return make


def expect_features(**kinds):
    """A check that features have the given type / nullable / unknown, e.g.
    city=("category", True, "ignore")."""
    def check(model):
        problems = []
        by_name = {f["name"]: f for f in model["features"]}
        for name, (ftype, nullable, unknown) in kinds.items():
            f = by_name[name]
            got = (f["type"], f.get("nullable", False), f.get("unknown"))
            if got != (ftype, nullable, unknown):
                problems.append(f"feature {name}: (type, nullable, unknown) {got}, "
                                f"expected {(ftype, nullable, unknown)}")
        return problems
    return check


def width_check(step_type, width):
    """A check that the first step has the given type and the estimator width."""
    def check(model):
        steps = model.get("preprocessing", [])
        coef = model["estimator"]["coef"]
        n = len(coef[0]) if isinstance(coef[0], list) else len(coef)
        if not steps or steps[0]["type"] != step_type or n != width:
            return [f"expected a {step_type} first and {width} estimator inputs, got "
                    f"{[s['type'] for s in steps]} and {n}"]
        return []
    return check


def scaler_cases():
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
    lr = lambda: LogisticRegression(max_iter=5000)  # noqa: E731
    return [
        ("wine Pipeline(MinMaxScaler, LogisticRegression)",
         numeric_case("wine", make_pipeline(MinMaxScaler(), lr()))),
        ("diabetes Pipeline(MinMaxScaler(feature_range=(-1, 1), clip=True), Ridge), "
         "half the rows out of range",
         numeric_case("diabetes", make_pipeline(MinMaxScaler((-1, 1), clip=True), Ridge()),
                      stretch=True)),
        ("breast_cancer Pipeline(MaxAbsScaler, LogisticRegression)",
         numeric_case("breast_cancer", make_pipeline(MaxAbsScaler(), lr()))),
        ("iris Pipeline(RobustScaler, LogisticRegression)",
         numeric_case("iris", make_pipeline(RobustScaler(), lr()))),
        ("diabetes Pipeline(RobustScaler(with_centering=False, quantile_range=(10, 90)), "
         "LinearRegression)",
         numeric_case("diabetes", make_pipeline(
             RobustScaler(with_centering=False, quantile_range=(10, 90)), LinearRegression()))),
        ("wine Pipeline(RobustScaler(with_scaling=False), StandardScaler, MinMaxScaler, "
         "LogisticRegression)",
         numeric_case("wine", make_pipeline(RobustScaler(with_scaling=False), StandardScaler(),
                                            MinMaxScaler(), lr()))),
    ]


def imputer_cases():
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    lr = lambda: LogisticRegression(max_iter=5000)  # noqa: E731
    nullable = lambda *names: expect_features(  # noqa: E731
        **{n: ("number", True, None) for n in names})
    return [
        ("breast_cancer (10% null) Pipeline(SimpleImputer(mean), StandardScaler, "
         "LogisticRegression)",
         numeric_case("breast_cancer", make_pipeline(SimpleImputer(), StandardScaler(), lr()),
                      missing=0.1, check=nullable("mean_radius", "worst_symmetry"))),
        ("diabetes (10% null) Pipeline(SimpleImputer(median), Ridge)",
         numeric_case("diabetes", make_pipeline(SimpleImputer(strategy="median"), Ridge()),
                      missing=0.1, check=nullable("age", "s6"))),
        ("wine (15% null) Pipeline(SimpleImputer(most_frequent, add_indicator=True), "
         "StandardScaler, LogisticRegression)",
         numeric_case("wine", make_pipeline(
             SimpleImputer(strategy="most_frequent", add_indicator=True), StandardScaler(),
             lr()), missing=0.15)),
        ("diabetes (10% null) Pipeline(SimpleImputer(constant, fill_value=-1), "
         "LinearRegression)",
         numeric_case("diabetes", make_pipeline(
             SimpleImputer(strategy="constant", fill_value=-1), LinearRegression()),
             missing=0.1)),
        ("iris (10% null) Pipeline(StandardScaler, SimpleImputer(mean), LogisticRegression): "
         "null passes the scaler",
         numeric_case("iris", make_pipeline(StandardScaler(), SimpleImputer(), lr()),
                      missing=0.1, check=nullable("sepal_length_cm"))),
    ]


def empty_column_case():
    """An imputer drops a column never seen in training: the estimator is one narrower."""
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    def make():
        X, y, names = bundled("iris")
        X = with_missing(X, 0.1, seed=2)
        X[:, 2] = np.nan
        X_train, y_train, X_test = split(X, y)
        pipe = make_pipeline(SimpleImputer(add_indicator=True), LogisticRegression(max_iter=5000))
        # 3 kept columns + indicators for the columns with missing values (all 4)
        return fitted(pipe, X_train, y_train), X_test, names, {}, width_check(
            "simple_imputer", 7)
    return ("iris, petal_length never seen: Pipeline(SimpleImputer(add_indicator=True), "
            "LogisticRegression) drops it", make)


def encoder_cases():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
    lr = lambda: LogisticRegression(max_iter=5000)  # noqa: E731
    num = lambda: make_pipeline(SimpleImputer(), StandardScaler())  # noqa: E731
    return [
        ("mixed: ColumnTransformer(num=Pipeline(SimpleImputer, StandardScaler), "
         "cat=OneHotEncoder(handle_unknown=ignore), remainder=passthrough), LogisticRegression; "
         "unknown and null cities",
         mixed_case("classification", make_pipeline(ColumnTransformer(
             [("num", num(), [0, 2]), ("cat", OneHotEncoder(handle_unknown="ignore"), [1, 3])],
             remainder="passthrough"), lr()), unknown=True,
             check=expect_features(city=("category", True, "ignore"),
                                   plan=("category", True, "ignore"),
                                   age=("number", True, None),
                                   score=("number", False, None)))),
        ("mixed: ColumnTransformer(cat=Pipeline(SimpleImputer(constant), "
         "OneHotEncoder(handle_unknown=error)), num=Pipeline(SimpleImputer(median), "
         "MinMaxScaler), remainder=drop), LinearRegression",
         mixed_case("regression", make_pipeline(ColumnTransformer(
             [("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                    OneHotEncoder()), [1, 3]),
              ("num", make_pipeline(SimpleImputer(strategy="median"), MinMaxScaler()), [0, 2])],
             remainder="drop"), LinearRegression()),
             check=expect_features(city=("category", True, "error"),
                                   plan=("category", False, "error"),
                                   noise=("number", True, None)))),
        ("mixed: ColumnTransformer(cat=Pipeline(SimpleImputer(most_frequent), "
         "OneHotEncoder(drop=first)), score=OneHotEncoder(handle_unknown=ignore) on numbers, "
         "num, remainder=drop), Ridge",
         mixed_case("regression", make_pipeline(ColumnTransformer(
             [("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                    OneHotEncoder(drop="first")), [1, 3]),
              ("score", OneHotEncoder(handle_unknown="ignore"), [4]),
              ("num", num(), [0, 2])], remainder="drop"), Ridge(alpha=0.3)))),
        ("mixed: OneHotEncoder(drop=if_binary) learns null as a category (no imputer), "
         "nested ColumnTransformer, LogisticRegression",
         mixed_case("classification", make_pipeline(ColumnTransformer(
             [("cat", OneHotEncoder(drop="if_binary", sparse_output=False), [1, 3]),
              ("inner", ColumnTransformer([("a", num(), [0]), ("b", "passthrough", [1])]),
               [0, 4]),
              ("income", num(), [2])], remainder="drop"), lr()),
             check=expect_features(city=("category", True, "error")))),
    ]


def dataframe_case():
    """A pandas DataFrame with columns selected by name; feature names from the frame."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, RobustScaler

    def make():
        X, y = mixed(600, seed=5, task="regression")
        X_train, y_train, X_test = split(X, y)
        frame = lambda a: pd.DataFrame(a, columns=MIXED_NAMES).astype(  # noqa: E731
            {"age": float, "income": float, "score": float, "noise": float})
        pipe = make_pipeline(ColumnTransformer(
            [("num", make_pipeline(SimpleImputer(), RobustScaler()), ["age", "income", "noise"]),
             ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                   OneHotEncoder(handle_unknown="ignore")), ["city", "plan"])],
            remainder="passthrough"), Ridge())
        fitted(pipe, frame(X_train), y_train)
        # Score through a DataFrame; the names come from feature_names_in_.
        est = _FrameAdapter(pipe, frame)
        return est, with_unknown(X_test, 1, every=7), None, {}, None
    return ("pandas DataFrame: ColumnTransformer by column name (num=Pipeline(SimpleImputer, "
            "RobustScaler), cat=Pipeline(SimpleImputer(most_frequent), OneHotEncoder(ignore)), "
            "remainder=passthrough), Ridge", make)


class _FrameAdapter:
    """Exports the wrapped pipeline; predicts X (an object array) through a DataFrame."""

    def __init__(self, pipe, frame):
        self.pipe, self.frame = pipe, frame

    def predict(self, X):
        return self.pipe.predict(self.frame(X))


def all_cases():
    """Return [(description, make, runner)]."""
    cases = [(d, make, run_case) for d, make in
             scaler_cases() + imputer_cases() + [empty_column_case()] + encoder_cases()]
    if importlib.util.find_spec("pandas") is not None:  # Debian package python3-pandas
        cases.append(dataframe_case() + (run_dataframe_case,))
    return cases


def run_dataframe_case(tap, tmpdir, description, make):
    """As run_case, exporting the adapter's pipeline."""
    adapter, X_test, _, kwargs, check = make()
    path, model = export(adapter.pipe, tmpdir, "frame", **kwargs)
    names = [f["name"] for f in model["features"]]
    problems = [] if names == MIXED_NAMES else [f"feature names {names}"]
    out = score(path, X_test, names, tmpdir)
    cmp = compare(out, model, adapter, X_test)
    cmp.problems.extend(problems)
    report(tap, description, len(X_test), cmp)


# ---------------------------------------------------------------- 422s

def error_model(tmpdir):
    """The mixed table through OneHotEncoder(handle_unknown=error), no imputer for cities."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    X, y = mixed(400, seed=7, task="classification", missing=False)
    pipe = fitted(make_pipeline(ColumnTransformer(
        [("cat", OneHotEncoder(), [1, 3])], remainder="passthrough"),
        LogisticRegression(max_iter=5000)), X, y)
    path, model = export(pipe, tmpdir, "errors", feature_names=MIXED_NAMES)
    return pipe, path, model, X


def expected_enum(categories):
    quoted = [f"'{c}'" for c in categories]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def check_errors(tap, tmpdir):
    """Unknown category -> enum; a number -> string_type; null -> string_type; all at once."""
    pipe, path, model, X = error_model(tmpdir)
    cities = next(f for f in model["features"] if f["name"] == "city")["categories"]
    expected = expected_enum(cities)
    row = [request_value(x) for x in X[0]]
    lines = []
    doc = dict(zip(MIXED_NAMES, row), city="Berlin")
    lines.append((doc, [{"type": "enum", "loc": ["body", "city"],
                         "msg": f"Input should be {expected}", "input": "Berlin",
                         "ctx": {"expected": expected}}]))
    doc = {"features": row[:1] + ["Berlin"] + row[2:3] + [7] + row[4:]}
    lines.append((doc, [{"type": "enum", "loc": ["body", "features", 1],
                         "msg": f"Input should be {expected}", "input": "Berlin",
                         "ctx": {"expected": expected}},
                        {"type": "string_type", "loc": ["body", "features", 3],
                         "msg": "Input should be a valid string", "input": 7}]))
    doc = dict(zip(MIXED_NAMES, row), city=None)
    lines.append((doc, [{"type": "string_type", "loc": ["body", "city"],
                         "msg": "Input should be a valid string", "input": None}]))
    rows = Path(tmpdir) / "errors.jsonl"
    rows.write_text("".join(json.dumps(d) + "\n" for d, _ in lines))
    proc = subprocess.run([MLFCGI_BIN, "--model", str(path), "--predict", str(rows)],
                          capture_output=True, text=True, timeout=TIMEOUT)
    answers = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    problems = []
    if proc.returncode != 1:
        problems.append(f"exit status {proc.returncode}, expected 1")
    for i, ((_, want), got) in enumerate(zip(lines, answers)):
        if got.get("detail") != want:
            problems.append(f"line {i + 1}: {json.dumps(got)}\n  expected {json.dumps(want)}")
    if len(answers) != len(lines):
        problems.append(f"{len(answers)} answers for {len(lines)} lines")
    # scikit-learn agrees that these rows cannot be predicted
    bad = X[:1].copy()
    bad[0, 1] = "Berlin"
    try:
        pipe.predict(bad)
        problems.append("scikit-learn predicted an unknown city with handle_unknown='error'")
    except ValueError:
        pass
    ok_row = X[:1].copy()
    good = score(path, ok_row, MIXED_NAMES, tmpdir)
    if good[0].get("prediction") != plain(pipe.predict(ok_row)[0]):
        problems.append(f"known row: {good[0]}")
    tap.result(not problems, "OneHotEncoder(handle_unknown=error): unknown city is a 422 enum "
               "error, a number or null a string_type, all errors at once", problems)


# ---------------------------------------------------------------- refusals

def refusal_cases():
    """(description, pipeline factory, fit data kind, text the message must contain)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
    lr = lambda: LogisticRegression(max_iter=5000)  # noqa: E731
    return [
        ("infrequent categories", lambda: make_pipeline(ColumnTransformer(
            [("c", OneHotEncoder(min_frequency=0.3, handle_unknown="infrequent_if_exist"),
              [1])]), lr()), "min_frequency"),
        ("numeric OneHotEncoder raising on unknowns", lambda: make_pipeline(ColumnTransformer(
            [("c", OneHotEncoder(), [4])]), lr()), "handle_unknown='error'"),
        ("SimpleImputer(missing_values=-1)", lambda: make_pipeline(ColumnTransformer(
            [("c", SimpleImputer(missing_values=-1.0), [4])]), lr()), "missing_values"),
        ("transformer_weights", lambda: make_pipeline(ColumnTransformer(
            [("c", "passthrough", [4])], transformer_weights={"c": 2.0}), lr()),
         "transformer_weights"),
        ("FunctionTransformer", lambda: make_pipeline(ColumnTransformer(
            [("c", FunctionTransformer(), [4])]), lr()), "FunctionTransformer"),
    ]


def check_refusals(tap):
    from mlfcgi_export import ExportError, export_model
    X, y = mixed(200, seed=9, task="classification", missing=False)
    problems = []
    for description, make, needle in refusal_cases():
        try:
            export_model(fitted(make(), X, y), "refused", "1", feature_names=MIXED_NAMES)
            problems.append(f"{description}: exported")
        except ExportError as e:
            if needle not in str(e):
                problems.append(f"{description}: message {str(e)!r} lacks {needle!r}")
    tap.result(not problems, f"mlfcgi-export refuses {len(refusal_cases())} unsupported "
               f"preprocessing settings, naming the parameter", problems)


# ---------------------------------------------------------------- audit

def check_audit(tap, tmpdir):
    """The audit row's input shows category strings, {"unknown": true} and null."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    X, y = mixed(300, seed=11, task="classification")
    pipe = fitted(make_pipeline(ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), [1, 3]),
         ("num", SimpleImputer(), [0, 2, 4, 5])]), LogisticRegression(max_iter=5000)), X, y)
    path, _ = export(pipe, tmpdir, "audit", feature_names=MIXED_NAMES)
    db = Path(tmpdir) / "audit.db"
    bodies = [{"age": None, "city": "Oslo", "income": 20.5, "plan": "pro", "score": 3,
               "noise": 0.1},
              {"age": 30, "city": "Berlin", "income": None, "plan": "basic", "score": 0,
               "noise": -1}]
    for body in bodies:
        data = json.dumps(body).encode()
        env = {k: v for k, v in os.environ.items() if k in PASSTHROUGH_ENV}
        env.update(GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="POST",
                   CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(data)),
                   SCRIPT_NAME="/mlfcgi", PATH_INFO="/predict", QUERY_STRING="",
                   SERVER_PROTOCOL="HTTP/1.1", SERVER_NAME="localhost", SERVER_PORT="80",
                   REMOTE_ADDR="127.0.0.1", MLFCGI_AUDIT_DB=str(db))
        subprocess.run([MLFCGI_BIN, "--model", str(path)], input=data, env=env,
                       capture_output=True, timeout=TIMEOUT, check=True)
    with sqlite3.connect(db) as con:
        inputs = [json.loads(r[0]) for r in con.execute("SELECT input FROM predictions "
                                                        "ORDER BY id")]
    want = [dict(bodies[0], age=None, score=3.0),
            dict(bodies[1], city={"unknown": True}, age=30.0, score=0.0, noise=-1.0)]
    problems = [] if inputs == want else [f"audit inputs {inputs}", f"expected {want}"]
    tap.result(not problems, "audit log input: category strings, {\"unknown\": true} for an "
               "ignored unknown, null for missing", problems)


# ---------------------------------------------------------------- main

def main():
    status = unready()
    if status is not None:
        return status
    cases = all_cases()
    tap = Tap(len(cases) + 3)
    with tempfile.TemporaryDirectory(prefix="mlfcgi-fidelity-prep-") as tmpdir:
        for description, make, runner in cases:
            guarded(tap, description, runner, tap, tmpdir, description, make)
        guarded(tap, "422 errors", check_errors, tap, tmpdir)
        guarded(tap, "refusals", check_refusals, tap)
        guarded(tap, "audit", check_audit, tap, tmpdir)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
