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
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trainset import __version__, codebook
from trainset.export import author_features
from trainset.text import file_sha256

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
    if 0 <= value < 128:
        return _SMALL[value]
    value &= (1 << 64) - 1  # int64 as protobuf sends it (negatives take ten bytes)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


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


@dataclass
class SplitRecords:
    records: list[bytes] = field(default_factory=list)
    label_counts: list[int] = field(default_factory=list)
    detail_counts: list[int] = field(default_factory=list)


def shard_names(prefix: str, split: str, count: int) -> list[str]:
    return [f"{prefix}-{split}-{i:05d}-of-{count:05d}.tfrecord" for i in range(count)]


def write_shards(records_by_split: Mapping[str, list[bytes]], prefix: str, out_dir: Path,
                 settings: ExportSettings, gzip: bool) -> list[dict[str, Any]]:
    """Write each split's records into shards of about ``shard_bytes`` (at least
    ``readers`` shards per non-empty split); returns the shards' descriptions."""
    tf = _tf()
    out_dir.mkdir(parents=True, exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP" if gzip else "")
    shards = []
    for split, records in records_by_split.items():
        if not records:
            continue
        size = sum(len(r) for r in records)
        count = max(settings.readers, math.ceil(size / settings.shard_bytes), 1)
        count = min(count, len(records))
        names = shard_names(prefix, split, count)
        per = math.ceil(len(records) / count)
        for i, name in enumerate(names):
            chunk = records[i * per:(i + 1) * per]
            path = out_dir / name
            with tf.io.TFRecordWriter(str(path), options=options) as writer:
                for record in chunk:
                    writer.write(record)
            shards.append({"file": name, "split": split, "records": len(chunk),
                           "bytes": path.stat().st_size, "sha256": file_sha256(path)})
    return shards



def verify(out_dir: Path, shards: Iterable[Mapping[str, Any]], spec: Mapping[str, Any],
           gzip: bool) -> int:
    """Read every shard back with ``tf.data`` and parse every record against the spec;
    the count and checksum must match what was written. Returns records verified."""
    tf = _tf()
    total = 0
    for shard in shards:
        path = out_dir / shard["file"]
        if not path.is_file():
            raise VerificationError(f"{shard['file']}: missing")
        if file_sha256(path) != shard["sha256"]:
            raise VerificationError(f"{shard['file']}: checksum differs from the manifest")
        dataset = tf.data.TFRecordDataset(str(path), compression_type="GZIP" if gzip else "")
        dataset = dataset.batch(1024).map(lambda batch: tf.io.parse_example(batch, spec))
        count = 0
        try:
            for parsed in dataset:
                count += int(tf.shape(next(iter(parsed.values())))[0])
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as exc:
            message = str(exc).splitlines()[0][:200]
            raise VerificationError(f"{shard['file']}: unreadable ({message})") from None
        if count != shard["records"]:
            raise VerificationError(f"{shard['file']}: {count} records read back, "
                                    f"{shard['records']} written")
        total += count
    return total


def export_posts(
    rows: Sequence[Mapping[str, Any]],
    family: str,
    out_dir: Path,
    settings: ExportSettings | None = None,
    load_image: Callable[[str], bytes | None] | None = None,
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a family's records as sharded TFRecords with ``features.json`` and
    ``dataset.json``, verify every shard, and return the manifest."""
    from trainset.export.wordpiece import Vocabulary

    settings = settings or ExportSettings()
    fam = codebook.family(family)
    images = load_image is not None and any(r.get("image_key") for r in rows)
    gzip = (not images) if settings.gzip is None else settings.gzip
    vocabulary = Vocabulary.from_file(Path(settings.vocabulary)) if settings.vocabulary else None
    max_length = settings.max_length if vocabulary else None
    stats = author_features.user_stats(family, rows)
    vectors = (author_features.load_vectors(Path(settings.author_vectors))
               if settings.author_vectors else None)
    vector_size = len(next(iter(vectors.values()))) if vectors else None
    spec = feature_spec(family, images, max_length, vector_size)
    authors_with_vectors = 0
    splits = {s: SplitRecords(label_counts=[0] * len(fam.study_slots),
                              detail_counts=[0] * len(fam.slots)) for s in SPLITS}
    missing_images = 0
    for row in sorted(rows, key=lambda r: str(r["post_id"])):
        image = None
        if images and row.get("image_key"):
            image = load_image(row["image_key"])
            missing_images += image is None
        tokens = vocabulary.encode(str(row["text"]), settings.max_length) if vocabulary else None
        split = splits[split_of(str(row["post_id"]), settings.fractions, settings.salt)]
        shares, others = stats[str(row["post_id"])]
        vector = vectors.get(str(row.get("author"))) if vectors is not None else None
        authors_with_vectors += vector is not None
        author = AuthorFeatures(shares, others,
                                (vector or [0.0] * vector_size) if vectors is not None else None,
                                vector is not None)
        split.records.append(post_example(row, image, images, tokens, fam.gate.name, author))
        for i, v in enumerate(row["study_labels"]):
            split.label_counts[i] += int(v)
        for i, v in enumerate(row["multi_hot"]):
            split.detail_counts[i] += int(v)
    shards = write_shards({s: r.records for s, r in splits.items()}, family, out_dir,
                          settings, gzip)
    verified = verify(out_dir, shards, spec, gzip)
    slot_names = [s.name for s in fam.study_slots]
    detail_names = [s.name for s in fam.slots]
    manifest = {
        "family": family,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": __version__,
        "records": verified,
        "compression": "GZIP" if gzip else None,
        "images": images,
        "missing_images": missing_images,
        "author_vectors": ({"file": Path(settings.author_vectors).name, "size": vector_size,
                            "posts_with_vector": authors_with_vectors}
                           if vectors is not None else None),
        "splits": {s: {"records": len(r.records),
                       "labels": dict(zip(slot_names, r.label_counts, strict=True)),
                       "detail_labels": dict(zip(detail_names, r.detail_counts, strict=True))}
                   for s, r in splits.items()},
        "shards": shards,
        "settings": settings.as_dict(),
        "source": dict(source or {}),
        "verified": True,
    }
    (out_dir / "features.json").write_text(json.dumps(
        {"record": "post", "family": family, "slots": slot_names,
         "detail_slots": detail_names, "gate": fam.gate.name, "features": describe(spec),
         "meaning": feature_meanings(family)}, indent=2))
    (out_dir / "dataset.json").write_text(json.dumps(manifest, indent=2, default=str))
    return manifest


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
    shards = write_shards(by_split, "child_faces", out_dir, settings, gzip)
    verified = verify(out_dir, shards, face_spec(), gzip)
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
