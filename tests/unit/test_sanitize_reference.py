"""The fast paths of ivr.sanitize and normalise_number against the per-character rules."""

from __future__ import annotations

import random
import unicodedata

import pytest

from ivr import sanitize
from ivr.dialplan.model import normalise_number


def _reference_number(raw: str) -> str:
    if raw.strip().lower() in sanitize._UNKNOWN:
        return ""
    return "".join(ch for ch in raw if ch in "0123456789+*#")[: sanitize.MAX_NUMBER_LENGTH]


def _reference_name(raw: str) -> str:
    if raw.strip().lower() in sanitize._UNKNOWN:
        return ""
    kept = []
    for ch in unicodedata.normalize("NFC", raw):
        category = unicodedata.category(ch)
        if category[0] in "LMN" or ch in sanitize._NAME_PUNCTUATION:
            kept.append(" " if category == "Zs" else ch)
    return " ".join("".join(kept).split())[: sanitize.MAX_NAME_LENGTH]


def _reference_normalise(number: str) -> str:
    cleaned = "".join(ch for ch in number if ch not in " -()\t")
    for prefix in ("+86", "0086"):
        if cleaned.startswith(prefix):
            return cleaned[len(prefix) :]
    return cleaned


_ALPHABETS = (
    "".join(map(chr, range(128))),
    "0123456789+*# -()\t",
    "0123456789٣۴１２ +",
    "张王欧阳·娜（先生）,， \u3000\u00a0\u200e\u202eé e\u0301",
)


def _samples() -> list[str]:
    rng = random.Random(12345)
    out = ["", "unknown", " Anonymous ", "13800138000", "+86 138-0013-8000", "O'Brien (Mr)"]
    for _ in range(3000):
        alphabet = rng.choice(_ALPHABETS)
        out.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80))))
    out.extend(chr(code) * 3 for code in range(256))
    return out


@pytest.mark.parametrize("check", ["number", "name", "normalise"])
def test_same_as_the_per_character_rules(check: str) -> None:
    for raw in _samples():
        if check == "number":
            assert sanitize.caller_number(raw) == _reference_number(raw), raw
        elif check == "name":
            assert sanitize.caller_name(raw) == _reference_name(raw), raw
        else:
            assert normalise_number(raw) == _reference_normalise(raw), raw
