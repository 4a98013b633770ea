#!/usr/bin/python3
"""train_rf: fit bench/run's RF-100 contender and save it with joblib.

    bench/train_rf.py OUT.joblib

A RandomForestClassifier(n_estimators=100, random_state=0) on the 150 rows
of scikit-learn's bundled iris data, the same data as models/iris.json.
bench/run exports it with tools/mlfcgi-export for mlfcgi and loads the
.joblib in bench/fastapi_app.py for FastAPI.
"""

import sys

sys.dont_write_bytecode = True

import joblib  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402


def main(argv):
    if len(argv) != 2:
        print("usage: train_rf.py OUT.joblib", file=sys.stderr)
        return 2
    data = load_iris()
    rf = RandomForestClassifier(n_estimators=100, random_state=0).fit(data.data, data.target)
    joblib.dump(rf, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
