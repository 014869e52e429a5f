"""Complex event processing: patterns of events per key, like Flink CEP.

A pattern is a sequence of named stages. Each stage has conditions (``where``,
``or_where``), a count (``times``), and how it follows the previous stage: ``next``
(strictly the very next event of the key) or ``followed_by`` (later, skipping events that
do not match). ``within`` bounds the time from a match's first to its last event. For
every key the engine keeps partial matches (as keyed, checkpointed state) and emits each
complete match once; after a match, partial matches that overlap it are dropped ("skip
past last event"), so "three anomalies within ten minutes" fires once per three.

Events are matched in arrival order per key; times are the records' timestamps (event
time when a watermark strategy assigned it, else the arrival time at the source).

>>> from forestream.processing import StreamExecutionEnvironment
>>> from forestream.processing.cep import Pattern
>>> env = StreamExecutionEnvironment()
>>> events = [{"dev": "d1", "t": t, "anomaly": a} for t, a in
...           [(0, 1), (60, 0), (120, 1), (300, 1), (2000, 1), (2100, 0)]]
>>> three = (Pattern.begin("anomalies").where(lambda e: e["anomaly"] == 1).times(3)
...          .within(600))
>>> out = (env.from_collection(events, timestamps=[e["t"] for e in events])
...        .key_by(lambda e: e["dev"]).pattern(three)
...        .map(lambda m: [e["t"] for e in m["anomalies"]]).collect())
>>> _ = env.execute()
>>> out.values
[[0, 120, 300]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .operators import Operator
from .records import Record

STRICT = "next"
RELAXED = "followed_by"


@dataclass
class _Stage:
    name: str
    contiguity: str
    conditions: list[list[Callable[[Any], bool]]] = field(default_factory=list)
    count: int = 1

    def accepts(self, value: Any) -> bool:
        # OR over groups, AND within a group
        return any(all(cond(value) for cond in group) for group in self.conditions) \
            if self.conditions else True


class Pattern:
    """A sequence of stages; build with ``begin``, ``where``, ``next``, ``followed_by``,
    ``times``, ``within``.

    ``Pattern.begin(name)`` starts the first stage; ``next(name)`` and
    ``followed_by(name)`` add a stage that must come right after the previous one
    (``next``: the key's very next event) or any time later (``followed_by``: events
    that do not fit are skipped). ``where`` adds a condition to the newest stage (all of
    its ``where``s must hold), ``or_where`` an alternative, ``times(n)`` asks for ``n``
    events in the stage, and ``within(seconds)`` bounds the time from a match's first
    event to its last. Apply it with :meth:`KeyedStream.pattern
    <forestream.processing.KeyedStream.pattern>`: it emits ``{stage name: [events]}``
    for every match, per key, and drops the partial matches that overlap it.

    Examples
    --------
    A password change followed, within an hour, by a large withdrawal from the same
    account (account C withdraws too late, B changed no password):

    >>> from forestream.processing import Pattern, StreamExecutionEnvironment
    >>> events = [
    ...     {"account": "A", "t": 0, "type": "password_change"},
    ...     {"account": "B", "t": 5, "type": "withdrawal", "amount": 5000},
    ...     {"account": "A", "t": 100, "type": "withdrawal", "amount": 50},
    ...     {"account": "C", "t": 150, "type": "password_change"},
    ...     {"account": "A", "t": 200, "type": "withdrawal", "amount": 5000},
    ...     {"account": "C", "t": 9000, "type": "withdrawal", "amount": 8000}]
    >>> suspicious = (Pattern.begin("change").where(lambda e: e["type"] == "password_change")
    ...               .followed_by("withdrawal").where(lambda e: e["type"] == "withdrawal")
    ...               .where(lambda e: e["amount"] > 1000)
    ...               .within(3600))
    >>> env = StreamExecutionEnvironment()
    >>> alerts = (env.from_collection(events, timestamps=[e["t"] for e in events])
    ...           .key_by(lambda e: e["account"])
    ...           .pattern(suspicious)
    ...           .map(lambda match: (match["withdrawal"][0]["account"],
    ...                               match["change"][0]["t"], match["withdrawal"][0]["t"]))
    ...           .collect())
    >>> _ = env.execute()
    >>> alerts.values
    [('A', 0, 200)]

    ``next`` and ``followed_by`` on the same readings: with ``next`` the reading above 95
    must come right after the one above 90.

    >>> readings = [("s1", v) for v in (91, 50, 92, 97, 93, 99)]
    >>> strict = (Pattern.begin("hot").where(lambda r: r[1] > 90)
    ...           .next("hotter").where(lambda r: r[1] > 95))
    >>> relaxed = (Pattern.begin("hot").where(lambda r: r[1] > 90)
    ...            .followed_by("hotter").where(lambda r: r[1] > 95))
    >>> env = StreamExecutionEnvironment()
    >>> keyed = env.from_collection(readings).key_by(lambda r: r[0])
    >>> pair = lambda match: (match["hot"][0][1], match["hotter"][0][1])
    >>> strict_matches = keyed.pattern(strict).map(pair).collect()
    >>> relaxed_matches = keyed.pattern(relaxed).map(pair).collect()
    >>> _ = env.execute()
    >>> strict_matches.values, relaxed_matches.values
    ([(92, 97), (93, 99)], [(91, 97), (93, 99)])
    """

    def __init__(self, stages: list[_Stage], within: float | None = None) -> None:
        self.stages = stages
        self.within_seconds = within

    @staticmethod
    def begin(name: str) -> Pattern:
        return Pattern([_Stage(name, RELAXED)])

    def _stage(self) -> _Stage:
        return self.stages[-1]

    def where(self, condition: Callable[[Any], bool]) -> Pattern:
        """The current stage's events must satisfy ``condition`` (and earlier ``where``s)."""
        stage = self._stage()
        if not stage.conditions:
            stage.conditions.append([])
        stage.conditions[-1].append(condition)
        return self

    def or_where(self, condition: Callable[[Any], bool]) -> Pattern:
        """…or satisfy ``condition`` instead."""
        self._stage().conditions.append([condition])
        return self

    def times(self, count: int) -> Pattern:
        if count < 1:
            raise ValueError(f"times() needs a count >= 1, got {count}")
        self._stage().count = count
        return self

    def next(self, name: str) -> Pattern:
        """A stage whose first event must be the very next event of the key."""
        return self._add(name, STRICT)

    def followed_by(self, name: str) -> Pattern:
        """A stage whose events may come later, skipping events that do not match."""
        return self._add(name, RELAXED)

    def within(self, seconds: float) -> Pattern:
        if seconds <= 0:
            raise ValueError(f"within() needs a positive time, got {seconds}")
        self.within_seconds = float(seconds)
        return self

    def _add(self, name: str, contiguity: str) -> Pattern:
        if any(s.name == name for s in self.stages):
            raise ValueError(f"pattern stage names must be unique: {name!r} is used twice")
        self.stages.append(_Stage(name, contiguity))
        return self


class PatternOperator(Operator):
    """Runs a :class:`Pattern` per key; emits ``{stage name: [events]}`` per match."""

    name = "pattern"

    def __init__(self, pattern: Pattern) -> None:
        super().__init__()
        self.pattern = pattern
        # key -> partial matches: (stage index, events in that stage, events so far, start)
        self.partials: dict[Any, list[tuple[int, int, dict, float | None]]] = {}
        self.matches = 0

    def process(self, records, out):
        stages = self.pattern.stages
        within = self.pattern.within_seconds
        for r in records:
            ts = r.timestamp
            current = self.partials.get(r.key, [])
            if within is not None and ts is not None:
                current = [p for p in current if p[3] is None or ts - p[3] <= within]
            advanced: list[tuple[int, int, dict, float | None]] = []
            for partial in current:
                advanced += self._advance(partial, r.value)
            if stages[0].accepts(r.value):
                advanced += self._complete_or_keep((0, 1, {stages[0].name: [r.value]}, ts))
            done = [p for p in advanced if p[0] == len(stages)]
            if done:
                match = done[0][2]
                self.matches += 1
                out.emit(Record(match, ts, r.key, f"{self.uid}/{r.rid}/match"))
                advanced = []  # skip past the last event: overlapping partials go
            if advanced:
                self.partials[r.key] = advanced
            else:
                self.partials.pop(r.key, None)

    def _advance(self, partial, value):
        """What becomes of one partial match when the key's next event arrives."""
        stages = self.pattern.stages
        index, taken, events, start = partial
        stage = stages[index]
        if taken < stage.count:  # the stage wants more events
            if stage.accepts(value):
                grown = {**events, stage.name: events.get(stage.name, []) + [value]}
                return self._complete_or_keep((index, taken + 1, grown, start))
            return [] if stage.contiguity == STRICT else [partial]
        following = stages[index + 1]
        if following.accepts(value):
            grown = {**events, following.name: [value]}
            return self._complete_or_keep((index + 1, 1, grown, start))
        return [] if following.contiguity == STRICT else [partial]

    def _complete_or_keep(self, partial):
        index, taken, events, start = partial
        stages = self.pattern.stages
        if taken >= stages[index].count and index == len(stages) - 1:
            return [(len(stages), 0, events, start)]  # a whole match
        return [partial]

    def snapshot(self):
        return {k: list(v) for k, v in self.partials.items()}

    def restore(self, state):
        self.partials = {k: list(v) for k, v in state.items()}
