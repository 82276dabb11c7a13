"""The client's values: plain dataclasses with `datetime` times (UTC) and
numpy vectors, converted to and from the protobuf messages here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

import numpy as np

from ._pb import vidx_pb2 as pb


def to_seconds(t: Optional[datetime]) -> int:
    """Unix seconds of `t`; a naive datetime is taken as UTC; None is 0."""
    if t is None:
        return 0
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp())


def from_seconds(s: int) -> Optional[datetime]:
    """0 (unknown) is None; otherwise an aware UTC datetime."""
    return datetime.fromtimestamp(s, tz=timezone.utc) if s else None


@dataclass
class Metadata:
    """Investigative metadata of a point (see the proto for each field)."""

    media_id: str = ""
    upload_id: str = ""
    case_id: str = ""
    country: str = ""
    agency: str = ""
    captured_at: Optional[datetime] = None
    uploaded_at: Optional[datetime] = None
    series_label: str = ""
    victim_identified: bool = False
    tags: list[str] = field(default_factory=list)

    def to_pb(self) -> pb.Metadata:
        return pb.Metadata(
            media_id=self.media_id,
            upload_id=self.upload_id,
            case_id=self.case_id,
            country=self.country,
            agency=self.agency,
            captured_at=to_seconds(self.captured_at),
            uploaded_at=to_seconds(self.uploaded_at),
            series_label=self.series_label,
            victim_identified=self.victim_identified,
            tags=list(self.tags),
        )

    @classmethod
    def from_pb(cls, m: pb.Metadata) -> "Metadata":
        return cls(
            media_id=m.media_id,
            upload_id=m.upload_id,
            case_id=m.case_id,
            country=m.country,
            agency=m.agency,
            captured_at=from_seconds(m.captured_at),
            uploaded_at=from_seconds(m.uploaded_at),
            series_label=m.series_label,
            victim_identified=m.victim_identified,
            tags=list(m.tags),
        )

    @classmethod
    def coerce(cls, m) -> "Metadata":
        """A Metadata from itself, a dict of its fields, or None."""
        if m is None:
            return cls()
        if isinstance(m, cls):
            return m
        return cls(**m)


@dataclass
class Filter:
    """Conditions on metadata; all set conditions must hold (see the proto)."""

    countries_any: list[str] = field(default_factory=list)
    countries_none: list[str] = field(default_factory=list)
    agencies_any: list[str] = field(default_factory=list)
    case_ids_any: list[str] = field(default_factory=list)
    case_ids_none: list[str] = field(default_factory=list)
    upload_ids_any: list[str] = field(default_factory=list)
    upload_ids_none: list[str] = field(default_factory=list)
    media_ids_none: list[str] = field(default_factory=list)
    victim_identified: Optional[bool] = None
    captured_after: Optional[datetime] = None
    captured_before: Optional[datetime] = None
    uploaded_after: Optional[datetime] = None
    uploaded_before: Optional[datetime] = None
    tags_all: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)

    def to_pb(self) -> pb.Filter:
        f = pb.Filter()
        for name in (
            "countries_any", "countries_none", "agencies_any", "case_ids_any",
            "case_ids_none", "upload_ids_any", "upload_ids_none", "media_ids_none",
            "tags_all", "tags_any",
        ):
            getattr(f, name).extend(getattr(self, name))
        if self.victim_identified is not None:
            f.victim_identified = self.victim_identified
        for name in ("captured_after", "captured_before", "uploaded_after", "uploaded_before"):
            t = getattr(self, name)
            if t is not None:
                setattr(f, name, to_seconds(t))
        return f


@dataclass
class CollectionInfo:
    name: str
    dim: int
    metric: str
    kind: str
    points: int
    segments: int
    memory_bytes: int
    disk_bytes: int
    # "ready", "opening" (replaying its log: retry shortly), "read-only"
    # (after a failed fsync, until a restart), "failed" or "unavailable".
    state: str = "ready"
    # Why it is not ready, naming the file.
    error: str = ""

    @classmethod
    def from_pb(cls, c: pb.CollectionInfo) -> "CollectionInfo":
        return cls(
            name=c.name,
            dim=c.dim,
            metric=pb.Metric.Name(c.metric).lower(),
            kind=pb.Kind.Name(c.kind).lower(),
            points=c.points,
            segments=c.segments,
            memory_bytes=c.memory_bytes,
            disk_bytes=c.disk_bytes,
            state=c.state or "ready",
            error=c.error,
        )


@dataclass
class Hit:
    id: str
    distance: float
    metadata: Metadata
    matched_faces: int = 0


@dataclass
class Points:
    """Points read back: ids, an (n, dim) float32 matrix, metadata."""

    ids: list[str]
    vectors: np.ndarray
    metadata: list[Metadata]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Evidence:
    media_a: str
    media_b: str
    distance: float
    face_distance: Optional[float]
    collection: str
    kind: str
    shared_neighbours: int


@dataclass
class Series:
    series_id: str
    media_ids: list[str]
    countries: list[str]
    agencies: list[str]
    upload_ids: list[str]
    case_ids: list[str]
    captured_from: Optional[datetime]
    captured_until: Optional[datetime]
    uploaded_from: Optional[datetime]
    uploaded_until: Optional[datetime]
    victim_identified: bool
    cross_border: bool
    labels: list[str]
    media_with_faces: int
    evidence: list[Evidence]

    @classmethod
    def from_pb(cls, s: pb.Series) -> "Series":
        return cls(
            series_id=s.series_id,
            media_ids=list(s.media_ids),
            countries=list(s.countries),
            agencies=list(s.agencies),
            upload_ids=list(s.upload_ids),
            case_ids=list(s.case_ids),
            captured_from=from_seconds(s.captured_from),
            captured_until=from_seconds(s.captured_until),
            uploaded_from=from_seconds(s.uploaded_from),
            uploaded_until=from_seconds(s.uploaded_until),
            victim_identified=s.victim_identified,
            cross_border=s.cross_border,
            labels=list(s.labels),
            media_with_faces=s.media_with_faces,
            evidence=[
                Evidence(
                    media_a=e.media_a,
                    media_b=e.media_b,
                    distance=e.distance,
                    face_distance=e.face_distance if e.HasField("face_distance") else None,
                    collection=e.collection,
                    kind=pb.EvidenceKind.Name(e.kind).removeprefix("EVIDENCE_").lower(),
                    shared_neighbours=e.shared_neighbours,
                )
                for e in s.evidence
            ],
        )


@dataclass
class LinkSummary:
    media: int
    series: int
    linked_media: int
    cross_border_series: int
    image_edges: int
    face_edges: int
    refused_edges: int
    stages: dict[str, float]
    stored: bool

    @classmethod
    def from_pb(cls, s: pb.LinkSummary) -> "LinkSummary":
        return cls(
            media=s.media,
            series=s.series,
            linked_media=s.linked_media,
            cross_border_series=s.cross_border_series,
            image_edges=s.image_edges,
            face_edges=s.face_edges,
            refused_edges=s.refused_edges,
            stages={t.stage: t.seconds for t in s.stages},
            stored=s.stored,
        )


@dataclass
class MediaLink:
    media_id: str
    outcome: str  # "joined", "new_series", "unlinked"
    series_id: str


@dataclass
class LinkUploadResult:
    media: list[MediaLink]
    merges: dict[str, list[str]]
    series: list[Series]
    new_edges: int


@dataclass
class TriageResult:
    id: str
    verdict: str  # "known", "known_victim" (new material of a known victim) or "new"
    # "new_of_known_victim", "new_with_faces", "new_material",
    # "known_unidentified", "known_identified"; order by `rank`.
    priority: str
    series_id: str
    nearest_media_id: str
    nearest_distance: float
    victim_identified: bool
    matched_faces: int
    face_series_id: str
    series_label: str
    rank: int = 0  # place in the queue, 1 = most urgent
    # What decided it: "exact_hash", "perceptual_hash", "embedding", "face", or "" for new.
    evidence: str = ""
    category: str = ""
    reason: str = ""

    @classmethod
    def from_pb(cls, r: pb.TriageResult) -> "TriageResult":
        return cls(
            id=r.id,
            verdict=pb.Verdict.Name(r.verdict).lower(),
            priority=pb.Priority.Name(r.priority).lower(),
            series_id=r.series_id,
            nearest_media_id=r.nearest_media_id,
            nearest_distance=r.nearest_distance,
            victim_identified=r.victim_identified,
            matched_faces=r.matched_faces,
            face_series_id=r.face_series_id,
            series_label=r.series_label,
            rank=r.rank,
            evidence=_evidence(r.evidence),
            category=r.category,
            reason=r.reason,
        )


def _evidence(e: int) -> str:
    name = pb.TriageResult.Evidence.Name(e).lower()
    return "" if name == "evidence_unspecified" else name


@dataclass
class TriageSummary:
    items: int
    known: int
    new: int
    new_with_faces: int
    new_groups: list[list[str]]
    stored: int
    known_victim: int = 0  # new material of a known victim (in neither known nor new)
    by_exact_hash: int = 0
    by_perceptual_hash: int = 0
    by_embedding: int = 0
    by_face: int = 0

    @classmethod
    def from_pb(cls, s: pb.TriageSummary) -> "TriageSummary":
        return cls(
            items=s.items,
            known=s.known,
            new=s.new,
            new_with_faces=s.new_with_faces,
            new_groups=[list(g.ids) for g in s.new_groups],
            stored=s.stored,
            known_victim=s.known_victim,
            by_exact_hash=s.by_exact_hash,
            by_perceptual_hash=s.by_perceptual_hash,
            by_embedding=s.by_embedding,
            by_face=s.by_face,
        )


def asdict(x) -> dict:
    """A dataclass as a dict (numpy arrays kept as they are)."""
    return dataclasses.asdict(x)
