"""vidx-client: a typed Python client of the vidx gRPC server.

    from vidx_client import Client
    with Client("127.0.0.1:50051") as c:
        c.upsert("images", ids, vectors)          # numpy (n, dim) float32
        hits = c.search("images", vectors[0], k=5)

See the README of clients/python for more.
"""

from .client import DEFAULT_BATCH, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_PAGE, Client, LinkRun, TriageRun
from .errors import VidxError, field_of
from .types import (
    CollectionInfo,
    Evidence,
    Filter,
    Hit,
    LinkSummary,
    LinkUploadResult,
    MediaLink,
    Metadata,
    Points,
    Series,
    TriageResult,
    TriageSummary,
)

__all__ = [
    "Client",
    "CollectionInfo",
    "DEFAULT_BATCH",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_PAGE",
    "Evidence",
    "Filter",
    "Hit",
    "LinkRun",
    "LinkSummary",
    "LinkUploadResult",
    "MediaLink",
    "Metadata",
    "Points",
    "Series",
    "TriageResult",
    "TriageRun",
    "TriageSummary",
    "VidxError",
    "field_of",
]
