"""`Client`: vidx's gRPC API with numpy vectors, datetimes, batching,
paging and typed results."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Callable, Iterable, Iterator, Optional, Sequence

import grpc
import numpy as np

from . import _wire
from ._pb import vidx_pb2 as pb
from ._pb import vidx_pb2_grpc as pb_grpc
from .errors import VidxError
from .types import (
    CollectionInfo,
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

#: The server's default message limit (`vidx serve --max-message-bytes`):
#: a 2,000-point batch of 512 floats is ~4.1 MB, over grpcio's 4 MiB default.
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20
#: Points per Upsert message.
DEFAULT_BATCH = 1000
#: Ids per Get request: 1,000 points of 512 floats are ~2 MB.
DEFAULT_PAGE = 1000

Progress = Callable[[int, int], None]
_METHOD = "/vidx.v1.VectorIndex/"


def _num(message, field: str) -> int:
    """The field number of `message.field`, from the generated descriptor,
    for the messages whose vectors are written as raw bytes (`_wire`)."""
    return message.DESCRIPTOR.fields_by_name[field].number


_UPSERT_POINTS = _num(pb.UpsertRequest, "points")
_POINT_VECTOR = _num(pb.Point, "vector")
_POINT_FIELDS = (_num(pb.Point, "id"), _POINT_VECTOR, _num(pb.Point, "metadata"))
_GET_POINTS = _num(pb.GetResponse, "points")
_SEARCH_QUERIES = _num(pb.SearchRequest, "queries")
_QUERY_VECTOR = _num(pb.Query, "vector")
_VECTOR_VALUES = _num(pb.Vector, "values")
_TRIAGE_ITEMS = _num(pb.TriageRequest, "items")
_ITEM_VECTOR = _num(pb.TriageItem, "vector")
_ITEM_FACES = _num(pb.TriageItem, "faces")


def _matrix(vectors, what: str) -> np.ndarray:
    """`vectors` as a C-contiguous (n, dim) float32 array (no copy if it is one)."""
    m = np.ascontiguousarray(vectors, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"{what} must be a 2-d array (n, dim); got shape {m.shape}")
    return m


class _Errors:
    """Turns gRPC errors inside a `with` block into VidxError."""

    def __enter__(self):
        return self

    def __exit__(self, et, e, tb):
        if isinstance(e, grpc.RpcError):
            raise VidxError.from_rpc(e) from None
        return False


_errors = _Errors()


class LinkRun:
    """A running LinkSeries: iterate for the series as they arrive; then
    `summary` holds the run's summary."""

    def __init__(self, stream, progress: Optional[Callable[[str, int, int], None]]):
        self._stream = stream
        self._progress = progress
        self.summary: Optional[LinkSummary] = None

    def __iter__(self) -> Iterator[Series]:
        with _errors:
            for ev in self._stream:
                kind = ev.WhichOneof("event")
                if kind == "progress" and self._progress:
                    p = ev.progress
                    self._progress(p.stage, p.done, p.total)
                elif kind == "series":
                    yield Series.from_pb(ev.series)
                elif kind == "summary":
                    self.summary = LinkSummary.from_pb(ev.summary)

    def cancel(self) -> None:
        self._stream.cancel()


class TriageRun:
    """A running Triage: iterate for one verdict per item as decided; then
    `summary` holds the counts and the candidate groups of new items."""

    def __init__(self, stream):
        self._stream = stream
        self.summary: Optional[TriageSummary] = None

    def __iter__(self) -> Iterator[TriageResult]:
        with _errors:
            for resp in self._stream:
                for r in resp.results:
                    yield TriageResult.from_pb(r)
                if resp.HasField("summary"):
                    self.summary = TriageSummary.from_pb(resp.summary)

    def cancel(self) -> None:
        self._stream.cancel()


class Client:
    """A connection to a vidx server.

    Args:
        target: `host:port` (or an `http://` / `https://` URL).
        tls: use TLS (implied by an `https://` target or any certificate).
        root_certificates, private_key, certificate_chain: PEM bytes for
            TLS (server CA; client key and certificate for mutual TLS).
        token: a bearer token sent as `authorization: Bearer <token>` on
            every call.
        timeout: default seconds per call (None: no deadline).
        max_message_bytes: send and receive limit; the default fits the
            server's and a 2,000-point batch of 512-d vectors.
        options: further grpc channel options.
    """

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        tls: bool = False,
        root_certificates: Optional[bytes] = None,
        private_key: Optional[bytes] = None,
        certificate_chain: Optional[bytes] = None,
        token: Optional[str] = None,
        timeout: Optional[float] = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        options: Sequence[tuple[str, object]] = (),
    ):
        if target.startswith("https://"):
            tls, target = True, target[len("https://") :]
        elif target.startswith("http://"):
            target = target[len("http://") :]
        opts = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            *options,
        ]
        if tls or root_certificates or private_key or certificate_chain:
            creds = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
            self._channel = grpc.secure_channel(target, creds, opts)
        else:
            self._channel = grpc.insecure_channel(target, opts)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        self._stub = pb_grpc.VectorIndexStub(self._channel)
        ch = self._channel
        # Vector-bearing calls take and give wire bytes (see _wire).
        self._upsert = ch.stream_unary(_METHOD + "Upsert", None, pb.UpsertResponse.FromString)
        self._search = ch.unary_unary(_METHOD + "Search", None, pb.SearchResponse.FromString)
        self._get = ch.unary_unary(_METHOD + "Get", pb.GetRequest.SerializeToString, None)
        self._triage = ch.stream_stream(_METHOD + "Triage", None, pb.TriageResponse.FromString)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _kw(self, timeout: Optional[float]) -> dict:
        return {"metadata": self._metadata, "timeout": timeout if timeout is not None else self._timeout}

    # ---- collections --------------------------------------------------------

    def create_collection(
        self,
        name: str,
        dim: int,
        *,
        metric: str = "cosine",
        kind: str = "image",
        m: int = 0,
        ef_construction: int = 0,
        timeout: Optional[float] = None,
    ) -> CollectionInfo:
        """Creates an empty collection; metric "cosine", "dot" or "l2";
        kind "image" or "face"."""
        req = pb.CreateCollectionRequest(
            name=name,
            dim=dim,
            metric=pb.Metric.Value(metric.upper()),
            kind=pb.Kind.Value(kind.upper()),
            hnsw=pb.HnswConfig(m=m, ef_construction=ef_construction),
        )
        with _errors:
            return CollectionInfo.from_pb(self._stub.CreateCollection(req, **self._kw(timeout)))

    def list_collections(self, *, timeout: Optional[float] = None) -> list[CollectionInfo]:
        with _errors:
            r = self._stub.ListCollections(pb.ListCollectionsRequest(), **self._kw(timeout))
        return [CollectionInfo.from_pb(c) for c in r.collections]

    def describe_collection(self, name: str, *, timeout: Optional[float] = None) -> CollectionInfo:
        with _errors:
            r = self._stub.DescribeCollection(pb.DescribeCollectionRequest(name=name), **self._kw(timeout))
        return CollectionInfo.from_pb(r)

    def drop_collection(self, name: str, *, timeout: Optional[float] = None) -> None:
        with _errors:
            self._stub.DropCollection(pb.DropCollectionRequest(name=name), **self._kw(timeout))

    def flush(self, collection: str, *, timeout: Optional[float] = None) -> int:
        """Seals the collection's in-memory segment; returns points sealed."""
        with _errors:
            r = self._stub.Flush(pb.FlushRequest(collection=collection), **self._kw(timeout))
        return r.sealed_points

    # ---- points -------------------------------------------------------------

    def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        vectors,
        metadata: Optional[Sequence] = None,
        *,
        batch_size: int = DEFAULT_BATCH,
        progress: Optional[Progress] = None,
        timeout: Optional[float] = None,
    ) -> int:
        """Writes points: `vectors` is an (n, dim) array (float32, or
        converted once), `metadata` a sequence of Metadata or dicts. Streams
        one message per `batch_size` points; `progress(sent, total)` is
        called as each batch is handed to gRPC. Returns the points the
        server acknowledged (all are in its write-ahead log by then)."""
        vecs = _matrix(vectors, "vectors")
        n = len(ids)
        if vecs.shape[0] != n:
            raise ValueError(f"{n} ids but {vecs.shape[0]} vectors")
        if metadata is not None and len(metadata) != n:
            raise ValueError(f"{n} ids but {len(metadata)} metadata")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        metas = [Metadata.coerce(m) for m in metadata] if metadata is not None else None
        head = pb.UpsertRequest(collection=collection).SerializeToString()

        def batches() -> Iterator[bytes]:
            for start in range(0, n, batch_size):
                end = min(n, start + batch_size)
                parts = [head]
                for i in range(start, end):
                    p = pb.Point(id=ids[i])
                    if metas is not None:
                        p.metadata.CopyFrom(metas[i].to_pb())
                    parts.append(_wire.field(_UPSERT_POINTS, p.SerializeToString() + _wire.floats(_POINT_VECTOR, vecs[i])))
                yield b"".join(parts)
                if progress:
                    progress(end, n)

        with _errors:
            return self._upsert(batches(), **self._kw(timeout)).upserted

    def get(
        self,
        collection: str,
        ids: Sequence[str],
        *,
        page_size: int = DEFAULT_PAGE,
        timeout: Optional[float] = None,
    ) -> Points:
        """Points by id, `page_size` ids per request so each answer fits
        the message limits; unknown ids are skipped. Vectors come back as
        one (n, dim) float32 array."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        out_ids: list[str] = []
        vecs: list[np.ndarray] = []
        metas: list[Metadata] = []
        for start in range(0, len(ids), page_size):
            req = pb.GetRequest(collection=collection, ids=list(ids[start : start + page_size]))
            with _errors:
                data = self._get(req, **self._kw(timeout))
            pids, pvecs, pmetas = _wire.decode_points(data, _GET_POINTS, _POINT_FIELDS)
            out_ids += pids
            vecs += pvecs
            metas += [Metadata.from_pb(pb.Metadata.FromString(m)) for m in pmetas]
        matrix = np.vstack(vecs) if vecs else np.empty((0, 0), dtype=np.float32)
        return Points(ids=out_ids, vectors=matrix, metadata=metas)

    def delete(self, collection: str, ids: Sequence[str], *, timeout: Optional[float] = None) -> int:
        with _errors:
            r = self._stub.Delete(pb.DeleteRequest(collection=collection, ids=list(ids)), **self._kw(timeout))
        return r.deleted

    # ---- search -------------------------------------------------------------

    def _hits(self, resp: pb.SearchResponse) -> list[list[Hit]]:
        return [
            [Hit(h.id, h.distance, Metadata.from_pb(h.metadata), h.matched_faces) for h in q.hits]
            for q in resp.results
        ]

    def search(
        self,
        collection: str,
        vectors,
        k: int = 10,
        *,
        ef: int = 0,
        filter: Optional[Filter] = None,
        group_by_media: bool = False,
        timeout: Optional[float] = None,
    ):
        """Nearest neighbours of each row of `vectors` ((q, dim), or one
        (dim,) vector: then one list of hits is returned, else a list per
        query)."""
        q = np.asarray(vectors, dtype=np.float32)
        single = q.ndim == 1
        q = _matrix(q[None, :] if single else q, "vectors")
        req = pb.SearchRequest(collection=collection, k=k, ef=ef, group_by_media=group_by_media)
        if filter is not None:
            req.filter.CopyFrom(filter.to_pb())
        body = req.SerializeToString() + b"".join(
            _wire.field(_SEARCH_QUERIES, _wire.field(_QUERY_VECTOR, _wire.floats(_VECTOR_VALUES, row)))
            for row in q
        )
        with _errors:
            hits = self._hits(self._search(body, **self._kw(timeout)))
        return hits[0] if single else hits

    def search_ids(
        self,
        collection: str,
        ids: Sequence[str],
        k: int = 10,
        *,
        ef: int = 0,
        filter: Optional[Filter] = None,
        exclude_same_upload: bool = False,
        exclude_same_case: bool = False,
        group_by_media: bool = False,
        timeout: Optional[float] = None,
    ) -> list[list[Hit]]:
        """"More like this": neighbours of stored points (each excluded from
        its own hits)."""
        req = pb.SearchRequest(
            collection=collection,
            queries=[pb.Query(point_id=i) for i in ids],
            k=k,
            ef=ef,
            exclude_same_upload=exclude_same_upload,
            exclude_same_case=exclude_same_case,
            group_by_media=group_by_media,
        )
        if filter is not None:
            req.filter.CopyFrom(filter.to_pb())
        with _errors:
            return self._hits(self._stub.Search(req, **self._kw(timeout)))

    # ---- linking and triage ---------------------------------------------------

    def link_series(
        self,
        image_collection: str,
        face_collection: str = "",
        *,
        params: Optional[dict] = None,
        upload_ids: Sequence[str] = (),
        case_ids: Sequence[str] = (),
        progress: Optional[Callable[[str, int, int], None]] = None,
        timeout: Optional[float] = None,
    ) -> LinkRun:
        """Links the collection's media into series; iterate the returned
        run for each Series, then read `run.summary`. `params` holds
        LinkParams fields (image_threshold, face_threshold, k, ...);
        `progress(stage, done, total)` follows the server's stages."""
        req = pb.LinkSeriesRequest(
            image_collection=image_collection,
            face_collection=face_collection,
            params=pb.LinkParams(**(params or {})),
            scope=pb.LinkScope(upload_ids=list(upload_ids), case_ids=list(case_ids)),
        )
        with _errors:
            return LinkRun(self._stub.LinkSeries(req, **self._kw(timeout)), progress)

    def link_upload(
        self,
        image_collection: str,
        upload_id: str,
        *,
        face_collection: str = "",
        timeout: Optional[float] = None,
    ) -> LinkUploadResult:
        """Links one new upload against the stored series."""
        req = pb.LinkUploadRequest(
            image_collection=image_collection, face_collection=face_collection, upload_id=upload_id
        )
        with _errors:
            r = self._stub.LinkUpload(req, **self._kw(timeout))
        return LinkUploadResult(
            media=[
                MediaLink(m.media_id, pb.LinkOutcome.Name(m.outcome).lower(), m.series_id)
                for m in r.media
            ],
            merges={m.series_id: list(m.merged) for m in r.merges},
            series=[Series.from_pb(s) for s in r.series],
            new_edges=r.new_edges,
        )

    def triage(
        self,
        image_collection: str,
        ids: Sequence[str],
        vectors,
        *,
        faces: Optional[Sequence] = None,
        metadata: Optional[Sequence] = None,
        face_collection: str = "",
        store: bool = False,
        image_threshold: float = 0.0,
        face_threshold: float = 0.0,
        batch_size: int = 100,
        progress: Optional[Progress] = None,
        timeout: Optional[float] = None,
    ) -> TriageRun:
        """Triages a seized set: `vectors` (n, dim) image embeddings, and
        per item an optional (m, dim) array of face embeddings. Iterate the
        returned run for one TriageResult per item; then `run.summary`."""
        vecs = _matrix(vectors, "vectors")
        n = len(ids)
        if vecs.shape[0] != n:
            raise ValueError(f"{n} ids but {vecs.shape[0]} vectors")
        for name, seq in (("faces", faces), ("metadata", metadata)):
            if seq is not None and len(seq) != n:
                raise ValueError(f"{n} ids but {len(seq)} {name}")
        face_sets = [None if f is None else _matrix(f, f"faces[{i}]") for i, f in enumerate(faces)] if faces else None
        metas = [Metadata.coerce(m) for m in metadata] if metadata is not None else None
        head = pb.TriageRequest(
            image_collection=image_collection,
            face_collection=face_collection,
            store=store,
            image_threshold=image_threshold,
            face_threshold=face_threshold,
        ).SerializeToString()

        def item(i: int) -> bytes:
            it = pb.TriageItem(id=ids[i])
            if metas is not None:
                it.metadata.CopyFrom(metas[i].to_pb())
            b = it.SerializeToString() + _wire.floats(_ITEM_VECTOR, vecs[i])
            if face_sets is not None and face_sets[i] is not None:
                b += b"".join(_wire.field(_ITEM_FACES, _wire.floats(_VECTOR_VALUES, f)) for f in face_sets[i])
            return _wire.field(_TRIAGE_ITEMS, b)

        def messages() -> Iterator[bytes]:
            for start in range(0, max(n, 1), batch_size):
                end = min(n, start + batch_size)
                yield (head if start == 0 else b"") + b"".join(item(i) for i in range(start, end))
                if progress:
                    progress(end, n)

        with _errors:
            return TriageRun(self._triage(messages(), **self._kw(timeout)))

    # ---- snapshots ------------------------------------------------------------

    def create_snapshot(
        self,
        collection: str,
        out_dir,
        *,
        progress: Optional[Callable[[int], None]] = None,
        timeout: Optional[float] = None,
    ) -> dict:
        """Asks the server for a consistent snapshot of `collection` and
        writes it into `out_dir` (absent or empty). Returns its manifest
        (`snapshot.json`). File sizes are checked here; `vidx snapshot
        verify DIR` checks every checksum. `progress(bytes)` as data arrives."""
        out = pathlib.Path(out_dir)
        if out.exists() and any(out.iterdir()):
            raise ValueError(f"{out} is not empty")
        out.mkdir(parents=True, exist_ok=True)
        received = 0
        current = None
        sizes: dict[str, int] = {}
        try:
            with _errors:
                for chunk in self._stub.CreateSnapshot(
                    pb.CreateSnapshotRequest(collection=collection), **self._kw(timeout)
                ):
                    rel = pathlib.PurePosixPath(chunk.path)
                    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
                        raise ValueError(f"the server sent an unsafe path {chunk.path!r}")
                    if current is None or current[0] != chunk.path:
                        if current is not None:
                            _close(current[1])
                        path = out.joinpath(*rel.parts)
                        path.parent.mkdir(parents=True, exist_ok=True)
                        current = (chunk.path, open(path, "wb"))
                        sizes[chunk.path] = chunk.file_bytes
                    current[1].write(chunk.data)
                    received += len(chunk.data)
                    if progress:
                        progress(received)
            if current is not None:
                _close(current[1])
                current = None
            manifest = json.loads((out / "snapshot.json").read_text())
            for f in manifest["files"]:
                got = (out / f["path"]).stat().st_size
                if got != f["bytes"]:
                    raise ValueError(f"{f['path']}: {got} bytes received, the manifest says {f['bytes']}")
            return manifest
        finally:
            if current is not None:
                current[1].close()


def _close(f) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()
