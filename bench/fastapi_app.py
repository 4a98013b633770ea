"""fastapi_app: the seed's FastAPI inference app, the Python contender of bench/run.

The endpoint of /work/shared/seed/fastapi-ml-endpoints.txt (Pydantic
validation of the iris features with the seed's bounds, model loaded once
with joblib, predict_proba on a 1x4 NumPy array, /health and /ready),
answering the same JSON as mlfcgi's /predict for {"features": [...]} so both
do the same work per request:

    {"prediction": 0, "label": "setosa", "confidence": ..., "probabilities":
     {...}, "model": ..., "version": ..., "request_id": ...}

Tuned to be as fast as the stack allows, so the comparison is fair to it:
an `async def` endpoint (no thread-pool hop), one predict_proba call per
request (the class is its argmax, which is what predict() returns for these
models), scikit-learn's finiteness re-check off (Pydantic already refuses
NaN and infinities), and the response written directly as bytes (no
response_model pass). bench/run starts it with uvicorn --loop uvloop
--http httptools --no-access-log and OPENBLAS_NUM_THREADS=1.

Environment: BENCH_JOBLIB (the fitted scikit-learn estimator, required),
BENCH_MODEL_NAME (default "iris"), BENCH_MODEL_VERSION (default "1.0.0").
"""

import json
import os
import uuid
from typing import List

import joblib
import numpy as np
import sklearn
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel, Extra, confloat, conlist, validator

sklearn.set_config(assume_finite=True)

MODEL = joblib.load(os.environ["BENCH_JOBLIB"])
MODEL_NAME = os.environ.get("BENCH_MODEL_NAME", "iris")
MODEL_VERSION = os.environ.get("BENCH_MODEL_VERSION", "1.0.0")
CLASS_NAMES = ["setosa", "versicolor", "virginica"]
CLASSES = [c.item() for c in MODEL.classes_]
# The seed's IrisFeatures bounds, in feature order: (lower, lower inclusive, upper).
BOUNDS = [(0.0, False, 10.0), (0.0, False, 10.0), (0.0, True, 7.0), (0.0, True, 3.0)]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

app = FastAPI()


class PredictionRequest(BaseModel):
    """{"features": [4 finite numbers]} within the seed's bounds; nothing else."""

    features: conlist(confloat(allow_inf_nan=False), min_items=4, max_items=4)

    class Config:
        extra = Extra.forbid

    @validator("features")
    def within_bounds(cls, v: List[float]) -> List[float]:
        for name, x, (lo, lo_incl, hi) in zip(FEATURES, v, BOUNDS):
            if (x < lo if lo_incl else x <= lo) or x > hi:
                raise ValueError(f"{name} out of range")
        return v


@app.post("/predict")
async def predict(request: PredictionRequest) -> Response:
    """One prediction, shaped as mlfcgi's."""
    proba = MODEL.predict_proba(np.array(request.features).reshape(1, -1))[0]
    k = int(proba.argmax())
    request_id = uuid.uuid4().hex
    body = {
        "prediction": CLASSES[k],
        "label": CLASS_NAMES[k],
        "confidence": float(proba[k]),
        "probabilities": {n: float(p) for n, p in zip(CLASS_NAMES, proba)},
        "model": MODEL_NAME,
        "version": MODEL_VERSION,
        "request_id": request_id,
    }
    return Response(json.dumps(body), media_type="application/json",
                    headers={"X-Request-Id": request_id, "Cache-Control": "no-store"})


@app.get("/health")
async def health():
    return {"status": "healthy", "model_loaded": MODEL is not None}


@app.get("/ready")
async def ready():
    try:
        MODEL.predict(np.array([[5.0, 3.0, 1.5, 0.3]]))
        return {"ready": True}
    except Exception as e:  # noqa: BLE001 - the seed's readiness check
        return {"ready": False, "error": str(e)}
