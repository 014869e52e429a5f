"""Names that become paths: one pattern, and containment checks for every folder a user's
name selects.

Applications, snapshots, endpoints and other named things each own a folder under the
data directory. A name is safe as one path component when it starts with a letter or a
digit and continues with letters, digits, ``_``, ``.`` and ``-``: no separators, no NUL,
and never ``.`` or ``..``. :func:`child_path` checks the name *and* that the resolved
path stays inside its folder (so a symlink planted in the folder cannot lead out either),
before anything on disk is touched.

>>> from pathlib import Path
>>> child_path(Path("/data/apps"), "temps-1", "application name").as_posix()
'/data/apps/temps-1'
>>> child_path(Path("/data/apps"), "..", "application name")
Traceback (most recent call last):
...
forestream.names.UnsafeName: application name '..' must be 1-128 characters of letters, \
digits, '_', '.' and '-', starting with a letter or digit
"""

from __future__ import annotations

import re
from pathlib import Path

#: One path component: starts with a letter or digit, so never ``.``, ``..`` or hidden.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
SAFE_NAME_RULE = ("1-128 characters of letters, digits, '_', '.' and '-', starting with a "
                  "letter or digit")
#: The longest value an error message repeats back; the rest is elided.
ECHO_LIMIT = 200


class UnsafeName(ValueError):
    """A name that cannot safely select a folder; the message names it and the rule."""


def shorten(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages that echo input.

    >>> shorten("x" * 1000, 12)
    "'xxxxxxxxx…(1002 characters)"
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit - 2]}…({len(text)} characters)"


def cap_message(message: str, limit: int = 1000) -> str:
    """An error message cut to ``limit`` characters: whatever a route echoes, an answer
    stays small (the full value is the client's own; it needs only to recognise it)."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}…(message of {len(message)} characters cut)"


def check_name(name: object, what: str) -> str:
    """``name`` when it matches :data:`SAFE_NAME`, else :class:`UnsafeName`."""
    if not isinstance(name, str) or SAFE_NAME.fullmatch(name) is None:
        raise UnsafeName(f"{what} {shorten(name)} must be {SAFE_NAME_RULE}")
    return name


def child_path(root: Path, name: object, what: str) -> Path:
    """``root / name`` for a checked ``name`` whose resolved path is inside ``root``."""
    checked = check_name(name, what)
    path = root / checked
    base = root.resolve()
    resolved = path.resolve()
    if resolved.parent != base:
        raise UnsafeName(f"{what} {shorten(name)} leads outside {root.name}/")
    return path


def inside(path: Path, roots: list[Path]) -> bool:
    """Whether ``path`` (resolved, symlinks followed) lies in one of ``roots``."""
    resolved = path.resolve()
    for root in roots:
        base = root.resolve()
        if resolved == base or base in resolved.parents:
            return True
    return False
