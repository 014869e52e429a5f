"""Stream a series through a ThresholdedDetector and print each anomaly with its cause.

Run: .venv/bin/python examples/rcf_streaming.py
"""

import numpy as np

from forestream.rcf import ThresholdedDetector

rng = np.random.default_rng(42)
n = 4000
series = 50 + 10 * np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0, 0.5, n)
series[3000] += 12  # a spike
series[3500:3600] += 6  # a level shift

detector = ThresholdedDetector(shingle_size=4, random_seed=1)
for d in detector.process_batch(series):  # same results as detector.process(x) per value
    if d.grade >= 0.3:
        when = "now" if d.relative_index == 0 else f"{-d.relative_index} steps ago"
        print(f"t={d.index:5d} value={d.values[0]:7.2f} expected≈{d.expected_values[0]:7.2f} "
              f"grade={d.grade:.2f} cause: input {when}")

# The whole state survives a restart exactly (checkpoints, model artifacts):
blob = detector.to_bytes()
restored = ThresholdedDetector.from_bytes(blob)
assert restored.process(55.0).score == detector.process(55.0).score
print(f"state: {len(blob) / 1e6:.1f} MB; restored detector continues identically")
