"""Where a byte-by-byte JSON scanner stands: the open objects and arrays, and whether a key is next.

Both streamed answer readers (:mod:`~airflow_provider_aihubmix.responses.answer_stream`, any
prediction answer, and :mod:`~airflow_provider_aihubmix.responses.gemini_stream`, Gemini's) copy
structure bytes to a skeleton and decide per string what to do with it; this module holds the one
rule for how ``{ [ } ] : ,`` move that state.
"""

from __future__ import annotations


class JsonFrame:
    """One open object or array; ``key`` is the object's current key once a scanner recorded it."""

    __slots__ = ("expecting_key", "is_object", "key")

    def __init__(self, is_object: bool) -> None:
        self.is_object = is_object
        self.expecting_key = is_object
        self.key: bytes | None = None


def step(stack: list[JsonFrame], byte: int) -> None:
    """Move ``stack`` past one structure byte outside a string (other bytes leave it as is).

    :raises ValueError: a closing bracket with nothing open ("unbalanced JSON").
    """
    top = stack[-1] if stack else None
    if byte in (0x7B, 0x5B):  # '{' '['
        stack.append(JsonFrame(is_object=byte == 0x7B))
    elif byte in (0x7D, 0x5D):  # '}' ']'
        if not stack:
            raise ValueError("unbalanced JSON")
        stack.pop()
    elif byte == 0x3A and top is not None and top.is_object:  # ':'
        top.expecting_key = False
    elif byte == 0x2C and top is not None and top.is_object:  # ','
        top.expecting_key, top.key = True, None


__all__ = ["JsonFrame", "step"]
