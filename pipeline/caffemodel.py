"""Read the learnt blobs of a Caffe `.caffemodel` (a binary NetParameter protobuf) without Caffe, by its wire format.

Field numbers are BVLC/caffe's src/caffe/proto/caffe.proto: NetParameter `layer` = 100 (LayerParameter: `name` 1,
`blobs` 7) and the deprecated `layers` = 2 (V1LayerParameter: `name` 4, `blobs` 6); BlobProto `shape` 7 (BlobShape
`dim` 1), `data` 5 (float32), `double_data` 8, and the deprecated 4-D `num` 1, `channels` 2, `height` 3, `width` 4.
Only numbers are read; nothing in the file is executed.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipeline.checkpoint import CheckpointError

NET_LAYER, NET_V1_LAYERS = 100, 2
LAYER_FIELDS = {NET_LAYER: (1, 7), NET_V1_LAYERS: (4, 6)}  # (name, blobs) of LayerParameter / V1LayerParameter
BLOB_SHAPE, BLOB_DATA, BLOB_DOUBLE_DATA = 7, 5, 8
BLOB_LEGACY_DIMS = (1, 2, 3, 4)  # num, channels, height, width


class CaffeModelError(CheckpointError):
    """A file that is not a readable .caffemodel."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise CaffeModelError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def fields(buf: memoryview):
    """(field number, wire type, value) of a message: an int for varints, a memoryview for the other types."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise CaffeModelError(f"unsupported wire type {wire} (field {number})")
        if pos > len(buf):
            raise CaffeModelError(f"truncated field {number}")
        yield number, wire, value


def _packed_varints(value, wire: int) -> list[int]:
    if wire == 0:
        return [value]
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(v)
    return out


def read_blob(buf: memoryview) -> np.ndarray:
    """One BlobProto as a float32 array of its shape (`shape`, else the legacy 4-D dims)."""
    shape, legacy, chunks, doubles = [], {}, [], []
    for number, wire, value in fields(buf):
        if number == BLOB_SHAPE:
            for n, w, v in fields(value):
                if n == 1:
                    shape.extend(_packed_varints(v, w))
        elif number == BLOB_DATA:
            chunks.append(np.frombuffer(value, dtype="<f4"))
        elif number == BLOB_DOUBLE_DATA:
            doubles.append(np.frombuffer(value, dtype="<f8"))
        elif number in BLOB_LEGACY_DIMS and wire == 0:
            legacy[number] = value
    data = np.concatenate(chunks or [d.astype(np.float32) for d in doubles] or [np.zeros(0, np.float32)])
    dims = shape or [legacy.get(n, 0) for n in BLOB_LEGACY_DIMS]
    if int(np.prod(dims)) != data.size:
        raise CaffeModelError(f"a blob of shape {dims} holds {data.size} values")
    return data.reshape(dims).astype(np.float32)


def read_caffemodel(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """{layer name: its blobs} for every layer with learnt blobs (e.g. a convolution's weight and bias)."""
    try:
        buf = memoryview(Path(path).read_bytes())
    except OSError as e:
        raise CaffeModelError(f"{path}: cannot be read ({type(e).__name__})") from None
    layers = {}
    try:
        for number, wire, value in fields(buf):
            if number not in LAYER_FIELDS or wire != 2:
                continue
            name_field, blobs_field = LAYER_FIELDS[number]
            name, blobs = None, []
            for n, w, v in fields(value):
                if n == name_field and w == 2:
                    name = bytes(v).decode("utf-8", "replace")
                elif n == blobs_field and w == 2:
                    blobs.append(read_blob(v))
            if name is not None and blobs:
                layers[name] = blobs
    except CaffeModelError as e:
        raise CaffeModelError(f"{path} is not a readable .caffemodel: {e}") from None
    return layers

