#!/usr/bin/python3
"""fidelity_xgboost: TAP test that mlfcgi --predict matches XGBoost to 1e-6, missing values too.

Two routes: XGBoost's own JSON model file (Booster.save_model) given to
--model as it is, and XGBClassifier / XGBRegressor exported by mlfcgi-export.
Every data set has about 12% of its values missing (NaN, sent as null).
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fidelity_lib import (  # noqa: E402
    Comparison, MLFCGI_BIN, SRCDIR, Tap, unready)

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

REL_TOL = 1e-6
ABS_TOL = 1e-12
MISSING_RATE = 0.12
ROUNDS = 30
MAX_DIAGNOSTICS = 10
TIMEOUT = 60


# ---------------------------------------------------------------- TAP

# ---------------------------------------------------------------- data

def with_missing(X, seed):
    """Return a float copy of X with MISSING_RATE of its values set to NaN."""
    import numpy as np
    X = np.array(X, dtype=np.float64)
    X[np.random.RandomState(seed).rand(*X.shape) < MISSING_RATE] = np.nan
    return X


def split(X, y, n_test=60, seed=0):
    """Deterministic split: (X_train, y_train, X_test)."""
    import numpy as np
    order = np.random.RandomState(seed).permutation(len(X))
    return X[order[n_test:]], y[order[n_test:]], X[order[:n_test]]


def dataset(name):
    """Return (X with NaNs, y, feature names or None) for a bundled or generated data set."""
    from sklearn import datasets
    if name == "iris":
        X, y = datasets.load_iris(return_X_y=True)
    elif name == "breast_cancer":
        X, y = datasets.load_breast_cancer(return_X_y=True)
    elif name == "diabetes":
        X, y = datasets.load_diabetes(return_X_y=True)
    else:
        X, y = datasets.make_classification(n_samples=500, n_features=12, n_informative=6,
                                            n_classes=4, random_state=3)
    return with_missing(X, seed=len(name)), y


# ---------------------------------------------------------------- running mlfcgi

def rows_file(path, X, names):
    """Write X as --predict input: even rows {"features": [...]}, odd rows by name; NaN is null."""
    with open(path, "w") as f:
        for i, x in enumerate(X):
            values = [None if math.isnan(v) else float(v) for v in x]
            doc = {"features": values} if i % 2 == 0 else dict(zip(names, values))
            f.write(json.dumps(doc) + "\n")


def score(model_path, X, names, tmpdir):
    """Run mlfcgi --model model_path --predict on X; return the decoded output lines."""
    rows = Path(tmpdir) / "rows.jsonl"
    rows_file(rows, X, names)
    proc = subprocess.run([MLFCGI_BIN, "--model", str(model_path), "--predict", str(rows)],
                          capture_output=True, text=True, timeout=TIMEOUT)
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    if proc.returncode != 0 or len(out) != len(X):
        bad = [o for o in out if "detail" in o][:3]
        raise RuntimeError(f"mlfcgi --predict exited {proc.returncode} with {len(out)} lines "
                           f"for {len(X)} rows: {proc.stderr.strip()[:300]} {bad}")
    return out


# ---------------------------------------------------------------- comparing

def compare(out, model_name, labels, proba, values):
    """Compare mlfcgi's lines with the library's labels and probabilities, or values."""
    cmp = Comparison(REL_TOL, ABS_TOL, "XGBoost")
    for row, body in enumerate(out):
        cmp.equal(row, "model", model_name, body.get("model"))
        if values is not None:
            cmp.number(row, "prediction", values[row], body.get("prediction"))
            continue
        cmp.equal(row, "prediction", int(labels[row]), body.get("prediction"))
        cmp.equal(row, "label", str(int(labels[row])), body.get("label"))
        probs = body.get("probabilities") or {}
        if sorted(probs) != sorted(str(k) for k in range(len(proba[row]))):
            cmp.problems.append(f"row {row}: probabilities {probs!r}")
            continue
        for k, p in enumerate(proba[row]):
            cmp.number(row, f"probabilities[{k}]", p, probs[str(k)])
    return cmp


def report(tap, description, rows, cmp):
    """Emit the TAP line for one comparison."""
    summary = (f"{description}: {rows} rows (max rel err {cmp.max_rel:.2g}, max abs err "
               f"{cmp.max_abs:.2g}, {cmp.identical}/{cmp.numbers} numbers bit-identical)")
    shown = cmp.problems[:MAX_DIAGNOSTICS]
    if len(cmp.problems) > len(shown):
        shown.append(f"... and {len(cmp.problems) - len(shown)} more mismatches")
    tap.result(not cmp.problems, summary, shown)


# ---------------------------------------------------------------- Booster JSON, loaded as it is

def booster_reference(booster, X, objective):
    """Return (labels, proba, values) as XGBoost predicts X (float32; the classifier's rules)."""
    import numpy as np
    import xgboost as xgb
    from scipy.special import softmax
    d = xgb.DMatrix(X)
    pred = booster.predict(d)
    if objective == "multi:softprob":
        return np.argmax(pred, axis=1), pred, None
    if objective == "multi:softmax":
        return pred.astype(int), softmax(booster.predict(d, output_margin=True), axis=1), None
    if objective == "binary:logistic":
        return (pred > 0.5).astype(int), np.vstack((1.0 - pred, pred)).T, None
    return None, None, pred


def booster_case(tap, tmpdir, data, objective, file_name, model_name, params=None,
                 feature_names=None, target=None):
    """Train with xgb.train, save_model to file_name, load that file in mlfcgi, compare."""
    import xgboost as xgb
    X, y = dataset(data)
    if target is not None:
        y = target(y)
    X_train, y_train, X_test = split(X, y)
    p = {"objective": objective, "max_depth": 5, "eta": 0.3, "nthread": 1, "seed": 0}
    if objective.startswith("multi:"):
        p["num_class"] = int(y.max()) + 1
    p.update(params or {})
    dtrain = xgb.DMatrix(X_train, label=y_train, feature_names=feature_names)
    booster = xgb.train(p, dtrain, ROUNDS)
    path = Path(tmpdir) / file_name
    booster.save_model(str(path))
    # mlfcgi's names: the saved ones with characters outside [A-Za-z0-9_.-] as _.
    names = [n.replace(" ", "_") for n in feature_names or
             [f"f{i}" for i in range(X.shape[1])]]
    if feature_names:
        booster.feature_names = None  # predict on a plain DMatrix
    labels, proba, values = booster_reference(booster, X_test, objective)
    out = score(path, X_test, names, tmpdir)
    extra = f", {', '.join(f'{k}={v}' for k, v in params.items())}" if params else ""
    report(tap, f"{data} {objective}{extra}: {file_name} loaded directly", len(X_test),
           compare(out, model_name, labels, proba, values))


def booster_cases():
    """Return [(description, function(tap, tmpdir))] for XGBoost's own JSON files."""
    import numpy as np

    def unit(y):
        return (y - y.min()) / (y.max() - y.min())

    def counts(y):
        return np.round(y / 25.0)

    cancer_names = [f"c{i}_x" for i in range(30)]
    blob_names = [f"feat {i}" for i in range(12)]
    cases = [
        ("iris", "multi:softprob", "iris-softprob.json", "iris-softprob", None, None, None),
        ("iris", "multi:softmax", "iris-softmax.json", "iris-softmax", None, None, None),
        ("breast_cancer", "binary:logistic", "cancer.json", "cancer", {"base_score": 0.3},
         cancer_names, None),
        ("breast_cancer", "binary:logistic", "breast cancer (v2).json", "breast_cancer__v2_",
         None, None, None),
        ("blobs", "multi:softprob", "blobs.json", "blobs", {"max_depth": 6}, blob_names, None),
        ("diabetes", "reg:squarederror", "diabetes.json", "diabetes", None, None, None),
        ("diabetes", "reg:logistic", "diabetes-logistic.json", "diabetes-logistic",
         {"base_score": 0.4}, None, unit),
        ("diabetes", "count:poisson", "diabetes-poisson.json", "diabetes-poisson", None, None,
         counts),
        ("diabetes", "reg:gamma", "diabetes-gamma.json", "diabetes-gamma", None, None, None),
        ("diabetes", "reg:tweedie", "diabetes-tweedie.json", "diabetes-tweedie",
         {"tweedie_variance_power": 1.5}, None, None),
        ("diabetes", "reg:pseudohubererror", "diabetes-huber.json", "diabetes-huber",
         {"huber_slope": 30.0}, None, None),
        ("diabetes", "reg:absoluteerror", "diabetes-mae.json", "diabetes-mae", None, None, None),
        ("diabetes", "reg:squaredlogerror", "diabetes-sle.json", "diabetes-sle", None, None,
         None),
    ]
    out = []
    for data, obj, file_name, model_name, params, names, target in cases:
        def run(tap, tmpdir, a=(data, obj, file_name, model_name, params, names, target)):
            booster_case(tap, tmpdir, *a[:4], params=a[4], feature_names=a[5], target=a[6])
        out.append((f"{data} {obj} ({file_name})", run))
    return out


# ---------------------------------------------------------------- scikit-learn API, exported

def export_case(tap, tmpdir, description, data, make, fit_kwargs=None, target=None,
                feature_names=None):
    """Fit an XGBoost scikit-learn model, save it with joblib, export it, compare.

    With feature_names (set on the fitted booster, as fitting on a DataFrame does, and
    expected in the model file) the export runs the mlfcgi-export command; otherwise
    export_model() in this process, which is faster.
    """
    import joblib
    from mlfcgi_export import export_model, write_model
    X, y = dataset(data)
    if target is not None:
        y = target(y)
    X_train, y_train, X_test = split(X, y)
    est = make()
    kwargs = dict(fit_kwargs or {})
    if kwargs.pop("early_stopping", False):
        X_train, X_val = X_train[:-80], X_train[-80:]
        y_train, y_val = y_train[:-80], y_train[-80:]
        kwargs["eval_set"] = [(X_val, y_val)]
        kwargs["verbose"] = False
    est.fit(X_train, y_train, **kwargs)
    if type(est).__name__.endswith("Classifier"):
        labels, proba, values = est.predict(X_test), est.predict_proba(X_test), None
    else:
        labels, proba, values = None, None, est.predict(X_test)
    if feature_names:
        est.get_booster().feature_names = feature_names
    name = description.split()[0] + "-exported"
    pickled, path = Path(tmpdir) / f"{name}.joblib", Path(tmpdir) / f"{name}.json"
    joblib.dump(est, pickled)
    if feature_names:
        proc = subprocess.run([sys.executable, str(SRCDIR / "tools" / "mlfcgi-export"),
                               str(pickled), "-o", str(path), "--name", name, "--version", "1"],
                              capture_output=True, text=True, timeout=TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"mlfcgi-export exited {proc.returncode}: {proc.stderr.strip()}")
    else:
        write_model(export_model(joblib.load(pickled), name=name, version="1"), str(path))
    model = json.loads(path.read_text())
    names = [f["name"] for f in model["features"]]
    if feature_names and names != feature_names:
        tap.result(False, f"{description}: feature names", [f"{names} != {feature_names}"])
        return
    if not all(f.get("nullable") for f in model["features"]):
        tap.result(False, f"{description}: exported features are not nullable",
                   [f"features[0] = {model['features'][0]}: mlfcgi_export.export_model must "
                    f"make every feature nullable when a converter's notes ask for it "
                    f"(\"_nullable\": True, see tools/mlfcgi_export_xgboost.py)"])
        return
    out = score(path, X_test, names, tmpdir)
    cmp = compare(out, name, labels, proba, values)
    rounds = model["metadata"].get("boosting_rounds")
    report(tap, f"{description} ({rounds} rounds) exported", len(X_test), cmp)


def export_cases():
    """Return [(description, function(tap, tmpdir))] for exported scikit-learn API models."""
    import numpy as np
    import xgboost as xgb
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.datasets import load_breast_cancer
    common = dict(n_estimators=ROUNDS, max_depth=5, n_jobs=1, random_state=0)
    cancer_names = [f.replace(" ", "_") for f in load_breast_cancer().feature_names]
    cases = [
        ("iris XGBClassifier (multi:softprob)", "iris",
         lambda: xgb.XGBClassifier(**common), None, None),
        ("iris XGBClassifier(objective=multi:softmax)", "iris",
         lambda: xgb.XGBClassifier(objective="multi:softmax", **common), None, None),
        ("breast_cancer XGBClassifier (binary:logistic, feature names)", "breast_cancer",
         lambda: xgb.XGBClassifier(**common), None, None, cancer_names),
        ("blobs XGBClassifier with early stopping", "blobs",
         lambda: xgb.XGBClassifier(early_stopping_rounds=3, **dict(common, n_estimators=200)),
         {"early_stopping": True}, None),
        ("diabetes XGBRegressor (reg:squarederror)", "diabetes",
         lambda: xgb.XGBRegressor(**common), None, None),
        ("diabetes XGBRegressor(objective=reg:logistic)", "diabetes",
         lambda: xgb.XGBRegressor(objective="reg:logistic", **common), None,
         lambda y: (y - y.min()) / (y.max() - y.min())),
        ("diabetes XGBRegressor(objective=count:poisson)", "diabetes",
         lambda: xgb.XGBRegressor(objective="count:poisson", **common), None,
         lambda y: np.round(y / 25.0)),
        ("iris XGBRFClassifier", "iris",
         lambda: xgb.XGBRFClassifier(n_estimators=20, max_depth=4, n_jobs=1, random_state=0),
         None, None),
        ("diabetes Pipeline(StandardScaler, XGBRegressor)", "diabetes",
         lambda: make_pipeline(StandardScaler(), xgb.XGBRegressor(**common)), None, None),
    ]
    out = []
    for description, data, make, fit_kwargs, target, *names in cases:
        def run(tap, tmpdir, a=(description, data, make, fit_kwargs, target, names)):
            export_case(tap, tmpdir, *a[:3], fit_kwargs=a[3], target=a[4],
                        feature_names=a[5][0] if a[5] else None)
        out.append((description, run))
    return out


# ---------------------------------------------------------------- refusals

def refusal_cases():
    """Return [(description, function(tap, tmpdir))]: what cannot be served is refused, by name."""
    return [("unsupported Booster files are refused naming the field", check_refused_files),
            ("unsupported XGBoost estimators are refused naming the parameter",
             check_refused_exports)]


def check_refused_files(tap, tmpdir):
    """dart, an unsupported objective and a categorical split: mlfcgi --check names the field."""
    import xgboost as xgb
    X, y = dataset("breast_cancer")
    dtrain = xgb.DMatrix(X, label=y)
    base = {"max_depth": 3, "nthread": 1}
    problems = []
    for params, field in (({"booster": "dart"}, "learner.gradient_booster.name"),
                          ({"objective": "binary:hinge"}, "learner.objective.name")):
        path = Path(tmpdir) / "refused.json"
        xgb.train({**base, "objective": "binary:logistic", **params}, dtrain, 3).save_model(
            str(path))
        problems += expect_refused(path, field)
    doc = json.loads(xgb.train(dict(base, objective="binary:logistic"), dtrain, 3)
                     .save_raw("json"))
    doc["learner"]["gradient_booster"]["model"]["trees"][1]["split_type"][0] = 1
    path = Path(tmpdir) / "categorical.json"
    path.write_text(json.dumps(doc))
    problems += expect_refused(path, "learner.gradient_booster.model.trees[1].split_type")
    doc["learner"]["gradient_booster"]["model"]["trees"][1]["split_type"][0] = 0
    doc["learner"]["gradient_booster"]["model"]["trees"][2]["left_children"][0] = 0
    path.write_text(json.dumps(doc))
    problems += expect_refused(path, "learner.gradient_booster.model.trees[2].left_children[0]")
    # A minor version too large for an int (found by fuzz_model).
    doc = json.loads(xgb.train(dict(base, objective="binary:logistic"), dtrain, 3)
                     .save_raw("json"))
    doc["version"] = [2, 133333333335, 0]
    path.write_text(json.dumps(doc))
    problems += expect_refused(path, "version")
    tap.result(not problems, "unsupported or broken Booster files are refused naming the field",
               problems)


def expect_refused(path, field):
    """Return [] if mlfcgi --check refuses path with a message naming field, else a problem."""
    proc = subprocess.run([MLFCGI_BIN, "--model", str(path), "--check"], capture_output=True,
                          text=True, timeout=TIMEOUT)
    if proc.returncode == 1 and field in proc.stderr:
        return []
    return [f"{path.name}: expected exit 1 naming {field}, got {proc.returncode}: "
            f"{proc.stderr.strip()[:300]}"]


def check_refused_exports(tap, tmpdir):
    """missing=0, booster=dart, binary:logitraw: ExportError naming the parameter."""
    import xgboost as xgb
    from mlfcgi_export import ExportError, export_model
    X, y = dataset("breast_cancer")
    problems = []
    for kwargs, word in (({"missing": 0.0}, "missing"), ({"booster": "dart"}, "booster"),
                         ({"objective": "binary:logitraw"}, "objective")):
        est = xgb.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1, **kwargs).fit(X, y)
        try:
            export_model(est, name="refused", version="1")
            problems.append(f"XGBClassifier({kwargs}) was exported")
        except ExportError as e:
            if f"XGBClassifier({word}=" not in str(e):
                problems.append(f"XGBClassifier({kwargs}): message {e} does not name {word}")
    tap.result(not problems, "unsupported XGBoost estimators are refused naming the parameter",
               problems)


# ---------------------------------------------------------------- main

def main():
    """Run every case; exit 1 if any failed."""
    status = unready((("sklearn", "python3-sklearn"), ("xgboost", "python3-xgboost")))
    if status is not None:
        return status
    cases = booster_cases() + export_cases() + refusal_cases()
    tap = Tap(len(cases))
    with tempfile.TemporaryDirectory(prefix="mlfcgi-xgboost-") as tmpdir:
        for description, run in cases:
            number = tap.number
            try:
                run(tap, tmpdir)
            except Exception:  # a crash in one case must not hide the others
                if tap.number == number:
                    tap.result(False, f"{description}: error", [traceback.format_exc()])
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
