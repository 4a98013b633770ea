#!/usr/bin/python3
"""fidelity: TAP test that mlfcgi in CGI mode predicts what scikit-learn predicts, to 1e-9."""

import difflib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fidelity_lib import (  # noqa: E402
    Comparison, MLFCGI_BIN, PASSTHROUGH_ENV, SRCDIR, Tap, guarded, unready)

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

REL_TOL = 1e-9
ABS_TOL = 1e-12
ROWS_PER_CASE = 40
MAX_DIAGNOSTICS = 10
TIMEOUT = 30


IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_BOUNDS = {
    "sepal_length": {"exclusiveMinimum": 0, "maximum": 10},
    "sepal_width": {"exclusiveMinimum": 0, "maximum": 10},
    "petal_length": {"minimum": 0, "maximum": 7},
    "petal_width": {"minimum": 0, "maximum": 3},
}


# ---------------------------------------------------------------- TAP

# ---------------------------------------------------------------- running mlfcgi

def cgi_env(length):
    """Return the CGI/1.1 environment for a POST /predict of length bytes."""
    env = {k: v for k, v in os.environ.items() if k in PASSTHROUGH_ENV}
    env.update(GATEWAY_INTERFACE="CGI/1.1", SERVER_PROTOCOL="HTTP/1.1",
               REQUEST_METHOD="POST", CONTENT_TYPE="application/json",
               CONTENT_LENGTH=str(length), SCRIPT_NAME="/mlfcgi", PATH_INFO="/predict",
               QUERY_STRING="", SERVER_NAME="localhost", SERVER_PORT="80",
               REMOTE_ADDR="127.0.0.1")
    return env


def parse_cgi(output):
    """Split CGI output into (status, {lower-case header: value}, body bytes)."""
    headers, rest = {}, output
    while True:
        line, newline, rest = rest.partition(b"\n")
        if not newline:
            raise ValueError(f"no blank line ends the CGI headers in {output[:200]!r}")
        line = line.rstrip(b"\r")
        if not line:
            break
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise ValueError(f"bad CGI header line {line!r}")
        headers[name.strip().lower()] = value.strip()
    status = int(headers.get("status", "200").split()[0])
    return status, headers, rest


def predict(model_path, request):
    """POST request (a dict) to mlfcgi in CGI mode; return (status, headers, decoded body)."""
    body = json.dumps(request).encode()
    proc = subprocess.run([MLFCGI_BIN, "--model", str(model_path)], input=body,
                          env=cgi_env(len(body)), capture_output=True, timeout=TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"mlfcgi exited with status {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace').strip()}")
    status, headers, raw = parse_cgi(proc.stdout)
    try:
        return status, headers, json.loads(raw)
    except ValueError:
        raise ValueError(f"status {status}: body is not JSON: {raw[:200]!r}") from None


# ---------------------------------------------------------------- comparing

def check_envelope(cmp, row, model, status, headers, body):
    """Check status, content type and the model/version/request_id fields; False if unusable."""
    if status != 200 or not isinstance(body, dict):
        cmp.problems.append(f"row {row}: status {status}, body {json.dumps(body)[:300]}")
        return False
    ctype = headers.get("content-type", "")
    if not ctype.startswith("application/json"):
        cmp.problems.append(f"row {row}: Content-Type {ctype!r}")
    cmp.equal(row, "model", model["name"], body.get("model"))
    cmp.equal(row, "version", model["version"], body.get("version"))
    if not isinstance(body.get("request_id"), str) or not body["request_id"]:
        cmp.problems.append(f"row {row}: request_id {body.get('request_id')!r}")
    return True


def check_classification(cmp, row, model, body, label, proba):
    """Compare prediction, label, confidence and probabilities with predict/predict_proba."""
    names = model.get("class_names") or [str(c) for c in model["classes"]]
    cmp.equal(row, "prediction", label, body.get("prediction"))
    cmp.equal(row, "label", names[model["classes"].index(label)], body.get("label"))
    cmp.number(row, "confidence", float(max(proba)), body.get("confidence"))
    probs = body.get("probabilities")
    if not isinstance(probs, dict) or sorted(probs) != sorted(names):
        cmp.problems.append(f"row {row} probabilities: expected keys {names}, got {probs!r}")
        return
    for name, p in zip(names, proba):
        cmp.number(row, f"probabilities[{name}]", float(p), probs[name])


def check_regression(cmp, row, body, value):
    """Compare the regression prediction and make sure no class fields are present."""
    cmp.number(row, "prediction", float(value), body.get("prediction"))
    extra = sorted({"label", "confidence", "probabilities"} & set(body))
    if extra:
        cmp.problems.append(f"row {row}: regression response has {', '.join(extra)}")


def request_for(model, x, row):
    """Even rows send {"features": [...]}, odd rows send {"name": value, ...}."""
    values = [float(v) for v in x]
    if row % 2 == 0:
        return {"features": values}
    return {f["name"]: v for f, v in zip(model["features"], values)}


def compare_served(model_path, model, estimator, X):
    """Serve every row of X through mlfcgi and compare with the estimator; return Comparison."""
    cmp = Comparison(REL_TOL, ABS_TOL)
    classification = model["task"] == "classification"
    labels = estimator.predict(X)
    proba = estimator.predict_proba(X) if classification else None
    for row, x in enumerate(X):
        status, headers, body = predict(model_path, request_for(model, x, row))
        if not check_envelope(cmp, row, model, status, headers, body):
            continue
        if classification:
            label = labels[row].item() if hasattr(labels[row], "item") else labels[row]
            check_classification(cmp, row, model, body, label, proba[row])
        else:
            check_regression(cmp, row, body, labels[row])
    return cmp


def report(tap, description, rows, cmp):
    """Emit the TAP line for one served comparison."""
    summary = (f"{description}: {rows} rows match scikit-learn "
               f"(max rel err {cmp.max_rel:.2g}, max abs err {cmp.max_abs:.2g})")
    shown = cmp.problems[:MAX_DIAGNOSTICS]
    if len(cmp.problems) > len(shown):
        shown.append(f"... and {len(cmp.problems) - len(shown)} more mismatches")
    tap.result(not cmp.problems, summary, shown)


# ---------------------------------------------------------------- cases

def held_out(X, y, n_test=ROWS_PER_CASE, seed=0):
    """Deterministic split: (X_train, y_train, X_test) with n_test test rows."""
    import numpy as np
    order = np.random.RandomState(seed).permutation(len(X))
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test]


def iris_case(estimator, name, string_labels=False):
    """Fit estimator on iris minus 40 rows; export with the iris bounds."""
    from sklearn.datasets import load_iris
    data = load_iris()
    y = data.target_names[data.target] if string_labels else data.target
    X_train, y_train, X_test = held_out(data.data, y)
    estimator.fit(X_train, y_train)
    export = dict(name=name, version="1", feature_names=IRIS_FEATURES, feature_specs=IRIS_BOUNDS)
    if not string_labels:
        export["class_names"] = list(data.target_names)
    return estimator, X_test, export


def breast_cancer_case(estimator, name, named_features):
    """Fit estimator on breast_cancer minus 40 rows; no bounds."""
    from sklearn.datasets import load_breast_cancer
    data = load_breast_cancer()
    X_train, y_train, X_test = held_out(data.data, data.target)
    estimator.fit(X_train, y_train)
    export = dict(name=name, version="1", class_names=list(data.target_names))
    if named_features:
        export["feature_names"] = [f.replace(" ", "_") for f in data.feature_names]
    return estimator, X_test, export


def diabetes_case(estimator, name):
    """Fit estimator on diabetes minus 40 rows; no bounds."""
    from sklearn.datasets import load_diabetes
    data = load_diabetes()
    X_train, y_train, X_test = held_out(data.data, data.target)
    estimator.fit(X_train, y_train)
    return estimator, X_test, dict(name=name, version="1", feature_names=data.feature_names)


def cases():
    """Return [(description, thunk returning (estimator, X_test, export kwargs))]."""
    from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return [
        ("iris multinomial LogisticRegression (lbfgs)",
         lambda: iris_case(LogisticRegression(max_iter=1000), "iris-multinomial")),
        ("iris one-vs-rest LogisticRegression (liblinear, multi_class=auto)",
         lambda: iris_case(LogisticRegression(solver="liblinear"), "iris-ovr-liblinear")),
        ("iris one-vs-rest LogisticRegression (lbfgs, multi_class=ovr, string labels)",
         lambda: iris_case(LogisticRegression(multi_class="ovr", max_iter=1000),
                           "iris-ovr-strings", string_labels=True)),
        ("breast_cancer binary Pipeline(StandardScaler, LogisticRegression)",
         lambda: breast_cancer_case(make_pipeline(StandardScaler(), LogisticRegression()),
                                    "breast-cancer", named_features=False)),
        ("breast_cancer binary multinomial Pipeline(StandardScaler(with_mean=False), "
         "LogisticRegression)",
         lambda: breast_cancer_case(
             make_pipeline(StandardScaler(with_mean=False),
                           LogisticRegression(multi_class="multinomial", max_iter=1000)),
             "breast-cancer-multinomial", named_features=True)),
        ("diabetes LinearRegression",
         lambda: diabetes_case(LinearRegression(), "diabetes-linear")),
        ("diabetes Ridge(alpha=0.5)",
         lambda: diabetes_case(Ridge(alpha=0.5), "diabetes-ridge")),
        ("diabetes Pipeline(StandardScaler(with_std=False), Lasso(alpha=0.05))",
         lambda: diabetes_case(make_pipeline(StandardScaler(with_std=False), Lasso(alpha=0.05)),
                               "diabetes-lasso")),
    ]


def run_case(tap, description, thunk, tmpdir):
    """Fit, export, serve and compare one case."""
    from mlfcgi_export import export_model, write_model
    estimator, X_test, export = thunk()
    model = export_model(estimator, **export)
    path = Path(tmpdir) / f"{model['name']}.json"
    write_model(model, str(path))
    report(tap, description, len(X_test), compare_served(path, model, estimator, X_test))


# ---------------------------------------------------------------- committed iris model

def committed_iris():
    """Return the committed models/iris.json as (path, bytes, document)."""
    path = SRCDIR / "models" / "iris.json"
    raw = path.read_bytes()
    return path, raw, json.loads(raw)


def version_mismatch(model):
    """Return a skip reason if the committed model came from another scikit-learn version."""
    import sklearn
    trained = model.get("metadata", {}).get("trained_with")
    here = f"scikit-learn {sklearn.__version__}"
    if trained == here:
        return None
    return f"models/iris.json was trained with {trained}, this is {here}"


def check_iris_reproducible(tap, tmpdir):
    """models/iris.json must be byte-identical to what tools/train-iris writes."""
    description = "models/iris.json is byte-identical to tools/train-iris output"
    _, committed, model = committed_iris()
    reason = version_mismatch(model)
    if reason:
        tap.skip(description, reason)
        return
    fresh_path = Path(tmpdir) / "iris-fresh.json"
    proc = subprocess.run([sys.executable, str(SRCDIR / "tools" / "train-iris"),
                           "-o", str(fresh_path)], capture_output=True, timeout=120)
    if proc.returncode != 0:
        tap.result(False, description, [f"train-iris failed: {proc.stderr.decode().strip()}"])
        return
    fresh = fresh_path.read_bytes()
    diff = difflib.unified_diff(committed.decode().splitlines(), fresh.decode().splitlines(),
                                "models/iris.json", "train-iris output", lineterm="")
    tap.result(fresh == committed, description, list(diff)[:40])


def check_iris_committed_served(tap):
    """The committed iris model, served by mlfcgi, agrees with a fresh fit on all 150 rows."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    description = "committed models/iris.json served by mlfcgi vs a fresh LogisticRegression fit"
    path, _, model = committed_iris()
    reason = version_mismatch(model)
    if reason:
        tap.skip(description, reason)
        return
    data = load_iris()
    estimator = LogisticRegression(max_iter=1000).fit(data.data, data.target)
    report(tap, description, len(data.data), compare_served(path, model, estimator, data.data))


# ---------------------------------------------------------------- main

def main():
    """Run every case and the committed-model checks; exit 1 if any failed."""
    status = unready()
    if status is not None:
        return status
    all_cases = cases()
    tap = Tap(len(all_cases) + 2)
    with tempfile.TemporaryDirectory(prefix="mlfcgi-fidelity-") as tmpdir:
        for description, thunk in all_cases:
            guarded(tap, description, run_case, tap, description, thunk, tmpdir)
        guarded(tap, "iris reproducibility", check_iris_reproducible, tap, tmpdir)
        guarded(tap, "committed iris model", check_iris_committed_served, tap)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
