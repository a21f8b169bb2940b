"""A binary stream repaired to UTF-8: perf_analyzer 2.44's profile export writes raw output bytes
(an FP32 tensor as its four bytes) into JSON strings, which strict JSON parsers refuse."""

from __future__ import annotations

import codecs
from typing import IO


class RepairedUtf8:
    """Reads ``raw`` with every byte sequence that is not UTF-8 replaced by U+FFFD (as UTF-8)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self, size: int = -1) -> bytes:
        while True:
            chunk = self._raw.read(size)
            text = self._decoder.decode(chunk, final=not chunk)
            if text or not chunk:
                return text.encode("utf-8")
