from types import EllipsisType
from typing import Any

def header_value(raw: bytes, lower: bytes, needle: bytes, /) -> str | EllipsisType | None: ...
def split_messages(data: bytes, /) -> tuple[list[bytes], bytes, bool] | None: ...
def configure(
    message_type: type,
    raw: Any,
    lower: Any,
    event: Any,
    needles: dict[str, bytes],
    python_get: Any,
    /,
) -> Any: ...
def read_events(
    blocks: list[bytes],
    index: int,
    at: int,
    lowered: bytes,
    plain: bool,
    names: dict[bytes, str],
    messages: list[Any],
    /,
) -> tuple[int, int]: ...
