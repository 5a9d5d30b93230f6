"""Caller data is hostile until cleaned: what the PSTN or a SIP trunk sends goes through here
before it reaches a ticket, a log line or any command we build.

A caller name is free text chosen by whoever places the call (a SIP ``From`` display name), and
a number may carry anything a trunk lets through. We keep what a person would recognise and
drop the rest, rather than escape it: nothing downstream ever needs the dropped characters.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NUMBER_LENGTH = 32
MAX_NAME_LENGTH = 64

_UNKNOWN = {"", "unknown", "<unknown>", "anonymous"}
_ID = re.compile(r"\d{1,20}\.\d{1,12}")
# Punctuation seen in real names: 欧阳·娜娜, O'Brien, Zhang (Mr), 张（先生）, St.-Pierre.
_NAME_PUNCTUATION = set(" ·.-'()（）,，")
# What the per-character rules keep of an ASCII string, done in C: ASCII letters and digits
# are the only ASCII characters of categories L, M and N, and NFC leaves ASCII unchanged.
_NOT_DIAL = re.compile(r"[^0-9+*#]")  # [0-9] is ASCII only, unlike \d
_NOT_ASCII_NAME = re.compile(r"[^A-Za-z0-9 .\-'(),]")


def caller_number(raw: str) -> str:
    """Digits and the dial characters ``+ * #`` only, at most 32; "" for unknown."""
    if raw.strip().lower() in _UNKNOWN:
        return ""
    if raw.isdigit() and raw.isascii():  # the usual number: nothing to drop
        return raw[:MAX_NUMBER_LENGTH]
    return _NOT_DIAL.sub("", raw)[:MAX_NUMBER_LENGTH]


def caller_name(raw: str) -> str:
    """Letters, marks, digits, spaces and name punctuation only, at most 64 characters.

    Control and format characters (newlines, bidi overrides), quotes, ``|``, ``$``, braces and
    backslashes are dropped, so a name can neither break a line nor be read as a variable.
    """
    if raw.strip().lower() in _UNKNOWN:
        return ""
    if raw.isascii():
        return " ".join(_NOT_ASCII_NAME.sub("", raw).split())[:MAX_NAME_LENGTH]
    kept = []
    for ch in unicodedata.normalize("NFC", raw):
        category = unicodedata.category(ch)
        if category[0] in "LMN" or ch in _NAME_PUNCTUATION:
            kept.append(" " if category == "Zs" else ch)
    return " ".join("".join(kept).split())[:MAX_NAME_LENGTH]


def asterisk_id(raw: str) -> str:
    """An Asterisk Uniqueid/Linkedid (``1795380949.3``), or "" if ``raw`` is not one."""
    return raw if _ID.fullmatch(raw) else ""
