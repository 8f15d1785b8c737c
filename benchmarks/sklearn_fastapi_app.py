"""The plain way to serve a scikit-learn model, for comparison: FastAPI calling the Pipeline.

Run by ``bench_serve.py`` as ``uvicorn sklearn_fastapi_app:app``; the bundle
is named by the environment variable ``MLKILN_BENCH_BUNDLE``.
"""

import os

import pandas as pd
from fastapi import FastAPI

import mlkiln

pipeline = mlkiln.load(os.environ["MLKILN_BENCH_BUNDLE"]).pipeline
app = FastAPI()


@app.post("/predict")
def predict(record: dict) -> dict:
    return {"prediction": float(pipeline.predict(pd.DataFrame([record]))[0])}
