"""Validation of an application's configuration (intervals, parallelism, key groups;
autoscaling policies: :mod:`.autoscaling`), with errors that name the value and the
accepted range."""

from __future__ import annotations

import re

from forestream.names import SAFE_NAME, UnsafeName, check_name

from .errors import ApplicationError

NAME = re.compile(f"^{SAFE_NAME.pattern}$")  # applications and snapshots (folder names)
MAX_PARALLELISM = 64
DEFAULT_MAX_PARALLELISM = 16  # key groups of a keyed job: the most workers its state spreads over
MAX_KEY_GROUPS = 128


def check_application_name(name: object) -> str:
    """``name`` if it is a safe application name, else :class:`ApplicationError` naming it
    (the manager checks it too; the REST API and the console check it before they read
    the code, so a bad name is what the user hears of first)."""
    try:
        return check_name(name, "application name")
    except UnsafeName as exc:
        raise ApplicationError(str(exc)) from None


def _check_config(checkpoint_interval, parallelism, properties,
                  max_parallelism=DEFAULT_MAX_PARALLELISM) -> None:
    if not isinstance(checkpoint_interval, (int, float)) or not 0.1 <= checkpoint_interval \
            <= 86400:
        raise ApplicationError(f"checkpoint_interval must be in [0.1, 86400] seconds, got "
                               f"{checkpoint_interval!r}")
    _integer("parallelism", parallelism, MAX_PARALLELISM)
    _integer("max_parallelism (key groups)", max_parallelism, MAX_KEY_GROUPS)
    if parallelism > max_parallelism:
        raise ApplicationError(f"parallelism {parallelism} is above max_parallelism "
                               f"{max_parallelism}: keyed state has only that many key groups "
                               "to spread over workers")
    if properties is not None and not (isinstance(properties, dict) and all(
            isinstance(v, dict) for v in properties.values())):
        raise ApplicationError("properties must map property-group names to "
                               "{key: value} objects")


def _integer(name: str, value, top: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise ApplicationError(f"{name} must be an integer in [1, {top}], got {value!r}")
