#!/usr/bin/python3
"""export_stats.py: `mlfcgi-export --train-data FILE.csv` and sql/drift.sql
(issue 3: "Feature bounds come from options, or from --train-data FILE.csv,
which also records per-feature training statistics (min, max, mean, std,
quantiles) in the model file for later drift queries"). TAP output.

A pipeline (a scaler and an imputer on three numbers, a one-hot encoder on
a category) is trained on generated data, which is also written as a CSV
file with a target and an id column besides the features. The exporter's
statistics are compared with numpy's, computed here from the same numbers;
the bounds must be the training range (widened by --train-margin, and
--bounds must win); mlfcgi, started with the model and an audit log, must
accept a row inside the range and answer 422 beyond it. Then sql/drift.sql
must see the rows mlfcgi logged, call an unshifted sample stable and a
shifted one drift, and report category shares. Bad CSV files are refused
with a message that names the problem.

Env: MLFCGI_BIN, SRCDIR, BUILDDIR. Needs: python3-sklearn, sqlite3."""

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fcgi_client as fc  # noqa: E402

SRC, BIN = fc.paths()
EXPORT = os.path.join(SRC, 'tools', 'mlfcgi-export')
DRIFT = os.path.join(SRC, 'sql', 'drift.sql')
QUANTILES = ('0.01', '0.05', '0.25', '0.5', '0.75', '0.95', '0.99')
NUMBERS = ('width', 'height', 'age')
COLORS = ('red', 'green', 'blue')

t = fc.Tap()
try:
    import joblib
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
except ImportError as e:
    print('1..0 # SKIP python3-sklearn missing (%s)' % e)
    sys.exit(0)
tmp = tempfile.mkdtemp(prefix='mlfcgi-export-stats.')
server = None


def near(a, b):
    return abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))


def train_files():
    """Writes train.csv and model.joblib; returns the numeric columns."""
    rng = np.random.default_rng(7)
    n = 400
    cols = {'width': rng.normal(10, 2, n), 'height': rng.uniform(0, 5, n),
            'age': rng.integers(18, 80, n).astype(float)}
    color = rng.choice(COLORS, n, p=[0.5, 0.3, 0.2])
    y = ((cols['width'] > 10) ^ (color == 'red')).astype(int)
    missing = set(range(0, n, 25))         # 16 empty 'age' cells
    with open(os.path.join(tmp, 'train.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['id', 'width', 'color', 'height', 'age', 'target'])
        for i in range(n):
            w.writerow([i, repr(cols['width'][i]), color[i], repr(cols['height'][i]),
                        '' if i in missing else repr(cols['age'][i]), y[i]])
    import pandas as pd
    X = pd.DataFrame({'width': cols['width'], 'color': color,
                      'height': cols['height'],
                      'age': [np.nan if i in missing else cols['age'][i]
                              for i in range(n)]})
    pre = ColumnTransformer([
        ('num', make_pipeline(SimpleImputer(), StandardScaler()),
         ['width', 'height', 'age']),
        ('cat', OneHotEncoder(handle_unknown='ignore'), ['color'])])
    model = make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(X, y)
    joblib.dump(model, os.path.join(tmp, 'model.joblib'))
    cols['age'] = np.array([cols['age'][i] for i in range(n) if i not in missing])
    return cols, color, len(missing)


def export(out, *args):
    return subprocess.run([EXPORT, os.path.join(tmp, 'model.joblib'), '-o', out,
                           '--name', 'shapes', '--version', '1'] + list(args),
                          capture_output=True, text=True, timeout=120)


def feature(model, name):
    return next(f for f in model['features'] if f['name'] == name)


def check_stats(model, cols, color, n_missing):
    stats = model.get('metadata', {}).get('training_stats', {})
    t.is_(stats.get('rows'), 400, 'training_stats.rows counts the data rows')
    for name in NUMBERS:
        s = stats.get('features', {}).get(name, {})
        a = cols[name]
        want = {'count': len(a), 'min': a.min(), 'max': a.max(), 'mean': a.mean(),
                'std': a.std()}
        bad = [k for k, v in want.items() if not near(s.get(k, math.nan), float(v))]
        q = np.quantile(a, [float(p) for p in QUANTILES])
        bad += ['q' + p for p, v in zip(QUANTILES, q)
                if not near(s.get('quantiles', {}).get(p, math.nan), float(v))]
        t.ok(not bad, '%s: count, min, max, mean, std and quantiles as numpy '
             'computes them' % name, 'differ: %s' % bad, 'got: %s' % s)
        edges = s.get('bins', {}).get('edges', [])
        shares = s.get('bins', {}).get('shares', [])
        counts = np.bincount(np.searchsorted(np.array(edges), a, side='right'),
                             minlength=len(edges) + 1) if edges else []
        t.ok(len(shares) == len(edges) + 1 and
             all(near(x, c / len(a)) for x, c in zip(shares, counts)),
             '%s: bins hold the training share between the quantile edges' % name)
    t.is_(stats['features']['age'].get('missing'), n_missing,
          'empty cells are counted as missing, not as values')
    c = stats['features'].get('color', {})
    t.is_(c.get('counts'), {k: int((color == k).sum()) for k in COLORS},
          'a category feature records the count of each category')
    t.ok('id' not in stats['features'] and 'target' not in stats['features'],
         'columns that are not features (id, target) are ignored')


def check_bounds(cols):
    out = os.path.join(tmp, 'margin.json')
    r = export(out, '--train-data', os.path.join(tmp, 'train.csv'),
               '--train-margin', '0.5', '--bounds', 'height:0:10')
    t.ok(r.returncode == 0, 'export with --train-margin and --bounds', r.stderr)
    if r.returncode != 0:
        return
    with open(out) as f:
        m = json.load(f)
    w, h = feature(m, 'width'), feature(m, 'height')
    span = cols['width'].max() - cols['width'].min()
    t.ok(near(w.get('minimum', math.nan), cols['width'].min() - span / 2) and
         near(w.get('maximum', math.nan), cols['width'].max() + span / 2),
         '--train-margin 0.5 widens the training range by half of it on each side',
         'got %s' % w)
    t.ok(h.get('minimum') == 0 and h.get('maximum') == 10,
         '--bounds wins over the training range', 'got %s' % h)


def serve_and_drift(model_path, cols):
    global server
    db = os.path.join(tmp, 'audit.db')
    server = fc.Mlfcgi(BIN, ['--model', model_path, '--audit-db', db],
                       os.path.join(tmp, 'mlfcgi.log'))
    if not t.ok(server.wait_up(), 'mlfcgi serves the exported model',
                server.log_tail()):
        return
    inside = {'width': 10.0, 'color': 'green', 'height': 2.5, 'age': 40}
    r = fc.predict(server.addr, json.dumps(inside).encode())
    t.ok(r.status == 200, 'a row inside the training range is predicted', r.status,
         r.body[:300])
    over = dict(inside, width=float(cols['width'].max()) + 1)
    r = fc.predict(server.addr, json.dumps(over).encode())
    t.ok(r.status == 422 and b'less_than_equal' in r.body,
         'a value past the training maximum is a 422 less_than_equal',
         r.status, r.body[:300])
    rng = np.random.default_rng(11)
    sent = 1
    for i in range(120):           # drawn like the training data, width shifted
        row = {'width': float(np.clip(rng.normal(10, 2) + 2.5, cols['width'].min(),
                                      cols['width'].max())),
               'color': 'blue' if i % 2 else str(rng.choice(COLORS)),
               'height': float(rng.uniform(0, 5)),
               'age': int(rng.integers(18, 80))}
        row['height'] = min(max(row['height'], cols['height'].min()), cols['height'].max())
        row['age'] = min(max(row['age'], cols['age'].min()), cols['age'].max())
        r = fc.predict(server.addr, json.dumps(row).encode())
        sent += r.status == 200
    t.is_(sent, 121, 'every drift sample is predicted')
    t.is_(server.stop(), 0, 'mlfcgi stops cleanly (the log is flushed)')
    q = subprocess.run(['sqlite3', '-json', '-cmd',
                        ".parameter set @model_file '%s'" % model_path, db],
                       stdin=open(DRIFT), capture_output=True, text=True, timeout=60)
    t.ok(q.returncode == 0, 'sql/drift.sql runs with the sqlite3 tool', q.stderr)
    tables, text = [], q.stdout.strip()
    dec = json.JSONDecoder()
    while text:
        obj, end = dec.raw_decode(text)
        tables.append(obj)
        text = text[end:].strip()
    t.is_(len(tables), 2, 'drift.sql gives a numeric and a category table')
    if len(tables) != 2:
        return
    num = {r['feature']: r for r in tables[0]}
    t.is_(sorted(num), sorted(NUMBERS), 'one numeric row per number feature')
    t.ok(all(r['served_n'] == 121 for r in num.values()),
         'each counts the 121 logged rows (the 422 is not logged)',
         [(r['feature'], r['served_n']) for r in num.values()])
    t.ok(num['width']['verdict'] == 'drift' and num['width']['shift_sd'] > 0.8,
         'the shifted feature is called drift, shifted by about 1.25 sd',
         num['width'])
    t.ok(num['height']['verdict'] == 'stable' and num['age']['verdict'] == 'stable',
         'features drawn like the training data are stable',
         num['height'], num['age'])
    cats = {r['category']: r for r in tables[1] if r['feature'] == 'color'}
    t.ok(set(cats) == set(COLORS) | {'(other)'} and
         cats['blue']['served_share'] > 0.5 and cats['blue']['difference'] > 0.3,
         'category shares: blue, sent half of the time, is far over its training share',
         cats)


def check_refusals():
    bad = os.path.join(tmp, 'bad.csv')
    with open(bad, 'w') as f:
        f.write('width,color,height\n1,red,2\n')
    r = export(os.path.join(tmp, 'x.json'), '--train-data', bad)
    t.ok(r.returncode == 2 and "no column 'age'" in r.stderr,
         'a CSV file without a feature column is refused, naming it', r.stderr)
    with open(bad, 'w') as f:
        f.write('width,color,height,age\n1,red,2,3\n1,red,tall,3\n')
    r = export(os.path.join(tmp, 'x.json'), '--train-data', bad)
    t.ok(r.returncode == 2 and 'height' in r.stderr and 'row 2' in r.stderr and
         'not a number' in r.stderr, 'a word in a number column is refused, naming '
         'the feature and the row', r.stderr)
    r = export(os.path.join(tmp, 'x.json'), '--train-data', os.path.join(tmp, 'none.csv'))
    t.ok(r.returncode == 1 and 'none.csv' in r.stderr,
         'a missing file is an I/O error naming it', r.stderr)
    t.ok(not os.path.exists(os.path.join(tmp, 'x.json')), 'no model file is left behind')


def main():
    cols, color, n_missing = train_files()
    out = os.path.join(tmp, 'model.json')
    r = export(out, '--train-data', os.path.join(tmp, 'train.csv'))
    if not t.ok(r.returncode == 0, 'mlfcgi-export --train-data exports', r.stderr):
        return
    with open(out) as f:
        model = json.load(f)
    check_stats(model, cols, color, n_missing)
    w = feature(model, 'width')
    t.ok(w.get('minimum') == cols['width'].min() and
         w.get('maximum') == cols['width'].max(),
         'bounds default to the training range', w)
    t.ok('minimum' not in feature(model, 'color'), 'a category gets no bounds')
    t.ok(near(model['test_input'][0], cols['width'].mean()),
         'test_input is the training mean', model['test_input'])
    check_bounds(cols)
    check_refusals()
    serve_and_drift(out, cols)


try:
    main()
except Exception as e:  # a crash is a failure, reported as one
    t.ok(False, 'export_stats ran to the end', '%s: %s' % (type(e).__name__, e))
finally:
    if server is not None and server.alive():
        server.kill9()
    shutil.rmtree(tmp, ignore_errors=True)
    t.done()	# exits
