"""Build the model: preprocessing and estimator as one scikit-learn Pipeline.

This module imports only scikit-learn: the bundle's ``train.py`` embeds its
source verbatim, so the reproduction script builds the very same Pipeline
without mlkiln installed.

About ``C`` in the logistic families: scikit-learn's ``C`` is the *inverse* of
the regularisation strength. The course writes the L1 objective with a weight
that multiplies the penalty term; that weight equals ``1 / C`` here. A small
``C`` means a strong penalty and more coefficients at exactly zero.
"""

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

#: families that see one-hot encoded, scaled inputs; the others see ordinal codes
LINEAR_FAMILIES = ("linear", "ridge", "lasso", "logistic_l1", "logistic_l2")

#: gradient boosting: a fixed number of trees, as cross-validation tunes the learning rate and tree size
#: (scikit-learn's automatic early stopping would hold out 10 % of the rows of every table over 10,000
#: rows), and XGBoost's default L2 penalty on leaf values
HGB_DEFAULTS = {"max_iter": 200, "early_stopping": False, "l2_regularization": 1.0}

#: categories kept per column by the encoders; rarer ones share one "infrequent" slot
MAX_CATEGORIES = 100


def make_estimator(task, family, seed, n_classes=2):
    """Return the unfitted estimator of ``family`` with mlkiln's defaults."""
    if task == "regression":
        if family == "linear":
            # the pipeline hands it a fresh matrix: centring it in place saves a copy of the design matrix
            return LinearRegression(copy_X=False)
        if family == "ridge":
            return Ridge()
        if family == "lasso":
            return Lasso(max_iter=5000, random_state=seed)
        if family == "hgb":
            return HistGradientBoostingRegressor(**HGB_DEFAULTS, random_state=seed)
        if family == "rf":
            return RandomForestRegressor(n_estimators=100, n_jobs=1, random_state=seed)
    else:
        if family == "logistic_l1":
            # liblinear is the fast exact L1 solver for two classes; saga handles more
            solver = "liblinear" if n_classes == 2 else "saga"
            return LogisticRegression(l1_ratio=1.0, solver=solver, max_iter=2000, random_state=seed)
        if family == "logistic_l2":
            return LogisticRegression(l1_ratio=0.0, max_iter=2000)
        if family == "hgb":
            return HistGradientBoostingClassifier(**HGB_DEFAULTS, random_state=seed)
        if family == "rf":
            return RandomForestClassifier(n_estimators=100, n_jobs=1, random_state=seed)
    raise ValueError(f"unknown {task} family {family!r}")


def make_preprocessor(kinds, family, max_categories=MAX_CATEGORIES):
    """Impute, scale and one-hot for linear families; ordinal codes for trees.

    Trees split on raw values and handle missing values natively, so they get
    no imputation or scaling; linear models need both, plus one-hot columns.
    ``max_categories=None`` (no text column has more values) leaves the
    encoders uncapped: the same output, without counting every value.
    """
    numeric = [name for name, kind in kinds.items() if kind != "categorical"]
    categorical = [name for name, kind in kinds.items() if kind == "categorical"]
    if family in LINEAR_FAMILIES:
        # a callable median: numpy's O(n) selection per column, not a masked-array sort of the whole table
        num = make_pipeline(SimpleImputer(strategy=np.median, add_indicator=True), StandardScaler())
        cat = make_pipeline(
            SimpleImputer(strategy="constant", fill_value="(missing)"),
            OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=max_categories),
        )
    else:
        num = "passthrough"
        cat = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=float("nan"),
            encoded_missing_value=float("nan"),
            max_categories=max_categories,
        )
    return ColumnTransformer(
        [("numeric", num, numeric), ("categorical", cat, categorical)],
        sparse_threshold=0.0,
        # one job: the pipeline runs inside parallel CV workers, where nested parallelism oversubscribes
        n_jobs=1,
        verbose_feature_names_out=False,
    )


def build_pipeline(task, family, kinds, params=None, seed=0, n_classes=2, threshold=None, max_categories=MAX_CATEGORIES):
    """Preprocessing + estimator as one Pipeline, with ``params`` set on the estimator.

    ``threshold`` (binary classification only) wraps the estimator so that
    ``predict`` uses the tuned probability cut-off instead of 0.5.
    """
    estimator = make_estimator(task, family, seed, n_classes)
    if family == "hgb":
        n_numeric = sum(kind != "categorical" for kind in kinds.values())
        mask = [False] * n_numeric + [True] * (len(kinds) - n_numeric)
        estimator.set_params(categorical_features=mask if any(mask) else None)
    estimator.set_params(**(params or {}))
    if threshold is not None:
        estimator = FixedThresholdClassifier(estimator, threshold=threshold, response_method="predict_proba")
    return Pipeline([("prep", make_preprocessor(kinds, family, max_categories)), ("model", estimator)])
