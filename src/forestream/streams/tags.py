"""What stream tags may hold, as Kinesis checks it (AddTagsToStream, TagResource,
CreateStream's tags, RemoveTagsFromStream's keys)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import InvalidArgumentError

MAX_TAGS = 50
#: What tag keys and values may hold: letters and digits of any script, spaces, _ . / = + -
#: @ (and %, refused with a message of its own).
_TAG_TEXT = re.compile(r"[\w ./=+\-@%]*")


def check_tags(texts: Iterable[str], what: str) -> None:
    """InvalidArgument (in Kinesis's words) if a tag key or value in ``texts`` has a
    character tags may not hold: they take Unicode letters and digits, spaces and
    ``_ . / = + - @`` (``%`` only in the first message, which AWS words so, and still
    refuses). ``what`` completes "Failed to ..." (``add tags to stream S under account
    A``)."""
    texts = list(texts)
    if any(not _TAG_TEXT.fullmatch(text) for text in texts):
        raise InvalidArgumentError("Some tags contain invalid characters. Valid characters: "
                                   "Unicode letters, digits, white space, _ . / = + - % @.")
    if any("%" in text for text in texts):
        raise InvalidArgumentError(
            f"Failed to {what} because some tags contained illegal characters. The allowed "
            "characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@'.")
