from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Metric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_UNSPECIFIED: _ClassVar[Metric]
    COSINE: _ClassVar[Metric]
    DOT: _ClassVar[Metric]
    L2: _ClassVar[Metric]

class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KIND_UNSPECIFIED: _ClassVar[Kind]
    IMAGE: _ClassVar[Kind]
    FACE: _ClassVar[Kind]

class Quantization(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUANTIZATION_UNSPECIFIED: _ClassVar[Quantization]
    QUANTIZATION_NONE: _ClassVar[Quantization]
    SQ8: _ClassVar[Quantization]
    SQ4: _ClassVar[Quantization]

class EvidenceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVIDENCE_KIND_UNSPECIFIED: _ClassVar[EvidenceKind]
    EVIDENCE_IMAGE: _ClassVar[EvidenceKind]
    EVIDENCE_NEAR_DUPLICATE: _ClassVar[EvidenceKind]
    EVIDENCE_IMAGE_AND_FACE: _ClassVar[EvidenceKind]

class LinkOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINK_OUTCOME_UNSPECIFIED: _ClassVar[LinkOutcome]
    JOINED: _ClassVar[LinkOutcome]
    NEW_SERIES: _ClassVar[LinkOutcome]
    UNLINKED: _ClassVar[LinkOutcome]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    KNOWN: _ClassVar[Verdict]
    NEW: _ClassVar[Verdict]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    NEW_WITH_FACES: _ClassVar[Priority]
    NEW_MATERIAL: _ClassVar[Priority]
    KNOWN_UNIDENTIFIED: _ClassVar[Priority]
    KNOWN_IDENTIFIED: _ClassVar[Priority]
METRIC_UNSPECIFIED: Metric
COSINE: Metric
DOT: Metric
L2: Metric
KIND_UNSPECIFIED: Kind
IMAGE: Kind
FACE: Kind
QUANTIZATION_UNSPECIFIED: Quantization
QUANTIZATION_NONE: Quantization
SQ8: Quantization
SQ4: Quantization
EVIDENCE_KIND_UNSPECIFIED: EvidenceKind
EVIDENCE_IMAGE: EvidenceKind
EVIDENCE_NEAR_DUPLICATE: EvidenceKind
EVIDENCE_IMAGE_AND_FACE: EvidenceKind
LINK_OUTCOME_UNSPECIFIED: LinkOutcome
JOINED: LinkOutcome
NEW_SERIES: LinkOutcome
UNLINKED: LinkOutcome
VERDICT_UNSPECIFIED: Verdict
KNOWN: Verdict
NEW: Verdict
PRIORITY_UNSPECIFIED: Priority
NEW_WITH_FACES: Priority
NEW_MATERIAL: Priority
KNOWN_UNIDENTIFIED: Priority
KNOWN_IDENTIFIED: Priority

class HnswConfig(_message.Message):
    __slots__ = ("m", "ef_construction")
    M_FIELD_NUMBER: _ClassVar[int]
    EF_CONSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    m: int
    ef_construction: int
    def __init__(self, m: _Optional[int] = ..., ef_construction: _Optional[int] = ...) -> None: ...

class CreateCollectionRequest(_message.Message):
    __slots__ = ("name", "dim", "metric", "kind", "hnsw", "quantization")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    HNSW_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    dim: int
    metric: Metric
    kind: Kind
    hnsw: HnswConfig
    quantization: Quantization
    def __init__(self, name: _Optional[str] = ..., dim: _Optional[int] = ..., metric: _Optional[_Union[Metric, str]] = ..., kind: _Optional[_Union[Kind, str]] = ..., hnsw: _Optional[_Union[HnswConfig, _Mapping]] = ..., quantization: _Optional[_Union[Quantization, str]] = ...) -> None: ...

class CollectionInfo(_message.Message):
    __slots__ = ("name", "dim", "metric", "kind", "points", "segments", "memory_bytes", "disk_bytes", "hnsw", "quantization")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    DISK_BYTES_FIELD_NUMBER: _ClassVar[int]
    HNSW_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    dim: int
    metric: Metric
    kind: Kind
    points: int
    segments: int
    memory_bytes: int
    disk_bytes: int
    hnsw: HnswConfig
    quantization: Quantization
    def __init__(self, name: _Optional[str] = ..., dim: _Optional[int] = ..., metric: _Optional[_Union[Metric, str]] = ..., kind: _Optional[_Union[Kind, str]] = ..., points: _Optional[int] = ..., segments: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., disk_bytes: _Optional[int] = ..., hnsw: _Optional[_Union[HnswConfig, _Mapping]] = ..., quantization: _Optional[_Union[Quantization, str]] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[CollectionInfo]
    def __init__(self, collections: _Optional[_Iterable[_Union[CollectionInfo, _Mapping]]] = ...) -> None: ...

class DescribeCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DropCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DropCollectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Metadata(_message.Message):
    __slots__ = ("media_id", "upload_id", "case_id", "country", "agency", "captured_at", "uploaded_at", "series_label", "victim_identified", "tags")
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_AT_FIELD_NUMBER: _ClassVar[int]
    SERIES_LABEL_FIELD_NUMBER: _ClassVar[int]
    VICTIM_IDENTIFIED_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    media_id: str
    upload_id: str
    case_id: str
    country: str
    agency: str
    captured_at: int
    uploaded_at: int
    series_label: str
    victim_identified: bool
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, media_id: _Optional[str] = ..., upload_id: _Optional[str] = ..., case_id: _Optional[str] = ..., country: _Optional[str] = ..., agency: _Optional[str] = ..., captured_at: _Optional[int] = ..., uploaded_at: _Optional[int] = ..., series_label: _Optional[str] = ..., victim_identified: _Optional[bool] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("id", "vector", "metadata")
    ID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    metadata: Metadata
    def __init__(self, id: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ...) -> None: ...

class UpsertRequest(_message.Message):
    __slots__ = ("collection", "points")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    points: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, collection: _Optional[str] = ..., points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class UpsertResponse(_message.Message):
    __slots__ = ("upserted",)
    UPSERTED_FIELD_NUMBER: _ClassVar[int]
    upserted: int
    def __init__(self, upserted: _Optional[int] = ...) -> None: ...

class Vector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class Query(_message.Message):
    __slots__ = ("vector", "point_id")
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    POINT_ID_FIELD_NUMBER: _ClassVar[int]
    vector: Vector
    point_id: str
    def __init__(self, vector: _Optional[_Union[Vector, _Mapping]] = ..., point_id: _Optional[str] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("collection", "queries", "k", "ef", "filter", "exclude_same_upload", "exclude_same_case", "group_by_media")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    EF_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SAME_UPLOAD_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SAME_CASE_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_MEDIA_FIELD_NUMBER: _ClassVar[int]
    collection: str
    queries: _containers.RepeatedCompositeFieldContainer[Query]
    k: int
    ef: int
    filter: Filter
    exclude_same_upload: bool
    exclude_same_case: bool
    group_by_media: bool
    def __init__(self, collection: _Optional[str] = ..., queries: _Optional[_Iterable[_Union[Query, _Mapping]]] = ..., k: _Optional[int] = ..., ef: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., exclude_same_upload: _Optional[bool] = ..., exclude_same_case: _Optional[bool] = ..., group_by_media: _Optional[bool] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("countries_any", "countries_none", "agencies_any", "case_ids_any", "upload_ids_none", "media_ids_none", "victim_identified", "captured_after", "captured_before", "uploaded_after", "uploaded_before", "tags_all", "tags_any", "case_ids_none", "upload_ids_any")
    COUNTRIES_ANY_FIELD_NUMBER: _ClassVar[int]
    COUNTRIES_NONE_FIELD_NUMBER: _ClassVar[int]
    AGENCIES_ANY_FIELD_NUMBER: _ClassVar[int]
    CASE_IDS_ANY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_IDS_NONE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_IDS_NONE_FIELD_NUMBER: _ClassVar[int]
    VICTIM_IDENTIFIED_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_AFTER_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    TAGS_ALL_FIELD_NUMBER: _ClassVar[int]
    TAGS_ANY_FIELD_NUMBER: _ClassVar[int]
    CASE_IDS_NONE_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_IDS_ANY_FIELD_NUMBER: _ClassVar[int]
    countries_any: _containers.RepeatedScalarFieldContainer[str]
    countries_none: _containers.RepeatedScalarFieldContainer[str]
    agencies_any: _containers.RepeatedScalarFieldContainer[str]
    case_ids_any: _containers.RepeatedScalarFieldContainer[str]
    upload_ids_none: _containers.RepeatedScalarFieldContainer[str]
    media_ids_none: _containers.RepeatedScalarFieldContainer[str]
    victim_identified: bool
    captured_after: int
    captured_before: int
    uploaded_after: int
    uploaded_before: int
    tags_all: _containers.RepeatedScalarFieldContainer[str]
    tags_any: _containers.RepeatedScalarFieldContainer[str]
    case_ids_none: _containers.RepeatedScalarFieldContainer[str]
    upload_ids_any: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, countries_any: _Optional[_Iterable[str]] = ..., countries_none: _Optional[_Iterable[str]] = ..., agencies_any: _Optional[_Iterable[str]] = ..., case_ids_any: _Optional[_Iterable[str]] = ..., upload_ids_none: _Optional[_Iterable[str]] = ..., media_ids_none: _Optional[_Iterable[str]] = ..., victim_identified: _Optional[bool] = ..., captured_after: _Optional[int] = ..., captured_before: _Optional[int] = ..., uploaded_after: _Optional[int] = ..., uploaded_before: _Optional[int] = ..., tags_all: _Optional[_Iterable[str]] = ..., tags_any: _Optional[_Iterable[str]] = ..., case_ids_none: _Optional[_Iterable[str]] = ..., upload_ids_any: _Optional[_Iterable[str]] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("id", "distance", "metadata", "matched_faces")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FACES_FIELD_NUMBER: _ClassVar[int]
    id: str
    distance: float
    metadata: Metadata
    matched_faces: int
    def __init__(self, id: _Optional[str] = ..., distance: _Optional[float] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ..., matched_faces: _Optional[int] = ...) -> None: ...

class QueryResult(_message.Message):
    __slots__ = ("hits",)
    HITS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[QueryResult]
    def __init__(self, results: _Optional[_Iterable[_Union[QueryResult, _Mapping]]] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("collection", "ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, points: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("collection", "ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class FlushRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class FlushResponse(_message.Message):
    __slots__ = ("segments", "sealed_points")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    SEALED_POINTS_FIELD_NUMBER: _ClassVar[int]
    segments: int
    sealed_points: int
    def __init__(self, segments: _Optional[int] = ..., sealed_points: _Optional[int] = ...) -> None: ...

class LinkParams(_message.Message):
    __slots__ = ("image_threshold", "face_threshold", "near_duplicate_threshold", "k", "ef", "min_shared_neighbours", "single_linkage")
    IMAGE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FACE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    NEAR_DUPLICATE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    EF_FIELD_NUMBER: _ClassVar[int]
    MIN_SHARED_NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    SINGLE_LINKAGE_FIELD_NUMBER: _ClassVar[int]
    image_threshold: float
    face_threshold: float
    near_duplicate_threshold: float
    k: int
    ef: int
    min_shared_neighbours: int
    single_linkage: bool
    def __init__(self, image_threshold: _Optional[float] = ..., face_threshold: _Optional[float] = ..., near_duplicate_threshold: _Optional[float] = ..., k: _Optional[int] = ..., ef: _Optional[int] = ..., min_shared_neighbours: _Optional[int] = ..., single_linkage: _Optional[bool] = ...) -> None: ...

class LinkScope(_message.Message):
    __slots__ = ("upload_ids", "case_ids")
    UPLOAD_IDS_FIELD_NUMBER: _ClassVar[int]
    CASE_IDS_FIELD_NUMBER: _ClassVar[int]
    upload_ids: _containers.RepeatedScalarFieldContainer[str]
    case_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, upload_ids: _Optional[_Iterable[str]] = ..., case_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class LinkSeriesRequest(_message.Message):
    __slots__ = ("image_collection", "face_collection", "params", "scope")
    IMAGE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FACE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    image_collection: str
    face_collection: str
    params: LinkParams
    scope: LinkScope
    def __init__(self, image_collection: _Optional[str] = ..., face_collection: _Optional[str] = ..., params: _Optional[_Union[LinkParams, _Mapping]] = ..., scope: _Optional[_Union[LinkScope, _Mapping]] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("media_a", "media_b", "distance", "face_distance", "collection", "kind", "shared_neighbours")
    MEDIA_A_FIELD_NUMBER: _ClassVar[int]
    MEDIA_B_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    FACE_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SHARED_NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    media_a: str
    media_b: str
    distance: float
    face_distance: float
    collection: str
    kind: EvidenceKind
    shared_neighbours: int
    def __init__(self, media_a: _Optional[str] = ..., media_b: _Optional[str] = ..., distance: _Optional[float] = ..., face_distance: _Optional[float] = ..., collection: _Optional[str] = ..., kind: _Optional[_Union[EvidenceKind, str]] = ..., shared_neighbours: _Optional[int] = ...) -> None: ...

class Series(_message.Message):
    __slots__ = ("series_id", "media_ids", "countries", "agencies", "upload_ids", "case_ids", "captured_from", "captured_until", "uploaded_from", "uploaded_until", "victim_identified", "cross_border", "evidence", "labels", "media_with_faces")
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_IDS_FIELD_NUMBER: _ClassVar[int]
    COUNTRIES_FIELD_NUMBER: _ClassVar[int]
    AGENCIES_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_IDS_FIELD_NUMBER: _ClassVar[int]
    CASE_IDS_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_FROM_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_FROM_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    VICTIM_IDENTIFIED_FIELD_NUMBER: _ClassVar[int]
    CROSS_BORDER_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_WITH_FACES_FIELD_NUMBER: _ClassVar[int]
    series_id: str
    media_ids: _containers.RepeatedScalarFieldContainer[str]
    countries: _containers.RepeatedScalarFieldContainer[str]
    agencies: _containers.RepeatedScalarFieldContainer[str]
    upload_ids: _containers.RepeatedScalarFieldContainer[str]
    case_ids: _containers.RepeatedScalarFieldContainer[str]
    captured_from: int
    captured_until: int
    uploaded_from: int
    uploaded_until: int
    victim_identified: bool
    cross_border: bool
    evidence: _containers.RepeatedCompositeFieldContainer[Evidence]
    labels: _containers.RepeatedScalarFieldContainer[str]
    media_with_faces: int
    def __init__(self, series_id: _Optional[str] = ..., media_ids: _Optional[_Iterable[str]] = ..., countries: _Optional[_Iterable[str]] = ..., agencies: _Optional[_Iterable[str]] = ..., upload_ids: _Optional[_Iterable[str]] = ..., case_ids: _Optional[_Iterable[str]] = ..., captured_from: _Optional[int] = ..., captured_until: _Optional[int] = ..., uploaded_from: _Optional[int] = ..., uploaded_until: _Optional[int] = ..., victim_identified: _Optional[bool] = ..., cross_border: _Optional[bool] = ..., evidence: _Optional[_Iterable[_Union[Evidence, _Mapping]]] = ..., labels: _Optional[_Iterable[str]] = ..., media_with_faces: _Optional[int] = ...) -> None: ...

class LinkProgress(_message.Message):
    __slots__ = ("stage", "done", "total")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    stage: str
    done: int
    total: int
    def __init__(self, stage: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class LinkSummary(_message.Message):
    __slots__ = ("media", "series", "linked_media", "cross_border_series", "image_edges", "face_edges", "refused_edges", "stages", "stored", "params")
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    LINKED_MEDIA_FIELD_NUMBER: _ClassVar[int]
    CROSS_BORDER_SERIES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_EDGES_FIELD_NUMBER: _ClassVar[int]
    FACE_EDGES_FIELD_NUMBER: _ClassVar[int]
    REFUSED_EDGES_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    media: int
    series: int
    linked_media: int
    cross_border_series: int
    image_edges: int
    face_edges: int
    refused_edges: int
    stages: _containers.RepeatedCompositeFieldContainer[StageTime]
    stored: bool
    params: LinkParams
    def __init__(self, media: _Optional[int] = ..., series: _Optional[int] = ..., linked_media: _Optional[int] = ..., cross_border_series: _Optional[int] = ..., image_edges: _Optional[int] = ..., face_edges: _Optional[int] = ..., refused_edges: _Optional[int] = ..., stages: _Optional[_Iterable[_Union[StageTime, _Mapping]]] = ..., stored: _Optional[bool] = ..., params: _Optional[_Union[LinkParams, _Mapping]] = ...) -> None: ...

class StageTime(_message.Message):
    __slots__ = ("stage", "seconds")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    seconds: float
    def __init__(self, stage: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class LinkEvent(_message.Message):
    __slots__ = ("progress", "series", "summary")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    progress: LinkProgress
    series: Series
    summary: LinkSummary
    def __init__(self, progress: _Optional[_Union[LinkProgress, _Mapping]] = ..., series: _Optional[_Union[Series, _Mapping]] = ..., summary: _Optional[_Union[LinkSummary, _Mapping]] = ...) -> None: ...

class LinkUploadRequest(_message.Message):
    __slots__ = ("image_collection", "face_collection", "upload_id")
    IMAGE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FACE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    image_collection: str
    face_collection: str
    upload_id: str
    def __init__(self, image_collection: _Optional[str] = ..., face_collection: _Optional[str] = ..., upload_id: _Optional[str] = ...) -> None: ...

class MediaLink(_message.Message):
    __slots__ = ("media_id", "outcome", "series_id")
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    media_id: str
    outcome: LinkOutcome
    series_id: str
    def __init__(self, media_id: _Optional[str] = ..., outcome: _Optional[_Union[LinkOutcome, str]] = ..., series_id: _Optional[str] = ...) -> None: ...

class SeriesMerge(_message.Message):
    __slots__ = ("series_id", "merged")
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    MERGED_FIELD_NUMBER: _ClassVar[int]
    series_id: str
    merged: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, series_id: _Optional[str] = ..., merged: _Optional[_Iterable[str]] = ...) -> None: ...

class LinkUploadResponse(_message.Message):
    __slots__ = ("media", "merges", "series", "new_edges")
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    MERGES_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    NEW_EDGES_FIELD_NUMBER: _ClassVar[int]
    media: _containers.RepeatedCompositeFieldContainer[MediaLink]
    merges: _containers.RepeatedCompositeFieldContainer[SeriesMerge]
    series: _containers.RepeatedCompositeFieldContainer[Series]
    new_edges: int
    def __init__(self, media: _Optional[_Iterable[_Union[MediaLink, _Mapping]]] = ..., merges: _Optional[_Iterable[_Union[SeriesMerge, _Mapping]]] = ..., series: _Optional[_Iterable[_Union[Series, _Mapping]]] = ..., new_edges: _Optional[int] = ...) -> None: ...

class TriageItem(_message.Message):
    __slots__ = ("id", "vector", "faces", "metadata")
    ID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    faces: _containers.RepeatedCompositeFieldContainer[Vector]
    metadata: Metadata
    def __init__(self, id: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ..., faces: _Optional[_Iterable[_Union[Vector, _Mapping]]] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ...) -> None: ...

class TriageRequest(_message.Message):
    __slots__ = ("image_collection", "face_collection", "items", "store", "image_threshold", "face_threshold")
    IMAGE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FACE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FACE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    image_collection: str
    face_collection: str
    items: _containers.RepeatedCompositeFieldContainer[TriageItem]
    store: bool
    image_threshold: float
    face_threshold: float
    def __init__(self, image_collection: _Optional[str] = ..., face_collection: _Optional[str] = ..., items: _Optional[_Iterable[_Union[TriageItem, _Mapping]]] = ..., store: _Optional[bool] = ..., image_threshold: _Optional[float] = ..., face_threshold: _Optional[float] = ...) -> None: ...

class TriageResult(_message.Message):
    __slots__ = ("id", "verdict", "priority", "series_id", "nearest_media_id", "nearest_distance", "victim_identified", "matched_faces", "face_series_id", "series_label")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    NEAREST_MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    NEAREST_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    VICTIM_IDENTIFIED_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FACES_FIELD_NUMBER: _ClassVar[int]
    FACE_SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    SERIES_LABEL_FIELD_NUMBER: _ClassVar[int]
    id: str
    verdict: Verdict
    priority: Priority
    series_id: str
    nearest_media_id: str
    nearest_distance: float
    victim_identified: bool
    matched_faces: int
    face_series_id: str
    series_label: str
    def __init__(self, id: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., series_id: _Optional[str] = ..., nearest_media_id: _Optional[str] = ..., nearest_distance: _Optional[float] = ..., victim_identified: _Optional[bool] = ..., matched_faces: _Optional[int] = ..., face_series_id: _Optional[str] = ..., series_label: _Optional[str] = ...) -> None: ...

class TriageGroup(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class TriageSummary(_message.Message):
    __slots__ = ("items", "known", "new", "new_with_faces", "new_groups", "stored")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    NEW_FIELD_NUMBER: _ClassVar[int]
    NEW_WITH_FACES_FIELD_NUMBER: _ClassVar[int]
    NEW_GROUPS_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    items: int
    known: int
    new: int
    new_with_faces: int
    new_groups: _containers.RepeatedCompositeFieldContainer[TriageGroup]
    stored: int
    def __init__(self, items: _Optional[int] = ..., known: _Optional[int] = ..., new: _Optional[int] = ..., new_with_faces: _Optional[int] = ..., new_groups: _Optional[_Iterable[_Union[TriageGroup, _Mapping]]] = ..., stored: _Optional[int] = ...) -> None: ...

class TriageResponse(_message.Message):
    __slots__ = ("results", "summary")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TriageResult]
    summary: TriageSummary
    def __init__(self, results: _Optional[_Iterable[_Union[TriageResult, _Mapping]]] = ..., summary: _Optional[_Union[TriageSummary, _Mapping]] = ...) -> None: ...

class CreateSnapshotRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class SnapshotChunk(_message.Message):
    __slots__ = ("path", "offset", "data", "file_bytes")
    PATH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    path: str
    offset: int
    data: bytes
    file_bytes: int
    def __init__(self, path: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., file_bytes: _Optional[int] = ...) -> None: ...
