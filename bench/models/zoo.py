"""zoo: the model benchmark's data sets and models: how each is made, trained, saved and exported.

Every model is trained once per configuration and kept in the work folder
as NAME.joblib (the fitted estimator, what the library side loads) and
NAME.json (the file mlfcgi loads: mlfcgi-export's output, or XGBoost's own
JSON model file for XGBoost). The rows every model predicts are held out
from its training rows and written as raw doubles (ROWS.bin) for the C
driver.
"""

import os
import sys
import warnings
from dataclasses import dataclass

N_FEATURES = 20
SEED = 0

TOOLS = os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "tools")


@dataclass
class Config:
    """Sizes of one benchmark run."""
    rows: int          # rows predicted
    train_small: int   # training rows for the slow learners (GB, MLP)
    train_large: int   # training rows for the others
    rf_trees: int
    gb_trees: int
    xgb_trees: int
    big_trees: int     # the XGBoost model whose load time and memory are reported
    mlp_iter: int
    repeat: int        # timed runs per figure and round; the best of all counts
    rounds: int        # rounds, each timing mlfcgi and the library in turn


FULL = Config(rows=100_000, train_small=5_000, train_large=20_000, rf_trees=100,
              gb_trees=300, xgb_trees=500, big_trees=1000, mlp_iter=20, repeat=3,
              rounds=3)
QUICK = Config(rows=10_000, train_small=2_000, train_large=5_000, rf_trees=20,
               gb_trees=50, xgb_trees=100, big_trees=200, mlp_iter=5, repeat=3,
               rounds=1)


@dataclass
class Spec:
    """One benchmark model."""
    name: str        # file names and the table's key
    label: str       # the table's description
    task: str        # classification or regression
    library: str     # sklearn or xgboost
    train: str       # small or large: which training set size
    make: object     # make(config) -> unfitted estimator


def _xgb(cls, trees):
    import xgboost
    return getattr(xgboost, cls)(n_estimators=trees, max_depth=6, learning_rate=0.1,
                                 tree_method="hist", random_state=SEED, n_jobs=os.cpu_count())


def specs(cfg):
    """Return the benchmark models for a configuration, in table order."""
    from sklearn import ensemble as e, linear_model as lm, neural_network as nn
    cpus = os.cpu_count()
    return [
        Spec("rf", f"RandomForestClassifier, {cfg.rf_trees} trees", "classification", "sklearn",
             "large", lambda c: e.RandomForestClassifier(c.rf_trees, random_state=SEED,
                                                           n_jobs=cpus)),
        Spec("gb", f"GradientBoostingClassifier, {cfg.gb_trees} trees, depth 6",
             "classification", "sklearn", "small",
             lambda c: e.GradientBoostingClassifier(n_estimators=c.gb_trees, max_depth=6,
                                                      random_state=SEED)),
        Spec("xgb", f"XGBClassifier, {cfg.xgb_trees} trees, depth 6", "classification",
             "xgboost", "large", lambda c: _xgb("XGBClassifier", c.xgb_trees)),
        Spec("mlp", "MLPClassifier, 2 x 128 relu", "classification", "sklearn", "small",
             lambda c: nn.MLPClassifier((128, 128), max_iter=c.mlp_iter, random_state=SEED)),
        Spec("logreg", "LogisticRegression", "classification", "sklearn", "large",
             lambda c: lm.LogisticRegression(max_iter=1000)),
        # Fully grown regression trees have a leaf per training row: on the
        # small set the forest is ~25 MB of JSON, on the large one ~100 MB.
        Spec("rf-reg", f"RandomForestRegressor, {cfg.rf_trees} trees", "regression", "sklearn",
             "small", lambda c: e.RandomForestRegressor(c.rf_trees, random_state=SEED,
                                                          n_jobs=cpus)),
        Spec("gb-reg", f"GradientBoostingRegressor, {cfg.gb_trees} trees, depth 6",
             "regression", "sklearn", "small",
             lambda c: e.GradientBoostingRegressor(n_estimators=c.gb_trees, max_depth=6,
                                                     random_state=SEED)),
        Spec("xgb-reg", f"XGBRegressor, {cfg.xgb_trees} trees, depth 6", "regression",
             "xgboost", "large", lambda c: _xgb("XGBRegressor", c.xgb_trees)),
        Spec("mlp-reg", "MLPRegressor, 2 x 128 relu", "regression", "sklearn", "small",
             lambda c: nn.MLPRegressor((128, 128), max_iter=c.mlp_iter, random_state=SEED)),
    ]


def big_spec(cfg):
    """The model whose load time and memory are reported."""
    return Spec("xgb-big", f"XGBClassifier, {cfg.big_trees} trees, depth 6", "classification",
                "xgboost", "small", lambda c: _xgb("XGBClassifier", c.big_trees))


def data(task, cfg):
    """Return (X_train_large, y_train_large, X_rows) for a task; fixed seeds.

    The small training set is the first train_small rows of the large one;
    the predicted rows follow the training rows in the same generated set.
    """
    from sklearn.datasets import make_classification, make_regression
    n = cfg.train_large + cfg.rows
    if task == "classification":
        X, y = make_classification(n_samples=n, n_features=N_FEATURES, n_informative=10,
                                   n_redundant=5, random_state=SEED)
    else:
        X, y = make_regression(n_samples=n, n_features=N_FEATURES, n_informative=10,
                               noise=10.0, random_state=SEED)
    return X[:cfg.train_large], y[:cfg.train_large], X[cfg.train_large:]


def rows_path(work, task):
    return os.path.join(work, f"rows-{task}.bin")


def write_rows(work, cfg):
    """Write each task's predicted rows as raw float64 (C order), unless present."""
    import numpy as np
    for task in ("classification", "regression"):
        path = rows_path(work, task)
        if not os.path.exists(path):
            np.ascontiguousarray(data(task, cfg)[2], dtype=np.float64).tofile(path + ".tmp")
            os.replace(path + ".tmp", path)


def train(spec, cfg, work):
    """Fit, save and export one model unless its files exist; return the seconds spent."""
    import time
    import joblib
    est_path = os.path.join(work, spec.name + ".joblib")
    json_path = os.path.join(work, spec.name + ".json")
    if os.path.exists(est_path) and os.path.exists(json_path):
        return 0.0
    X, y, _ = data(spec.task, cfg)
    if spec.train == "small":
        X, y = X[:cfg.train_small], y[:cfg.train_small]
    est = spec.make(cfg)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLP convergence: its speed is what counts
        est.fit(X, y)
    if spec.library == "xgboost":
        est.get_booster().save_model(json_path)  # XGBoost's own format, loaded as it is
    else:
        sys.path.insert(0, TOOLS)
        import mlfcgi_export
        mlfcgi_export.write_model(mlfcgi_export.export_model(est, spec.name, "1"), json_path)
    joblib.dump(est, est_path + ".tmp")
    os.replace(est_path + ".tmp", est_path)
    return time.perf_counter() - start
