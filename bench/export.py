"""Benchmark: TFRecord export throughput and verification.

Exports the study's 84,811 real child labels (bench/data or ../shared: labeled_tweets_child.csv;
post text is generated, the labels are real) and a 20,000-record image set through
``trainset.export.tfrecords.export_posts`` (build Examples, shard, write, verify). The reference, in
the same run, is a bare ``tf.io.TFRecordWriter`` loop over the same pre-built, serialised
Examples: the limit for writing. Prints records/s, MB/s, the ratio, and verification time.

    python bench/export.py [--images 20000]
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
from trainset.export import author_features, tfrecords  # noqa: E402


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
            rows.append({"post_id": f"{r['id']}-{i}", "text": f"generated post {i}: "
                         f"{'a child' if is_child else 'no child'} " + "lorem ipsum " * 8,
                         "keyword": "study", "image_key": None, **columns,
                         "study_soft_labels": [float(v) for v in columns["study_labels"]],
                         "soft_labels": [float(v) for v in columns["multi_hot"]],
                         "confidence": 0.97, "n_coders": 1, "sampling_weight": 1.0})
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
             "image_key": f"img/{i % 50}.jpg", **columns,
             "study_soft_labels": [0.0, 0.9, 0.0, 0.0, 0.0, 0.9],
             "soft_labels": [0.0, 0.9, 0.0, 0.0, 0.0, 0.0], "confidence": 0.9,
             "n_coders": 2, "sampling_weight": 2.0} for i in range(n)]
    return rows, images


def bare(records: list[bytes], path: Path, gzip: bool) -> float:
    import tensorflow as tf

    options = tf.io.TFRecordOptions(compression_type="GZIP" if gzip else "")
    start = time.perf_counter()
    with tf.io.TFRecordWriter(str(path), options=options) as writer:
        for r in records:
            writer.write(r)
    return time.perf_counter() - start


def run(name: str, rows: list[dict], load_image, tmp: Path) -> None:
    import tensorflow as tf  # noqa: F401 - import time kept out of the figures

    images = load_image is not None
    start = time.perf_counter()
    manifest = tfrecords.export_posts(rows, "child", tmp / name, load_image=load_image)
    total = time.perf_counter() - start
    size = sum(s["bytes"] for s in manifest["shards"]) / 1e6
    gzip = manifest["compression"] == "GZIP"
    start = time.perf_counter()
    spec = tfrecords.feature_spec("child", images, None)
    tfrecords.verify(tmp / name, manifest["shards"], spec, gzip)
    verify_s = time.perf_counter() - start
    start = time.perf_counter()
    stats = author_features.user_stats("child", rows)
    prebuilt = [tfrecords.post_example(r, load_image(r["image_key"]) if images else None,
                                       images, None, "is_child",
                                       tfrecords.AuthorFeatures(*stats[str(r["post_id"])]))
                for r in rows]
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    tfrecords.write_shards({"train": prebuilt}, "bench", tmp / f"{name}-shards",
                           tfrecords.ExportSettings(), gzip)
    shards_s = time.perf_counter() - start
    bare_s = bare(prebuilt, tmp / f"{name}-bare.tfrecord", gzip)
    print(f"  {name}: {len(rows):,} records, {size:.1f} MB"
          f"{' (GZIP)' if gzip else ''}")
    print(f"    export + verify (end to end)        {total:6.2f} s  {len(rows) / total:9,.0f} "
          f"rec/s  {size / total:6.1f} MB/s   verification {verify_s:.2f} s")
    print(f"    building the Examples                {build_s:6.2f} s  "
          f"{len(rows) / build_s:9,.0f} rec/s")
    print(f"    sharded writing of built Examples    {shards_s:6.2f} s  "
          f"{len(rows) / shards_s:9,.0f} rec/s  (sizes, checksums, names)")
    print(f"    bare TFRecordWriter, same Examples   {bare_s:6.2f} s  "
          f"{len(rows) / bare_s:9,.0f} rec/s  (the limit)")
    print(f"    throughput vs the bare writer: sharded writing {bare_s / shards_s:.2f}, "
          f"end to end {bare_s / total:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20_000)
    args = parser.parse_args()
    import tensorflow as tf  # noqa: F401 - warm the import before timing

    text = study_rows()
    pictures, blobs = image_rows(args.images)
    print("export benchmark (TFRecord, child family)")
    with tempfile.TemporaryDirectory() as tmp:
        run("study labels (text)", text, None, Path(tmp))
        run("image set", pictures, blobs.get, Path(tmp))
    print("  (targets: >= 0.8 of the bare writer's throughput; 84,811-record text export "
          "< 15 s including verification)")


if __name__ == "__main__":
    sys.exit(main())
