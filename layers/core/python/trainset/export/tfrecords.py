"""TFRecord export: sharded, deterministic, self-describing, and verified after writing.

One ``tf.train.Example`` per post: text, the family's gate (``is_child``...), its multi-hot
labels in the study's exact layout and in the codebook's detailed one, with soft labels,
confidence, sampling weight, keyword, post id and, where present, the encoded
image with its size; optional token ids and attention mask from a WordPiece vocabulary.
Face-crop records for the child-age model carry the study's age one-hot (baby, toddler,
elementary, middle, high, adult, none).

Splits are decided by a hash of the post id, so a post never changes split between runs or
as data grows, and every label is split in the same proportions in expectation (the manifest
shows the counts). Shards are named ``family-split-00000-of-000NN.tfrecord``; after writing,
every shard is read back with ``tf.data`` and every record parsed.

Records are built a batch at a time from columns (``post_records``;
``trainset.export.columns`` and ``wire``), byte for byte what the per-row ``post_example``
gives, which stays as the reference. An export builds and writes split by split, and each
shard is verified on a worker thread while the next split is built (``ShardWriter``).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainset import __version__, codebook
from trainset.export import author_features, wire
from trainset.text import file_sha256

if TYPE_CHECKING:
    import numpy as np

    from trainset.export.columns import AuthorColumns

SPLITS = ("train", "validation", "test")
FACE_AGES = ("baby", "toddler", "elementary", "middle", "high", "adult", "none")
_FACE_AGE_OF_SLOT = {"baby": "baby", "toddler": "toddler", "elementary": "elementary",
                     "middle": "middle", "high": "high"}


class VerificationError(Exception):
    """A shard did not read back as written."""


@dataclass(frozen=True)
class ExportSettings:
    shard_bytes: int = 100 * 2**20  # about this many bytes per shard
    readers: int = 1  # at least this many shards per split, for parallel reading
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    gzip: bool | None = None  # None: compress text-only datasets, not images
    vocabulary: str | None = None  # a WordPiece vocab.txt for token ids
    max_length: int = 128
    salt: str = "trainset-split-v1"
    author_vectors: str | None = None  # Parquet or .npz of author embeddings (vectors)
    image_bytes: int = 64 * 2**10  # an image's expected size, to plan shards before fetching

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_of(post_id: str, fractions: Sequence[float] = (0.8, 0.1, 0.1),
             salt: str = "trainset-split-v1") -> str:
    """The split of a post: a fixed function of its id (and the salt)."""
    digest = hashlib.sha256(f"{salt}:{post_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for name, share in zip(SPLITS, fractions, strict=True):
        edge += share
        if u < edge:
            return name
    return SPLITS[-1]


def split_indices(post_ids: Sequence[str | bytes], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                  salt: str = "trainset-split-v1") -> np.ndarray:
    """Each post's split as an index into ``SPLITS``: ``split_of`` for a batch, with the
    hash per post and the rest in numpy (the same float, compared with the same edges)."""
    return split_and_slot(post_ids, fractions, salt)[0]


def split_and_slot(post_ids: Sequence[str | bytes], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                   salt: str = "trainset-split-v1") -> tuple[np.ndarray, np.ndarray]:
    """Each post's split (``split_indices``) and its shard slot: a fixed function of the same
    hash as the split (bytes 8-11 of the digest, big-endian, uint32; independent of the
    split's bytes 0-7). A split of S shards puts a post in shard ``slot * S >> 32``: as S
    doubles with the data, each shard splits in two and a post moves only into one of them
    (``trainset.export.shards``)."""
    import numpy as np

    base = hashlib.sha256(f"{salt}:".encode())

    def digest(post_id: str | bytes) -> bytes:  # bytes: the id's UTF-8
        h = base.copy()
        h.update(post_id.encode() if isinstance(post_id, str) else post_id)
        return h.digest()

    digests = np.frombuffer(b"".join(map(digest, post_ids)), ">u8").reshape(-1, 4)
    first = digests[:, 0]
    slot = (digests[:, 1] >> np.uint64(32)).astype(np.uint64)
    u = first.astype(np.float64) / 2.0**64  # correctly rounded, as int / 2**64 is
    out = np.full(len(post_ids), len(SPLITS) - 1, np.int64)
    edges = []
    edge = 0.0
    for _, share in zip(SPLITS, fractions, strict=True):
        edge += share
        edges.append(edge)
    for index in reversed(range(len(SPLITS))):
        out[u < edges[index]] = index
    return out, slot


def _tf() -> Any:
    import tensorflow as tf  # imported on use: 2-3 s, and only exports need it

    return tf


def feature_spec(family: str, images: bool, max_length: int | None,
                 vector_size: int | None = None) -> dict[str, Any]:
    """The parsing spec of a post record (what ``features.json`` documents)."""
    tf = _tf()
    fam = codebook.family(family)
    study, detail = len(fam.study_slots), len(fam.slots)
    spec = {
        "post_id": tf.io.FixedLenFeature([], tf.string),
        "text": tf.io.FixedLenFeature([], tf.string),
        "keyword": tf.io.FixedLenFeature([], tf.string, default_value=""),
        fam.gate.name: tf.io.FixedLenFeature([], tf.int64),
        "labels": tf.io.FixedLenFeature([study], tf.int64),
        "soft_labels": tf.io.FixedLenFeature([study], tf.float32),
        "detail_labels": tf.io.FixedLenFeature([detail], tf.int64),
        "detail_soft_labels": tf.io.FixedLenFeature([detail], tf.float32),
        "confidence": tf.io.FixedLenFeature([], tf.float32),
        "sampling_weight": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
        "calibrated_weight": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
        "n_coders": tf.io.FixedLenFeature([], tf.int64),
        "user_stats": tf.io.FixedLenFeature([len(author_features.USER_STATS[family])],
                                            tf.float32),
        "user_posts": tf.io.FixedLenFeature([], tf.int64),
    }
    if vector_size:
        spec["vectors"] = tf.io.FixedLenFeature([vector_size], tf.float32)
        spec["vectors_mask"] = tf.io.FixedLenFeature([], tf.int64)
    if images:
        spec.update({
            "image/encoded": tf.io.FixedLenFeature([], tf.string, default_value=""),
            "image/height": tf.io.FixedLenFeature([], tf.int64, default_value=0),
            "image/width": tf.io.FixedLenFeature([], tf.int64, default_value=0),
            "image/channels": tf.io.FixedLenFeature([], tf.int64, default_value=0),
        })
    if max_length:
        spec["token_ids"] = tf.io.FixedLenFeature([max_length], tf.int64)
        spec["attention_mask"] = tf.io.FixedLenFeature([max_length], tf.int64)
    return spec


def feature_meanings(family: str) -> dict[str, str]:
    """What each label feature of a post record means (``features.json`` carries it)."""
    fam = codebook.family(family)
    study = ", ".join(s.name for s in fam.study_slots)
    detail = ", ".join(s.name for s in fam.slots)
    return {
        fam.gate.name: "1 when the family's gate holds ("
        + {"child": "a child is mentioned or shown", "health": "a health symptom or outcome "
           "is mentioned", "place": "an indoor or outdoor location was identified"}[family]
        + "), else 0; decided jointly with the other answers",
        "labels": f"multi-hot in the study's layout, byte-compatible with its models: {study}",
        "soft_labels": "P(slot) for each slot of labels, from the consensus posteriors",
        "detail_labels": f"multi-hot with one slot per codebook option group: {detail}",
        "detail_soft_labels": "P(slot) for each slot of detail_labels",
        "user_stats": "for the post's author, the share of the author's other posts in this "
        "dataset with each of: " + ", ".join(author_features.USER_STATS[family])
        + " (the post itself left "
        "out; zeros when the author has no other post)",
        "user_posts": "how many other posts of the author user_stats is computed from",
        "vectors": "the author's embedding from the vectors file (zeros when none)",
        "vectors_mask": "1 when the author had a vector in the file, else 0",
    }


def face_spec() -> dict[str, Any]:
    tf = _tf()
    return {
        "post_id": tf.io.FixedLenFeature([], tf.string),
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/height": tf.io.FixedLenFeature([], tf.int64),
        "image/width": tf.io.FixedLenFeature([], tf.int64),
        "image/channels": tf.io.FixedLenFeature([], tf.int64),
        "face/box": tf.io.FixedLenFeature([4], tf.int64),
        "face/confidence": tf.io.FixedLenFeature([], tf.float32),
        "age": tf.io.FixedLenFeature([len(FACE_AGES)], tf.int64),
    }


def describe(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON description of a parsing spec."""
    out = {}
    for name, feature in spec.items():
        default = feature.default_value
        if isinstance(default, bytes):
            default = default.decode()
        elif hasattr(default, "tolist"):
            default = default.tolist()
        out[name] = {"dtype": feature.dtype.name, "shape": list(feature.shape),
                     "default": default}
    return out


def spec_from_description(described: Mapping[str, Any]) -> dict[str, Any]:
    """The parsing spec ``features.json`` describes (the inverse of ``describe``)."""
    tf = _tf()
    return {name: tf.io.FixedLenFeature(f["shape"], getattr(tf, f["dtype"]),
                                        default_value=f["default"])
            for name, f in described.items()}


def image_size(data: bytes) -> tuple[int, int, int]:
    """(height, width, channels) read from an encoded image's header."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        channels = len(image.getbands())
        return image.height, image.width, channels


_SMALL = [bytes((i,)) for i in range(128)]
_KEY_PREFIX: dict[str, bytes] = {}


def _varint(value: int) -> bytes:
    """``wire.varint``, with the one-byte values (most lengths and tags) ready made."""
    return _SMALL[value] if 0 <= value < 128 else wire.varint(value)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(payload)) + payload


def _feature(value: Any) -> bytes:
    """A serialised ``tf.train.Feature`` (bytes, float or int64 list)."""
    if isinstance(value, bytes | str):
        data = value.encode() if isinstance(value, str) else value
        return _field(0x0A, _field(0x0A, data))
    if isinstance(value, float):
        return _field(0x12, _field(0x0A, struct.pack("<f", value)))
    if isinstance(value, int):
        return _field(0x1A, _field(0x0A, _varint(value)))
    if not value:
        return _field(0x1A, b"")
    if isinstance(value[0], float):
        return _field(0x12, _field(0x0A, struct.pack(f"<{len(value)}f", *value)))
    return _field(0x1A, _field(0x0A, b"".join(_varint(int(v)) for v in value)))


def _example(features: Mapping[str, bytes]) -> bytes:
    """A serialised ``tf.train.Example``, byte for byte what TensorFlow's deterministic
    serialisation gives, without building protobuf objects (checked against TensorFlow in
    tests). Map entries are in the order protobuf's serialiser uses: by key bytes, where a
    key comes after the longer keys it is a prefix of ("floats" before "f")."""
    parts = []
    for key, value in sorted(features.items(), key=lambda kv: kv[0].encode() + b"\xff"):
        prefix = _KEY_PREFIX.get(key)
        if prefix is None:
            prefix = _KEY_PREFIX[key] = _field(0x0A, key.encode()) + b"\x12"
        entry = prefix + _varint(len(value)) + value
        parts.append(b"\x0a" + _varint(len(entry)) + entry)
    return _field(0x0A, b"".join(parts))


def post_example(row: Mapping[str, Any], image: bytes | None, images: bool,
                 tokens: tuple[list[int], list[int]] | None, gate: str,
                 author: AuthorFeatures | None = None) -> bytes:
    """One post record, serialised deterministically (the same bytes on every run).
    ``labels``/``soft_labels`` follow the study's layout; ``detail_*`` the codebook's."""
    features = {
        "post_id": _feature(str(row["post_id"])),
        "text": _feature(str(row["text"])),
        "keyword": _feature(str(row.get("keyword") or "")),
        gate: _feature(int(row["gate"])),
        "labels": _feature([int(v) for v in row["study_labels"]]),
        "soft_labels": _feature([float(v) for v in row["study_soft_labels"]]),
        "detail_labels": _feature([int(v) for v in row["multi_hot"]]),
        "detail_soft_labels": _feature([float(v) for v in row["soft_labels"]]),
        "confidence": _feature(float(row["confidence"])),
        "sampling_weight": _feature(float(row.get("sampling_weight") or 0.0)),
        "calibrated_weight": _feature(float(row.get("calibrated_weight") or 0.0)),
        "n_coders": _feature(int(row["n_coders"])),
    }
    if images:
        height = width = channels = 0
        if image:
            height, width, channels = image_size(image)
        features.update({"image/encoded": _feature(image or b""),
                         "image/height": _feature(height), "image/width": _feature(width),
                         "image/channels": _feature(channels)})
    if tokens is not None:
        features["token_ids"] = _feature(tokens[0])
        features["attention_mask"] = _feature(tokens[1])
    if author is not None:
        features["user_stats"] = _feature([float(v) for v in author.stats])
        features["user_posts"] = _feature(int(author.other_posts))
        if author.vector is not None:
            features["vectors"] = _feature([float(v) for v in author.vector])
            features["vectors_mask"] = _feature(int(author.has_vector))
    return _example(features)


def post_records(rows: Sequence[Mapping[str, Any]], gate: str, *,
                 images: Sequence[bytes | None] | None = None,
                 tokens: Sequence[tuple[list[int], list[int]]] | None = None,
                 authors: AuthorColumns | None = None) -> list[bytes]:
    """A batch of post records: ``post_example`` for each row, built from columns
    (``trainset.export.columns``). ``images`` (one per row, None where a post has none;
    None for the batch: no image features), ``tokens`` and ``authors`` are per row. A
    batch that does not fit columns is built row by row: the bytes are the same."""
    from trainset.export.columns import IrregularRows, PostColumns

    try:
        return PostColumns.from_rows(rows, images=images, tokens=tokens,
                                     authors=authors).records(gate)
    except IrregularRows:
        pass
    out = []
    for i, row in enumerate(rows):
        author = None
        if authors is not None:
            vector = authors.vectors[i].tolist() if authors.vectors is not None else None
            author = AuthorFeatures(authors.stats[i].tolist(), int(authors.other_posts[i]),
                                    vector, bool(vector is not None and authors.has_vector[i]))
        out.append(post_example(row, images[i] if images is not None else None,
                                images is not None, tokens[i] if tokens is not None else None,
                                gate, author))
    return out


@dataclass(frozen=True)
class AuthorFeatures:
    """A post's author features (``trainset.export.author_features``)."""

    stats: Sequence[float]
    other_posts: int
    vector: Sequence[float] | None = None  # None: no vectors file was given
    has_vector: bool = False


def face_age(multi_hot: Sequence[int], family: str = "child") -> list[int]:
    """The study's seven-way age one-hot for a face in a post: the post's one specific age
    group; 'adult' when the post has no child; 'none' when the age is unknown or mixed."""
    slots = [s.name for s in codebook.family(family).slots]
    groups = [_FACE_AGE_OF_SLOT[s] for s, v in zip(slots, multi_hot, strict=True)
              if v and s in _FACE_AGE_OF_SLOT]
    if len(groups) == 1:
        age = groups[0]
    elif not any(multi_hot):
        age = "adult"
    else:
        age = "none"
    return [int(a == age) for a in FACE_AGES]


def face_example(post_id: str, crop: bytes, box: Sequence[int], confidence: float,
                 age: Sequence[int]) -> bytes:
    height, width, channels = image_size(crop)
    features = {
        "post_id": _feature(post_id), "image/encoded": _feature(crop),
        "image/height": _feature(height), "image/width": _feature(width),
        "image/channels": _feature(channels), "face/box": _feature([int(b) for b in box]),
        "face/confidence": _feature(float(confidence)), "age": _feature(list(age)),
    }
    return _example(features)


def shard_names(prefix: str, split: str, count: int) -> list[str]:
    return [f"{prefix}-{split}-{i:05d}-of-{count:05d}.tfrecord" for i in range(count)]


def plan_shards(records_by_split: Mapping[str, Sequence[bytes]], prefix: str,
                settings: ExportSettings) -> list[tuple[str, str, Sequence[bytes]]]:
    """(file name, split, records) of each shard: each split's records in shards of about
    ``shard_bytes`` (at least ``readers`` shards per non-empty split)."""
    plans = []
    for split, records in records_by_split.items():
        if not records:
            continue
        size = sum(map(len, records))
        count = max(settings.readers, math.ceil(size / settings.shard_bytes), 1)
        count = min(count, len(records))
        per = math.ceil(len(records) / count)
        for i, name in enumerate(shard_names(prefix, split, count)):
            plans.append((name, split, records[i * per:(i + 1) * per]))
    return plans


def write_shard(path: Path, records: Iterable[bytes], gzip: bool) -> None:
    """Write the records, in order, as one TFRecord file; a write that fails leaves none."""
    tf = _tf()
    options = tf.io.TFRecordOptions(compression_type="GZIP" if gzip else "")
    try:
        with tf.io.TFRecordWriter(str(path), options=options) as writer:
            for record in records:
                writer.write(record)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _workers() -> int:
    """Threads for verifying shards: TensorFlow reads, decompresses and parses without
    Python's interpreter lock, so each core can check a shard."""
    return max(1, min(4, os.cpu_count() or 1))


def _in_threads(work: Callable[[Any], Any], items: Sequence[Any], workers: int) -> list[Any]:
    """``work`` over ``items`` on up to ``workers`` threads; results (or the first failure)
    in the items' order."""
    if workers <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    pool = ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="tfrecords")
    try:
        futures = [pool.submit(work, item) for item in items]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class ShardWriter:
    """Writes a dataset's shards split by split (``plan_shards``) in the calling thread and,
    given a parsing spec, checks each shard on a worker thread as soon as it is written (its
    SHA-256 taken, every record read back with ``tf.data`` and parsed, the count compared):
    hashing, TensorFlow's reading and parsing run without Python's interpreter lock, so
    checking one shard overlaps building and writing the next. Each file is written by one
    writer, in order: the bytes do not depend on the threads.

        with ShardWriter(out_dir, prefix, settings, gzip, spec) as writer:
            writer.add("train", records)
            ...
            shards = writer.finish()  # every shard verified; the first failure raised
    """

    def __init__(self, out_dir: Path, prefix: str, settings: ExportSettings, gzip: bool,
                 spec: Mapping[str, Any] | None = None) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir, self.prefix, self.settings, self.gzip = out_dir, prefix, settings, gzip
        self.spec = spec
        self.shards: list[dict[str, Any]] = []
        self._checks: list[Future[int]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._counter: Callable[[str], int] = lambda path: 0
        if spec is not None:
            self._counter = record_counter(spec, gzip)
            self._pool = ThreadPoolExecutor(_workers(), thread_name_prefix="tfrecords")

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def add(self, split: str, records: Sequence[bytes]) -> None:
        """Write one split's records as its shards (nothing for no records)."""
        for name, _, chunk in plan_shards({split: records}, self.prefix, self.settings):
            self.add_shard(name, split, chunk)

    def add_shard(self, name: str, split: str, records: Sequence[bytes]) -> dict[str, Any]:
        """Write one named shard (a post export's shards are planned by
        ``trainset.export.shards``); its description, checksum filled in once checked."""
        path = self.out_dir / name
        write_shard(path, records, self.gzip)
        shard = {"file": name, "split": split, "records": len(records),
                 "bytes": path.stat().st_size, "sha256": None}
        self.shards.append(shard)
        if self._pool is None:
            shard["sha256"] = file_sha256(path)
        else:  # the checksum too is computed on the worker (1 GB of images: seconds)
            self._checks.append(self._pool.submit(self._check, path, shard))
        return shard

    def _check(self, path: Path, shard: dict[str, Any]) -> int:
        shard["sha256"] = file_sha256(path)
        return _count_records(path, shard, self._counter)

    def finish(self) -> list[dict[str, Any]]:
        """The shards' descriptions, once every shard has been verified."""
        for check in self._checks:
            check.result()
        return self.shards


def write_shards(records_by_split: Mapping[str, Sequence[bytes]], prefix: str, out_dir: Path,
                 settings: ExportSettings, gzip: bool,
                 verify_with: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Write each split's records into shards (``plan_shards``); returns the shards'
    descriptions. With ``verify_with`` (a parsing spec) every shard is also verified, each as
    soon as it is written (``ShardWriter``)."""
    with ShardWriter(out_dir, prefix, settings, gzip, verify_with) as writer:
        for split, records in records_by_split.items():
            writer.add(split, records)
        return writer.finish()


_COUNTERS: dict[str, Callable[[str], int]] = {}


def record_counter(spec: Mapping[str, Any], gzip: bool) -> Callable[[str], int]:
    """A function that reads a shard with ``tf.data``, parses every record against the spec
    and returns how many there were. Traced once per spec and compression (and kept): each
    call runs as one graph without Python's interpreter lock, so threads can check shards
    side by side."""
    key = json.dumps([describe(spec), gzip], sort_keys=True)
    if key not in _COUNTERS:
        _COUNTERS[key] = _record_counter(spec, gzip)
    return _COUNTERS[key]


def _record_counter(spec: Mapping[str, Any], gzip: bool) -> Callable[[str], int]:
    tf = _tf()

    def parsed(batch: Any) -> Any:  # every record of the batch parsed; their number
        values = tf.io.parse_example(batch, spec)
        return tf.shape(next(iter(values.values())), out_type=tf.int64)[0]

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def count(path: Any) -> Any:
        dataset = tf.data.TFRecordDataset(path, compression_type="GZIP" if gzip else "")
        return dataset.batch(1024).map(parsed).reduce(tf.constant(0, tf.int64),
                                                      lambda total, n: total + n)

    graph = count.get_concrete_function()
    return lambda path: int(graph(tf.constant(path)))


def verify_shard(out_dir: Path, shard: Mapping[str, Any], spec: Mapping[str, Any],
                 gzip: bool, counter: Callable[[str], int] | None = None) -> int:
    """Read one shard back with ``tf.data`` and parse every record against the spec; the
    count and checksum must match what was written. Returns the records verified.
    ``counter``: ``record_counter(spec, gzip)``, made once for many shards."""
    path = out_dir / shard["file"]
    if not path.is_file():
        raise VerificationError(f"{shard['file']}: missing")
    if file_sha256(path) != shard["sha256"]:
        raise VerificationError(f"{shard['file']}: checksum differs from the manifest")
    return _count_records(path, shard, counter or record_counter(spec, gzip))


def _count_records(path: Path, shard: Mapping[str, Any], counter: Callable[[str], int]) -> int:
    """Every record of the shard read back and parsed; as many as were written."""
    tf = _tf()
    try:
        count = counter(str(path))
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as exc:
        message = str(exc).splitlines()[0][:200]
        raise VerificationError(f"{shard['file']}: unreadable ({message})") from None
    if count != shard["records"]:
        raise VerificationError(f"{shard['file']}: {count} records read back, "
                                f"{shard['records']} written")
    return count


def verify(out_dir: Path, shards: Iterable[Mapping[str, Any]], spec: Mapping[str, Any],
           gzip: bool) -> int:
    """Read every shard back with ``tf.data`` and parse every record against the spec;
    the count and checksum must match what was written. Returns records verified."""
    counter = record_counter(spec, gzip)
    return sum(_in_threads(lambda shard: verify_shard(out_dir, shard, spec, gzip, counter),
                           list(shards), _workers()))


def _author_columns(family: str, rows: Sequence[Mapping[str, Any]], ids: Sequence[Any],
                    vectors: Mapping[str, Sequence[float]] | None,
                    vector_size: int | None) -> AuthorColumns:
    """The rows' author features (``ids``: their post ids, in the rows' order)."""
    import numpy as np

    from trainset.export.columns import AuthorColumns

    shares, others = author_features.user_stats_columns(family, rows)
    if len(set(ids)) != len(ids):  # a post id twice: each gets its last row's figures,
        last = {post_id: i for i, post_id in enumerate(ids)}  # as user_stats keys them
        pick = np.fromiter((last[post_id] for post_id in ids), np.int64, count=len(ids))
        shares, others = shares[pick], others[pick]
    if vectors is None:
        return AuthorColumns(shares, others)
    matrix, mask = author_features.vector_columns(vectors, vector_size or 0, rows)
    return AuthorColumns(shares, others, matrix, mask)


IMAGE_BATCH = 512  # posts whose images are held at once while their records are built
TEXT_BATCH = 16384  # posts whose records are built at once without images
IMAGE_FETCHERS = 16  # images fetched at once (S3 GETs wait on the network, not the CPU)


def fetch_images(load_image: Callable[[str], bytes | None],
                 keys: Sequence[str | None], workers: int = IMAGE_FETCHERS,
                 ) -> list[bytes | None]:
    """Each key's image (None for no key), fetched on up to ``workers`` threads; in the
    keys' order."""
    wanted = [i for i, key in enumerate(keys) if key]
    out: list[bytes | None] = [None] * len(keys)
    if workers <= 1 or len(wanted) <= 1:
        for i in wanted:
            out[i] = load_image(keys[i])  # type: ignore[arg-type]
        return out
    with ThreadPoolExecutor(min(workers, len(wanted)), thread_name_prefix="images") as pool:
        for i, image in zip(wanted, pool.map(load_image, [keys[i] for i in wanted]),
                            strict=True):
            out[i] = image
    return out


def fetch_batch_images(load_image: Callable[[str], bytes | None],
                       keys: Sequence[str | None]) -> tuple[list[bytes | None], int]:
    """A batch's images (``fetch_images``) and how many of its keys found none."""
    images = fetch_images(load_image, keys)
    return images, sum(1 for key, image in zip(keys, images, strict=True)
                       if key and image is None)


def _split_records(rows: Sequence[Mapping[str, Any]], index: Sequence[int],
                   post_ids: Sequence[bytes], gate: str,
                   load_image: Callable[[str], bytes | None] | None,
                   tokens: Sequence[Any] | None, authors: AuthorColumns, study_slots: int,
                   detail_slots: int) -> tuple[list[bytes], list[int], list[int], int]:
    """One split's records in post id order (``index``: its rows, in the rows' order), how
    many records have each study and detailed label, and how many images were missing.
    With images (``load_image``), a batch of posts at a time: only that batch's images are
    held besides the records."""
    step = IMAGE_BATCH if load_image is not None else max(len(index), 1)
    records: list[bytes] = []
    labels, details = [0] * study_slots, [0] * detail_slots
    missing = 0
    for at in range(0, len(index), step):
        batch = index[at:at + step]
        images = None
        if load_image is not None:
            images, lost = fetch_batch_images(
                load_image, [rows[i].get("image_key") for i in batch])
            missing += lost
        built, batch_labels, batch_details = _batch_records(
            [rows[i] for i in batch], images,
            [tokens[i] for i in batch] if tokens is not None else None,
            authors.take(batch), gate, study_slots, detail_slots)
        records += built
        labels = [a + b for a, b in zip(labels, batch_labels, strict=True)]
        details = [a + b for a, b in zip(details, batch_details, strict=True)]
    ids = [post_ids[i] for i in index]
    order = sorted(range(len(ids)), key=ids.__getitem__)  # UTF-8 sorts as the strings do
    return [records[i] for i in order], labels, details, missing


def _batch_records(rows: Sequence[Mapping[str, Any]], images: Sequence[bytes | None] | None,
                   tokens: Sequence[Any] | None, authors: AuthorColumns, gate: str,
                   study_slots: int, detail_slots: int,
                   ) -> tuple[list[bytes], list[int], list[int]]:
    """A batch's records in its rows' order, with its label counts."""
    from trainset.export.columns import IrregularRows, PostColumns

    try:
        columns = PostColumns.from_rows(rows, images=images, tokens=tokens, authors=authors)
    except IrregularRows:
        columns = None
    if (columns is not None and columns.labels.shape[1] == study_slots
            and columns.detail_labels.shape[1] == detail_slots):
        return (columns.records(gate), columns.labels.sum(axis=0).tolist(),
                columns.detail_labels.sum(axis=0).tolist())
    # Rows that do not fit columns: row by row (the same bytes), counted as they always were.
    counts = [[0] * study_slots, [0] * detail_slots]
    for row in rows:
        for i, v in enumerate(row["study_labels"]):
            counts[0][i] += int(v)
        for i, v in enumerate(row["multi_hot"]):
            counts[1][i] += int(v)
    return (post_records(rows, gate, images=images, tokens=tokens, authors=authors),
            counts[0], counts[1])


def export_posts(
    rows: Sequence[Mapping[str, Any]],
    family: str,
    out_dir: Path,
    settings: ExportSettings | None = None,
    load_image: Callable[[str], bytes | None] | None = None,
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a family's records as sharded TFRecords with ``features.json`` and
    ``dataset.json``, verify every shard, and return the manifest. One writer, shard by
    shard as ``trainset.export.shards`` plans them (each post's shard a fixed function of
    its id's hash), so the export job's sharded path writes the same bytes."""
    from trainset.export import shards

    return shards.export_family(rows, family, out_dir, settings, load_image, source)


def export_faces(crops: Iterable[Mapping[str, Any]], out_dir: Path,
                 settings: ExportSettings | None = None,
                 source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Face-crop records for the child-age model. Each crop: post_id, crop (JPEG bytes),
    box [x, y, w, h], confidence, multi_hot (the post's child labels)."""
    settings = settings or ExportSettings()
    by_split: dict[str, list[bytes]] = {s: [] for s in SPLITS}
    age_counts = {s: [0] * len(FACE_AGES) for s in SPLITS}
    for crop in sorted(crops, key=lambda c: (str(c["post_id"]), list(c["box"]))):
        split = split_of(str(crop["post_id"]), settings.fractions, settings.salt)
        age = face_age(crop["multi_hot"])
        by_split[split].append(face_example(str(crop["post_id"]), crop["crop"], crop["box"],
                                            crop["confidence"], age))
        for i, v in enumerate(age):
            age_counts[split][i] += v
    gzip = bool(settings.gzip)
    shards = write_shards(by_split, "child_faces", out_dir, settings, gzip,
                          verify_with=face_spec())
    verified = sum(s["records"] for s in shards)  # each shard read back and counted
    manifest = {
        "family": "child_faces", "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": __version__, "records": verified,
        "compression": "GZIP" if gzip else None,
        "splits": {s: {"records": len(by_split[s]),
                       "ages": dict(zip(FACE_AGES, age_counts[s], strict=True))}
                   for s in SPLITS},
        "shards": shards, "settings": settings.as_dict(), "source": dict(source or {}),
        "verified": True,
    }
    (out_dir / "features.json").write_text(json.dumps(
        {"record": "face", "ages": list(FACE_AGES), "features": describe(face_spec())},
        indent=2))
    (out_dir / "dataset.json").write_text(json.dumps(manifest, indent=2, default=str))
    return manifest
