"""mlfcgi_export_stats: training data (CSV) -> feature bounds and training statistics.

`mlfcgi-export --train-data FILE.csv` reads the data the model was trained
on and records, per feature, what the drift queries of sql/drift.sql compare
served inputs with (models/FORMAT.md, "Training statistics"):
  - a number: count, missing, min, max, mean, std (population, ddof=0), the
    quantiles QUANTILES (numpy's linear interpolation), and bins: the distinct
    quantiles as edges, and the training share of each bin between them;
  - a category: count, missing, and the count of each category (values that
    are not one of the feature's categories are counted as "other").
Features without bounds from --bounds get [min, max] of the data, widened by
--train-margin times the range on each side.
"""

import csv
import math

import numpy as np

from mlfcgi_export import ExportError

QUANTILES = ("0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99")
MISSING = ("", "nan", "NaN", "NA", "null", "None")


def _read(path, names):
    """Return {feature name: list of cells} for the named columns of a CSV file with a
    header row. Other columns (the target, ids) are ignored; a missing one is an error."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise ExportError(f"--train-data {path}: empty file (expected a header row)")
            header = [h.strip() for h in header]
            absent = [n for n in names if n not in header]
            if absent:
                raise ExportError(f"--train-data {path}: no column {absent[0]!r} "
                                  f"(the header names {', '.join(header[:8])}"
                                  f"{', ...' if len(header) > 8 else ''})")
            where = {n: header.index(n) for n in names}
            cells = {n: [] for n in names}
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise ExportError(f"--train-data {path}, line {line}: {len(row)} cells, "
                                      f"the header has {len(header)}")
                for n in names:
                    cells[n].append(row[where[n]].strip())
    except OSError as e:
        raise OSError(f"--train-data {path}: {e.strerror or e}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise ExportError(f"--train-data {path}: not a UTF-8 CSV file ({e})") from None
    if not cells or not next(iter(cells.values())):
        raise ExportError(f"--train-data {path}: no data rows")
    return cells


def _number_stats(path, name, cells):
    """Statistics of one numeric column; refuses text and infinities."""
    values = []
    for i, cell in enumerate(cells):
        if cell in MISSING:
            continue
        try:
            x = float(cell)
        except ValueError:
            raise ExportError(f"--train-data {path}: feature {name}, data row {i + 1}: "
                              f"{cell[:40]!r} is not a number") from None
        if not math.isfinite(x):
            raise ExportError(f"--train-data {path}: feature {name}, data row {i + 1}: "
                              f"{cell[:40]!r} is not a finite number")
        values.append(x)
    if not values:
        raise ExportError(f"--train-data {path}: feature {name} has no values")
    a = np.asarray(values, dtype=np.float64)
    q = np.quantile(a, [float(p) for p in QUANTILES])
    # Bins for the PSI of sql/drift.sql: value x is in bin "how many edges are <= x",
    # and shares[b] is the training data's share in bin b (exact, ties included).
    edges = sorted(set(float(x) for x in q))
    bins = np.searchsorted(np.asarray(edges), a, side="right")
    shares = np.bincount(bins, minlength=len(edges) + 1) / len(values)
    return {"count": len(values), "missing": len(cells) - len(values),
            "min": float(a.min()), "max": float(a.max()),
            "mean": float(a.mean()), "std": float(a.std()),
            "quantiles": {p: float(x) for p, x in zip(QUANTILES, q)},
            "bins": {"edges": edges, "shares": [float(x) for x in shares]}}


def _category_stats(cells, categories):
    """Counts of one categorical column, per category of the feature."""
    counts = {c: 0 for c in categories}
    other = missing = 0
    for cell in cells:
        if cell in MISSING:
            missing += 1
        elif cell in counts:
            counts[cell] += 1
        else:
            other += 1
    return {"count": len(cells) - missing, "missing": missing, "counts": counts,
            "other": other}


def training_stats(path, names, kinds):
    """Return the "training_stats" object for features names (kinds[i]: the keys the
    preprocessing decided, type "category" and its categories, or a number)."""
    cells = _read(path, names)
    features = {}
    for name, kind in zip(names, kinds):
        if kind.get("type") == "category":
            features[name] = _category_stats(cells[name], kind["categories"])
        else:
            features[name] = _number_stats(path, name, cells[name])
    return {"rows": len(cells[names[0]]), "features": features}


def with_bounds(specs, stats, margin):
    """Return specs (name -> bound keys) with [min - margin*range, max + margin*range]
    added for every numeric feature that has neither bound already."""
    if not (margin >= 0 and math.isfinite(margin)):
        raise ExportError(f"--train-margin {margin}: expected a number >= 0")
    out = {k: dict(v) for k, v in (specs or {}).items()}
    for name, s in stats["features"].items():
        spec = out.setdefault(name, {})
        if "min" not in s or any(k in spec for k in ("minimum", "exclusiveMinimum",
                                                     "maximum", "exclusiveMaximum")):
            continue
        width = (s["max"] - s["min"]) * margin
        spec["minimum"] = s["min"] - width
        spec["maximum"] = s["max"] + width
    return {k: v for k, v in out.items() if v}


def means(stats, names):
    """Return each feature's training mean (None for a category), for test_input."""
    return [stats["features"][n].get("mean") for n in names]
