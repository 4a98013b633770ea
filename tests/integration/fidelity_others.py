#!/usr/bin/python3
"""fidelity_others: TAP test that mlfcgi --predict matches scikit-learn to 1e-9 for linear
models, kernel SVMs, MLPs, k-nearest neighbours and Gaussian naive Bayes.

Each case fits an estimator on a bundled data set (iris, wine, breast_cancer, digits,
diabetes) or a generated one (make_classification, make_regression), exports it with
mlfcgi-export's converters, scores the held-out rows with one `mlfcgi --predict` run, and
compares predict (exactly), predict_proba and decision_function (where scikit-learn has
them, and only then) and regression outputs: within 1e-9 relative, 1e-12 absolute.
The --predict answers (lines predicted together in blocks, where an estimator has a
batch path: MLPs) must also be, bit for bit, those of one {"instances"} request
predicted one instance at a time (the prediction cache on).
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
    Comparison, MLFCGI_BIN, PASSTHROUGH_ENV, Tap, guarded, one_by_one, plain, same_as_one_by_one,
    unready)

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree

REL_TOL = 1e-9
ABS_TOL = 1e-12
ROWS = 40
MAX_DIAGNOSTICS = 10
TIMEOUT = 60


# ---------------------------------------------------------------- TAP

# ---------------------------------------------------------------- comparing

def expected_outputs(est, X):
    """Return scikit-learn's predict, predict_proba (or None), decision_function (or None)."""
    proba = est.predict_proba(X) if hasattr(est, "predict_proba") else None
    decision = est.decision_function(X) if hasattr(est, "decision_function") else None
    return est.predict(X), proba, decision


def check_decision(cmp, row, expected, body):
    """decision_function: a number for one score, else a list, as scikit-learn returns it."""
    got = body.get("decision_function")
    if expected.ndim == 0:
        cmp.number(row, "decision_function", float(expected), got, kind="decision")
        return
    if not isinstance(got, list) or len(got) != len(expected):
        cmp.problems.append(f"row {row} decision_function: expected {len(expected)} values, "
                            f"got {got!r}")
        return
    for k, (e, g) in enumerate(zip(expected, got)):
        cmp.number(row, f"decision_function[{k}]", float(e), g, kind="decision")


def check_classifier_row(cmp, row, model, body, label, proba, decision):
    """Compare one classification answer with scikit-learn's outputs for that row."""
    classes = model["classes"]
    names = model.get("class_names") or [str(c) for c in classes]
    cmp.equal(row, "prediction", label, body.get("prediction"))
    if label in classes:
        cmp.equal(row, "label", names[classes.index(label)], body.get("label"))
    for key, present in (("decision_function", decision is not None),
                         ("probabilities", proba is not None),
                         ("confidence", proba is not None)):
        if (key in body) != present:
            cmp.problems.append(f"row {row}: {key} {'missing' if present else 'unexpected'}")
    if decision is not None and "decision_function" in body:
        check_decision(cmp, row, decision, body)
    probs = body.get("probabilities")
    if proba is None or not isinstance(probs, dict):
        return
    if sorted(probs) != sorted(names):
        cmp.problems.append(f"row {row} probabilities: keys {sorted(probs)}, expected {names}")
        return
    for name, p in zip(names, proba):
        cmp.number(row, f"probabilities[{name}]", float(p), probs[name], kind="proba")
    if label in classes:  # confidence is the probability of the predicted class
        cmp.number(row, "confidence", float(proba[classes.index(label)]),
                   body.get("confidence"), kind="proba")


def check_regressor_row(cmp, row, body, value):
    """Compare one regression answer."""
    cmp.number(row, "prediction", float(value), body.get("prediction"), kind="value")
    extra = sorted({"label", "confidence", "probabilities", "decision_function"} & set(body))
    if extra:
        cmp.problems.append(f"row {row}: regression response has {', '.join(extra)}")


# ---------------------------------------------------------------- running mlfcgi

def score(model_path, X, tmpdir):
    """Run mlfcgi --predict over the rows of X; return the decoded answers, one per row."""
    lines = Path(tmpdir) / "rows.jsonl"
    lines.write_text("".join(json.dumps({"features": [float(v) for v in x]}) + "\n"
                             for x in X))
    env = {k: v for k, v in os.environ.items() if k in PASSTHROUGH_ENV}
    proc = subprocess.run([MLFCGI_BIN, "--model", str(model_path), "--predict", str(lines)],
                          capture_output=True, timeout=TIMEOUT, env=env)
    answers = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    if proc.returncode != 0 or len(answers) != len(X):
        raise RuntimeError(f"mlfcgi --predict exited {proc.returncode} with {len(answers)} "
                           f"answers for {len(X)} rows: "
                           f"{proc.stderr.decode(errors='replace').strip()[:500]} "
                           f"{proc.stdout.decode(errors='replace')[:300]}")
    return answers


def compare(est, model, X, answers):
    """Compare every answer with scikit-learn; return the Comparison."""
    cmp = Comparison(REL_TOL, ABS_TOL)
    labels, proba, decision = expected_outputs(est, X)
    for row, body in enumerate(answers):
        if body.get("line") != row + 1 or "detail" in body:
            cmp.problems.append(f"row {row}: {json.dumps(body)[:300]}")
        elif model["task"] == "classification":
            check_classifier_row(cmp, row, model, body, plain(labels[row]),
                                 None if proba is None else proba[row],
                                 None if decision is None else decision[row])
        else:
            check_regressor_row(cmp, row, body, labels[row])
    return cmp


# ---------------------------------------------------------------- data

def split(X, y, rows=ROWS, seed=0):
    """Deterministic split: (X_train, y_train, X_test) with `rows` held-out rows."""
    import numpy as np
    order = np.random.RandomState(seed).permutation(len(X))
    return X[order[rows:]], y[order[rows:]], X[order[:rows]]


def dataset(name):
    """Return (X, y, class names or None) for a bundled or generated data set."""
    from sklearn import datasets
    if name == "digits":  # a subset keeps the test fast
        X, y = datasets.load_digits(return_X_y=True)
        return X[:600], y[:600], None
    if name == "classification":
        X, y = datasets.make_classification(n_samples=400, n_features=8, n_informative=5,
                                            n_classes=4, random_state=3)
        return X, y, None
    if name == "binary":
        X, y = datasets.make_classification(n_samples=300, n_features=6, random_state=7)
        return X, y, None
    if name == "regression":
        X, y = datasets.make_regression(n_samples=300, n_features=6, noise=5.0,
                                        random_state=5)
        return X, y, None
    data = getattr(datasets, f"load_{name}")()
    names = list(data.target_names) if name != "diabetes" else None
    return data.data, data.target, names


def held_out(name):
    """A data set split: (X_train, y_train, X_test, class names or None)."""
    X, y, names = dataset(name)
    return (*split(X, y), names)


def with_strings(name):
    """A data set split, labelled with its class names (strings)."""
    import numpy as np
    X, y, names = dataset(name)
    return (*split(X, np.array(names)[y]), None)


def iris_with_strings():
    """Iris labelled by species name."""
    return with_strings("iris")


def wine_with_strings():
    """Wine labelled class_0, class_1, class_2."""
    return with_strings("wine")


def iris_exact_matches():
    """Iris, the queries being training rows (zero distances)."""
    X_train, y_train, _, names = held_out("iris")
    return X_train, y_train, X_train[::5][:ROWS], names


# ---------------------------------------------------------------- cases

def scaled(est):
    """est after a StandardScaler."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), est)


def case(data, make):
    """A thunk fitting make() on data (a data set name, or a function giving the split)
    and returning (estimator, X_test, class names or None)."""
    def thunk():
        X_train, y_train, X_test, names = data() if callable(data) else held_out(data)
        return make().fit(X_train, y_train), X_test, names
    return thunk


def linear_cases():
    """Linear classifiers and regressors."""
    from sklearn import linear_model as lm
    from sklearn.svm import LinearSVC, LinearSVR
    return [
        ("iris LogisticRegression multinomial (lbfgs)",
         case("iris", lambda: lm.LogisticRegression(max_iter=1000))),
        ("iris LogisticRegression one-vs-rest (liblinear)",
         case("iris", lambda: lm.LogisticRegression(solver="liblinear"))),
        ("iris LogisticRegression multi_class=ovr, string labels",
         case(iris_with_strings, lambda: lm.LogisticRegression(multi_class="ovr",
                                                                max_iter=1000))),
        ("breast_cancer binary Pipeline(StandardScaler, LogisticRegression)",
         case("breast_cancer", lambda: scaled(lm.LogisticRegression()))),
        ("breast_cancer binary multinomial LogisticRegression (softmax([-s, s]))",
         case("breast_cancer", lambda: scaled(lm.LogisticRegression(multi_class="multinomial")))),
        ("digits LogisticRegression multinomial, 10 classes",
         case("digits", lambda: scaled(lm.LogisticRegression(max_iter=2000)))),
        ("wine SGDClassifier(loss=log_loss)",
         case("wine", lambda: scaled(lm.SGDClassifier(loss="log_loss", random_state=0)))),
        ("wine SGDClassifier(loss=modified_huber)",
         case("wine", lambda: scaled(lm.SGDClassifier(loss="modified_huber", random_state=0)))),
        ("breast_cancer binary SGDClassifier(loss=modified_huber)",
         case("breast_cancer", lambda: scaled(lm.SGDClassifier(loss="modified_huber",
                                                                random_state=0)))),
        ("digits SGDClassifier(loss=hinge): decision_function only",
         case("digits", lambda: scaled(lm.SGDClassifier(random_state=0)))),
        ("iris LinearSVC: decision_function only",
         case("iris", lambda: scaled(LinearSVC(random_state=0, max_iter=10000)))),
        ("breast_cancer binary LinearSVC",
         case("breast_cancer", lambda: scaled(LinearSVC(random_state=0, max_iter=10000)))),
        ("make_classification Perceptron, 4 classes",
         case("classification", lambda: lm.Perceptron(random_state=0))),
        ("make_classification binary RidgeClassifier",
         case("binary", lambda: lm.RidgeClassifier())),
        ("diabetes LinearRegression", case("diabetes", lm.LinearRegression)),
        ("diabetes Ridge(alpha=0.5)", case("diabetes", lambda: lm.Ridge(alpha=0.5))),
        ("diabetes Lasso(alpha=0.05)", case("diabetes", lambda: lm.Lasso(alpha=0.05))),
        ("diabetes ElasticNet(alpha=0.01, l1_ratio=0.3)",
         case("diabetes", lambda: lm.ElasticNet(alpha=0.01, l1_ratio=0.3))),
        ("diabetes SGDRegressor", case("diabetes", lambda: scaled(lm.SGDRegressor(
            random_state=0)))),
        ("diabetes LinearSVR", case("diabetes", lambda: scaled(LinearSVR(
            C=10, random_state=0, max_iter=20000)))),
        ("diabetes HuberRegressor",
         case("diabetes", lambda: scaled(lm.HuberRegressor(max_iter=1000)))),
        ("diabetes LassoCV", case("diabetes", lambda: lm.LassoCV(cv=3))),
        ("diabetes BayesianRidge", case("diabetes", lm.BayesianRidge)),
        ("make_regression RidgeCV", case("regression", lm.RidgeCV)),
        ("make_regression ElasticNetCV", case("regression", lambda: lm.ElasticNetCV(cv=3))),
    ]


def svm_cases():
    """Kernel SVMs: every kernel, ovr and ovo, probabilities, ties broken."""
    from sklearn.svm import SVC, SVR, NuSVC, NuSVR
    return [
        ("iris SVC(rbf), decision_function_shape=ovr", case("iris", SVC)),
        ("iris SVC(rbf), decision_function_shape=ovo, string labels",
         case(iris_with_strings, lambda: SVC(decision_function_shape="ovo"))),
        ("iris SVC(linear, probability=True)",
         case("iris", lambda: SVC(kernel="linear", probability=True, random_state=0))),
        ("wine SVC(poly, degree=3, coef0=1, probability=True)",
         case("wine", lambda: scaled(SVC(kernel="poly", degree=3, coef0=1, probability=True,
                                         random_state=0)))),
        ("breast_cancer binary SVC(rbf, probability=True)",
         case("breast_cancer", lambda: scaled(SVC(probability=True, random_state=0)))),
        ("make_classification SVC(sigmoid, gamma=auto, probability=True), 4 classes",
         case("classification", lambda: scaled(SVC(kernel="sigmoid", gamma="auto", C=0.5,
                                                    probability=True, random_state=0)))),
        ("digits SVC(rbf, break_ties=True, probability=True), 10 classes",
         case("digits", lambda: SVC(gamma=0.001, break_ties=True, probability=True,
                                    random_state=0))),
        ("digits SVC(poly, degree=2, ovo)",
         case("digits", lambda: scaled(SVC(kernel="poly", degree=2,
                                           decision_function_shape="ovo")))),
        ("wine NuSVC(rbf, nu=0.3)", case("wine", lambda: scaled(NuSVC(nu=0.3)))),
        ("diabetes SVR(rbf, C=100)", case("diabetes", lambda: SVR(C=100))),
        ("make_regression SVR(poly, degree=2)",
         case("regression", lambda: scaled(SVR(kernel="poly", degree=2, C=100)))),
        ("make_regression SVR(linear)",
         case("regression", lambda: SVR(kernel="linear", C=10))),
        ("make_regression NuSVR(sigmoid)",
         case("regression", lambda: scaled(NuSVR(kernel="sigmoid", C=10, gamma=0.05)))),
    ]


def mlp_cases():
    """MLPs: every hidden activation; softmax, logistic and identity outputs."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    return [
        ("iris MLPClassifier(relu), softmax output",
         case("iris", lambda: scaled(MLPClassifier(hidden_layer_sizes=(10,), max_iter=2000,
                                                   random_state=0)))),
        ("breast_cancer binary MLPClassifier(logistic), logistic output",
         case("breast_cancer", lambda: scaled(MLPClassifier(
             hidden_layer_sizes=(8,), activation="logistic", max_iter=500, random_state=0)))),
        ("wine MLPClassifier(tanh, two hidden layers), string labels",
         case(wine_with_strings, lambda: scaled(MLPClassifier(
             hidden_layer_sizes=(12, 6), activation="tanh", max_iter=1000,
             random_state=0)))),
        ("digits MLPClassifier(identity), 10 classes",
         case("digits", lambda: scaled(MLPClassifier(
             hidden_layer_sizes=(16,), activation="identity", max_iter=300,
             random_state=0)))),
        ("diabetes MLPRegressor(relu, lbfgs)",
         case("diabetes", lambda: scaled(MLPRegressor(hidden_layer_sizes=(20,), solver="lbfgs",
                                                      max_iter=500, random_state=0)))),
        ("make_regression MLPRegressor(tanh, two hidden layers)",
         case("regression", lambda: scaled(MLPRegressor(
             hidden_layer_sizes=(10, 5), activation="tanh", solver="lbfgs", max_iter=500,
             random_state=0)))),
        ("make_regression MLPRegressor(logistic)",
         case("regression", lambda: scaled(MLPRegressor(
             hidden_layer_sizes=(10,), activation="logistic", solver="lbfgs", max_iter=500,
             random_state=0)))),
    ]


def knn_cases():
    """k-nearest neighbours: each search structure, both weightings, ties, exact matches."""
    from sklearn.neighbors import KNeighborsClassifier as KNC
    from sklearn.neighbors import KNeighborsRegressor as KNR
    return [
        ("iris KNeighborsClassifier(5) uniform, k-d tree (tied distances)", case("iris", KNC)),
        ("iris KNeighborsClassifier(8, distance), k-d tree",
         case("iris", lambda: KNC(8, weights="distance"))),
        ("iris KNeighborsClassifier(4, distance, leaf_size=3): queries equal to training rows",
         case(iris_exact_matches, lambda: KNC(4, weights="distance", leaf_size=3))),
        ("iris KNeighborsClassifier(6, uniform, p=1), ball tree, string labels",
         case(iris_with_strings, lambda: KNC(6, p=1, algorithm="ball_tree", leaf_size=5))),
        ("wine KNeighborsClassifier(7, distance, p=1), ball tree",
         case("wine", lambda: scaled(KNC(7, weights="distance", p=1,
                                         algorithm="ball_tree")))),
        ("wine KNeighborsClassifier(6, distance, metric=l2), brute force",
         case("wine", lambda: scaled(KNC(6, weights="distance", metric="l2",
                                         algorithm="brute")))),
        ("wine KNeighborsClassifier(3, uniform), brute force",
         case("wine", lambda: scaled(KNC(3, algorithm="brute")))),
        ("breast_cancer KNeighborsClassifier(5, distance), brute force (auto, 30 features)",
         case("breast_cancer", lambda: scaled(KNC(5, weights="distance")))),
        ("make_classification KNeighborsClassifier(9, distance, p=1), brute force",
         case("classification", lambda: KNC(9, weights="distance", p=1, algorithm="brute"))),
        ("digits KNeighborsClassifier(10, uniform, p=1), k-d tree, 10 classes",
         case("digits", lambda: KNC(10, p=1, algorithm="kd_tree"))),
        ("diabetes KNeighborsRegressor(5), k-d tree", case("diabetes", KNR)),
        ("diabetes KNeighborsRegressor(12, distance), ball tree",
         case("diabetes", lambda: KNR(12, weights="distance", algorithm="ball_tree"))),
        ("make_regression KNeighborsRegressor(7, distance, p=1), brute force",
         case("regression", lambda: KNR(7, weights="distance", p=1, algorithm="brute"))),
    ]


def nb_cases():
    """Gaussian naive Bayes."""
    from sklearn.naive_bayes import GaussianNB
    return [
        ("iris GaussianNB", case("iris", GaussianNB)),
        ("wine GaussianNB, string labels",
         case(wine_with_strings, GaussianNB)),
        ("breast_cancer GaussianNB", case("breast_cancer", GaussianNB)),
        ("digits GaussianNB, 10 classes, 64 features", case("digits", GaussianNB)),
        ("make_classification GaussianNB(priors, var_smoothing=1e-3)",
         case("classification", lambda: GaussianNB(priors=[0.1, 0.2, 0.3, 0.4],
                                                   var_smoothing=1e-3))),
    ]


def cases():
    """Every fidelity case: [(description, thunk)]."""
    return linear_cases() + svm_cases() + mlp_cases() + knn_cases() + nb_cases()


def run_case(tap, description, thunk, tmpdir):
    """Fit, export, score and compare one case."""
    from mlfcgi_export import export_model, write_model
    est, X_test, names = thunk()
    export = {"name": "case", "version": "1"}
    if names is not None:
        export["class_names"] = names
    model = export_model(est, **export)
    path = Path(tmpdir) / "model.json"
    write_model(model, str(path))
    answers = score(path, X_test, tmpdir)
    cmp = compare(est, model, X_test, answers)
    cmp.problems += same_as_one_by_one(answers, one_by_one(path, X_test))
    shown = cmp.problems[:MAX_DIAGNOSTICS]
    if len(cmp.problems) > len(shown):
        shown.append(f"... and {len(cmp.problems) - len(shown)} more mismatches")
    tap.result(not cmp.problems, f"{description}: {len(X_test)} rows, {cmp.summary()}", shown)


# ---------------------------------------------------------------- refusals

def refusals():
    """[(estimator fitted on iris, a word the refusal must name)]."""
    from sklearn.datasets import load_iris
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC
    X, y = load_iris(return_X_y=True)
    multilabel = [[int(v == 0), int(v == 1)] for v in y]
    return [
        (KNeighborsClassifier(metric="chebyshev").fit(X, y), "metric"),
        (KNeighborsClassifier(p=3).fit(X, y), "p=3"),
        (KNeighborsClassifier(weights=lambda d: d).fit(X, y), "weights"),
        (SVC(kernel="precomputed").fit(X @ X.T, y), "kernel"),
        (MLPClassifier(max_iter=5).fit(X, multilabel), "multilabel"),
    ]


def check_refusals(tap):
    """Unsupported parameters are refused with the estimator's and the parameter's name."""
    from mlfcgi_export import ExportError, export_model
    problems = []
    items = refusals()
    for est, word in items:
        try:
            export_model(est, "x", "1")
            problems.append(f"{type(est).__name__}: exported, expected a refusal naming {word}")
        except ExportError as e:
            if type(est).__name__ not in str(e) or word not in str(e):
                problems.append(f"{type(est).__name__}: refusal {e} does not name {word}")
    tap.result(not problems, f"unsupported parameters are refused by name ({len(items)} "
               f"estimators)", problems)


# ---------------------------------------------------------------- broken model files

def broken_models():
    """[(description, model document, text the load error must contain)]: exported iris
    models with one field spoilt."""
    import copy
    from sklearn.datasets import load_iris
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC
    from mlfcgi_export import export_model
    X, y = load_iris(return_X_y=True)
    base = {"svc": SVC(probability=True, random_state=0), "knn": KNeighborsClassifier(),
            "mlp": MLPClassifier(max_iter=20, random_state=0), "nb": GaussianNB()}
    docs = {k: export_model(est.fit(X, y), k, "1") for k, est in base.items()}

    def spoil(kind, change):
        doc = copy.deepcopy(docs[kind])
        change(doc["estimator"])
        return doc
    return [
        ("svc n_support", spoil("svc", lambda e: e["n_support"].__setitem__(0, 99)),
         "estimator.n_support"),
        ("svc kernel", spoil("svc", lambda e: e.__setitem__("kernel", "precomputed")),
         "estimator.kernel"),
        ("svc prob_b alone", spoil("svc", lambda e: e.pop("prob_a")), "estimator.prob_a"),
        ("svc short support vector", spoil("svc", lambda e: e["support_vectors"][3].pop()),
         "estimator.support_vectors[3]"),
        ("kneighbors class index", spoil("knn", lambda e: e["y"].__setitem__(3, 7)),
         "estimator.y[3]"),
        ("kneighbors missing child", spoil("knn", lambda e: e["tree"]["node_data"][-1]
                                           .__setitem__(2, 0)),
         "estimator.tree.node_data["),
        ("kneighbors metric", spoil("knn", lambda e: e.__setitem__("metric", "chebyshev")),
         "estimator.metric"),
        ("mlp output", spoil("mlp", lambda e: e.__setitem__("output", "logistic")),
         "estimator.output"),
        ("mlp layer width", spoil("mlp", lambda e: e["layers"][1]["coef"].pop()),
         "estimator.layers[1].coef"),
        ("gaussian_nb variance", spoil("nb", lambda e: e["var"][1].__setitem__(2, 0.0)),
         "estimator.var[1][2]"),
    ]


def check_broken_models(tap, tmpdir):
    """mlfcgi --check refuses each spoilt model, naming the field."""
    problems = []
    cases = broken_models()
    for description, doc, expected in cases:
        path = Path(tmpdir) / "broken.json"
        path.write_text(json.dumps(doc))
        proc = subprocess.run([MLFCGI_BIN, "--check", "--model", str(path)],
                              capture_output=True, timeout=TIMEOUT)
        said = (proc.stdout + proc.stderr).decode(errors="replace").strip()
        if proc.returncode != 1 or expected not in said:
            problems.append(f"{description}: exit {proc.returncode}, {said[:300]!r} "
                            f"(expected status 1 naming {expected})")
    tap.result(not problems, f"spoilt model files are refused, naming the field "
               f"({len(cases)} files)", problems)


# ---------------------------------------------------------------- main

def main():
    """Run every case; exit 1 if any failed."""
    status = unready()
    if status is not None:
        return status
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    all_cases = cases()
    tap = Tap(len(all_cases) + 2)
    with tempfile.TemporaryDirectory(prefix="mlfcgi-fidelity-others-") as tmpdir:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings from short fits
            for description, thunk in all_cases:
                guarded(tap, description, run_case, tap, description, thunk, tmpdir)
            guarded(tap, "refusals", check_refusals, tap)
            guarded(tap, "broken model files", check_broken_models, tap, tmpdir)
    return 1 if tap.failed else 0


if __name__ == "__main__":
    sys.exit(main())
