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
    HAMMING: _ClassVar[Metric]

class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KIND_UNSPECIFIED: _ClassVar[Kind]
    IMAGE: _ClassVar[Kind]
    FACE: _ClassVar[Kind]
    PERCEPTUAL_HASH: _ClassVar[Kind]

class Quantization(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUANTIZATION_UNSPECIFIED: _ClassVar[Quantization]
    QUANTIZATION_NONE: _ClassVar[Quantization]
    SQ8: _ClassVar[Quantization]
    SQ4: _ClassVar[Quantization]

class VectorStorage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VECTOR_STORAGE_F32: _ClassVar[VectorStorage]
    VECTOR_STORAGE_F16: _ClassVar[VectorStorage]

class Calibration(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALIBRATION_AUTO: _ClassVar[Calibration]
    CALIBRATION_OFF: _ClassVar[Calibration]

class EvidenceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVIDENCE_KIND_UNSPECIFIED: _ClassVar[EvidenceKind]
    EVIDENCE_IMAGE: _ClassVar[EvidenceKind]
    EVIDENCE_NEAR_DUPLICATE: _ClassVar[EvidenceKind]
    EVIDENCE_IMAGE_AND_FACE: _ClassVar[EvidenceKind]
    EVIDENCE_DECISION: _ClassVar[EvidenceKind]
    EVIDENCE_FACE: _ClassVar[EvidenceKind]

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
    KNOWN_VICTIM: _ClassVar[Verdict]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    NEW_WITH_FACES: _ClassVar[Priority]
    NEW_MATERIAL: _ClassVar[Priority]
    KNOWN_UNIDENTIFIED: _ClassVar[Priority]
    KNOWN_IDENTIFIED: _ClassVar[Priority]
    NEW_OF_KNOWN_VICTIM: _ClassVar[Priority]

class DecisionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_KIND_UNSPECIFIED: _ClassVar[DecisionKind]
    CONFIRM_LINK: _ClassVar[DecisionKind]
    REJECT_LINK: _ClassVar[DecisionKind]
    MERGE: _ClassVar[DecisionKind]
    SPLIT: _ClassVar[DecisionKind]
    LABEL: _ClassVar[DecisionKind]
    MARK_IDENTIFIED: _ClassVar[DecisionKind]
METRIC_UNSPECIFIED: Metric
COSINE: Metric
DOT: Metric
L2: Metric
HAMMING: Metric
KIND_UNSPECIFIED: Kind
IMAGE: Kind
FACE: Kind
PERCEPTUAL_HASH: Kind
QUANTIZATION_UNSPECIFIED: Quantization
QUANTIZATION_NONE: Quantization
SQ8: Quantization
SQ4: Quantization
VECTOR_STORAGE_F32: VectorStorage
VECTOR_STORAGE_F16: VectorStorage
CALIBRATION_AUTO: Calibration
CALIBRATION_OFF: Calibration
EVIDENCE_KIND_UNSPECIFIED: EvidenceKind
EVIDENCE_IMAGE: EvidenceKind
EVIDENCE_NEAR_DUPLICATE: EvidenceKind
EVIDENCE_IMAGE_AND_FACE: EvidenceKind
EVIDENCE_DECISION: EvidenceKind
EVIDENCE_FACE: EvidenceKind
LINK_OUTCOME_UNSPECIFIED: LinkOutcome
JOINED: LinkOutcome
NEW_SERIES: LinkOutcome
UNLINKED: LinkOutcome
VERDICT_UNSPECIFIED: Verdict
KNOWN: Verdict
NEW: Verdict
KNOWN_VICTIM: Verdict
PRIORITY_UNSPECIFIED: Priority
NEW_WITH_FACES: Priority
NEW_MATERIAL: Priority
KNOWN_UNIDENTIFIED: Priority
KNOWN_IDENTIFIED: Priority
NEW_OF_KNOWN_VICTIM: Priority
DECISION_KIND_UNSPECIFIED: DecisionKind
CONFIRM_LINK: DecisionKind
REJECT_LINK: DecisionKind
MERGE: DecisionKind
SPLIT: DecisionKind
LABEL: DecisionKind
MARK_IDENTIFIED: DecisionKind

class HnswConfig(_message.Message):
    __slots__ = ("m", "ef_construction")
    M_FIELD_NUMBER: _ClassVar[int]
    EF_CONSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    m: int
    ef_construction: int
    def __init__(self, m: _Optional[int] = ..., ef_construction: _Optional[int] = ...) -> None: ...

class CreateCollectionRequest(_message.Message):
    __slots__ = ("name", "dim", "metric", "kind", "hnsw", "quantization", "vector_storage")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    HNSW_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    VECTOR_STORAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    dim: int
    metric: Metric
    kind: Kind
    hnsw: HnswConfig
    quantization: Quantization
    vector_storage: VectorStorage
    def __init__(self, name: _Optional[str] = ..., dim: _Optional[int] = ..., metric: _Optional[_Union[Metric, str]] = ..., kind: _Optional[_Union[Kind, str]] = ..., hnsw: _Optional[_Union[HnswConfig, _Mapping]] = ..., quantization: _Optional[_Union[Quantization, str]] = ..., vector_storage: _Optional[_Union[VectorStorage, str]] = ...) -> None: ...

class CollectionInfo(_message.Message):
    __slots__ = ("name", "dim", "metric", "kind", "points", "segments", "memory_bytes", "disk_bytes", "hnsw", "quantization", "state", "error", "vector_storage")
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
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    VECTOR_STORAGE_FIELD_NUMBER: _ClassVar[int]
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
    state: str
    error: str
    vector_storage: VectorStorage
    def __init__(self, name: _Optional[str] = ..., dim: _Optional[int] = ..., metric: _Optional[_Union[Metric, str]] = ..., kind: _Optional[_Union[Kind, str]] = ..., points: _Optional[int] = ..., segments: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., disk_bytes: _Optional[int] = ..., hnsw: _Optional[_Union[HnswConfig, _Mapping]] = ..., quantization: _Optional[_Union[Quantization, str]] = ..., state: _Optional[str] = ..., error: _Optional[str] = ..., vector_storage: _Optional[_Union[VectorStorage, str]] = ...) -> None: ...

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
    __slots__ = ("id", "vector", "metadata", "bits", "quality")
    ID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    id: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    metadata: Metadata
    bits: bytes
    quality: int
    def __init__(self, id: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ..., bits: _Optional[bytes] = ..., quality: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("vector", "point_id", "bits")
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    POINT_ID_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    vector: Vector
    point_id: str
    bits: bytes
    def __init__(self, vector: _Optional[_Union[Vector, _Mapping]] = ..., point_id: _Optional[str] = ..., bits: _Optional[bytes] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("collection", "queries", "k", "ef", "filter", "exclude_same_upload", "exclude_same_case", "group_by_media", "max_distance", "min_quality")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    EF_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SAME_UPLOAD_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SAME_CASE_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_MEDIA_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    MIN_QUALITY_FIELD_NUMBER: _ClassVar[int]
    collection: str
    queries: _containers.RepeatedCompositeFieldContainer[Query]
    k: int
    ef: int
    filter: Filter
    exclude_same_upload: bool
    exclude_same_case: bool
    group_by_media: bool
    max_distance: float
    min_quality: int
    def __init__(self, collection: _Optional[str] = ..., queries: _Optional[_Iterable[_Union[Query, _Mapping]]] = ..., k: _Optional[int] = ..., ef: _Optional[int] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., exclude_same_upload: _Optional[bool] = ..., exclude_same_case: _Optional[bool] = ..., group_by_media: _Optional[bool] = ..., max_distance: _Optional[float] = ..., min_quality: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("id", "distance", "metadata", "matched_faces", "quality")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FACES_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    id: str
    distance: float
    metadata: Metadata
    matched_faces: int
    quality: int
    def __init__(self, id: _Optional[str] = ..., distance: _Optional[float] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ..., matched_faces: _Optional[int] = ..., quality: _Optional[int] = ...) -> None: ...

class QueryResult(_message.Message):
    __slots__ = ("hits", "restricted_matches_held_by")
    HITS_FIELD_NUMBER: _ClassVar[int]
    RESTRICTED_MATCHES_HELD_BY_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    restricted_matches_held_by: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ..., restricted_matches_held_by: _Optional[_Iterable[str]] = ...) -> None: ...

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
    __slots__ = ("image_threshold", "face_threshold", "near_duplicate_threshold", "k", "ef", "min_shared_neighbours", "single_linkage", "calibration", "core_image_threshold")
    IMAGE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FACE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    NEAR_DUPLICATE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    EF_FIELD_NUMBER: _ClassVar[int]
    MIN_SHARED_NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    SINGLE_LINKAGE_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_FIELD_NUMBER: _ClassVar[int]
    CORE_IMAGE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    image_threshold: float
    face_threshold: float
    near_duplicate_threshold: float
    k: int
    ef: int
    min_shared_neighbours: int
    single_linkage: bool
    calibration: Calibration
    core_image_threshold: float
    def __init__(self, image_threshold: _Optional[float] = ..., face_threshold: _Optional[float] = ..., near_duplicate_threshold: _Optional[float] = ..., k: _Optional[int] = ..., ef: _Optional[int] = ..., min_shared_neighbours: _Optional[int] = ..., single_linkage: _Optional[bool] = ..., calibration: _Optional[_Union[Calibration, str]] = ..., core_image_threshold: _Optional[float] = ...) -> None: ...

class LinkScope(_message.Message):
    __slots__ = ("upload_ids", "case_ids", "with_restricted")
    UPLOAD_IDS_FIELD_NUMBER: _ClassVar[int]
    CASE_IDS_FIELD_NUMBER: _ClassVar[int]
    WITH_RESTRICTED_FIELD_NUMBER: _ClassVar[int]
    upload_ids: _containers.RepeatedScalarFieldContainer[str]
    case_ids: _containers.RepeatedScalarFieldContainer[str]
    with_restricted: bool
    def __init__(self, upload_ids: _Optional[_Iterable[str]] = ..., case_ids: _Optional[_Iterable[str]] = ..., with_restricted: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("media_a", "media_b", "distance", "face_distance", "collection", "kind", "shared_neighbours", "decision_id")
    MEDIA_A_FIELD_NUMBER: _ClassVar[int]
    MEDIA_B_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    FACE_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SHARED_NEIGHBOURS_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    media_a: str
    media_b: str
    distance: float
    face_distance: float
    collection: str
    kind: EvidenceKind
    shared_neighbours: int
    decision_id: int
    def __init__(self, media_a: _Optional[str] = ..., media_b: _Optional[str] = ..., distance: _Optional[float] = ..., face_distance: _Optional[float] = ..., collection: _Optional[str] = ..., kind: _Optional[_Union[EvidenceKind, str]] = ..., shared_neighbours: _Optional[int] = ..., decision_id: _Optional[int] = ...) -> None: ...

class Series(_message.Message):
    __slots__ = ("series_id", "media_ids", "countries", "agencies", "upload_ids", "case_ids", "captured_from", "captured_until", "uploaded_from", "uploaded_until", "victim_identified", "cross_border", "evidence", "labels", "media_with_faces", "label", "identified_references", "updated_at", "face_joined", "victim_faces")
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
    LABEL_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIED_REFERENCES_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    FACE_JOINED_FIELD_NUMBER: _ClassVar[int]
    VICTIM_FACES_FIELD_NUMBER: _ClassVar[int]
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
    label: str
    identified_references: _containers.RepeatedScalarFieldContainer[str]
    updated_at: int
    face_joined: bool
    victim_faces: int
    def __init__(self, series_id: _Optional[str] = ..., media_ids: _Optional[_Iterable[str]] = ..., countries: _Optional[_Iterable[str]] = ..., agencies: _Optional[_Iterable[str]] = ..., upload_ids: _Optional[_Iterable[str]] = ..., case_ids: _Optional[_Iterable[str]] = ..., captured_from: _Optional[int] = ..., captured_until: _Optional[int] = ..., uploaded_from: _Optional[int] = ..., uploaded_until: _Optional[int] = ..., victim_identified: _Optional[bool] = ..., cross_border: _Optional[bool] = ..., evidence: _Optional[_Iterable[_Union[Evidence, _Mapping]]] = ..., labels: _Optional[_Iterable[str]] = ..., media_with_faces: _Optional[int] = ..., label: _Optional[str] = ..., identified_references: _Optional[_Iterable[str]] = ..., updated_at: _Optional[int] = ..., face_joined: _Optional[bool] = ..., victim_faces: _Optional[int] = ...) -> None: ...

class SamePerson(_message.Message):
    __slots__ = ("face_id", "series_ids", "media", "recurring")
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    SERIES_IDS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    RECURRING_FIELD_NUMBER: _ClassVar[int]
    face_id: str
    series_ids: _containers.RepeatedScalarFieldContainer[str]
    media: _containers.RepeatedScalarFieldContainer[int]
    recurring: bool
    def __init__(self, face_id: _Optional[str] = ..., series_ids: _Optional[_Iterable[str]] = ..., media: _Optional[_Iterable[int]] = ..., recurring: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("media", "series", "linked_media", "cross_border_series", "image_edges", "face_edges", "refused_edges", "stages", "stored", "params", "refused_by_decisions", "decisions", "face_joined_series", "face_joins", "corroborated_edges", "identities", "recurring_identities", "same_person", "threshold_source")
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
    REFUSED_BY_DECISIONS_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    FACE_JOINED_SERIES_FIELD_NUMBER: _ClassVar[int]
    FACE_JOINS_FIELD_NUMBER: _ClassVar[int]
    CORROBORATED_EDGES_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    RECURRING_IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    SAME_PERSON_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_SOURCE_FIELD_NUMBER: _ClassVar[int]
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
    refused_by_decisions: int
    decisions: int
    face_joined_series: int
    face_joins: int
    corroborated_edges: int
    identities: int
    recurring_identities: int
    same_person: int
    threshold_source: str
    def __init__(self, media: _Optional[int] = ..., series: _Optional[int] = ..., linked_media: _Optional[int] = ..., cross_border_series: _Optional[int] = ..., image_edges: _Optional[int] = ..., face_edges: _Optional[int] = ..., refused_edges: _Optional[int] = ..., stages: _Optional[_Iterable[_Union[StageTime, _Mapping]]] = ..., stored: _Optional[bool] = ..., params: _Optional[_Union[LinkParams, _Mapping]] = ..., refused_by_decisions: _Optional[int] = ..., decisions: _Optional[int] = ..., face_joined_series: _Optional[int] = ..., face_joins: _Optional[int] = ..., corroborated_edges: _Optional[int] = ..., identities: _Optional[int] = ..., recurring_identities: _Optional[int] = ..., same_person: _Optional[int] = ..., threshold_source: _Optional[str] = ...) -> None: ...

class StageTime(_message.Message):
    __slots__ = ("stage", "seconds")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    seconds: float
    def __init__(self, stage: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class LinkEvent(_message.Message):
    __slots__ = ("progress", "series", "summary", "same_person")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SAME_PERSON_FIELD_NUMBER: _ClassVar[int]
    progress: LinkProgress
    series: Series
    summary: LinkSummary
    same_person: SamePerson
    def __init__(self, progress: _Optional[_Union[LinkProgress, _Mapping]] = ..., series: _Optional[_Union[Series, _Mapping]] = ..., summary: _Optional[_Union[LinkSummary, _Mapping]] = ..., same_person: _Optional[_Union[SamePerson, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("media", "merges", "series", "new_edges", "relinked", "stored")
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    MERGES_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    NEW_EDGES_FIELD_NUMBER: _ClassVar[int]
    RELINKED_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    media: _containers.RepeatedCompositeFieldContainer[MediaLink]
    merges: _containers.RepeatedCompositeFieldContainer[SeriesMerge]
    series: _containers.RepeatedCompositeFieldContainer[Series]
    new_edges: int
    relinked: bool
    stored: bool
    def __init__(self, media: _Optional[_Iterable[_Union[MediaLink, _Mapping]]] = ..., merges: _Optional[_Iterable[_Union[SeriesMerge, _Mapping]]] = ..., series: _Optional[_Iterable[_Union[Series, _Mapping]]] = ..., new_edges: _Optional[int] = ..., relinked: _Optional[bool] = ..., stored: _Optional[bool] = ...) -> None: ...

class TriageItem(_message.Message):
    __slots__ = ("id", "vector", "faces", "metadata", "md5", "sha1", "sha256", "pdq", "pdq_quality")
    ID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    SHA1_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    PDQ_FIELD_NUMBER: _ClassVar[int]
    PDQ_QUALITY_FIELD_NUMBER: _ClassVar[int]
    id: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    faces: _containers.RepeatedCompositeFieldContainer[Vector]
    metadata: Metadata
    md5: bytes
    sha1: bytes
    sha256: bytes
    pdq: bytes
    pdq_quality: int
    def __init__(self, id: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ..., faces: _Optional[_Iterable[_Union[Vector, _Mapping]]] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ..., md5: _Optional[bytes] = ..., sha1: _Optional[bytes] = ..., sha256: _Optional[bytes] = ..., pdq: _Optional[bytes] = ..., pdq_quality: _Optional[int] = ...) -> None: ...

class TriageRequest(_message.Message):
    __slots__ = ("image_collection", "face_collection", "items", "store", "image_threshold", "face_threshold", "hash_sets", "hash_collection", "hash_max_distance")
    IMAGE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FACE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FACE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    HASH_SETS_FIELD_NUMBER: _ClassVar[int]
    HASH_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    HASH_MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    image_collection: str
    face_collection: str
    items: _containers.RepeatedCompositeFieldContainer[TriageItem]
    store: bool
    image_threshold: float
    face_threshold: float
    hash_sets: _containers.RepeatedScalarFieldContainer[str]
    hash_collection: str
    hash_max_distance: int
    def __init__(self, image_collection: _Optional[str] = ..., face_collection: _Optional[str] = ..., items: _Optional[_Iterable[_Union[TriageItem, _Mapping]]] = ..., store: _Optional[bool] = ..., image_threshold: _Optional[float] = ..., face_threshold: _Optional[float] = ..., hash_sets: _Optional[_Iterable[str]] = ..., hash_collection: _Optional[str] = ..., hash_max_distance: _Optional[int] = ...) -> None: ...

class TriageResult(_message.Message):
    __slots__ = ("id", "verdict", "priority", "series_id", "nearest_media_id", "nearest_distance", "victim_identified", "matched_faces", "face_series_id", "series_label", "reason", "rank", "evidence", "category", "matched_in", "matched_key")
    class Evidence(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        EVIDENCE_UNSPECIFIED: _ClassVar[TriageResult.Evidence]
        EXACT_HASH: _ClassVar[TriageResult.Evidence]
        PERCEPTUAL_HASH: _ClassVar[TriageResult.Evidence]
        EMBEDDING: _ClassVar[TriageResult.Evidence]
        FACE: _ClassVar[TriageResult.Evidence]
    EVIDENCE_UNSPECIFIED: TriageResult.Evidence
    EXACT_HASH: TriageResult.Evidence
    PERCEPTUAL_HASH: TriageResult.Evidence
    EMBEDDING: TriageResult.Evidence
    FACE: TriageResult.Evidence
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
    REASON_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    MATCHED_IN_FIELD_NUMBER: _ClassVar[int]
    MATCHED_KEY_FIELD_NUMBER: _ClassVar[int]
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
    reason: str
    rank: int
    evidence: TriageResult.Evidence
    category: str
    matched_in: str
    matched_key: str
    def __init__(self, id: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., series_id: _Optional[str] = ..., nearest_media_id: _Optional[str] = ..., nearest_distance: _Optional[float] = ..., victim_identified: _Optional[bool] = ..., matched_faces: _Optional[int] = ..., face_series_id: _Optional[str] = ..., series_label: _Optional[str] = ..., reason: _Optional[str] = ..., rank: _Optional[int] = ..., evidence: _Optional[_Union[TriageResult.Evidence, str]] = ..., category: _Optional[str] = ..., matched_in: _Optional[str] = ..., matched_key: _Optional[str] = ...) -> None: ...

class TriageGroup(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class TriageSummary(_message.Message):
    __slots__ = ("items", "known", "new", "new_with_faces", "new_groups", "stored", "known_victim", "by_exact_hash", "by_perceptual_hash", "by_embedding", "by_face")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    NEW_FIELD_NUMBER: _ClassVar[int]
    NEW_WITH_FACES_FIELD_NUMBER: _ClassVar[int]
    NEW_GROUPS_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    KNOWN_VICTIM_FIELD_NUMBER: _ClassVar[int]
    BY_EXACT_HASH_FIELD_NUMBER: _ClassVar[int]
    BY_PERCEPTUAL_HASH_FIELD_NUMBER: _ClassVar[int]
    BY_EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    BY_FACE_FIELD_NUMBER: _ClassVar[int]
    items: int
    known: int
    new: int
    new_with_faces: int
    new_groups: _containers.RepeatedCompositeFieldContainer[TriageGroup]
    stored: int
    known_victim: int
    by_exact_hash: int
    by_perceptual_hash: int
    by_embedding: int
    by_face: int
    def __init__(self, items: _Optional[int] = ..., known: _Optional[int] = ..., new: _Optional[int] = ..., new_with_faces: _Optional[int] = ..., new_groups: _Optional[_Iterable[_Union[TriageGroup, _Mapping]]] = ..., stored: _Optional[int] = ..., known_victim: _Optional[int] = ..., by_exact_hash: _Optional[int] = ..., by_perceptual_hash: _Optional[int] = ..., by_embedding: _Optional[int] = ..., by_face: _Optional[int] = ...) -> None: ...

class CalibrateRequest(_message.Message):
    __slots__ = ("image_collection", "face_collection")
    IMAGE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FACE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    image_collection: str
    face_collection: str
    def __init__(self, image_collection: _Optional[str] = ..., face_collection: _Optional[str] = ...) -> None: ...

class ThresholdChoice(_message.Message):
    __slots__ = ("threshold", "calibrated", "precision", "recall", "same_series_pairs", "different_series_pairs", "histogram_from", "histogram_to", "same_series", "different_series", "core_threshold")
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CALIBRATED_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    SAME_SERIES_PAIRS_FIELD_NUMBER: _ClassVar[int]
    DIFFERENT_SERIES_PAIRS_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_FROM_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_TO_FIELD_NUMBER: _ClassVar[int]
    SAME_SERIES_FIELD_NUMBER: _ClassVar[int]
    DIFFERENT_SERIES_FIELD_NUMBER: _ClassVar[int]
    CORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    threshold: float
    calibrated: bool
    precision: float
    recall: float
    same_series_pairs: int
    different_series_pairs: int
    histogram_from: float
    histogram_to: float
    same_series: _containers.RepeatedScalarFieldContainer[int]
    different_series: _containers.RepeatedScalarFieldContainer[int]
    core_threshold: float
    def __init__(self, threshold: _Optional[float] = ..., calibrated: _Optional[bool] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., same_series_pairs: _Optional[int] = ..., different_series_pairs: _Optional[int] = ..., histogram_from: _Optional[float] = ..., histogram_to: _Optional[float] = ..., same_series: _Optional[_Iterable[int]] = ..., different_series: _Optional[_Iterable[int]] = ..., core_threshold: _Optional[float] = ...) -> None: ...

class CalibrateResponse(_message.Message):
    __slots__ = ("image", "face", "labelled_series", "labelled_media", "note")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    FACE_FIELD_NUMBER: _ClassVar[int]
    LABELLED_SERIES_FIELD_NUMBER: _ClassVar[int]
    LABELLED_MEDIA_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    image: ThresholdChoice
    face: ThresholdChoice
    labelled_series: int
    labelled_media: int
    note: str
    def __init__(self, image: _Optional[_Union[ThresholdChoice, _Mapping]] = ..., face: _Optional[_Union[ThresholdChoice, _Mapping]] = ..., labelled_series: _Optional[int] = ..., labelled_media: _Optional[int] = ..., note: _Optional[str] = ...) -> None: ...

class TriageResponse(_message.Message):
    __slots__ = ("results", "summary")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TriageResult]
    summary: TriageSummary
    def __init__(self, results: _Optional[_Iterable[_Union[TriageResult, _Mapping]]] = ..., summary: _Optional[_Union[TriageSummary, _Mapping]] = ...) -> None: ...

class HashEntry(_message.Message):
    __slots__ = ("md5", "sha1", "sha256", "category", "source", "series", "victim_identified", "case_id", "record")
    MD5_FIELD_NUMBER: _ClassVar[int]
    SHA1_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    VICTIM_IDENTIFIED_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    md5: bytes
    sha1: bytes
    sha256: bytes
    category: str
    source: str
    series: str
    victim_identified: bool
    case_id: str
    record: str
    def __init__(self, md5: _Optional[bytes] = ..., sha1: _Optional[bytes] = ..., sha256: _Optional[bytes] = ..., category: _Optional[str] = ..., source: _Optional[str] = ..., series: _Optional[str] = ..., victim_identified: _Optional[bool] = ..., case_id: _Optional[str] = ..., record: _Optional[str] = ...) -> None: ...

class HashCase(_message.Message):
    __slots__ = ("case_id", "record")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    record: str
    def __init__(self, case_id: _Optional[str] = ..., record: _Optional[str] = ...) -> None: ...

class ImportHashesRequest(_message.Message):
    __slots__ = ("set", "entries", "cases", "description")
    SET_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CASES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    set: str
    entries: _containers.RepeatedCompositeFieldContainer[HashEntry]
    cases: _containers.RepeatedCompositeFieldContainer[HashCase]
    description: str
    def __init__(self, set: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[HashEntry, _Mapping]]] = ..., cases: _Optional[_Iterable[_Union[HashCase, _Mapping]]] = ..., description: _Optional[str] = ...) -> None: ...

class ImportHashesResponse(_message.Message):
    __slots__ = ("imported", "entries")
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    imported: int
    entries: int
    def __init__(self, imported: _Optional[int] = ..., entries: _Optional[int] = ...) -> None: ...

class LookupHashesRequest(_message.Message):
    __slots__ = ("sets", "digests")
    SETS_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    sets: _containers.RepeatedScalarFieldContainer[str]
    digests: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, sets: _Optional[_Iterable[str]] = ..., digests: _Optional[_Iterable[bytes]] = ...) -> None: ...

class HashMatch(_message.Message):
    __slots__ = ("digest", "set", "entry")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    digest: int
    set: str
    entry: HashEntry
    def __init__(self, digest: _Optional[int] = ..., set: _Optional[str] = ..., entry: _Optional[_Union[HashEntry, _Mapping]] = ...) -> None: ...

class LookupHashesResponse(_message.Message):
    __slots__ = ("matches",)
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[HashMatch]
    def __init__(self, matches: _Optional[_Iterable[_Union[HashMatch, _Mapping]]] = ...) -> None: ...

class ListHashSetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HashSetInfo(_message.Message):
    __slots__ = ("name", "description", "entries", "parts", "case_ids", "disk_bytes", "owner")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    CASE_IDS_FIELD_NUMBER: _ClassVar[int]
    DISK_BYTES_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    entries: int
    parts: int
    case_ids: _containers.RepeatedScalarFieldContainer[str]
    disk_bytes: int
    owner: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., entries: _Optional[int] = ..., parts: _Optional[int] = ..., case_ids: _Optional[_Iterable[str]] = ..., disk_bytes: _Optional[int] = ..., owner: _Optional[str] = ...) -> None: ...

class ListHashSetsResponse(_message.Message):
    __slots__ = ("sets",)
    SETS_FIELD_NUMBER: _ClassVar[int]
    sets: _containers.RepeatedCompositeFieldContainer[HashSetInfo]
    def __init__(self, sets: _Optional[_Iterable[_Union[HashSetInfo, _Mapping]]] = ...) -> None: ...

class ExportHashesRequest(_message.Message):
    __slots__ = ("set", "case_id")
    SET_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    set: str
    case_id: str
    def __init__(self, set: _Optional[str] = ..., case_id: _Optional[str] = ...) -> None: ...

class ExportHashesResponse(_message.Message):
    __slots__ = ("cases", "entries")
    CASES_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[HashCase]
    entries: _containers.RepeatedCompositeFieldContainer[HashEntry]
    def __init__(self, cases: _Optional[_Iterable[_Union[HashCase, _Mapping]]] = ..., entries: _Optional[_Iterable[_Union[HashEntry, _Mapping]]] = ...) -> None: ...

class DropHashSetRequest(_message.Message):
    __slots__ = ("set",)
    SET_FIELD_NUMBER: _ClassVar[int]
    set: str
    def __init__(self, set: _Optional[str] = ...) -> None: ...

class DropHashSetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("agency", "role", "credential", "collections")
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    agency: str
    role: str
    credential: str
    collections: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agency: _Optional[str] = ..., role: _Optional[str] = ..., credential: _Optional[str] = ..., collections: _Optional[_Iterable[str]] = ...) -> None: ...

class RestrictUploadRequest(_message.Message):
    __slots__ = ("upload_id", "shared_with", "deconfliction", "lift", "owner")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    SHARED_WITH_FIELD_NUMBER: _ClassVar[int]
    DECONFLICTION_FIELD_NUMBER: _ClassVar[int]
    LIFT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    shared_with: _containers.RepeatedScalarFieldContainer[str]
    deconfliction: bool
    lift: bool
    owner: str
    def __init__(self, upload_id: _Optional[str] = ..., shared_with: _Optional[_Iterable[str]] = ..., deconfliction: _Optional[bool] = ..., lift: _Optional[bool] = ..., owner: _Optional[str] = ...) -> None: ...

class Restriction(_message.Message):
    __slots__ = ("owner", "upload_id", "shared_with", "deconfliction", "restricted", "updated_at")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    SHARED_WITH_FIELD_NUMBER: _ClassVar[int]
    DECONFLICTION_FIELD_NUMBER: _ClassVar[int]
    RESTRICTED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    owner: str
    upload_id: str
    shared_with: _containers.RepeatedScalarFieldContainer[str]
    deconfliction: bool
    restricted: bool
    updated_at: int
    def __init__(self, owner: _Optional[str] = ..., upload_id: _Optional[str] = ..., shared_with: _Optional[_Iterable[str]] = ..., deconfliction: _Optional[bool] = ..., restricted: _Optional[bool] = ..., updated_at: _Optional[int] = ...) -> None: ...

class ListRestrictionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRestrictionsResponse(_message.Message):
    __slots__ = ("restrictions",)
    RESTRICTIONS_FIELD_NUMBER: _ClassVar[int]
    restrictions: _containers.RepeatedCompositeFieldContainer[Restriction]
    def __init__(self, restrictions: _Optional[_Iterable[_Union[Restriction, _Mapping]]] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("agency", "role", "collections", "expires_in")
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_FIELD_NUMBER: _ClassVar[int]
    agency: str
    role: str
    collections: _containers.RepeatedScalarFieldContainer[str]
    expires_in: int
    def __init__(self, agency: _Optional[str] = ..., role: _Optional[str] = ..., collections: _Optional[_Iterable[str]] = ..., expires_in: _Optional[int] = ...) -> None: ...

class TokenInfo(_message.Message):
    __slots__ = ("id", "agency", "role", "collections", "created_at", "expires_at", "revoked_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    agency: str
    role: str
    collections: _containers.RepeatedScalarFieldContainer[str]
    created_at: int
    expires_at: int
    revoked_at: int
    def __init__(self, id: _Optional[str] = ..., agency: _Optional[str] = ..., role: _Optional[str] = ..., collections: _Optional[_Iterable[str]] = ..., created_at: _Optional[int] = ..., expires_at: _Optional[int] = ..., revoked_at: _Optional[int] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("token", "info")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    token: str
    info: TokenInfo
    def __init__(self, token: _Optional[str] = ..., info: _Optional[_Union[TokenInfo, _Mapping]] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens", "revoked_certificates")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[TokenInfo]
    revoked_certificates: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tokens: _Optional[_Iterable[_Union[TokenInfo, _Mapping]]] = ..., revoked_certificates: _Optional[_Iterable[str]] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SeriesFilter(_message.Message):
    __slots__ = ("countries_any", "cross_border", "victim_identified", "min_media", "updated_after")
    COUNTRIES_ANY_FIELD_NUMBER: _ClassVar[int]
    CROSS_BORDER_FIELD_NUMBER: _ClassVar[int]
    VICTIM_IDENTIFIED_FIELD_NUMBER: _ClassVar[int]
    MIN_MEDIA_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    countries_any: _containers.RepeatedScalarFieldContainer[str]
    cross_border: bool
    victim_identified: bool
    min_media: int
    updated_after: int
    def __init__(self, countries_any: _Optional[_Iterable[str]] = ..., cross_border: _Optional[bool] = ..., victim_identified: _Optional[bool] = ..., min_media: _Optional[int] = ..., updated_after: _Optional[int] = ...) -> None: ...

class ListSeriesRequest(_message.Message):
    __slots__ = ("image_collection", "filter", "page_size", "page_token", "with_evidence")
    IMAGE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    WITH_EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    image_collection: str
    filter: SeriesFilter
    page_size: int
    page_token: str
    with_evidence: bool
    def __init__(self, image_collection: _Optional[str] = ..., filter: _Optional[_Union[SeriesFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., with_evidence: _Optional[bool] = ...) -> None: ...

class ListSeriesResponse(_message.Message):
    __slots__ = ("series", "next_page_token", "total", "params")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[Series]
    next_page_token: str
    total: int
    params: LinkParams
    def __init__(self, series: _Optional[_Iterable[_Union[Series, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ..., params: _Optional[_Union[LinkParams, _Mapping]] = ...) -> None: ...

class GetSeriesRequest(_message.Message):
    __slots__ = ("image_collection", "series_id")
    IMAGE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    image_collection: str
    series_id: str
    def __init__(self, image_collection: _Optional[str] = ..., series_id: _Optional[str] = ...) -> None: ...

class SeriesMedia(_message.Message):
    __slots__ = ("media_id", "metadata", "faces")
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    media_id: str
    metadata: Metadata
    faces: int
    def __init__(self, media_id: _Optional[str] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ..., faces: _Optional[int] = ...) -> None: ...

class SamePersonLead(_message.Message):
    __slots__ = ("other_series_id", "media_id", "other_media_id", "face_distance", "matches")
    OTHER_SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    OTHER_MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    FACE_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    other_series_id: str
    media_id: str
    other_media_id: str
    face_distance: float
    matches: int
    def __init__(self, other_series_id: _Optional[str] = ..., media_id: _Optional[str] = ..., other_media_id: _Optional[str] = ..., face_distance: _Optional[float] = ..., matches: _Optional[int] = ...) -> None: ...

class GetSeriesResponse(_message.Message):
    __slots__ = ("series", "media", "decisions", "rejected", "same_person")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    SAME_PERSON_FIELD_NUMBER: _ClassVar[int]
    series: Series
    media: _containers.RepeatedCompositeFieldContainer[SeriesMedia]
    decisions: _containers.RepeatedCompositeFieldContainer[DecisionRecord]
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedPair]
    same_person: _containers.RepeatedCompositeFieldContainer[SamePersonLead]
    def __init__(self, series: _Optional[_Union[Series, _Mapping]] = ..., media: _Optional[_Iterable[_Union[SeriesMedia, _Mapping]]] = ..., decisions: _Optional[_Iterable[_Union[DecisionRecord, _Mapping]]] = ..., rejected: _Optional[_Iterable[_Union[RejectedPair, _Mapping]]] = ..., same_person: _Optional[_Iterable[_Union[SamePersonLead, _Mapping]]] = ...) -> None: ...

class RejectedPair(_message.Message):
    __slots__ = ("media_a", "media_b", "decision_id")
    MEDIA_A_FIELD_NUMBER: _ClassVar[int]
    MEDIA_B_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    media_a: str
    media_b: str
    decision_id: int
    def __init__(self, media_a: _Optional[str] = ..., media_b: _Optional[str] = ..., decision_id: _Optional[int] = ...) -> None: ...

class SeriesOfMediaRequest(_message.Message):
    __slots__ = ("image_collection", "media_ids")
    IMAGE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MEDIA_IDS_FIELD_NUMBER: _ClassVar[int]
    image_collection: str
    media_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, image_collection: _Optional[str] = ..., media_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class MediaSeries(_message.Message):
    __slots__ = ("media_id", "series_id")
    MEDIA_ID_FIELD_NUMBER: _ClassVar[int]
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    media_id: str
    series_id: str
    def __init__(self, media_id: _Optional[str] = ..., series_id: _Optional[str] = ...) -> None: ...

class SeriesOfMediaResponse(_message.Message):
    __slots__ = ("media",)
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    media: _containers.RepeatedCompositeFieldContainer[MediaSeries]
    def __init__(self, media: _Optional[_Iterable[_Union[MediaSeries, _Mapping]]] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("kind", "media_a", "media_b", "series_id", "series_ids", "media_ids", "label", "reference", "note")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MEDIA_A_FIELD_NUMBER: _ClassVar[int]
    MEDIA_B_FIELD_NUMBER: _ClassVar[int]
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    SERIES_IDS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_IDS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    kind: DecisionKind
    media_a: str
    media_b: str
    series_id: str
    series_ids: _containers.RepeatedScalarFieldContainer[str]
    media_ids: _containers.RepeatedScalarFieldContainer[str]
    label: str
    reference: str
    note: str
    def __init__(self, kind: _Optional[_Union[DecisionKind, str]] = ..., media_a: _Optional[str] = ..., media_b: _Optional[str] = ..., series_id: _Optional[str] = ..., series_ids: _Optional[_Iterable[str]] = ..., media_ids: _Optional[_Iterable[str]] = ..., label: _Optional[str] = ..., reference: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ReviewSeriesRequest(_message.Message):
    __slots__ = ("image_collection", "decisions", "reviewer", "note")
    IMAGE_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    image_collection: str
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    reviewer: str
    note: str
    def __init__(self, image_collection: _Optional[str] = ..., decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ..., reviewer: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class DecisionRecord(_message.Message):
    __slots__ = ("decision_id", "decision", "reviewer", "decided_at", "note", "anchors")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ANCHORS_FIELD_NUMBER: _ClassVar[int]
    decision_id: int
    decision: Decision
    reviewer: str
    decided_at: int
    note: str
    anchors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, decision_id: _Optional[int] = ..., decision: _Optional[_Union[Decision, _Mapping]] = ..., reviewer: _Optional[str] = ..., decided_at: _Optional[int] = ..., note: _Optional[str] = ..., anchors: _Optional[_Iterable[str]] = ...) -> None: ...

class ReviewSeriesResponse(_message.Message):
    __slots__ = ("recorded", "series", "regroup_seconds")
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    REGROUP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    recorded: _containers.RepeatedCompositeFieldContainer[DecisionRecord]
    series: _containers.RepeatedCompositeFieldContainer[Series]
    regroup_seconds: float
    def __init__(self, recorded: _Optional[_Iterable[_Union[DecisionRecord, _Mapping]]] = ..., series: _Optional[_Iterable[_Union[Series, _Mapping]]] = ..., regroup_seconds: _Optional[float] = ...) -> None: ...

class MetadataUpdate(_message.Message):
    __slots__ = ("victim_identified", "series_label", "add_tags", "remove_tags", "case_id")
    VICTIM_IDENTIFIED_FIELD_NUMBER: _ClassVar[int]
    SERIES_LABEL_FIELD_NUMBER: _ClassVar[int]
    ADD_TAGS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_TAGS_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    victim_identified: bool
    series_label: str
    add_tags: _containers.RepeatedScalarFieldContainer[str]
    remove_tags: _containers.RepeatedScalarFieldContainer[str]
    case_id: str
    def __init__(self, victim_identified: _Optional[bool] = ..., series_label: _Optional[str] = ..., add_tags: _Optional[_Iterable[str]] = ..., remove_tags: _Optional[_Iterable[str]] = ..., case_id: _Optional[str] = ...) -> None: ...

class UpdateMetadataRequest(_message.Message):
    __slots__ = ("collection", "ids", "set")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    set: MetadataUpdate
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., set: _Optional[_Union[MetadataUpdate, _Mapping]] = ...) -> None: ...

class UpdateMetadataResponse(_message.Message):
    __slots__ = ("updated",)
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    updated: int
    def __init__(self, updated: _Optional[int] = ...) -> None: ...

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
