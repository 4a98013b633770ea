"""mlfcgi_export_others: linear models, kernel SVMs, MLPs, k-nearest neighbours and
Gaussian naive Bayes -> mlfcgi estimators (see models/FORMAT.md).

Each converter takes a fitted estimator and returns (estimator dict, class labels or
None for a regressor, metadata notes, number of inputs). Parameters the format cannot
represent are refused with an ExportError naming the estimator and the parameter.
"""

import numpy as np
from sklearn.linear_model import (BayesianRidge, ElasticNet, ElasticNetCV, HuberRegressor,
                                  Lasso, LassoCV, LinearRegression, LogisticRegression,
                                  PassiveAggressiveClassifier, Perceptron, Ridge,
                                  RidgeClassifier, RidgeClassifierCV, RidgeCV, SGDClassifier,
                                  SGDRegressor)
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.svm import SVC, SVR, LinearSVC, LinearSVR, NuSVC, NuSVR

from mlfcgi_export import (ExportError, _check_fitted, _class_labels, _dense, _describe,
                           _finite, _matrix, _vector)

# Estimators whose predict() is exactly X @ coef_ + intercept_.
LINEAR_REGRESSORS = (LinearRegression, Ridge, RidgeCV, Lasso, LassoCV, ElasticNet,
                     ElasticNetCV, SGDRegressor, LinearSVR, HuberRegressor, BayesianRidge)
# Classifiers whose decision_function() is X @ coef_.T + intercept_ and whose predict()
# is scikit-learn's LinearClassifierMixin.predict (score > 0, or the first argmax).
LINEAR_CLASSIFIERS = (LogisticRegression, SGDClassifier, LinearSVC, Perceptron,
                      PassiveAggressiveClassifier, RidgeClassifier, RidgeClassifierCV)

SVM_KERNELS = ("linear", "poly", "rbf", "sigmoid")
MLP_HIDDEN = ("identity", "logistic", "tanh", "relu")
# scikit-learn's metric names for the two distances the format has.
KNN_METRICS = {"euclidean": "euclidean", "l2": "euclidean", "manhattan": "manhattan",
               "l1": "manhattan", "cityblock": "manhattan"}
KNN_ALGORITHMS = ("brute", "kd_tree", "ball_tree")


def _refuse(est, param, value, why):
    """Raise the ExportError for an unsupported parameter value."""
    raise ExportError(f"{_describe(est)}({param}={value!r}): {why}")


# ---------------------------------------------------------------- linear models

def _logistic_proba(est):
    """Return how LogisticRegression.predict_proba of scikit-learn 1.2 maps scores."""
    if est.multi_class in ("ovr", "warn"):
        return "logistic"
    if est.multi_class == "auto" and (len(est.classes_) <= 2 or
                                      est.solver in ("liblinear", "newton-cholesky")):
        return "logistic"
    return "softmax"


def _sgd_proba(est):
    """SGDClassifier has predict_proba only for the log and modified Huber losses."""
    if est.loss in ("log_loss", "log"):
        return "logistic"
    if est.loss == "modified_huber":
        return "modified_huber"
    return "none"


def _proba_kind(est):
    """Return the linear_classifier "proba" value for a linear classifier."""
    if type(est) is LogisticRegression:
        return _logistic_proba(est)
    if type(est) is SGDClassifier:
        return _sgd_proba(est)
    return "none"


def _linear_classifier(est):
    """Convert a linear classifier to a linear_classifier estimator."""
    _check_fitted(est, "coef_")
    binarizer = getattr(est, "_label_binarizer", None)
    if binarizer is not None and str(binarizer.y_type_).startswith("multilabel"):
        _refuse(est, "y", "multilabel", "only single-label classification is supported")
    classes = _class_labels(est)
    coef = _matrix(np.atleast_2d(_dense(est.coef_)), "coef_")
    rows = 1 if len(classes) == 2 else len(classes)
    intercept = _dense(est.intercept_).reshape(-1)
    if intercept.size == 1 and rows > 1:  # fit_intercept=False leaves a scalar 0.0
        intercept = np.repeat(intercept, rows)
    if len(coef) != rows or intercept.size != rows:
        raise ExportError(f"{_describe(est)}(coef_={len(coef)} rows): expected {rows} for "
                          f"{len(classes)} classes")
    estimator = {"type": "linear_classifier", "proba": _proba_kind(est), "coef": coef,
                 "intercept": _vector(intercept, "intercept_")}
    return estimator, classes, {}, len(coef[0])


def _linear_regressor(est):
    """Convert a single-output linear regressor to a linear_regression estimator."""
    _check_fitted(est, "coef_")
    coef = _dense(est.coef_)
    if coef.ndim == 2 and coef.shape[0] != 1:
        _refuse(est, "n_targets", coef.shape[0], "only single-output regression is supported")
    intercept = _vector(np.atleast_1d(est.intercept_), "intercept_")
    if len(intercept) != 1:
        _refuse(est, "n_targets", len(intercept), "only single-output regression is supported")
    coef = _vector(coef, "coef_")
    return {"type": "linear_regression", "coef": coef, "intercept": intercept[0]}, None, {}, \
        len(coef)


# ---------------------------------------------------------------- kernel SVMs

def _svm_common(est):
    """Return the kernel keys and support vectors shared by SVC and SVR."""
    _check_fitted(est, "support_vectors_")
    if callable(est.kernel) or est.kernel not in SVM_KERNELS:
        _refuse(est, "kernel", est.kernel, "supported kernels are " + ", ".join(SVM_KERNELS))
    sv = _dense(est.support_vectors_)
    if sv.ndim != 2 or sv.shape[0] < 1:
        raise ExportError(f"{_describe(est)}: no support vectors")
    keys = {"kernel": est.kernel, "gamma": _finite(est._gamma, "_gamma"),
            "coef0": _finite(est.coef0, "coef0"), "degree": int(est.degree),
            "support_vectors": _matrix(sv, "support_vectors_")}
    return keys, sv.shape[1]


def _svc(est):
    """Convert SVC / NuSVC to an svc estimator (libsvm's one-vs-one model)."""
    keys, width = _svm_common(est)
    classes = _class_labels(est)
    dual, intercept = _dense(est.dual_coef_), _dense(est.intercept_).reshape(-1)
    if len(classes) == 2:
        # scikit-learn flips libsvm's signs for two classes; flip them back (exact).
        dual, intercept = -dual, -intercept
    if est.decision_function_shape not in ("ovr", "ovo"):
        _refuse(est, "decision_function_shape", est.decision_function_shape,
                "expected 'ovr' or 'ovo'")
    estimator = {"type": "svc", **keys,
                 "n_support": [int(n) for n in est.n_support_],
                 "dual_coef": _matrix(dual, "dual_coef_"),
                 "intercept": _vector(intercept, "intercept_"),
                 "decision_function_shape": est.decision_function_shape,
                 "break_ties": bool(est.break_ties)}
    if est.probability:
        estimator["prob_a"] = _vector(est.probA_, "probA_")
        estimator["prob_b"] = _vector(est.probB_, "probB_")
    return estimator, classes, {}, width


def _svr(est):
    """Convert SVR / NuSVR to an svr estimator."""
    keys, width = _svm_common(est)
    estimator = {"type": "svr", **keys,
                 "dual_coef": _matrix(np.atleast_2d(_dense(est.dual_coef_)), "dual_coef_"),
                 "intercept": _vector(np.atleast_1d(est.intercept_), "intercept_")[0]}
    return estimator, None, {}, width


# ---------------------------------------------------------------- MLPs

def _mlp(est):
    """Convert MLPClassifier / MLPRegressor to an mlp estimator."""
    _check_fitted(est, "coefs_")
    if est.activation not in MLP_HIDDEN:
        _refuse(est, "activation", est.activation, "expected one of " + ", ".join(MLP_HIDDEN))
    classes = None
    if isinstance(est, MLPClassifier):
        y_type = est._label_binarizer.y_type_
        if y_type not in ("binary", "multiclass"):
            _refuse(est, "y", y_type, "only single-label classification is supported")
        classes = _class_labels(est)
    elif est.n_outputs_ != 1:
        _refuse(est, "n_outputs_", est.n_outputs_, "only single-output regression is "
                "supported")
    layers = [{"coef": _matrix(w, f"coefs_[{i}]"), "intercept": _vector(b, f"intercepts_[{i}]")}
              for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_))]
    estimator = {"type": "mlp", "activation": est.activation, "output": est.out_activation_,
                 "layers": layers}
    return estimator, classes, {}, est.coefs_[0].shape[0]


# ---------------------------------------------------------------- neighbours

def _knn_metric(est):
    """Return "euclidean" or "manhattan", refusing any other distance."""
    metric = est.effective_metric_
    if isinstance(metric, str) and metric in KNN_METRICS and not est.effective_metric_params_:
        return KNN_METRICS[metric]
    if est.metric_params:
        _refuse(est, "metric_params", est.metric_params, "metric parameters are not supported")
    if est.metric == "minkowski":
        _refuse(est, "p", est.p, "supported: p=2 (euclidean) or p=1 (manhattan)")
    _refuse(est, "metric", est.metric, "supported: minkowski (p=2 or p=1), euclidean (l2), "
            "manhattan (l1, cityblock)")


def _knn_tree(est):
    """Return the fitted k-d tree or ball tree as the format's "tree" object, and its data."""
    data, idx_array, node_data, node_bounds = est._tree.get_arrays()
    nodes = [[int(n["idx_start"]), int(n["idx_end"]), int(n["is_leaf"]),
              _finite(n["radius"], "node_data.radius")] for n in node_data]
    tree = {"idx_array": [int(i) for i in idx_array], "node_data": nodes,
            "node_bounds": [_matrix(b, f"node_bounds[{i}]") for i, b in enumerate(node_bounds)]}
    return tree, np.asarray(data)


def _kneighbors(est):
    """Convert KNeighborsClassifier / KNeighborsRegressor to a kneighbors estimator."""
    _check_fitted(est, "_fit_X")
    if est.weights not in ("uniform", "distance"):
        _refuse(est, "weights", est.weights, "expected 'uniform' or 'distance'")
    metric = _knn_metric(est)
    if est._fit_method not in KNN_ALGORITHMS:
        _refuse(est, "algorithm", est._fit_method, "expected one of " + ", ".join(KNN_ALGORITHMS))
    if hasattr(est._fit_X, "toarray"):
        _refuse(est, "X", "sparse", "fit it on a dense array")
    y = np.asarray(est._y)
    classes = None
    if isinstance(est, KNeighborsClassifier):
        if est.outputs_2d_:
            _refuse(est, "y", "2-d", "only single-output classification is supported")
        classes = _class_labels(est)
        y_out = [int(c) for c in y]
    else:
        if y.ndim != 1:
            _refuse(est, "y", f"{y.ndim}-d", "only single-output regression is supported")
        y_out = _vector(y, "_y")
    estimator = {"type": "kneighbors", "n_neighbors": int(est.n_neighbors),
                 "weights": est.weights, "metric": metric, "algorithm": est._fit_method}
    fit_x = _dense(est._fit_X)
    if est._fit_method != "brute":
        estimator["tree"], fit_x = _knn_tree(est)
    estimator["fit_X"] = _matrix(fit_x, "_fit_X")
    estimator["y"] = y_out
    return estimator, classes, {}, fit_x.shape[1]


# ---------------------------------------------------------------- naive Bayes

def _gaussian_nb(est):
    """Convert GaussianNB to a gaussian_nb estimator (var_ already holds var_smoothing)."""
    _check_fitted(est, "theta_")
    classes = _class_labels(est)
    prior = _vector(est.class_prior_, "class_prior_")
    if any(p <= 0 for p in prior):
        _refuse(est, "priors", prior, "every class needs a prior above 0")
    estimator = {"type": "gaussian_nb", "class_prior": prior,
                 "theta": _matrix(est.theta_, "theta_"), "var": _matrix(est.var_, "var_")}
    return estimator, classes, {}, est.theta_.shape[1]


CONVERTERS = {
    **{cls: _linear_classifier for cls in LINEAR_CLASSIFIERS},
    **{cls: _linear_regressor for cls in LINEAR_REGRESSORS},
    SVC: _svc, NuSVC: _svc, SVR: _svr, NuSVR: _svr,
    MLPClassifier: _mlp, MLPRegressor: _mlp,
    KNeighborsClassifier: _kneighbors, KNeighborsRegressor: _kneighbors,
    GaussianNB: _gaussian_nb,
}
