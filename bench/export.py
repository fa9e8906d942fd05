"""Benchmark: TFRecord export throughput and verification.

Exports the study's 84,811 real child labels (bench/data or ../shared: labeled_tweets_child.csv;
post text is generated, the labels are real) and a 20,000-record image set through
``trainset.export.tfrecords.export_posts`` (build Examples from columns, shard, write, verify).
The reference is a bare ``tf.io.TFRecordWriter`` loop over the same pre-built, serialised
Examples (the limit for writing), timed right after each export in the same rounds. Prints
records/s, MB/s, the ratio against the bare writer, the time to build the Examples from
columns and row by row (the bytes are checked to be the same), and the verification time.

It then times the sharded path (``trainset.export.shards.export_sharded``: the plan by the
stable hash, each shard's input serialised as the export job stores it, shards built, written
and verified ``--workers`` at a time on threads or ``--processes``, the manifests merged)
against the single writer with the same settings (``--shard-mb`` per shard, so there are
several), checks that both wrote the same bytes, and prints the speedup and both ratios
against the bare writer. ``--image-latency-ms`` adds a wait to each image fetch, as an S3 GET
has (images are fetched 16 at a time within a shard).

    python bench/export.py [--images 20000] [--repeat 5] [--workers 2] [--processes]
                           [--shard-mb 8] [--image-latency-ms 0]
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT.parent / "shared" / "seed-data" / "labeled_tweets_child.csv"

from trainset import codebook  # noqa: E402
from trainset.export import author_features, shards, tfrecords  # noqa: E402


def study_rows() -> list[dict]:
    if not STUDY.exists():
        sys.exit(f"needs {STUDY} (the study's labels); run beside the shared folder")
    rows = []
    with STUDY.open() as handle:
        for i, r in enumerate(csv.DictReader(handle)):
            ages = [a for a in ast.literal_eval(r["age"]) if a]
            is_child = r["is_child"] == "True"
            answers = {"is_child": is_child, **({"age": ages or ["Unsure"]} if is_child else {})}
            columns = codebook.label_columns("child", answers)
            # The keys kept_rows gives (author and calibrated weight unknown here).
            rows.append({"post_id": f"{r['id']}-{i}", "text": f"generated post {i}: "
                         f"{'a child' if is_child else 'no child'} " + "lorem ipsum " * 8,
                         "keyword": "study", "image_key": None, "author": None, **columns,
                         "study_soft_labels": [float(v) for v in columns["study_labels"]],
                         "soft_labels": [float(v) for v in columns["multi_hot"]],
                         "confidence": 0.97, "n_coders": 1, "sampling_weight": 1.0,
                         "calibrated_weight": None})
    return rows


def image_rows(n: int) -> tuple[list[dict], dict[str, bytes]]:
    from PIL import Image

    images = {}
    for k in range(50):  # 50 distinct 280x280 JPEGs, reused
        out = io.BytesIO()
        Image.effect_noise((280, 280), 40 + k).convert("RGB").save(out, "JPEG", quality=85)
        images[f"img/{k}.jpg"] = out.getvalue()
    columns = codebook.label_columns(
        "child", {"is_child": True, "age": ["1 to 4 years (toddler/pre-school)"]})
    rows = [{"post_id": f"i{i:06d}", "text": f"image post {i}", "keyword": "img",
             "image_key": f"img/{i % 50}.jpg", "author": None, **columns,
             "study_soft_labels": [0.0, 0.9, 0.0, 0.0, 0.0, 0.9],
             "soft_labels": [0.0, 0.9, 0.0, 0.0, 0.0, 0.0], "confidence": 0.9,
             "n_coders": 2, "sampling_weight": 2.0, "calibrated_weight": None}
            for i in range(n)]
    return rows, images


def bare(records: list[bytes], path: Path, gzip: bool) -> float:
    import tensorflow as tf

    options = tf.io.TFRecordOptions(compression_type="GZIP" if gzip else "")
    start = time.perf_counter()
    with tf.io.TFRecordWriter(str(path), options=options) as writer:
        for r in records:
            writer.write(r)
    return time.perf_counter() - start


def timed(work, *args, **kwargs):
    """Seconds ``work(*args, **kwargs)`` took, and its result."""
    start = time.perf_counter()
    result = work(*args, **kwargs)
    return time.perf_counter() - start, result


def run(name: str, rows: list[dict], load_image, tmp: Path, repeat: int, workers: int = 2,
        processes: bool = False, shard_mb: float = 8.0) -> None:
    import statistics

    import tensorflow as tf  # noqa: F401 - import time kept out of the figures

    images = load_image is not None
    # The records of all splits, built both ways from the same inputs (in the rows' order).
    pictures = [load_image(r["image_key"]) for r in rows] if images else None
    post_ids = [str(r["post_id"]) for r in rows]

    def columns():
        authors = tfrecords._author_columns("child", rows, post_ids, None, None)
        return tfrecords.post_records(rows, "is_child", images=pictures, authors=authors)

    def per_row():
        stats = author_features.user_stats("child", rows)
        return [tfrecords.post_example(r, pictures[i] if images else None, images, None,
                                       "is_child",
                                       tfrecords.AuthorFeatures(*stats[str(r["post_id"])]))
                for i, r in enumerate(rows)]

    row_s, by_row = timed(per_row)
    build_s, prebuilt = timed(columns)
    same = prebuilt == by_row
    del by_row
    # Each round times every figure once, the export and the bare writer back to back, so a
    # round's ratio compares runs under the same load (the machine's other work only ever
    # slows a run down: the fastest of the rounds are the figures).
    out = tmp / name  # each round writes the same files again
    gzip = not images  # the export's default: text compressed, images not
    spec = tfrecords.feature_spec("child", images, None)
    figures: dict[str, list[float]] = {"total": [], "bare": [], "build": [build_s],
                                       "shards": [], "verify": []}
    ratios = []
    for _ in range(repeat):
        total, manifest = timed(tfrecords.export_posts, rows, "child", out,
                                load_image=load_image)
        bare_s, _ = timed(bare, prebuilt, tmp / f"{name}-bare.tfrecord", gzip)
        ratios.append(bare_s / total)
        figures["total"].append(total)
        figures["bare"].append(bare_s)
        figures["build"].append(timed(columns)[0])
        figures["shards"].append(timed(tfrecords.write_shards, {"train": prebuilt}, "bench",
                                       tmp / f"{name}-shards", tfrecords.ExportSettings(),
                                       gzip)[0])
        figures["verify"].append(timed(tfrecords.verify, out, manifest["shards"], spec,
                                       gzip)[0])
    assert manifest["compression"] == ("GZIP" if gzip else None)
    total, bare_s, build_s, shards_s, verify_s = (min(figures[k]) for k in (
        "total", "bare", "build", "shards", "verify"))
    size = sum(s["bytes"] for s in manifest["shards"]) / 1e6
    print(f"  {name}: {len(rows):,} records, {size:.1f} MB"
          f"{' (GZIP)' if gzip else ''}; fastest of {repeat} rounds")
    print(f"    export + verify (end to end)         {total:6.2f} s  {len(rows) / total:9,.0f} "
          f"rec/s  {size / total:6.1f} MB/s")
    print(f"    building the Examples from columns   {build_s:6.2f} s  "
          f"{len(rows) / build_s:9,.0f} rec/s")
    print(f"    building them row by row (before)    {row_s:6.2f} s  "
          f"{len(rows) / row_s:9,.0f} rec/s  (the same bytes: {'yes' if same else 'NO'})")
    print(f"    sharded writing of built Examples    {shards_s:6.2f} s  "
          f"{len(rows) / shards_s:9,.0f} rec/s  (sizes, checksums, names)")
    print(f"    verification alone                   {verify_s:6.2f} s  "
          f"{len(rows) / verify_s:9,.0f} rec/s")
    print(f"    bare TFRecordWriter, same Examples   {bare_s:6.2f} s  "
          f"{len(rows) / bare_s:9,.0f} rec/s  (the limit)")
    print(f"    throughput vs the bare writer: end to end {bare_s / total:.2f} (fastest runs; "
          f"median of the rounds' own ratios {statistics.median(ratios):.2f}), "
          f"sharded writing {bare_s / shards_s:.2f}")
    if not same:
        raise SystemExit("the column records differ from the row-by-row ones")
    sharded(name, rows, load_image, tmp, repeat, workers, processes, shard_mb, bare_s)


def sharded(name: str, rows: list[dict], load_image, tmp: Path, repeat: int, workers: int,
            processes: bool, shard_mb: float, bare_s: float) -> None:
    """The single writer and the sharded path with the same settings, in the same rounds."""
    settings = tfrecords.ExportSettings(shard_bytes=int(shard_mb * 2**20))
    serial, parallel = [], []
    for _ in range(repeat):
        one_s, one = timed(shards.export_family, rows, "child", tmp / f"{name}-one", settings,
                           load_image)
        many_s, many = timed(shards.export_sharded, rows, "child", tmp / f"{name}-many",
                             settings, load_image, workers=workers, processes=processes)
        serial.append(one_s)
        parallel.append(many_s)
    same = [(s["file"], s["sha256"]) for s in one["shards"]] == \
        [(s["file"], s["sha256"]) for s in many["shards"]]
    one_s, many_s = min(serial), min(parallel)
    how = f"{workers} {'processes' if processes else 'threads'}"
    print(f"    sharded path, {len(many['shards'])} shards of <= {shard_mb:g} MB (estimated), "
          f"{how}; same settings, fastest of {repeat}:")
    print(f"      single writer (serial)             {one_s:6.2f} s  "
          f"{len(rows) / one_s:9,.0f} rec/s  vs bare writer {bare_s / one_s:.2f}")
    print(f"      sharded, {how:<25} {many_s:6.2f} s  {len(rows) / many_s:9,.0f} rec/s  "
          f"vs bare writer {bare_s / many_s:.2f}")
    print(f"      speedup {one_s / many_s:.2f}x on {how}; the same bytes: "
          f"{'yes' if same else 'NO'}")
    if not same:
        raise SystemExit("the sharded path wrote other bytes than the single writer")


class SlowFetch:
    """``blobs.get`` with a wait first, as an S3 GET has."""

    def __init__(self, blobs: dict, seconds: float) -> None:
        self.blobs, self.seconds = blobs, seconds

    def __call__(self, key: str) -> bytes | None:
        time.sleep(self.seconds)
        return self.blobs.get(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5, help="rounds (each times every "
                        "figure once; the fastest counts)")
    parser.add_argument("--workers", type=int, default=2, help="shards at once (sharded path)")
    parser.add_argument("--processes", action="store_true",
                        help="the sharded path on processes (default: threads)")
    parser.add_argument("--shard-mb", type=float, default=8.0,
                        help="shard size for the single-writer vs sharded comparison")
    parser.add_argument("--image-latency-ms", type=float, default=0.0,
                        help="a wait added to every image fetch (an S3 GET's latency)")
    args = parser.parse_args()
    import tensorflow as tf  # noqa: F401 - warm the import before timing

    text = study_rows()
    pictures, blobs = image_rows(args.images)
    print("export benchmark (TFRecord, child family)")
    with tempfile.TemporaryDirectory() as tmp:
        options = dict(workers=args.workers, processes=args.processes, shard_mb=args.shard_mb)
        run("study labels (text)", text, None, Path(tmp), args.repeat, **options)
        if args.images:
            fetch = blobs.get if not args.image_latency_ms else SlowFetch(
                blobs, args.image_latency_ms / 1000)
            run("image set", pictures, fetch, Path(tmp), args.repeat, **options)
    print("  (targets: end to end >= 0.3 of the bare writer's throughput for text records; "
          "84,811-record text export < 15 s including verification)")


if __name__ == "__main__":
    sys.exit(main())
