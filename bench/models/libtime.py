#!/usr/bin/python3
"""libtime: the library side of the model benchmark, run by bench/models/run in its own process.

    libtime.py predict WORK ROWS THREADS REPEAT NAME [--save]
    libtime.py load WORK NAME

predict times the library's own batch prediction of every row of ROWS with
the fitted estimator WORK/NAME.joblib on THREADS threads: scikit-learn's
predict_proba (classifiers) or predict (regressors), with n_jobs=THREADS
where the estimator has it (the BLAS threads come from the environment the
caller sets: OPENBLAS_NUM_THREADS); XGBoost's Booster.predict on a DMatrix
built beforehand (a new one for every run: XGBoost caches predictions per
DMatrix) and inplace_predict on the array, with nthread=THREADS. One
untimed run, then REPEAT timed ones: the least and the median wall-clock
seconds and the least CPU seconds of the process are reported. --save writes the outputs as
WORK/NAME.ref.npy in the C driver's layout (per row: the probabilities
and the class index, or the value).

load loads WORK/NAME the library's way (joblib.load of the estimator, or
xgboost.Booster on XGBoost's JSON file) after importing everything, and
reports the seconds and the memory it took.

Each prints one JSON object per line.
"""

import json
import os
import sys
import time

import numpy as np


def status_kb(name):
    """Return a "Name: N kB" value of /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return -1


def timed(fn, repeat, before=None):
    """Run fn once untimed, then repeat times (each after before(), untimed, if given).

    Returns the figures (the least and the median wall-clock seconds, the
    least CPU seconds of the process) and fn's last result.
    """
    out = fn()
    secs, cpu = [], []
    for _ in range(repeat):
        arg = before() if before else None
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn(arg) if before else fn()
        cpu.append(time.process_time() - start_cpu)
        secs.append(time.perf_counter() - start)
        del arg
    secs.sort()
    return dict(best=secs[0], median=secs[len(secs) // 2], cpu=min(cpu)), out


def emit(**kw):
    print(json.dumps(kw), flush=True)


def threadpools():
    """The BLAS and OpenMP libraries numpy and scikit-learn loaded, as threadpoolctl sees them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return [{k: p.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for p in threadpool_info()]


def sklearn_case(est, X, threads, repeat):
    """Time scikit-learn's batch prediction; return (figures, outputs in the driver's layout)."""
    if "n_jobs" in est.get_params():
        est.set_params(n_jobs=threads)
    if hasattr(est, "predict_proba"):
        fig, proba = timed(lambda: est.predict_proba(X), repeat)
        idx = np.searchsorted(est.classes_, est.predict(X))
        ref = np.column_stack([proba, idx])
        how = "predict_proba"
    else:
        fig, value = timed(lambda: est.predict(X), repeat)
        ref = np.asarray(value, dtype=np.float64).reshape(-1, 1)
        how = "predict"
    return [dict(lib="sklearn", how=how, **fig)], ref


def xgboost_case(est, X, threads, repeat):
    """Time XGBoost's Booster.predict on a DMatrix and inplace_predict; return (figures, outputs)."""
    import xgboost
    booster = est.get_booster()
    booster.set_param({"nthread": threads})
    dfig, out = timed(lambda dm=None: booster.predict(dm if dm is not None else
                                                      xgboost.DMatrix(X, nthread=threads)),
                      repeat, before=lambda: xgboost.DMatrix(X, nthread=threads))
    ifig, _ = timed(lambda: booster.inplace_predict(X), repeat)
    figures = [dict(lib="xgboost", how="predict(DMatrix)", **dfig),
               dict(lib="xgboost", how="inplace_predict", **ifig)]
    out = np.asarray(out, dtype=np.float64)
    if hasattr(est, "predict_proba"):
        p1 = out.astype(np.float32)
        ref = np.column_stack([(np.float32(1) - p1).astype(np.float64), out, out > 0.5])
    else:
        ref = out.reshape(-1, 1)
    return figures, ref


def predict(work, rows, threads, repeat, name, save):
    import joblib
    est = joblib.load(os.path.join(work, name + ".joblib"))
    X = np.fromfile(rows, dtype=np.float64).reshape(-1, est.n_features_in_)
    if type(est).__module__.startswith("xgboost"):
        figures, ref = xgboost_case(est, X, threads, repeat)
    else:
        figures, ref = sklearn_case(est, X, threads, repeat)
    for f in figures:
        emit(model=name, threads=threads, rows=len(X), **f)
    emit(model=name, threadpools=threadpools())
    if save:
        np.save(os.path.join(work, name + ".ref.npy"), np.ascontiguousarray(ref, dtype=np.float64))


def load(work, name):
    import gc
    import joblib
    import sklearn.ensemble  # noqa: F401  (imported before measuring)
    import sklearn.linear_model  # noqa: F401
    import sklearn.neural_network  # noqa: F401
    import xgboost
    gc.collect()
    rss0, hwm0 = status_kb("VmRSS"), status_kb("VmHWM")
    start = time.perf_counter()
    if name.startswith("xgb"):
        model = xgboost.Booster(model_file=os.path.join(work, name + ".json"))
        how = "xgboost.Booster(model_file=JSON)"
    else:
        model = joblib.load(os.path.join(work, name + ".joblib"))
        how = "joblib.load"
    secs = time.perf_counter() - start
    gc.collect()
    emit(model=name, how=how, load_s=secs, rss_before_kb=rss0, hwm_before_kb=hwm0,
         hwm_kb=status_kb("VmHWM"), rss_after_kb=status_kb("VmRSS"))
    del model


def main(argv):
    if len(argv) >= 6 and argv[0] == "predict":
        predict(argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5], "--save" in argv[6:])
    elif len(argv) == 3 and argv[0] == "load":
        load(argv[1], argv[2])
    else:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
