"""scikit-learn predictions without scikit-learn's per-call overhead, bit for bit.

scikit-learn validates its input on every call, which costs far more than the
arithmetic of a small model on one row.
:class:`~forestream.models.serving.predictors.SklearnPredictor` avoids that cost in two
ways, both of which keep results identical:

* :func:`sklearn_fast_path` turns on scikit-learn's ``assume_finite`` in the worker and
  returns the context that turns it back off, for input that is not all-finite;
* :func:`checked_shortcuts` returns, for a few common estimators (linear models and
  tree ensembles, by exact type), functions that compute ``predict`` and friends from the
  fitted attributes as scikit-learn itself does (:func:`sklearn_shortcuts`), each kept
  only if it reproduces scikit-learn on probe rows when the model loads.
"""

from __future__ import annotations

import warnings

import numpy as np


def checked_shortcuts(model, n_features: int | None) -> dict:
    """The shortcuts that reproduce scikit-learn on probe rows (within 1e-12)."""
    if not n_features:
        return {}
    try:
        shortcuts = sklearn_shortcuts(model)
    except Exception:  # an estimator with unusual fitted attributes: no shortcut
        return {}
    probe = np.random.default_rng(20240601).normal(scale=3.0, size=(7, n_features))
    kept = {}
    for method, shortcut in shortcuts.items():
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # log(0) of a pure leaf, on probe rows
                expected = getattr(model, method)(probe)
                got = shortcut(probe.copy())
        except Exception:
            continue
        expected, got = np.asarray(expected), np.asarray(got)
        if expected.shape != got.shape or expected.dtype != got.dtype:
            continue
        same = np.array_equal(expected, got) if expected.dtype.kind not in "fc" else \
            np.allclose(expected, got, rtol=0.0, atol=1e-12, equal_nan=True)
        if same:
            kept[method] = shortcut
    return kept


def sklearn_fast_path():
    """Turn on scikit-learn's assume_finite; return the context that turns it back off."""
    import contextlib

    try:
        import sklearn
    except ImportError:
        return contextlib.nullcontext
    sklearn.set_config(assume_finite=True)
    # Rows arrive as arrays, so a model fitted on a DataFrame would warn on every request.
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    return lambda: sklearn.config_context(assume_finite=False)


def selects_columns_by_name(model) -> bool:
    """Whether ``model`` holds a ColumnTransformer (which may select columns by name)."""
    try:
        parts = [model, *model.get_params(deep=True).values()]
    except Exception:
        return False
    return any(type(part).__name__ == "ColumnTransformer" for part in parts)


def sklearn_shortcuts(model) -> dict:
    """Exact fast equivalents of ``predict`` (and friends) for common estimators.

    Each function takes a finite, C-ordered float64 array of ``n_features_in_`` columns
    and performs the same arithmetic, in the same order, as the estimator's method
    after its input validation: ``X @ coef_.T + intercept_`` for linear models, and the
    per-tree ``tree_.predict`` on float32 input summed in estimator order for forests.
    """
    try:
        from sklearn import ensemble, linear_model, svm, tree
        from sklearn.utils.extmath import softmax
    except ImportError:
        return {}
    from scipy.special import expit

    kind = type(model)
    if getattr(model, "n_outputs_", 1) != 1:
        return {}
    forests = (ensemble.RandomForestClassifier, ensemble.ExtraTreesClassifier,
               tree.DecisionTreeClassifier, ensemble.RandomForestRegressor,
               ensemble.ExtraTreesRegressor, tree.DecisionTreeRegressor)
    if kind in forests:
        trees = [e.tree_ for e in model.estimators_] if hasattr(model, "estimators_") \
            else [model.tree_]
        single = not hasattr(model, "estimators_")
        if hasattr(model, "classes_"):
            classes, n_classes = model.classes_, int(model.n_classes_)

            def proba(X):
                X32 = np.ascontiguousarray(X, dtype=np.float32)
                if single:
                    return trees[0].predict(X32)[:, :n_classes]
                total = np.zeros((X.shape[0], n_classes))
                for t in trees:
                    total += t.predict(X32)[:, :n_classes]
                total /= len(trees)
                return total

            return {"predict": lambda X: classes.take(np.argmax(proba(X), axis=1), axis=0),
                    "predict_proba": proba, "predict_log_proba": lambda X: np.log(proba(X))}

        def regress(X):
            X32 = np.ascontiguousarray(X, dtype=np.float32)
            if single:
                return trees[0].predict(X32)[:, 0]
            total = np.zeros(X.shape[0])
            for t in trees:
                total += t.predict(X32)[:, 0]
            total /= len(trees)
            return total

        return {"predict": regress}
    linear_classifiers = (linear_model.LogisticRegression, linear_model.RidgeClassifier,
                          linear_model.SGDClassifier, linear_model.Perceptron, svm.LinearSVC)
    if kind in linear_classifiers:
        coef_t = model.coef_.T if model.coef_.ndim == 2 else model.coef_
        intercept, classes = model.intercept_, model.classes_

        def decision(X):
            scores = X @ coef_t + intercept
            return scores.reshape(-1) if scores.ndim > 1 and scores.shape[1] == 1 else scores

        def predict(X):
            scores = decision(X)
            indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
            return classes.take(indices, axis=0)

        shortcuts = {"predict": predict, "decision_function": decision}
        if kind is linear_model.LogisticRegression:
            def proba(X):
                scores = decision(X)
                if scores.ndim == 1:
                    positive = expit(scores)
                    return np.stack([1 - positive, positive], axis=1)
                return softmax(scores, copy=False)

            shortcuts["predict_proba"] = proba
            shortcuts["predict_log_proba"] = lambda X: np.log(proba(X))
        return shortcuts
    if kind in (linear_model.LinearRegression, linear_model.Ridge, linear_model.Lasso,
                linear_model.ElasticNet):
        coef, intercept = model.coef_, model.intercept_
        if coef.ndim == 1:
            return {"predict": lambda X: X @ coef + intercept}
        return {"predict": lambda X: X @ coef.T + intercept}
    return {}
