"""Zip archives that lie, for the hostile-archive tests."""

from __future__ import annotations


def with_declared_size(archive: bytes, size: int) -> bytes:
    """The archive with its first member's uncompressed size rewritten (a lying header)."""
    data = bytearray(archive)
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 22 : local + 26] = size.to_bytes(4, "little")
    data[central + 24 : central + 28] = size.to_bytes(4, "little")
    return bytes(data)
