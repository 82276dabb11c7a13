"""The one exception of the client: a gRPC error with its status code, the
server's message, and the request field that message names."""

from __future__ import annotations

import re

import grpc

# "batch 2 (40 points of earlier batches were applied): " before the field.
_BATCH = re.compile(r"^batch \d+(?: \([^)]*\))?: ")
# A field path: name, then [index] or .name parts.
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\]|\.[A-Za-z_][A-Za-z0-9_]*)*")
# After a path: " (id \"x\")" then ": " and maybe a further path.
_ID = re.compile(r' \(id (?:"(?:[^"\\]|\\.)*"|\S+)\)')
# What follows a field's name in vidx's messages.
_AFTER_FIELD = re.compile(r' (?:is |has |must |contains |differs |"|-?\d)')


def field_of(message: str) -> str | None:
    """The request field a vidx error message names first, as a path
    (`points[3].vector`, `k`, `filter.countries_any[0]`), or None.

    vidx's messages start with the field and its value ("k is 0; ...",
    "points[3] (id \"a\"): vector has 3 values; ..."); this reads that
    prefix. It is what the message says, not a separate field of the
    status, so it is None for messages that name no field.
    """
    rest = _BATCH.sub("", message, count=1)
    parts = []
    while True:
        m = _PATH.match(rest)
        if not m:
            break
        parts.append(m.group(0))
        rest = rest[m.end() :]
        m = _ID.match(rest)
        if m:
            rest = rest[m.end() :]
        if rest.startswith(": "):
            rest = rest[2:]
            continue
        break
    if not parts or not (rest.startswith(" ") or rest == ""):
        return None
    path = ".".join(parts)
    # A bare word is a field only where the message goes on as vidx's do
    # ("k is 0", "ef 5000 is over", "name \"x\" is not"); not in prose.
    if not any(c in path for c in "[._") and not _AFTER_FIELD.match(rest):
        return None
    return path


class VidxError(Exception):
    """A call that failed.

    Attributes:
        code: the gRPC status code (`grpc.StatusCode`).
        details: the server's message.
        field: the request field the message names (see `field_of`), or None.
    """

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.field = field_of(details) if code == grpc.StatusCode.INVALID_ARGUMENT else None

    @classmethod
    def from_rpc(cls, e: grpc.RpcError) -> "VidxError":
        code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
        details = e.details() if hasattr(e, "details") else str(e)
        return cls(code, details or "")
