"""mlfcgi_export_trees: scikit-learn trees and tree ensembles -> "tree_ensemble" (models/FORMAT.md)."""

import warnings

import numpy as np
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

from mlfcgi_export import ExportError, _check_fitted, _class_labels, _describe, _vector

# sklearn.tree._tree.TREE_LEAF: the child index of a leaf.
TREE_LEAF = -1
# The notes key that asks mlfcgi_export to make every feature nullable
# (the estimator routes a missing value, NaN, itself); it is not written
# to the metadata.
NULLABLE_NOTE = "_nullable"


# ---------------------------------------------------------------- sklearn.tree trees

def _single_output(est):
    """Refuse multi-output trees and forests."""
    n_outputs = getattr(est, "n_outputs_", 1)
    if n_outputs != 1:
        raise ExportError(f"{_describe(est)}(n_outputs_={n_outputs}): only single-output "
                          f"models are supported")


def _leaf_distributions(tree, n_classes, what):
    """Return the leaf class distributions of a classification tree_, as predict_proba makes them.

    The expression is DecisionTreeClassifier.predict_proba's (scikit-learn 1.2), applied to
    every node at once, so each leaf's row is bit for bit what predict_proba returns for a
    row landing in that leaf.
    """
    if tree.value.shape[1:] != (1, n_classes):
        raise ExportError(f"{what}: tree_.value has shape {tree.value.shape}, expected "
                          f"(n_nodes, 1, {n_classes})")
    counts = tree.value[:, 0, :n_classes]
    proba = np.array(counts, dtype=np.float64)
    normalizer = proba.sum(axis=1)[:, np.newaxis]
    normalizer[normalizer == 0.0] = 1.0
    proba /= normalizer
    leaves = tree.children_left == TREE_LEAF
    # A single tree predicts the argmax of the raw counts, mlfcgi the argmax of the
    # distribution; rounding could in principle make them differ.
    if np.any(np.argmax(counts[leaves], axis=1) != np.argmax(proba[leaves], axis=1)):
        raise ExportError(f"{what}: a leaf's class counts and normalised distribution have "
                          f"different argmax (rounding tie); cannot export exactly")
    return proba


def _sklearn_tree(tree, values, what):
    """Convert a fitted sklearn.tree._tree.Tree to a tree object of the format.

    values is an array (n_nodes, width) of leaf values; internal nodes are written as 0.
    """
    left = tree.children_left.astype(np.int64)
    right = tree.children_right.astype(np.int64)
    leaf = left == TREE_LEAF
    nodes = np.arange(tree.node_count)
    if np.any(~leaf & ((left <= nodes) | (right <= nodes))):
        raise ExportError(f"{what}: a child precedes its parent")
    feature = np.where(leaf, -1, tree.feature).astype(np.int64)
    threshold = np.where(leaf, 0.0, tree.threshold)
    vals = np.where(leaf[:, np.newaxis], values, 0.0)
    return {
        "feature": [int(f) for f in feature],
        "threshold": _vector(threshold, f"{what}.threshold"),
        "left": [int(c) for c in np.where(leaf, -1, left)],
        "right": [int(c) for c in np.where(leaf, -1, right)],
        "value": _vector(vals, f"{what}.value"),
    }


def _classifier_trees(est, trees):
    """Convert classifier trees to format trees with normalised leaf distributions."""
    n_classes = len(est.classes_)
    out = []
    for i, t in enumerate(trees):
        what = f"{_describe(est)}.estimators_[{i}]" if len(trees) > 1 else _describe(est)
        out.append(_sklearn_tree(t.tree_, _leaf_distributions(t.tree_, n_classes, what), what))
    return out


def _regressor_trees(est, trees):
    """Convert regression trees to format trees with one value per leaf."""
    out = []
    for i, t in enumerate(trees):
        what = f"{_describe(est)}.estimators_[{i}]" if len(trees) > 1 else _describe(est)
        if t.tree_.value.shape[1:] != (1, 1):
            raise ExportError(f"{what}: tree_.value has shape {t.tree_.value.shape}, "
                              f"expected (n_nodes, 1, 1)")
        out.append(_sklearn_tree(t.tree_, t.tree_.value[:, 0, :], what))
    return out


def _mean_ensemble(n_outputs, trees):
    """The estimator dict of an average over trees, compared in float32 as sklearn.tree does."""
    return {"type": "tree_ensemble", "aggregation": "mean", "input_dtype": "float32",
            "n_outputs": n_outputs, "trees": trees}


def _decision_tree_classifier(est):
    """Convert a DecisionTreeClassifier / ExtraTreeClassifier."""
    _check_fitted(est, "tree_")
    _single_output(est)
    classes = _class_labels(est)
    trees = _classifier_trees(est, [est])
    return _mean_ensemble(len(classes), trees), classes, {}, est.n_features_in_


def _decision_tree_regressor(est):
    """Convert a DecisionTreeRegressor / ExtraTreeRegressor."""
    _check_fitted(est, "tree_")
    _single_output(est)
    return _mean_ensemble(1, _regressor_trees(est, [est])), None, {}, est.n_features_in_


def _forest_classifier(est):
    """Convert a RandomForestClassifier / ExtraTreesClassifier: the mean of tree distributions."""
    _check_fitted(est, "estimators_")
    _single_output(est)
    classes = _class_labels(est)
    trees = _classifier_trees(est, est.estimators_)
    return _mean_ensemble(len(classes), trees), classes, {}, est.n_features_in_


def _forest_regressor(est):
    """Convert a RandomForestRegressor / ExtraTreesRegressor: the mean of tree values."""
    _check_fitted(est, "estimators_")
    _single_output(est)
    return _mean_ensemble(1, _regressor_trees(est, est.estimators_)), None, {}, est.n_features_in_


# ---------------------------------------------------------------- GradientBoosting

def _gb_check(est, losses):
    """Refuse a GradientBoosting loss or init the format cannot represent."""
    _check_fitted(est, "estimators_")
    if est.loss not in losses:
        raise ExportError(f"{_describe(est)}(loss={est.loss!r}): only loss="
                          f"{' / '.join(repr(x) for x in losses)} is supported")
    # The default init (a prior / mean DummyEstimator) and 'zero' predict a constant;
    # any other init estimator depends on X.
    if est.init is not None and not (isinstance(est.init, str) and est.init == "zero"):
        raise ExportError(f"{_describe(est)}(init={_describe(est.init)}): only init=None or "
                          f"'zero' is supported")


def _gb_base(est):
    """Return the init raw predictions (a constant row) exactly as _raw_predict_init makes them."""
    row = np.zeros((1, est.n_features_in_), dtype=np.float64)
    with warnings.catch_warnings():  # a model fitted on a DataFrame warns about names
        warnings.simplefilter("ignore", UserWarning)
        raw = est._raw_predict_init(row)
    return _vector(raw[0], f"{_describe(est)} init raw prediction")


def _gb_trees(est):
    """Convert estimators_ (n_stages x K regression trees) in scikit-learn's summation order."""
    trees = []
    n_stages, n_scores = est.estimators_.shape
    for i in range(n_stages):
        for k in range(n_scores):
            t = est.estimators_[i, k].tree_
            what = f"{_describe(est)}.estimators_[{i}, {k}]"
            tree = _sklearn_tree(t, t.value[:, 0, :1], what)
            if n_scores > 1:
                tree["output"] = k
            trees.append(tree)
    return trees


def _gb_ensemble(est, link):
    """The estimator dict of a GradientBoosting model: init + learning_rate * sum of trees."""
    base = _gb_base(est)
    return {"type": "tree_ensemble", "aggregation": "sum", "input_dtype": "float32",
            "n_outputs": len(base), "link": link, "base": base,
            "learning_rate": float(est.learning_rate), "trees": _gb_trees(est)}


def _gradient_boosting_classifier(est):
    """Convert a GradientBoostingClassifier (log_loss, binary or multinomial)."""
    _gb_check(est, ("log_loss", "deviance"))
    classes = _class_labels(est)
    link = "logistic" if len(classes) == 2 else "logsumexp"
    return _gb_ensemble(est, link), classes, {}, est.n_features_in_


def _gradient_boosting_regressor(est):
    """Convert a GradientBoostingRegressor (squared_error)."""
    _gb_check(est, ("squared_error",))
    return _gb_ensemble(est, "identity"), None, {}, est.n_features_in_


# ---------------------------------------------------------------- HistGradientBoosting

def _bitset_codes(bitset):
    """Return the category codes set in a scikit-learn bitset (uint32 words)."""
    return [32 * w + b for w, word in enumerate(bitset) for b in range(32) if (int(word) >> b) & 1]


def _hgb_tree(predictor, what):
    """Convert one HistGradientBoosting TreePredictor to a tree object of the format."""
    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool)
    n = len(nodes)
    index = np.arange(n)
    left = nodes["left"].astype(np.int64)
    right = nodes["right"].astype(np.int64)
    if np.any(~leaf & ((left <= index) | (right <= index) | (left >= n) | (right >= n))):
        raise ExportError(f"{what}: bad child index")
    categorical = ~leaf & nodes["is_categorical"].astype(bool)
    tree = {
        "feature": [int(f) for f in np.where(leaf, -1, nodes["feature_idx"].astype(np.int64))],
        "threshold": _vector(np.where(leaf | categorical, 0.0, nodes["num_threshold"]),
                             f"{what}.num_threshold"),
        "left": [int(c) for c in np.where(leaf, -1, left)],
        "right": [int(c) for c in np.where(leaf, -1, right)],
        "value": _vector(np.where(leaf, nodes["value"], 0.0), f"{what}.value"),
        "missing_left": [int(m) for m in np.where(leaf, 0, nodes["missing_go_to_left"])],
    }
    if categorical.any():
        bitsets = predictor.raw_left_cat_bitsets
        tree["categories"] = [
            _bitset_codes(bitsets[nodes["bitset_idx"][i]]) if categorical[i] else None
            for i in range(n)]
    return tree


def _hgb_known_categories(est):
    """Return the known_categories list: the categories each categorical feature saw in fit."""
    if est.is_categorical_ is None:
        return []
    bitsets, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
    return [{"feature": int(f), "codes": _bitset_codes(bitsets[f_idx_map[f]])}
            for f in np.flatnonzero(est.is_categorical_)]


def _hgb_ensemble(est, link):
    """The estimator dict of a HistGradientBoosting model: baseline + sum of trees, float64."""
    _check_fitted(est, "_predictors")
    base = _vector(np.asarray(est._baseline_prediction).reshape(-1),
                   f"{_describe(est)}._baseline_prediction")
    trees = []
    for i, iteration in enumerate(est._predictors):
        if len(iteration) != len(base):
            raise ExportError(f"{_describe(est)}: iteration {i} has {len(iteration)} trees, "
                              f"expected {len(base)}")
        for k, predictor in enumerate(iteration):
            tree = _hgb_tree(predictor, f"{_describe(est)}._predictors[{i}][{k}]")
            if len(base) > 1:
                tree["output"] = k
            trees.append(tree)
    est_dict = {"type": "tree_ensemble", "aggregation": "sum", "input_dtype": "float64",
                "n_outputs": len(base), "link": link, "base": base}
    known = _hgb_known_categories(est)
    if known:
        est_dict["known_categories"] = known
    est_dict["trees"] = trees
    return est_dict


def _hgb_loss(est, allowed, name):
    """Refuse a HistGradientBoosting loss whose fitted loss class is not in allowed."""
    if type(getattr(est, "_loss", None)).__name__ not in allowed:
        raise ExportError(f"{_describe(est)}(loss={est.loss!r}): only loss={name!r} is "
                          f"supported")


def _hist_gradient_boosting_classifier(est):
    """Convert a HistGradientBoostingClassifier (log_loss, binary or multinomial)."""
    _check_fitted(est, "_predictors")
    _hgb_loss(est, ("HalfBinomialLoss", "HalfMultinomialLoss"), "log_loss")
    classes = _class_labels(est)
    link = "logistic" if len(classes) == 2 else "softmax"
    notes = {NULLABLE_NOTE: True}
    return _hgb_ensemble(est, link), classes, notes, est.n_features_in_


def _hist_gradient_boosting_regressor(est):
    """Convert a HistGradientBoostingRegressor (squared_error)."""
    _check_fitted(est, "_predictors")
    _hgb_loss(est, ("HalfSquaredError",), "squared_error")
    return _hgb_ensemble(est, "identity"), None, {NULLABLE_NOTE: True}, est.n_features_in_


CONVERTERS = {
    DecisionTreeClassifier: _decision_tree_classifier,
    ExtraTreeClassifier: _decision_tree_classifier,
    DecisionTreeRegressor: _decision_tree_regressor,
    ExtraTreeRegressor: _decision_tree_regressor,
    RandomForestClassifier: _forest_classifier,
    ExtraTreesClassifier: _forest_classifier,
    RandomForestRegressor: _forest_regressor,
    ExtraTreesRegressor: _forest_regressor,
    GradientBoostingClassifier: _gradient_boosting_classifier,
    GradientBoostingRegressor: _gradient_boosting_regressor,
    HistGradientBoostingClassifier: _hist_gradient_boosting_classifier,
    HistGradientBoostingRegressor: _hist_gradient_boosting_regressor,
}
