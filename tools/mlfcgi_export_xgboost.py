"""mlfcgi_export_xgboost: XGBoost scikit-learn models -> "xgboost" estimator (models/FORMAT.md).

The booster is read back from XGBoost's own JSON (Booster.save_raw("json")) and
reduced to what prediction needs: per tree the five node arrays, plus the
objective, base_score, num_class and tree_info.  Every float is written as the
exact value of XGBoost's float32, so mlfcgi reads back the same bits.
"""

import json
import math

import numpy as np

from mlfcgi_export import ExportError, _check_fitted, _class_labels, _describe

try:
    import xgboost
except ImportError:  # the exporter works without XGBoost; these models then cannot exist
    xgboost = None

# The notes key that asks mlfcgi_export to make every feature nullable (a
# missing value, null, follows each split's default direction); it is not
# written to the metadata.  The same key as mlfcgi_export_trees.
NULLABLE_NOTE = "_nullable"

CLASSIFIER_OBJECTIVES = ("binary:logistic", "multi:softprob", "multi:softmax")
REGRESSOR_OBJECTIVES = ("reg:squarederror", "reg:squaredlogerror", "reg:pseudohubererror",
                        "reg:absoluteerror", "reg:logistic", "count:poisson", "reg:gamma",
                        "reg:tweedie")
TREE_KEYS = ("split_indices", "split_conditions", "left_children", "right_children",
             "default_left")


def _float32(value, what):
    """Return value (a number or XGBoost's text, e.g. "5E-1") as the exact double of its float32."""
    x = float(np.float32(value))
    if not math.isfinite(x):
        raise ExportError(f"{what}: {value!r} is not a finite float32")
    return x


def _ints(values, what, lo, hi):
    """Return values as Python ints, each in [lo, hi)."""
    out = []
    for i, v in enumerate(values):
        if int(v) != v or not lo <= int(v) < hi:
            raise ExportError(f"{what}[{i}]: {v!r} is not an integer in [{lo}, {hi})")
        out.append(int(v))
    return out


def _check_params(est):
    """Refuse settings whose predictions the format cannot reproduce."""
    name = _describe(est)
    if callable(est.objective):
        raise ExportError(f"{name}(objective=<custom function>): custom objectives are not "
                          f"supported")
    if est.booster not in (None, "gbtree"):
        raise ExportError(f"{name}(booster={est.booster!r}): only booster='gbtree' is supported")
    missing = est.missing
    if missing is None or not (isinstance(missing, float) and math.isnan(missing)):
        raise ExportError(f"{name}(missing={missing!r}): only missing=nan is supported (mlfcgi's "
                          f"missing value is null)")


def _prediction_booster(est):
    """Return the booster predict() uses: cut to best_iteration + 1 rounds, as XGBoost's
    scikit-learn API does, when best_iteration says fewer rounds than were trained."""
    booster = est.get_booster()
    best = getattr(booster, "best_iteration", None)
    rounds = booster.num_boosted_rounds()
    if best is not None and 0 <= int(best) + 1 < rounds:
        return booster[: int(best) + 1], int(best) + 1
    return booster, rounds


def _tree(tree, i, n_features):
    """Convert one tree of XGBoost's JSON to the format's node arrays."""
    what = f"tree {i}"
    if any(int(t) != 0 for t in tree.get("split_type", [])) or tree.get("categories_nodes"):
        raise ExportError(f"{what}: categorical splits are not supported")
    n = len(tree["left_children"])
    if any(len(tree[k]) != n for k in TREE_KEYS):
        raise ExportError(f"{what}: node arrays of different lengths")
    return {
        "split_indices": _ints(tree["split_indices"], f"{what}.split_indices", 0, n_features),
        "split_conditions": [_float32(v, f"{what}.split_conditions[{j}]")
                             for j, v in enumerate(tree["split_conditions"])],
        "left_children": _ints(tree["left_children"], f"{what}.left_children", -1, n),
        "right_children": _ints(tree["right_children"], f"{what}.right_children", -1, n),
        "default_left": _ints(tree["default_left"], f"{what}.default_left", 0, 2),
    }


def _learner(est, booster):
    """Return XGBoost's learner object for booster, checking it is a single-target gbtree."""
    learner = json.loads(bytes(booster.save_raw("json")))["learner"]
    name = _describe(est)
    booster_name = learner["gradient_booster"]["name"]
    if booster_name != "gbtree":
        raise ExportError(f"{name}(booster={booster_name!r}): only gbtree is supported")
    param = learner["learner_model_param"]
    if int(param.get("num_target", "1")) != 1:
        raise ExportError(f"{name}: multi-target models (num_target={param['num_target']}) "
                          f"are not supported")
    if "c" in learner.get("feature_types", []):
        raise ExportError(f"{name}(enable_categorical=True): categorical features are not "
                          f"supported")
    return learner


def _convert(est, allowed):
    """Return (estimator dict, notes, n_features, num_class) for a fitted XGBoost model."""
    _check_fitted(est, "_Booster")
    _check_params(est)
    booster, rounds = _prediction_booster(est)
    learner = _learner(est, booster)
    objective = learner["objective"]["name"]
    if objective not in allowed:
        raise ExportError(f"{_describe(est)}(objective={objective!r}): supported objectives are "
                          f"{', '.join(allowed)}")
    param = learner["learner_model_param"]
    n_features = int(param["num_feature"])
    num_class = int(param["num_class"])
    model = learner["gradient_booster"]["model"]
    groups = max(num_class, 1)
    estimator = {
        "type": "xgboost",
        "objective": objective,
        "base_score": _float32(param["base_score"].strip("[]"), "base_score"),
        "num_class": num_class,
        "tree_info": _ints(model["tree_info"], "tree_info", 0, groups),
        "trees": [_tree(t, i, n_features) for i, t in enumerate(model["trees"])],
    }
    notes = {NULLABLE_NOTE: True, "xgboost_version": xgboost.__version__,
             "boosting_rounds": rounds}
    return estimator, notes, n_features, num_class


def _classifier(est):
    """Convert an XGBClassifier: predict/predict_proba as XGBoost's scikit-learn API has them."""
    estimator, notes, n_features, num_class = _convert(est, CLASSIFIER_OBJECTIVES)
    classes = _class_labels(est)
    expected = 0 if estimator["objective"] == "binary:logistic" else len(classes)
    if num_class != expected:
        raise ExportError(f"{_describe(est)}(objective={estimator['objective']!r}) with "
                          f"{len(classes)} classes: XGBoost's predict() does not give one "
                          f"label per row; use binary:logistic for two classes")
    return estimator, classes, notes, n_features


def _regressor(est):
    """Convert an XGBRegressor."""
    estimator, notes, n_features, _ = _convert(est, REGRESSOR_OBJECTIVES)
    return estimator, None, notes, n_features


CONVERTERS = {}
if xgboost is not None:
    CONVERTERS = {
        xgboost.XGBClassifier: _classifier,
        xgboost.XGBRegressor: _regressor,
        xgboost.XGBRFClassifier: _classifier,
        xgboost.XGBRFRegressor: _regressor,
    }
