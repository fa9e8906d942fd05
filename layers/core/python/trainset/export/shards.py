"""A family's post export as shards that can be built apart: planned by the stable hash,
built, written and verified one shard at a time, and merged into the family's manifest.

``plan_family`` decides, before any record is built, which shard file each post goes to: its
split (``tfrecords.split_of``) and, within the split, its *slot* (bytes 8-11 of the same
SHA-256 of the salted post id, a number in [0, 2**32)). A split of ``S`` shards puts a post in
shard ``slot * S >> 32``. ``S`` is ``readers * 2**k``, the smallest that keeps the split's
estimated bytes (text, labels, features, ``ExportSettings.image_bytes`` per image) under
``shard_bytes`` per shard: a post stays in its shard while ``S`` stays, and when the data
doubles past a shard's budget every shard splits in two and its posts go to one of the two
halves. Within a shard records are in post id order.

Author statistics are computed over the whole family in the plan (``user_stats_columns`` over
every row) and each shard carries its rows' figures, so a shard's records are the bytes the
whole family's build gives them.

Two ways run the same functions and give the same files byte for byte:

- ``export_family``: one writer, every shard in turn (``tfrecords.export_posts``);
- ``export_sharded``: the plan's shard inputs serialised (``shard_payload``: what the export
  job stores in S3 for each child of its Distributed Map: the shard's record columns, read
  from the family's rows once in the plan, as an ``.npz``), each shard built, written and
  verified on its own (``export_shard``; here on a pool of threads or processes), the pieces
  merged (``merge``). The export job's Plan, Shard and Merge tasks call these
  (``trainset.services.pipeline``); ``bench/export.py`` times both.
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from trainset import __version__, codebook
from trainset.export import author_features, tfrecords
from trainset.export.columns import (
    AuthorColumns,
    IrregularRows,
    PostColumns,
    pack_bytes,
    unpack_bytes,
)
from trainset.text import file_sha256

# The row fields a post record is built from (what a shard's input carries).
RECORD_FIELDS = ("post_id", "text", "keyword", "gate", "study_labels", "study_soft_labels",
                 "multi_hot", "soft_labels", "confidence", "sampling_weight",
                 "calibrated_weight", "n_coders", "image_key")


def shard_count(estimated_bytes: int, settings: tfrecords.ExportSettings) -> int:
    """Shards for a split of about ``estimated_bytes``: ``readers * 2**k``, the fewest that
    keep each under ``shard_bytes``."""
    need = max(1, math.ceil(estimated_bytes / settings.shard_bytes))
    count = max(1, settings.readers)
    while count < need:
        count *= 2
    return count


def shard_of(slots: np.ndarray, count: int) -> np.ndarray:
    """The shard of each slot in a split of ``count`` shards (``slot * count >> 32``)."""
    return ((slots.astype(np.uint64) * np.uint64(count)) >> np.uint64(32)).astype(np.int64)


@dataclass
class FamilyPlan:
    """A family's export, decided before any record is built."""

    family: str
    settings: tfrecords.ExportSettings
    rows: Sequence[Mapping[str, Any]]
    post_ids: list[bytes]
    images: bool  # the records carry image features
    gzip: bool
    max_length: int | None
    vector_size: int | None
    tokens: list[Any] | None
    authors: AuthorColumns
    split: np.ndarray  # each row's split (index into SPLITS)
    shard: np.ndarray  # each row's shard within its split
    counts: dict[str, int]  # shards of each split that has posts
    columns: PostColumns | None  # the records' columns, in the rows' order (None: the rows
    # do not fit columns and are built row by row)

    @property
    def gate(self) -> str:
        return codebook.family(self.family).gate.name

    def items(self) -> list[dict[str, Any]]:
        """The shards in the manifest's order (train, validation, test; by number)."""
        return [{"family": self.family, "split": split, "shard": i, "of": count,
                 "file": tfrecords.shard_names(self.family, split, count)[i]}
                for split, count in self.counts.items() for i in range(count)]

    def members(self, item: Mapping[str, Any]) -> list[int]:
        """The rows of one shard, in the rows' order."""
        k = tfrecords.SPLITS.index(item["split"])
        return np.flatnonzero((self.split == k) & (self.shard == item["shard"])).tolist()

    def meta(self) -> dict[str, Any]:
        """What the merge needs besides the shards (JSON)."""
        spec = tfrecords.feature_spec(self.family, self.images, self.max_length,
                                      self.vector_size)
        return {"family": self.family, "images": self.images, "gzip": self.gzip,
                "max_length": self.max_length, "vector_size": self.vector_size,
                "posts_with_vector": (int(self.authors.has_vector.sum())
                                      if self.authors.has_vector is not None else None),
                "settings": self.settings.as_dict(), "features": tfrecords.describe(spec),
                "shards": self.items()}


def _record_sizes(rows: Sequence[Mapping[str, Any]], columns: PostColumns | None,
                  images: bool, settings: tfrecords.ExportSettings, fixed: int) -> np.ndarray:
    """Each row's record size as the plan estimates it: its text's UTF-8 bytes, its
    keyword's characters, ``fixed`` and, with images, ``image_bytes`` for an image key (read
    from the columns when the rows fit them)."""
    n = len(rows)
    if columns is not None:
        text = np.fromiter(map(len, columns.text), np.int64, count=n)
        keyword = np.fromiter(map(len, map(bytes.decode, columns.keyword)), np.int64, count=n)
    else:
        text = np.fromiter((len(str(r["text"]).encode()) for r in rows), np.int64, count=n)
        keyword = np.fromiter((len(str(r.get("keyword") or "")) for r in rows), np.int64,
                              count=n)
    sizes = text + keyword + fixed
    if images:
        sizes += settings.image_bytes * np.fromiter(
            (bool(r.get("image_key")) for r in rows), np.int64, count=n)
    return sizes


def plan_family(rows: Sequence[Mapping[str, Any]], family: str,
                settings: tfrecords.ExportSettings | None = None,
                images_available: bool = False) -> FamilyPlan:
    """Each post's shard, the family's author figures, tokens and record layout.
    ``images_available``: images can be fetched (records carry image features when any row
    has an image key)."""
    from trainset.export.wordpiece import Vocabulary

    settings = settings or tfrecords.ExportSettings()
    fam = codebook.family(family)
    images = images_available and any(r.get("image_key") for r in rows)
    gzip = (not images) if settings.gzip is None else settings.gzip
    vocabulary = Vocabulary.from_file(Path(settings.vocabulary)) if settings.vocabulary else None
    max_length = settings.max_length if vocabulary else None
    vectors = (author_features.load_vectors(Path(settings.author_vectors))
               if settings.author_vectors else None)
    vector_size = len(next(iter(vectors.values()))) if vectors else None
    tokens = ([vocabulary.encode(str(r["text"]), settings.max_length) for r in rows]
              if vocabulary else None)
    post_ids = list(map(str.encode, map(str, map(itemgetter("post_id"), rows))))
    authors = tfrecords._author_columns(family, rows, post_ids, vectors, vector_size)
    split, slot = tfrecords.split_and_slot(post_ids, settings.fractions, settings.salt)
    # Per record besides text and image: ids, labels, weights, author figures, tokens.
    fixed = (200 + 12 * (len(fam.study_slots) + len(fam.slots))
             + 8 * len(author_features.USER_STATS[family])
             + (10 * max_length if max_length else 0) + 4 * (vector_size or 0))
    columns = _columns(fam, rows, post_ids, tokens, authors)
    sizes = _record_sizes(rows, columns, images, settings, fixed)
    shard = np.zeros(len(rows), np.int64)
    counts: dict[str, int] = {}
    for k, name in enumerate(tfrecords.SPLITS):
        in_split = np.flatnonzero(split == k)
        if not len(in_split):
            continue
        count = shard_count(int(sizes[in_split].sum()), settings)
        counts[name] = count
        shard[in_split] = shard_of(slot[in_split], count)
    return FamilyPlan(family, settings, rows, post_ids, images, gzip, max_length, vector_size,
                      tokens, authors, split, shard, counts, columns)


def _columns(fam: codebook.Family, rows: Sequence[Mapping[str, Any]], post_ids: list[bytes],
             tokens: list[Any] | None, authors: AuthorColumns) -> PostColumns | None:
    """The family's record columns, read from the rows in their order (reading them in
    another order, such as a shard's, takes twice as long: the rows' dictionaries are
    then far apart in memory); None if the rows do not fit the family's columns, or hold a
    value a record cannot (then the shard that holds it fails as it is built, and the
    export job names that shard)."""
    try:
        columns = PostColumns.from_rows(rows, tokens=tokens, authors=authors, post_ids=post_ids)
    except (IrregularRows, TypeError, ValueError):
        return None
    if (columns.labels.shape[1] != len(fam.study_slots)
            or columns.detail_labels.shape[1] != len(fam.slots)):
        return None
    return columns


@dataclass
class ShardInput:
    """What one shard is built from: its rows, and ``order``, the rows in post id order
    (the records' order).

    ``columns``: the records' columns (author figures and tokens included; images fetched
    as the records are built, a batch at a time, by ``image_keys``). A family whose rows do
    not fit columns (``IrregularRows``: a label list of another length, an integer beyond
    int64) keeps its ``rows`` with their ``authors`` and ``tokens``, built row by row."""

    item: dict[str, Any]  # family, split, shard, of, file
    images: bool
    gzip: bool
    max_length: int | None
    vector_size: int | None
    order: list[int]
    columns: PostColumns | None = None
    image_keys: list[bytes] | None = None  # with columns and images: b"" for no image
    rows: list[dict[str, Any]] | None = None
    authors: AuthorColumns | None = None
    tokens: list[Any] | None = None

    @classmethod
    def of(cls, plan: FamilyPlan, item: Mapping[str, Any]) -> ShardInput:
        """The shard's input from the plan: its rows in the family's order (gathering them
        in post id order, scattered in memory, takes longer than putting the built records
        in order), with ``order`` to sort the records."""
        index = plan.members(item)
        ids = [plan.post_ids[i] for i in index]  # UTF-8 sorts as the strings do; equal ids
        order = sorted(range(len(ids)), key=ids.__getitem__)  # keep the rows' order
        layout = {"item": dict(item), "images": plan.images, "gzip": plan.gzip,
                  "max_length": plan.max_length, "vector_size": plan.vector_size,
                  "order": order}
        if plan.columns is None:
            return cls(**layout, rows=[plan.rows[i] for i in index],
                       authors=plan.authors.take(index),
                       tokens=[plan.tokens[i] for i in index] if plan.tokens is not None
                       else None)
        keys = ([str(plan.rows[i].get("image_key") or "").encode() for i in index]
                if plan.images else None)
        return cls(**layout, columns=plan.columns.take(index), image_keys=keys)

    def __len__(self) -> int:
        return len(self.columns) if self.columns is not None else len(self.rows or ())


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def shard_payload(plan: FamilyPlan, item: Mapping[str, Any]) -> bytes:
    """One shard's input, serialised as the export job stores it: an ``.npz`` of its
    columns (``PostColumns.to_arrays``; a child reads them without a Python object per
    row) and their post id order, or, for rows that do not fit columns, of their JSON
    (floats round-trip exactly) with the author arrays."""
    part = ShardInput.of(plan, item)
    header: dict[str, Any] = {"item": part.item, "images": part.images, "gzip": part.gzip,
                              "max_length": part.max_length, "vector_size": part.vector_size}
    arrays: dict[str, np.ndarray] = {"order": np.asarray(part.order, np.int64)}
    if part.columns is not None:
        arrays.update(part.columns.to_arrays())
        if part.image_keys is not None:
            arrays["image_keys__bytes"], arrays["image_keys__ends"] = pack_bytes(
                part.image_keys)
    else:
        assert part.rows is not None and part.authors is not None
        header["rows"] = [{name: row.get(name) for name in RECORD_FIELDS} for row in part.rows]
        header["tokens"] = part.tokens
        arrays.update(part.authors.to_arrays())
    arrays["header"] = np.frombuffer(json.dumps(header, default=_json_default,
                                                separators=(",", ":")).encode(), np.uint8)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def load_payload(data: bytes) -> ShardInput:
    """The shard input ``shard_payload`` stored (no pickles are read)."""
    if data[:2] == b"\x1f\x8b":  # gzip: the JSON rows an earlier version stored
        raise ValueError("this shard input was stored by an earlier version of trainset "
                         "(gzipped JSON rows); start the export again")
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    header = json.loads(arrays.pop("header").tobytes())
    layout = {k: header[k] for k in ("item", "images", "gzip", "max_length", "vector_size")}
    layout["order"] = arrays.pop("order").tolist()
    if "rows" not in header:
        keys = (unpack_bytes(arrays.pop("image_keys__bytes"), arrays.pop("image_keys__ends"))
                if "image_keys__bytes" in arrays else None)
        return ShardInput(**layout, columns=PostColumns.from_arrays(arrays), image_keys=keys)
    return ShardInput(**layout, rows=header["rows"], authors=AuthorColumns.from_arrays(arrays),
                      tokens=header["tokens"])


def build_shard(part: ShardInput, load_image: Callable[[str], bytes | None] | None,
                ) -> tuple[list[bytes], dict[str, Any]]:
    """One shard's records in post id order (built in the rows' order, a batch at a time
    with only a batch's images held, then put in order), and its counts (records with each
    study and detailed label, missing images)."""
    fam = codebook.family(part.item["family"])
    load = load_image if part.images else None
    if part.columns is None:  # rows that do not fit columns: row by row
        assert part.rows is not None and part.authors is not None
        post_ids = list(map(str.encode, map(str, map(itemgetter("post_id"), part.rows))))
        records, labels, details, missing = tfrecords._split_records(
            part.rows, list(range(len(part.rows))), post_ids, fam.gate.name, load,
            part.tokens, part.authors, len(fam.study_slots), len(fam.slots))
        return records, {"labels": labels, "detail_labels": details, "missing_images": missing}
    columns = part.columns
    built: list[bytes] = []
    missing = 0
    step = tfrecords.IMAGE_BATCH if load is not None else tfrecords.TEXT_BATCH
    for at in range(0, len(columns), step):
        batch = columns.rows(at, at + step)
        if load is not None:
            images, lost = tfrecords.fetch_batch_images(
                load, [key.decode() or None for key in (part.image_keys or [])[at:at + step]])
            missing += lost
            batch = batch.with_images(images)
        built += batch.records(fam.gate.name)
    return [built[i] for i in part.order], {
        "labels": columns.labels.sum(axis=0).tolist(),
        "detail_labels": columns.detail_labels.sum(axis=0).tolist(), "missing_images": missing}


def export_shard(part: ShardInput, out_dir: Path,
                 load_image: Callable[[str], bytes | None] | None = None,
                 features: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build, write and verify one shard (``out_dir/<file>``): every record read back with
    ``tf.data`` and parsed against the family's spec (``features``: ``features.json``'s
    description; made from the input when not given). Returns the shard's piece of the
    manifest."""
    spec = (tfrecords.spec_from_description(features) if features is not None else
            tfrecords.feature_spec(part.item["family"], part.images, part.max_length,
                                   part.vector_size))
    records, counts = build_shard(part, load_image)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / part.item["file"]
    tfrecords.write_shard(path, records, part.gzip)
    shard = {"file": part.item["file"], "split": part.item["split"], "records": len(records),
             "bytes": path.stat().st_size, "sha256": file_sha256(path)}
    tfrecords.verify_shard(out_dir, shard, spec, part.gzip,
                           tfrecords.record_counter(spec, part.gzip))
    return {**shard, "shard": part.item["shard"], **counts}


def merge(meta: Mapping[str, Any], pieces: Iterable[Mapping[str, Any]], out_dir: Path,
          source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The family's ``dataset.json`` and ``features.json`` from its shards' pieces (every
    shard of the plan, in any order); returns the manifest."""
    family = meta["family"]
    fam = codebook.family(family)
    by_file = {p["file"]: p for p in pieces}
    missing = [s["file"] for s in meta["shards"] if s["file"] not in by_file]
    if missing:
        raise tfrecords.VerificationError(f"shards not exported: {', '.join(missing[:5])}")
    ordered = [by_file[s["file"]] for s in meta["shards"]]
    slot_names = [s.name for s in fam.study_slots]
    detail_names = [s.name for s in fam.slots]
    splits: dict[str, Any] = {}
    for split in tfrecords.SPLITS:  # every split, an empty one with zeros
        mine = [p for p in ordered if p["split"] == split]
        labels = [sum(p["labels"][i] for p in mine) for i in range(len(slot_names))]
        details = [sum(p["detail_labels"][i] for p in mine) for i in range(len(detail_names))]
        splits[split] = {"records": sum(p["records"] for p in mine),
                         "labels": dict(zip(slot_names, map(int, labels), strict=True)),
                         "detail_labels": dict(zip(detail_names, map(int, details),
                                                   strict=True))}
    settings = meta["settings"]
    manifest = {
        "family": family,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": __version__,
        "records": sum(p["records"] for p in ordered),
        "compression": "GZIP" if meta["gzip"] else None,
        "images": meta["images"],
        "missing_images": sum(p["missing_images"] for p in ordered),
        "author_vectors": ({"file": Path(settings["author_vectors"]).name,
                            "size": meta["vector_size"],
                            "posts_with_vector": meta["posts_with_vector"]}
                           if settings.get("author_vectors") else None),
        "splits": splits,
        "shards": [{k: p[k] for k in ("file", "split", "records", "bytes", "sha256")}
                   for p in ordered],
        "settings": settings,
        "source": dict(source or {}),
        "verified": True,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "features.json").write_text(features_json(meta))
    (out_dir / "dataset.json").write_text(json.dumps(manifest, indent=2, default=str))
    return manifest


def features_json(meta: Mapping[str, Any]) -> str:
    fam = codebook.family(meta["family"])
    return json.dumps(
        {"record": "post", "family": meta["family"], "slots": [s.name for s in fam.study_slots],
         "detail_slots": [s.name for s in fam.slots], "gate": fam.gate.name,
         "features": meta["features"], "meaning": tfrecords.feature_meanings(meta["family"])},
        indent=2)


def export_family(rows: Sequence[Mapping[str, Any]], family: str, out_dir: Path,
                  settings: tfrecords.ExportSettings | None = None,
                  load_image: Callable[[str], bytes | None] | None = None,
                  source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The single writer: every shard of the plan built and written in turn, each verified
    on a worker thread while the next is built (``tfrecords.ShardWriter``)."""
    plan = plan_family(rows, family, settings, load_image is not None)
    meta = plan.meta()
    spec = tfrecords.spec_from_description(meta["features"])
    pieces = []
    with tfrecords.ShardWriter(out_dir, family, plan.settings, plan.gzip, spec) as writer:
        for item in plan.items():
            records, counts = build_shard(ShardInput.of(plan, item), load_image)
            shard = writer.add_shard(item["file"], item["split"], records)
            pieces.append((shard, counts))
            del records
        writer.finish()
    return merge(meta, [{**shard, **counts} for shard, counts in pieces], out_dir, source)


def _run_payload(args: tuple[bytes, str, Any, Mapping[str, Any]]) -> dict[str, Any]:
    payload, out_dir, load_image, features = args
    return export_shard(load_payload(payload), Path(out_dir), load_image, features)


def export_sharded(rows: Sequence[Mapping[str, Any]], family: str, out_dir: Path,
                   settings: tfrecords.ExportSettings | None = None,
                   load_image: Callable[[str], bytes | None] | None = None,
                   source: Mapping[str, Any] | None = None, *, workers: int = 4,
                   processes: bool = False) -> dict[str, Any]:
    """The sharded path on one machine: plan, each shard's input serialised as the export
    job stores it, the shards built/written/verified ``workers`` at a time (threads, or
    processes: then ``load_image`` must pickle), the pieces merged. The same files as
    ``export_family``, byte for byte (``dataset.json`` but for its ``created_at``)."""
    plan = plan_family(rows, family, settings, load_image is not None)
    meta = plan.meta()
    jobs = [(shard_payload(plan, item), str(out_dir), load_image, meta["features"])
            for item in plan.items()]
    del plan
    if workers <= 1 or len(jobs) <= 1:
        pieces = [_run_payload(job) for job in jobs]
    else:
        count = min(workers, len(jobs))
        # Processes are spawned: a fork of a process where TensorFlow runs threads can hang.
        pool = (ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn"))
                if processes else ThreadPoolExecutor(count))
        with pool:
            pieces = list(pool.map(_run_payload, jobs))
    return merge(meta, pieces, out_dir, source)
