"""Batch outlier detection with the scikit-learn estimator (SageMaker's parameter names).

Run: .venv/bin/python examples/rcf_sklearn.py
"""

import numpy as np

from forestream.rcf import RandomCutForestEstimator

rng = np.random.default_rng(7)
normal = rng.normal(size=(5000, 4))
outliers = rng.uniform(-8, 8, size=(50, 4))
X = np.vstack([normal, outliers])

model = RandomCutForestEstimator(num_trees=100, num_samples_per_tree=256, feature_dim=4,
                                 contamination=0.01, random_state=0).fit(X)
flags = model.predict(X)
print("flagged among the 50 planted outliers:", int((flags[-50:] == -1).sum()))
print("flagged among 5000 ordinary rows:", int((flags[:-50] == -1).sum()))
print("SageMaker-shaped output:", model.sagemaker_predict(X[:2]))
