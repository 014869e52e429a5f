"""The forest's queries beyond the score: attribution, neighbours, imputation, forecast.

Run: .venv/bin/python examples/rcf_forest_queries.py
"""

import numpy as np

from forestream.rcf import RandomCutForest

rng = np.random.default_rng(0)
t = np.arange(3000)
series = np.sin(2 * np.pi * t / 50) + 0.05 * rng.standard_normal(len(t))

forest = RandomCutForest(dimensions=1, shingle_size=10, num_trees=100, random_seed=3)
forest.score_and_update(series)

attribution = forest.attribution([3.0])  # a value far above the wave
print("score", round(attribution.score, 3), "— mostly from the newest input:",
      int(np.argmax(attribution.total)) == forest.shingle_size - 1)

print("nearest sampled shingles:",
      [round(nb.distance, 3) for nb in forest.near_neighbours([series[-1]], k=3)])

print("imputed value for a missing reading:", np.round(forest.impute([np.nan]), 3))

forecast = forest.forecast(horizon=10)
truth = np.sin(2 * np.pi * np.arange(3000, 3010) / 50)
print("forecast   ", np.round(forecast.values[:, 0], 2))
print("truth      ", np.round(truth, 2))
print("80% ranges contain the truth:",
      int(((forecast.lower[:, 0] <= truth) & (truth <= forecast.upper[:, 0])).sum()), "of 10")
