"""Result objects of NAB scoring: one :class:`ProfileResult` per profile in a :class:`NabReport`.

Counts follow NAB's results files, which count *rows* among the scorable rows (after the
probationary period): ``tp`` detected rows inside windows, ``fp`` detected rows outside,
``fn`` undetected rows inside, ``tn`` undetected rows outside. Window-level outcomes, which
are what the score actually rewards, are in ``detected_windows`` / ``missed_windows``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

__all__ = ["NabReport", "ProfileResult"]


@dataclass(frozen=True)
class ProfileResult:
    """Scores of one detector under one application profile at its chosen threshold."""

    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    normalised: float
    tp: int
    fp: int
    fn: int
    tn: int
    detected_windows: int
    missed_windows: int
    file_scores: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable form (a NaN normalised score becomes ``None``)."""
        return {
            "profile": self.profile,
            "threshold": self.threshold,
            "raw": self.raw,
            "null": self.null,
            "perfect": self.perfect,
            "normalised": None if math.isnan(self.normalised) else self.normalised,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "detected_windows": self.detected_windows,
            "missed_windows": self.missed_windows,
            "file_scores": dict(self.file_scores),
        }


@dataclass(frozen=True)
class NabReport:
    """NAB scores of one detector on a corpus, per application profile."""

    profiles: dict[str, ProfileResult]
    n_files: int
    n_rows: int
    n_windows: int

    def __getitem__(self, profile: str) -> ProfileResult:
        """The result for ``profile``; KeyError names the known profiles."""
        try:
            return self.profiles[profile]
        except KeyError:
            raise KeyError(
                f"no NAB profile {profile!r} in this report; have {sorted(self.profiles)}"
            ) from None

    @property
    def normalised(self) -> dict[str, float]:
        """Profile name -> normalised score."""
        return {name: r.normalised for name, r in self.profiles.items()}

    def table(self, title: str | None = None) -> Table:
        """A rich table with one row per profile."""
        table = Table(
            title=title
            or f"NAB scores ({self.n_files} files, {self.n_rows:,} rows, {self.n_windows} windows)"
        )
        table.add_column("Profile")
        for heading in ("Normalised", "Raw", "Null", "Perfect", "Threshold"):
            table.add_column(heading, justify="right")
        table.add_column("Windows hit", justify="right")
        table.add_column("FP rows", justify="right")
        for name, r in self.profiles.items():
            table.add_row(
                name,
                f"{r.normalised:.2f}",
                f"{r.raw:.3f}",
                f"{r.null:.3f}",
                f"{r.perfect:.3f}",
                f"{r.threshold:.6g}",
                f"{r.detected_windows}/{r.detected_windows + r.missed_windows}",
                f"{r.fp:,}",
            )
        return table

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable form."""
        return {
            "n_files": self.n_files,
            "n_rows": self.n_rows,
            "n_windows": self.n_windows,
            "profiles": {name: r.as_dict() for name, r in self.profiles.items()},
        }
