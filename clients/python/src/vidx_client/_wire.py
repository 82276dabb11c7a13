"""Protocol-buffer wire bytes for the vector-bearing messages.

Vectors go out as `numpy.ndarray.tobytes()` into the packed `repeated float`
field and come back as `numpy.frombuffer` views, never as Python floats. The
rest of each message is built and parsed by the generated protobuf classes:
protobuf allows a message's fields in any order and concatenates repeated
fields, so a message serialised without its vectors plus the vector fields
appended is the whole message. The field numbers come from the generated
descriptors (`client._num`), so the bytes follow the proto.
"""

from __future__ import annotations

import numpy as np

_LEN = 2  # wire type of length-delimited fields
_F32 = np.dtype("<f4")


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return varint(number << 3 | _LEN) + varint(len(payload)) + payload


def floats(number: int, v: np.ndarray) -> bytes:
    """A packed `repeated float` field holding `v` (1-d, float32 little-endian)."""
    return field(number, np.ascontiguousarray(v, dtype=_F32).tobytes())


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf: memoryview):
    """(field number, wire type, value) of each field of one message; a
    length-delimited value is a memoryview, others ints (fixed ones as raw)."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos)
        number, wt = key >> 3, key & 7
        if wt == 0:
            value, pos = _read_varint(buf, pos)
        elif wt == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wt == 2:
            n, pos = _read_varint(buf, pos)
            value, pos = buf[pos : pos + n], pos + n
        elif wt == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wt} in a vidx message")
        yield number, wt, value


def decode_points(data: bytes, point_field: int, point_fields: tuple[int, int, int]):
    """The points of a message whose field `point_field` is `repeated Point`
    (a GetResponse), whose id, vector and metadata are the field numbers
    `point_fields`: (ids, list of float32 vectors, metadata bytes)."""
    id_f, vector_f, meta_f = point_fields
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    metas: list[bytes] = []
    for number, wt, value in fields(memoryview(data)):
        if number != point_field or wt != _LEN:
            continue
        pid, parts, meta = "", [], b""
        for n, w, v in fields(value):
            if n == id_f and w == _LEN:
                pid = bytes(v).decode("utf-8")
            elif n == vector_f and w == _LEN:  # packed
                parts.append(np.frombuffer(v, dtype=_F32))
            elif n == vector_f and w == 5:  # one unpacked float
                parts.append(np.frombuffer(v, dtype=_F32))
            elif n == meta_f and w == _LEN:
                meta = bytes(v)
        ids.append(pid)
        vectors.append(parts[0] if len(parts) == 1 else np.concatenate(parts or [np.empty(0, _F32)]))
        metas.append(meta)
    return ids, vectors, metas
