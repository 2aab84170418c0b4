"""Content digests (`algorithm:hex`), validated on construction."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from bale.errors import InvalidArgument

_HEX_LEN = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, order=True)
class Digest:
    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        want = _HEX_LEN.get(self.algorithm)
        if want is None:
            raise InvalidArgument(
                f"unsupported digest algorithm {self.algorithm!r}", hint="use sha256 or sha512"
            )
        if len(self.hex) != want or not _HEX.fullmatch(self.hex):
            raise InvalidArgument(
                f"invalid {self.algorithm} digest {self.hex!r}: "
                f"want {want} lowercase hex characters"
            )

    @classmethod
    def parse(cls, text: str) -> Digest:
        algorithm, sep, hexpart = text.partition(":")
        if not sep:
            raise InvalidArgument(
                f"invalid digest {text!r}", hint="a digest looks like sha256:<hex>"
            )
        return cls(algorithm, hexpart)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> hashlib._Hash:
        """A fresh hash object of this digest's algorithm."""
        return hashlib.new(self.algorithm)

    @property
    def short(self) -> str:
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"
