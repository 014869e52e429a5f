"""Result types returned by the forest's queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt


@dataclass(frozen=True)
class Attribution:
    """How much each value of a (shingled) point contributes to its anomaly score.

    ``high[j]`` is the part of the score due to the point lying *above* what the forest
    has seen in dimension ``j``, ``low[j]`` the part due to it lying *below*. Summed over
    all dimensions and both directions they give the scalar score.
    """

    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]

    @property
    def total(self) -> npt.NDArray[np.float64]:
        """Per-dimension contribution, ``high + low``."""
        return self.high + self.low

    @property
    def score(self) -> float:
        """The scalar anomaly score these contributions add up to."""
        return float(self.high.sum() + self.low.sum())

    def direction(self) -> npt.NDArray[np.str_]:
        """Per dimension ``"HIGH"`` or ``"LOW"``, whichever contributes more."""
        return np.where(self.high >= self.low, "HIGH", "LOW")


@dataclass(frozen=True)
class Neighbour:
    """A sampled point near a query, with its distance and how many trees found it."""

    point: npt.NDArray[np.float64]
    distance: float
    votes: int


@dataclass(frozen=True)
class Forecast:
    """Forecast of the next ``horizon`` inputs: point values and a [lower, upper] range."""

    values: npt.NDArray[np.float64]  # (horizon, dimensions)
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]
