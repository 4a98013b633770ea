"""mlfcgi_export_prep: scikit-learn preprocessing -> mlfcgi steps and feature schema.

Walks a Pipeline (and the ColumnTransformers, nested Pipelines, scalers,
SimpleImputers and OneHotEncoders in it) and returns the model file's
"preprocessing" steps together with what each raw input column turned out
to be: a number, or a category (strings, sent as JSON strings; the row holds
the index in the feature's "categories"), and whether it may be null (a
missing value that every path handles: an imputer, or an encoder that knows
or ignores it).  See models/FORMAT.md.
"""

import math

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (MaxAbsScaler, MinMaxScaler, OneHotEncoder, RobustScaler,
                                   StandardScaler)
from sklearn.impute import SimpleImputer

from mlfcgi_export import ExportError, _check_fitted, _describe, _finite, _vector

UNKNOWN = -1  # the row value of an unknown category that is ignored (SCHEMA_UNKNOWN)


class Column:
    """What one raw input column is, as learnt from the steps that read it."""

    def __init__(self, index):
        self.index = index
        self.kind = None          # None (unused), "number" or "category"
        self.why = None           # the step that decided kind, for messages
        self.categories = []      # category strings, in first-seen order
        self.encodings = []       # (handle_unknown, tuple of categories) per encoder
        self.unknown_error = False
        self.nan_handled = False  # some step deals with a missing value
        self.nan_fatal = False    # some path lets a missing value reach a step that fails
        self.typical = None       # a value for test_input, if a step knows one

    def use(self, kind, why):
        """Record that a step reads this column as kind ("number" or "category")."""
        if self.kind is not None and self.kind != kind:
            raise ExportError(f"input column {self.index} is read as a {self.kind} by "
                              f"{self.why} and as a {kind} by {why}")
        if self.kind is None:
            self.kind, self.why = kind, why

    def code(self, category):
        """Return the index of a category string, adding it if new."""
        if category not in self.categories:
            self.categories.append(category)
        return self.categories.index(category)

    @property
    def nullable(self):
        """A missing value is accepted when some step handles it and none fails on it,
        or when no step reads the column at all."""
        return (self.nan_handled or self.kind is None) and not self.nan_fatal


class Value:
    """One column of the row between steps: which raw column it still carries, and how."""

    def __init__(self, src=None, cat=False, nan=False, raw=False):
        self.src = src    # raw column index, or None for a derived value
        self.cat = cat    # holds a category index of raw column src
        self.nan = nan    # a missing value of src may still be here (NaN)
        self.raw = raw    # the raw value itself, unchanged


class FillCode:
    """A string imputer's fill value for a category column, resolved after the walk."""

    def __init__(self, column, text):
        self.column, self.text = column, text

    def resolve(self):
        """Return the category index of text, else UNKNOWN (marking a missing value fatal
        for the column if an encoder raises on unknown categories)."""
        col = self.column
        if self.text in col.categories:
            return col.categories.index(self.text)
        if not col.unknown_error:
            return UNKNOWN
        col.nan_fatal = True  # the encoder would raise on the imputed value
        return UNKNOWN


class Prep:
    """The result of walking a pipeline."""

    def __init__(self, steps, final, columns, width, text):
        self.steps = steps      # the "preprocessing" array
        self.final = final      # the final estimator
        self.columns = columns  # a Column per raw input column
        self.width = width      # values the final estimator receives
        self.text = text        # "Pipeline(StandardScaler, LogisticRegression)"

    def feature_keys(self, i):
        """Return the feature-definition keys raw column i needs: type, categories,
        unknown, nullable."""
        col, keys = self.columns[i], {}
        if col.kind == "category":
            keys["type"] = "category"
            keys["categories"] = list(col.categories)
            keys["unknown"] = "error" if col.unknown_error else "ignore"
        if col.nullable:
            keys["nullable"] = True
        return keys


# ---------------------------------------------------------------- helpers

def _is_missing(x):
    """Tell whether x is scikit-learn's missing value (None or NaN)."""
    return x is None or (isinstance(x, (float, np.floating)) and math.isnan(x))


def _is_string(x):
    return isinstance(x, (str, np.str_))


def _is_number(x):
    return (isinstance(x, (int, float, np.integer, np.floating))
            and not isinstance(x, (bool, np.bool_)))


def _check_width(step, values):
    """Refuse a step fitted on another number of columns than it receives here."""
    n = getattr(step, "n_features_in_", None)
    if n is not None and n != len(values):
        raise ExportError(f"{_describe(step)}: fitted on {n} columns, receives {len(values)}")


def _numeric_use(step, values, cols):
    """Mark the raw columns a numeric step reads; return its output values (NaN passes)."""
    _check_width(step, values)
    out = []
    for v in values:
        if v.cat:
            raise ExportError(f"{_describe(step)}: reads the string column "
                              f"{v.src} as numbers")
        if v.src is not None:
            cols[v.src].use("number", _describe(step))
        out.append(Value(v.src, nan=v.nan))
    return out


def _typical(values, numbers, cols):
    """Remember a typical value (a mean or median) for raw columns not yet transformed."""
    for v, x in zip(values, numbers):
        if v.raw and not v.cat and x is not None and math.isfinite(x):
            if cols[v.src].typical is None:
                cols[v.src].typical = float(x)


# ---------------------------------------------------------------- scalers

def _standard(step, values, cols):
    _check_fitted(step, "n_features_in_")
    n = step.n_features_in_
    mean = _vector(step.mean_, "StandardScaler.mean_") if step.with_mean else [0.0] * n
    scale = _vector(step.scale_, "StandardScaler.scale_") if step.with_std else [1.0] * n
    if any(s == 0.0 for s in scale):
        raise ExportError("StandardScaler(scale_=...): a scale of 0 cannot be exported")
    if step.with_mean:
        _typical(values, mean, cols)
    out = _numeric_use(step, values, cols)
    return [{"type": "standard_scaler", "mean": mean, "scale": scale}], out


def _robust(step, values, cols):
    """RobustScaler: (x - center_) / scale_, written as a standard_scaler."""
    _check_fitted(step, "n_features_in_")
    n = step.n_features_in_
    center = _vector(step.center_, "RobustScaler.center_") if step.with_centering else [0.0] * n
    scale = _vector(step.scale_, "RobustScaler.scale_") if step.with_scaling else [1.0] * n
    if any(s == 0.0 for s in scale):
        raise ExportError("RobustScaler(scale_=...): a scale of 0 cannot be exported")
    if step.with_centering:
        _typical(values, center, cols)
    out = _numeric_use(step, values, cols)
    return [{"type": "standard_scaler", "mean": center, "scale": scale}], out


def _max_abs(step, values, cols):
    """MaxAbsScaler: x / scale_, written as a standard_scaler with mean 0 (exact)."""
    _check_fitted(step, "scale_")
    scale = _vector(step.scale_, "MaxAbsScaler.scale_")
    if any(s == 0.0 for s in scale):
        raise ExportError("MaxAbsScaler(scale_=...): a scale of 0 cannot be exported")
    out = _numeric_use(step, values, cols)
    return [{"type": "standard_scaler", "mean": [0.0] * len(scale), "scale": scale}], out


def _min_max(step, values, cols):
    _check_fitted(step, "scale_")
    out = {"type": "min_max_scaler", "scale": _vector(step.scale_, "MinMaxScaler.scale_"),
           "min": _vector(step.min_, "MinMaxScaler.min_")}
    if step.clip:
        lo, hi = (_finite(x, "MinMaxScaler.feature_range") for x in step.feature_range)
        out["clip"] = [lo, hi]
    return [out], _numeric_use(step, values, cols)


# ---------------------------------------------------------------- imputer

def _imputer_fill(step, k, value, stat, dropped, cols):
    """Return the fill value of column k and its output Value (None if dropped)."""
    name = f"SimpleImputer(strategy={step.strategy!r})"
    if dropped:  # never seen in training: scikit-learn drops the column
        if value.src is not None and value.nan:
            cols[value.src].nan_handled = True
        return None, None
    if _is_string(stat):
        if value.src is None or not (value.raw or value.cat):
            raise ExportError(f"{name}: fills column {k} with the string {stat!r}, but that "
                              f"column is not a string input column")
        col = cols[value.src]
        col.use("category", name)
        if value.nan:
            col.nan_handled = True
        return FillCode(col, str(stat)), Value(value.src, cat=True)
    if not _is_number(stat):
        raise ExportError(f"{name}: fill value {stat!r} of column {k} is neither a "
                          f"number nor a string")
    if value.cat:
        raise ExportError(f"{name}: fills the string column {k} with the number {stat!r}")
    if value.src is not None:
        col = cols[value.src]
        col.use("number", name)
        if value.nan:
            col.nan_handled = True
    return _finite(stat, f"{name}.statistics_[{k}]"), Value()


def _imputer(step, values, cols):
    """SimpleImputer (missing_values=NaN): fill, drop never-seen columns, add indicators."""
    _check_fitted(step, "statistics_")
    if not (isinstance(step.missing_values, float) and math.isnan(step.missing_values)):
        raise ExportError(f"SimpleImputer(missing_values={step.missing_values!r}): only "
                          f"np.nan (a JSON null) is supported")
    _check_width(step, values)
    stats = list(step.statistics_)
    keep_all = step.strategy == "constant" or getattr(step, "keep_empty_features", False)
    if step.strategy in ("mean", "median"):
        _typical(values, [None if _is_missing(s) else float(s) for s in stats], cols)
    fill, out = [], []
    for k, (value, stat) in enumerate(zip(values, stats)):
        f, v = _imputer_fill(step, k, value, stat, not keep_all and _is_missing(stat),
                             cols)
        fill.append(f)
        if v is not None:
            out.append(v)
    result = {"type": "simple_imputer", "fill": fill}
    if step.add_indicator:
        indices = [int(i) for i in step.indicator_.features_]
        if indices:
            result["indicator"] = indices
            out.extend(Value() for _ in indices)
    if not out:
        raise ExportError("SimpleImputer: no column is left (none had a value in training)")
    return [result], out


# ---------------------------------------------------------------- one-hot encoder

def _encoder_checks(step):
    """Refuse OneHotEncoder settings the format cannot represent."""
    _check_fitted(step, "categories_")
    infrequent = getattr(step, "infrequent_categories_", None) if getattr(
        step, "_infrequent_enabled", False) else None
    if infrequent is not None and any(x is not None and len(x) for x in infrequent):
        raise ExportError("OneHotEncoder(min_frequency/max_categories=...): infrequent "
                          "categories are grouped; this is not supported")
    if step.handle_unknown not in ("error", "ignore", "infrequent_if_exist"):
        raise ExportError(f"OneHotEncoder(handle_unknown={step.handle_unknown!r}): "
                          f"not supported")


def _encoder_column(step, k, value, cats, drop, cols):
    """Return the value list (codes or numbers, None for missing) of input column k."""
    error = step.handle_unknown == "error"
    present = [c for c in cats if not _is_missing(c)]
    missing = [c for c in cats if _is_missing(c)]
    if len(missing) > 1:
        raise ExportError(f"OneHotEncoder(categories_[{k}]): both None and NaN are "
                          f"categories; a JSON null cannot tell them apart")
    if present and all(_is_string(c) for c in present):
        if value.src is None or not (value.raw or value.cat):
            raise ExportError(f"OneHotEncoder: column {k} has string categories, but it "
                              f"is not a string input column")
        col = cols[value.src]
        col.use("category", "OneHotEncoder")
        col.encodings.append((step.handle_unknown, tuple(str(c) for c in present)))
        col.unknown_error |= error
        codes = [None if _is_missing(c) else col.code(str(c)) for c in cats]
    elif all(_is_number(c) for c in present):
        if value.cat:
            raise ExportError(f"OneHotEncoder: column {k} holds strings but its "
                              f"categories_ are numbers")
        if error:
            raise ExportError(f"OneHotEncoder(handle_unknown='error') on the numeric "
                              f"column {k}: mlfcgi cannot refuse an unseen number; use "
                              f"handle_unknown='ignore' or string categories")
        if value.src is not None:
            cols[value.src].use("number", "OneHotEncoder")
        codes = [None if _is_missing(c) else _finite(c, f"OneHotEncoder.categories_[{k}]")
                 for c in cats]
    else:
        raise ExportError(f"OneHotEncoder(categories_[{k}]): categories must be all "
                          f"strings or all numbers, not {sorted({type(c).__name__ for c in cats})}")
    if value.nan and value.src is not None:
        if missing or not error:
            cols[value.src].nan_handled = True
        else:
            cols[value.src].nan_fatal = True
    if drop is not None:
        del codes[int(drop)]
    if not codes:
        raise ExportError(f"OneHotEncoder: column {k} has no category left after drop")
    return codes


def _one_hot(step, values, cols):
    _encoder_checks(step)
    _check_width(step, values)
    drops = step.drop_idx_ if step.drop_idx_ is not None else [None] * len(values)
    lists = [_encoder_column(step, k, v, list(cats), drop, cols)
             for k, (v, cats, drop) in enumerate(zip(values, step.categories_, drops))]
    width = sum(len(x) for x in lists)
    return [{"type": "one_hot_encoder", "categories": lists}], [Value() for _ in range(width)]


# ---------------------------------------------------------------- composites

def _branch_text(name, trans):
    return f"{name}={trans if isinstance(trans, str) else _text(trans)}"


def _column_transformer(step, values, cols):
    """ColumnTransformer: one branch per non-empty, non-dropped transformer, in output order."""
    _check_fitted(step, "transformers_")
    _check_width(step, values)
    if step.transformer_weights:
        raise ExportError("ColumnTransformer(transformer_weights=...): not supported")
    indices = step._transformer_to_input_indices  # resolved column selections
    branches, out = [], []
    for name, trans, _ in step.transformers_:
        picked = [int(i) for i in indices[name]]
        if (isinstance(trans, str) and trans == "drop") or not picked:
            continue
        sub = [values[i] for i in picked]
        if isinstance(trans, str) and trans == "passthrough":
            steps, sub_out = [], sub
        else:
            steps, sub_out = _transform(trans, sub, cols)
        branches.append({"name": str(name), "columns": picked, "steps": steps})
        out.extend(sub_out)
    if not branches:
        raise ExportError("ColumnTransformer: every column is dropped")
    return [{"type": "column_transformer", "branches": branches}], out


def _pipeline(step, values, cols):
    return _chain(step.steps, values, cols)


def _chain(named_steps, values, cols):
    """Convert (name, transformer) pairs in order, skipping None and 'passthrough'."""
    steps = []
    for _, sub in named_steps:
        if _skipped(sub):
            continue
        more, values = _transform(sub, values, cols)
        steps.extend(more)
    return steps, values


def _skipped(step):
    return step is None or (isinstance(step, str) and step == "passthrough")


TRANSFORMERS = {
    StandardScaler: _standard,
    MinMaxScaler: _min_max,
    MaxAbsScaler: _max_abs,
    RobustScaler: _robust,
    SimpleImputer: _imputer,
    OneHotEncoder: _one_hot,
    ColumnTransformer: _column_transformer,
    Pipeline: _pipeline,
}


def _transform(step, values, cols):
    """Convert one fitted transformer for the given input values: (steps, output values).

    cols is the Column list of the raw input, updated with what the step reads."""
    convert = TRANSFORMERS.get(type(step))
    if convert is None:
        supported = ", ".join(sorted(c.__name__ for c in TRANSFORMERS))
        raise ExportError(f"unsupported preprocessing step {_describe(step)}; supported: "
                          f"{supported}")
    return convert(step, values, cols)


def _text(est):
    """Describe a (possibly nested) estimator: Pipeline(SimpleImputer, LogisticRegression)."""
    if type(est) is Pipeline:
        inner = [_text(s) for _, s in est.steps if not _skipped(s)]
        return "Pipeline(" + ", ".join(inner) + ")"
    if type(est) is ColumnTransformer:
        parts = [_branch_text(n, t) for n, t, c in getattr(est, "transformers_", est.transformers)]
        return "ColumnTransformer(" + ", ".join(parts) + ")"
    return _describe(est)


# ---------------------------------------------------------------- resolving

def _resolve(node):
    """Replace FillCode placeholders in the steps, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, FillCode):
                node[key] = value.resolve()
            else:
                _resolve(value)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, FillCode):
                node[i] = value.resolve()
            else:
                _resolve(value)


def _check_encodings(columns):
    """Refuse a category column read by encoders with different lists when one raises."""
    for col in columns:
        lists = {cats for _, cats in col.encodings}
        if col.kind == "category" and not col.encodings:
            raise ExportError(f"input column {col.index}: imputed as strings but never "
                              f"one-hot encoded")
        if len(lists) > 1 and col.unknown_error:
            raise ExportError(f"input column {col.index}: OneHotEncoders with different "
                              f"categories read it and one has handle_unknown='error'")


def _final_use(values, final, cols, nan_ok):
    """The final estimator reads numbers; it fails on NaN unless nan_ok."""
    for v in values:
        if v.cat:
            raise ExportError(f"{_describe(final)} would receive the string column {v.src}; "
                              f"encode it (OneHotEncoder) first")
        if v.src is not None:
            cols[v.src].use("number", _describe(final))
            if v.nan and nan_ok:
                cols[v.src].nan_handled = True
            elif v.nan:
                cols[v.src].nan_fatal = True


def convert_pipeline(est, n_features, nan_ok=False):
    """Walk est (a Pipeline or a bare estimator) over n_features raw columns; return a Prep.

    nan_ok: the final estimator handles a missing value (NaN) itself."""
    cols = [Column(i) for i in range(n_features)]
    values = [Value(i, nan=True, raw=True) for i in range(n_features)]
    steps, final = [], est
    if type(est) is Pipeline:
        final = est.steps[-1][1]
        if _skipped(final):
            raise ExportError("Pipeline(steps=...): the last step must be an estimator")
        steps, values = _chain(est.steps[:-1], values, cols)
    _final_use(values, final, cols, nan_ok)
    _resolve(steps)
    _check_encodings(cols)
    return Prep(steps, final, cols, len(values), _text(est))


def input_width(est):
    """Return the number of raw input columns of a fitted estimator or pipeline."""
    first = est
    while type(first) is Pipeline:
        live = [s for _, s in first.steps if not _skipped(s)]
        if not live:
            raise ExportError("Pipeline(steps=...): no step to export")
        first = live[0]
    n = getattr(first, "n_features_in_", None)
    return None if n is None else int(n)

