"""mlfcgi_export: fitted scikit-learn estimator -> mlfcgi model file (see models/FORMAT.md)."""

import argparse
import json
import math
import os
import importlib
import re
import sys

import numpy as np
import sklearn
from sklearn.pipeline import Pipeline

FORMAT = "mlfcgi-model/1"
PROG = "mlfcgi-export"
MAX_FEATURES = 65536

NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
VERSION_RE = re.compile(r"[A-Za-z0-9_.+-]{1,64}\Z")
FEATURE_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}\Z")

LOWER_KEYS = ("minimum", "exclusiveMinimum")
UPPER_KEYS = ("maximum", "exclusiveMaximum")
SPEC_KEYS = LOWER_KEYS + UPPER_KEYS + ("description",)


class ExportError(Exception):
    """An estimator or option that the model format cannot represent."""


# ---------------------------------------------------------------- numbers

def _finite(value, what):
    """Return value as a Python float, refusing NaN and infinities."""
    x = float(value)
    if not math.isfinite(x):
        raise ExportError(f"{what}: {x!r} is not a finite number")
    return x


def _dense(array):
    """Return a scipy sparse matrix (e.g. after .sparsify()) or array as a float ndarray."""
    if hasattr(array, "toarray"):
        array = array.toarray()
    return np.asarray(array, dtype=np.float64)


def _vector(array, what):
    """Return a 1-d array as a list of Python floats."""
    return [_finite(x, f"{what}[{i}]") for i, x in enumerate(_dense(array).reshape(-1))]


def _matrix(array, what):
    """Return a 2-d array as a list of lists of Python floats."""
    return [_vector(row, f"{what}[{i}]") for i, row in enumerate(_dense(array))]


def _bound_number(text):
    """Parse a bound from the command line: an int stays an int, else a float."""
    try:
        return int(text)
    except ValueError:
        return float(text)


# ---------------------------------------------------------------- estimators

def _describe(est):
    """Return the estimator's class name for messages and metadata."""
    return type(est).__name__


def _check_fitted(est, attr):
    """Refuse an estimator that has not been fitted."""
    if not hasattr(est, attr):
        raise ExportError(f"{_describe(est)} is not fitted")


def _label(est, c):
    """Return one class label as a plain int or str, refusing other types."""
    if isinstance(c, str):
        return str(c)
    if isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)):
        if abs(int(c)) < 2 ** 53:  # readers store JSON numbers as doubles
            return int(c)
        bad = "an integer that large"
    else:
        bad = type(c).__name__
    raise ExportError(f"{_describe(est)}(classes_={c!r}): class labels must be strings or "
                      f"integers below 2**53 in magnitude, not {bad}; re-fit with other labels")


def _class_labels(est):
    """Return classes_ as plain Python ints or strs: distinct, at least 2, one type."""
    labels = [_label(est, c) for c in est.classes_]
    if len({type(x) for x in labels}) > 1:
        raise ExportError(f"{_describe(est)}(classes_=...): class labels mix integers and strings")
    if len(labels) < 2:
        raise ExportError(f"{_describe(est)}(classes_=...): at least 2 classes are needed")
    return labels


# Estimator families in modules of their own (tools/mlfcgi_export_<family>.py),
# each defining CONVERTERS = {EstimatorClass: convert}. convert(est) returns
# (estimator dict, class labels or None for a regressor, metadata notes,
# number of inputs the estimator takes). A true notes["_nullable"] says the
# estimator handles NaN: features whose missing value reaches it become nullable
# (see mlfcgi_export_prep.py); it is not written out.
FAMILY_MODULES = ("mlfcgi_export_xgboost", "mlfcgi_export_trees", "mlfcgi_export_others")


def _converters():
    """Map each supported estimator class to its converter."""
    table = {}
    for modname in FAMILY_MODULES:
        table.update(importlib.import_module(modname).CONVERTERS)
    return table


def _convert_final(est):
    """Dispatch the final estimator on its exact class (subclasses may predict differently)."""
    convert = _converters().get(type(est))
    if convert is None:
        raise ExportError(f"unsupported estimator {_describe(est)}")
    return convert(est)


def _final_estimator(est):
    """Return the estimator at the end of a Pipeline (or est itself)."""
    while type(est) is Pipeline:
        est = est.steps[-1][1]
        if est is None or (isinstance(est, str) and est == "passthrough"):
            raise ExportError("Pipeline(steps=...): the last step must be an estimator")
    return est


def _unpipe(est, n_inputs, nan_ok=False):
    """Convert est's preprocessing (see mlfcgi_export_prep.py) for a final estimator of
    n_inputs values; nan_ok: that estimator handles a missing value (NaN) itself.

    Returns a Prep: steps, final, columns (what each raw input column is), width, text.
    """
    import mlfcgi_export_prep as prep  # it imports this module's helpers
    n_features = prep.input_width(est) if type(est) is Pipeline else None
    result = prep.convert_pipeline(est, n_features or n_inputs, nan_ok)
    if result.width != n_inputs:
        raise ExportError(f"the preprocessing gives {result.width} values per row, "
                          f"{_describe(result.final)} takes {n_inputs}")
    return result


# ---------------------------------------------------------------- features

def _feature_names(est, n_features, given):
    """Pick feature names: --feature-names, else feature_names_in_, else f0..fN-1."""
    try:
        fitted = est.feature_names_in_
    except AttributeError:
        fitted = None
    if given is not None:
        names = list(given)
        source = "feature names"
    elif fitted is not None:
        names = [str(x) for x in fitted]
        source = "feature_names_in_"
    else:
        names = [f"f{i}" for i in range(n_features)]
        source = "default names"
    if len(names) != n_features:
        raise ExportError(f"{len(names)} {source} given, but the estimator has "
                          f"{n_features} features")
    for name in names:
        if not FEATURE_RE.match(name):
            raise ExportError(f"feature name {name!r} ({source}): must be 1-128 characters of "
                              f"[A-Za-z0-9_.-]; rename with --feature-names")
    if len(set(names)) != len(names):
        raise ExportError(f"{source}: feature names must be distinct")
    return names


def _check_spec(name, spec):
    """Validate one feature's extra keys (bounds, description)."""
    for key, value in spec.items():
        if key not in SPEC_KEYS:
            raise ExportError(f"feature {name}: unknown key {key!r}")
        if key != "description":
            _finite(value, f"feature {name}: {key}")
    for pair in (LOWER_KEYS, UPPER_KEYS):
        if all(k in spec for k in pair):
            raise ExportError(f"feature {name}: give at most one of {pair[0]} and {pair[1]}")
    lo, lo_open = _lower(spec)
    hi, hi_open = _upper(spec)
    if lo is not None and hi is not None and (lo > hi or (lo == hi and (lo_open or hi_open))):
        raise ExportError(f"feature {name}: bounds leave no valid value")


def _lower(spec):
    """Return (lower bound or None, whether it is exclusive)."""
    if "exclusiveMinimum" in spec:
        return spec["exclusiveMinimum"], True
    return spec.get("minimum"), False


def _upper(spec):
    """Return (upper bound or None, whether it is exclusive)."""
    if "exclusiveMaximum" in spec:
        return spec["exclusiveMaximum"], True
    return spec.get("maximum"), False


def _features(names, specs, kinds=None):
    """Build the features array from names, {name: {bound/description keys}} and, per
    feature, the keys the preprocessing decided (type "category", categories, unknown,
    nullable)."""
    specs = dict(specs or {})
    unknown = sorted(set(specs) - set(names))
    if unknown:
        raise ExportError(f"bounds given for unknown feature {unknown[0]!r}")
    features = []
    for i, name in enumerate(names):
        spec = specs.get(name, {})
        _check_spec(name, spec)
        feature = {"name": name, "type": "number"}
        feature.update(kinds[i] if kinds else {})
        if feature["type"] == "category" and any(k in spec for k in LOWER_KEYS + UPPER_KEYS):
            raise ExportError(f"feature {name}: a category feature (strings) has no bounds")
        feature.update((k, spec[k]) for k in SPEC_KEYS if k in spec)
        features.append(feature)
    return features


def _inside(x, feature):
    """Tell whether x satisfies the feature's bounds."""
    lo, lo_open = _lower(feature)
    hi, hi_open = _upper(feature)
    if lo is not None and (x < lo or (lo_open and x == lo)):
        return False
    return hi is None or not (x > hi or (hi_open and x == hi))


def _default_value(feature):
    """Return a value inside the bounds as mlfcgi picks one: midpoint, bound +/- 1, else 0."""
    lo, _ = _lower(feature)
    hi, _ = _upper(feature)
    if lo is not None and hi is not None:
        return lo + (hi - lo) / 2
    if lo is not None:
        return lo + 1
    if hi is not None:
        return hi - 1
    return 0


def _test_input(features, training_mean):
    """Return a row for /ready: the training mean where valid (None: unknown), else a value
    within bounds; a category feature's first category."""
    row = []
    for i, feature in enumerate(features):
        typical = None if training_mean is None else training_mean[i]
        if feature["type"] == "category":
            row.append(feature["categories"][0])
        elif typical is not None and _inside(float(typical), feature):
            row.append(_finite(typical, f"training mean[{i}]"))
        else:
            row.append(_default_value(feature))
    return row


# ---------------------------------------------------------------- export

def _check_identifiers(name, version):
    """Validate the model name and version against the format's character sets."""
    if not NAME_RE.match(name or ""):
        raise ExportError(f"model name {name!r}: must be 1-64 characters of [A-Za-z0-9_.-]")
    if not VERSION_RE.match(version or ""):
        raise ExportError(f"version {version!r}: must be 1-64 characters of [A-Za-z0-9_.+-]")


def _check_class_names(class_names, classes):
    """Validate display names: one per class, non-empty, distinct."""
    if classes is None:
        raise ExportError("class names given for a regression model")
    names = [str(x) for x in class_names]
    if len(names) != len(classes):
        raise ExportError(f"{len(names)} class names given for {len(classes)} classes {classes}")
    if any(not x for x in names) or len(set(names)) != len(names):
        raise ExportError("class names must be non-empty and distinct")
    return names


def export_model(estimator, name, version, feature_names=None, class_names=None,
                 feature_specs=None, training_mean=None, description=None, metadata=None,
                 train_data=None, train_margin=0.0):
    """Return the mlfcgi model document (a dict) for a fitted estimator.

    feature_specs maps a feature name to extra keys for it: minimum,
    exclusiveMinimum, maximum, exclusiveMaximum, description.  train_data, a
    CSV file of the training data, adds metadata.training_stats and the bounds
    (widened by train_margin) of features feature_specs leaves unbounded.
    training_mean, if given (else the data's mean, else the mean or median a
    scaler or imputer learnt), becomes test_input.  Raises ExportError for
    anything the format cannot represent.
    """
    _check_identifiers(name, version)
    final = _final_estimator(estimator)
    est_dict, classes, notes, n_inputs = _convert_final(final)
    # A true notes["_nullable"]: the estimator routes a missing value (NaN) itself.
    prep = _unpipe(estimator, n_inputs, nan_ok=bool(notes.pop("_nullable", False)))
    n_features = len(prep.columns)
    if n_features < 1 or n_features > MAX_FEATURES:
        raise ExportError(f"{prep.text}: {n_features} features; the format allows "
                          f"1-{MAX_FEATURES}")
    names = _feature_names(estimator, n_features, feature_names)
    kinds = [prep.feature_keys(i) for i in range(n_features)]
    stats = None
    if train_data is not None:
        from mlfcgi_export_stats import means, training_stats, with_bounds
        unknown = sorted(set(feature_specs or {}) - set(names))
        if unknown:
            raise ExportError(f"bounds given for unknown feature {unknown[0]!r}")
        stats = training_stats(train_data, names, kinds)
        feature_specs = with_bounds(feature_specs, stats, train_margin)
        if training_mean is None:
            training_mean = means(stats, names)
    features = _features(names, feature_specs, kinds)
    mean = training_mean if training_mean is not None else [c.typical for c in prep.columns]
    if stats is not None:
        mean = [m if m is not None else c.typical for m, c in zip(mean, prep.columns)]
    if len(mean) != n_features:
        raise ExportError(f"training mean has {len(mean)} values for {n_features} features")

    model = {"format": FORMAT, "name": name, "version": version,
             "task": "classification" if classes else "regression"}
    if description:
        model["description"] = str(description)
    model["features"] = features
    if classes:
        model["classes"] = classes
        if class_names is not None:
            model["class_names"] = _check_class_names(class_names, classes)
    elif class_names is not None:
        _check_class_names(class_names, None)
    if prep.steps:
        model["preprocessing"] = prep.steps
    model["estimator"] = est_dict
    model["test_input"] = _test_input(features, mean)
    model["metadata"] = {"trained_with": f"scikit-learn {sklearn.__version__}",
                         "exported_by": PROG,
                         "source": prep.text, **notes, **(metadata or {})}
    if stats is not None:
        model["metadata"]["training_stats"] = stats
    return model


# ---------------------------------------------------------------- output

def _compact(value):
    """Render a value on one line; floats use repr, so they round-trip exactly."""
    return json.dumps(value, separators=(", ", ": "), allow_nan=False)


def _render(value, depth):
    """Render objects down to depth 1 and lists of containers one element per line."""
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict) and value and depth <= 1:
        items = [f"{inner}{json.dumps(k)}: {_render(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
        return "[\n" + ",\n".join(inner + _compact(v) for v in value) + "\n" + pad + "]"
    return _compact(value)


def dumps(model):
    """Return the model document as text: deterministic, exact, one line per item."""
    return _render(model, 0) + "\n"


def write_model(model, path):
    """Write the model to path atomically ('-' writes to standard output)."""
    text = dumps(model)
    if path == "-":
        sys.stdout.write(text)
        return
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="ascii") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        raise OSError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------- command line

def parse_list(text):
    """Split a comma-separated option value; None stays None."""
    return None if text is None else [x.strip() for x in text.split(",")]


def _parse_bound_side(text, option, inclusive_key, exclusive_key, mark):
    """Parse one side of name:lo:hi: empty, a number, or mark+number for exclusive."""
    if text == "":
        return {}
    key = inclusive_key
    if text.startswith(mark):
        key, text = exclusive_key, text[1:]
    try:
        return {key: _bound_number(text)}
    except ValueError:
        raise ExportError(f"--bounds {option}: {text!r} is not a number") from None


def parse_bounds(text):
    """Parse --bounds name:lo:hi,... (empty side = unbounded, >lo / <hi = exclusive)."""
    specs = {}
    for item in parse_list(text) or []:
        parts = item.split(":")
        if len(parts) != 3 or not parts[0]:
            raise ExportError(f"--bounds {item}: expected name:lo:hi")
        name, lo, hi = parts
        if name in specs:
            raise ExportError(f"--bounds {item}: feature {name} given twice")
        spec = _parse_bound_side(lo, item, "minimum", "exclusiveMinimum", ">")
        spec.update(_parse_bound_side(hi, item, "maximum", "exclusiveMaximum", "<"))
        specs[name] = spec
    return specs


def _argument_parser():
    """Return the command-line parser."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Convert a fitted scikit-learn estimator (saved with joblib or pickle) "
                    "into an mlfcgi model file (format mlfcgi-model/1). Supported: linear "
                    "models (LogisticRegression, LinearRegression, Ridge, Lasso, ElasticNet, "
                    "SGD, LinearSVC/SVR), SVC/SVR, DecisionTree, RandomForest, ExtraTrees, "
                    "GradientBoosting, HistGradientBoosting, MLP, KNeighbors, GaussianNB, "
                    "XGBClassifier/XGBRegressor (models/FORMAT.md lists all), "
                    "optionally at the end of a Pipeline of "
                    "StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, "
                    "SimpleImputer, OneHotEncoder and ColumnTransformer steps. Loading "
                    "runs pickle: only export files you trust.")
    p.add_argument("estimator", metavar="MODEL.joblib", help="the fitted estimator file")
    p.add_argument("-o", "--output", required=True, metavar="OUT.json",
                   help="the model file to write ('-' for standard output)")
    p.add_argument("--name", required=True, help="model name: 1-64 of [A-Za-z0-9_.-]")
    p.add_argument("--version", required=True, help="model version: 1-64 of [A-Za-z0-9_.+-]")
    p.add_argument("--feature-names", metavar="a,b,...",
                   help="feature names in column order (default: the estimator's "
                        "feature_names_in_, else f0..fN-1)")
    p.add_argument("--class-names", metavar="x,y,...",
                   help="display names, one per class in classes_ order")
    p.add_argument("--bounds", metavar="name:lo:hi,...",
                   help="inclusive bounds; leave a side empty for none; prefix lo with '>' "
                        "or hi with '<' for an exclusive bound (quote it: 'x:>0:10')")
    p.add_argument("--train-data", metavar="FILE.csv",
                   help="the training data, a CSV file with a header row naming the "
                        "features (other columns are ignored): records per-feature "
                        "statistics (min, max, mean, std, quantiles; category counts) for "
                        "sql/drift.sql, and bounds [min, max] for features --bounds "
                        "leaves unbounded")
    p.add_argument("--train-margin", metavar="FRACTION", type=float, default=0.0,
                   help="widen the bounds from --train-data by this fraction of the "
                        "range on each side (default 0: exactly the training range)")
    p.add_argument("--description", help="free text stored in the model file")
    return p


def _load(path):
    """Load a joblib or pickle file."""
    import joblib
    try:
        return joblib.load(path)
    except OSError as e:
        raise OSError(f"{path}: {e.strerror or e}") from None
    except Exception as e:  # unpickling can raise almost anything
        raise OSError(f"{path}: cannot load: {type(e).__name__}: {e}") from None


def main(argv=None):
    """Run the command line; return the exit status (2: cannot export, 1: I/O error)."""
    args = _argument_parser().parse_args(argv)
    try:
        estimator = _load(args.estimator)
        model = export_model(estimator, args.name, args.version,
                             feature_names=parse_list(args.feature_names),
                             class_names=parse_list(args.class_names),
                             feature_specs=parse_bounds(args.bounds),
                             description=args.description,
                             train_data=args.train_data,
                             train_margin=args.train_margin)
        write_model(model, args.output)
    except ExportError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
