"""TFRecord export: records parse back with the documented spec, stable splits, shards,
verification, images, tokens and face records."""

import io
import json

import pytest
from PIL import Image

from trainset import codebook
from trainset.export.tfrecords import (
    FACE_AGES,
    ExportSettings,
    VerificationError,
    export_faces,
    export_posts,
    face_age,
    shard_names,
    split_of,
    verify,
)

tf = pytest.importorskip("tensorflow")


def rows(n, start=0, image_every=0):
    out = []
    for i in range(start, start + n):
        answers = {"is_child": i % 2 == 0, "age": ["1 to 4 years (toddler/pre-school)"]}
        if not answers["is_child"]:
            answers.pop("age")
        columns = codebook.label_columns("child", answers)
        out.append({"post_id": f"p{i:05d}", "text": f"post {i} about a toddler",
                    "keyword": "toddler", "image_key": f"img/{i}.jpg" if image_every and
                    i % image_every == 0 else None, **columns,
                    "study_soft_labels": [float(v) * 0.9 for v in columns["study_labels"]],
                    "soft_labels": [float(v) * 0.9 for v in columns["multi_hot"]],
                    "confidence": 0.95, "n_coders": 2, "sampling_weight": 12.5})
    return out


def jpeg(width=32, height=24):
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(out, "JPEG")
    return out.getvalue()


def read_back(out_dir):
    features = json.loads((out_dir / "features.json").read_text())["features"]
    spec = {}
    for name, f in features.items():
        dtype = getattr(tf, f["dtype"])
        spec[name] = tf.io.FixedLenFeature(f["shape"], dtype, default_value=f["default"])
    manifest = json.loads((out_dir / "dataset.json").read_text())
    files = [str(out_dir / s["file"]) for s in manifest["shards"]]
    ds = tf.data.TFRecordDataset(files, compression_type=manifest["compression"] or "")
    return [tf.io.parse_single_example(r, spec) for r in ds], manifest


def test_records_parse_back_with_the_documented_spec(tmp_path):
    manifest = export_posts(rows(50), "child", tmp_path, source={"quality_run": 7})
    records, _ = read_back(tmp_path)
    assert len(records) == manifest["records"] == 50
    by_id = {r["post_id"].numpy().decode(): r for r in records}
    first = by_id["p00000"]
    assert first["is_child"].numpy() == 1
    assert first["labels"].numpy().tolist() == [0, 1, 0, 0, 0, 1]  # the study's: any child
    assert first["soft_labels"].numpy().tolist() == pytest.approx([0, 0.9, 0, 0, 0, 0.9])
    assert first["detail_labels"].numpy().tolist() == [0, 1, 0, 0, 0, 0]
    assert first["detail_soft_labels"].numpy().tolist() == pytest.approx([0, 0.9, 0, 0, 0, 0])
    assert by_id["p00001"]["is_child"].numpy() == 0
    assert by_id["p00001"]["labels"].numpy().tolist() == [0] * 6
    assert first["sampling_weight"].numpy() == pytest.approx(12.5)
    assert first["text"].numpy().decode() == "post 0 about a toddler"
    assert manifest["compression"] == "GZIP" and manifest["source"] == {"quality_run": 7}
    assert sum(s["records"] for s in manifest["splits"].values()) == 50
    assert manifest["splits"]["train"]["labels"]["toddler"] + \
        manifest["splits"]["validation"]["labels"]["toddler"] + \
        manifest["splits"]["test"]["labels"]["toddler"] == 25


def test_splits_are_stable_as_data_grows_and_proportional(tmp_path):
    before = {r["post_id"]: split_of(r["post_id"]) for r in rows(200)}
    after = {r["post_id"]: split_of(r["post_id"]) for r in rows(400)}
    assert all(after[k] == v for k, v in before.items())
    counts = {s: list(after.values()).count(s) for s in ("train", "validation", "test")}
    assert 0.74 < counts["train"] / 400 < 0.86
    assert split_of("x", salt="a") == split_of("x", salt="a")


def test_shard_names_counts_and_determinism(tmp_path):
    settings = ExportSettings(readers=3, gzip=False)
    manifest = export_posts(rows(120), "child", tmp_path / "a", settings)
    train = [s for s in manifest["shards"] if s["split"] == "train"]
    assert [s["file"] for s in train] == shard_names("child", "train", 3)
    assert train[0]["file"] == "child-train-00000-of-00003.tfrecord"
    again = export_posts(rows(120), "child", tmp_path / "b", settings)
    assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in manifest["shards"]]
    small = export_posts(rows(120), "child", tmp_path / "c",
                         ExportSettings(shard_bytes=2000, gzip=False))
    assert len([s for s in small["shards"] if s["split"] == "train"]) > 3


def test_a_corrupted_shard_fails_verification(tmp_path):
    from trainset.export.tfrecords import feature_spec

    manifest = export_posts(rows(30), "child", tmp_path, ExportSettings(gzip=False))
    shard = manifest["shards"][0]
    path = tmp_path / shard["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    spec = feature_spec("child", False, None)
    with pytest.raises(VerificationError, match="checksum"):
        verify(tmp_path, manifest["shards"], spec, False)
    shard["sha256"] = __import__("hashlib").sha256(bytes(data)).hexdigest()
    with pytest.raises(VerificationError, match="unreadable"):
        verify(tmp_path, [shard], spec, False)


def test_images_are_embedded_and_uncompressed(tmp_path):
    image = jpeg()
    manifest = export_posts(rows(20, image_every=2), "child", tmp_path,
                            load_image=lambda key: image if key != "img/4.jpg" else None)
    assert manifest["images"] and manifest["compression"] is None
    assert manifest["missing_images"] == 1
    records, _ = read_back(tmp_path)
    by_id = {r["post_id"].numpy().decode(): r for r in records}
    with_image = by_id["p00002"]
    assert with_image["image/encoded"].numpy() == image
    assert (with_image["image/height"].numpy(), with_image["image/width"].numpy(),
            with_image["image/channels"].numpy()) == (24, 32, 3)
    assert by_id["p00001"]["image/encoded"].numpy() == b""
    decoded = tf.io.decode_jpeg(with_image["image/encoded"])
    assert decoded.shape == (24, 32, 3)


def test_token_ids_from_a_vocabulary_file(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "post", "about", "a",
                                "todd", "##ler", "0"]) + "\n")
    export_posts(rows(1), "child", tmp_path / "out",
                 ExportSettings(vocabulary=str(vocab), max_length=10))
    records, _ = read_back(tmp_path / "out")
    ids = records[0]["token_ids"].numpy().tolist()
    assert ids == [2, 4, 9, 5, 6, 7, 8, 3, 0, 0]
    assert records[0]["attention_mask"].numpy().tolist() == [1] * 8 + [0] * 2


def test_face_records_carry_the_studys_age_one_hot(tmp_path):
    assert face_age([0, 1, 0, 0, 0, 0]) == [0, 1, 0, 0, 0, 0, 0]
    assert face_age([0] * 6) == [0, 0, 0, 0, 0, 1, 0]  # no child in the post: adult
    assert face_age([1, 1, 0, 0, 0, 0]) == [0] * 6 + [1]  # mixed: none
    crops = [{"post_id": f"p{i}", "crop": jpeg(200, 200), "box": [1, 2, 60, 70],
              "confidence": 0.99, "multi_hot": [0, 1, 0, 0, 0, 0]} for i in range(5)]
    manifest = export_faces(crops, tmp_path)
    records, _ = read_back(tmp_path)
    assert manifest["records"] == len(records) == 5
    assert records[0]["age"].numpy().tolist()[FACE_AGES.index("toddler")] == 1
    assert records[0]["image/height"].numpy() == 200


def test_wire_encoding_matches_tensorflows_deterministic_serialisation():
    from trainset.export.tfrecords import _example, _feature

    values = {"text": "héllo", "empty": b"", "n": 7, "big": 2**40, "neg": -3, "f": 0.25,
              "ints": [0, 1, 300], "floats": [0.5, 1.5], "none": []}
    ours = _example({k: _feature(v) for k, v in values.items()})

    def tf_feature(v):
        if isinstance(v, str | bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[v.encode() if isinstance(v, str) else v]))
        if isinstance(v, float):
            return tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
        if isinstance(v, int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
        if v and isinstance(v[0], float):
            return tf.train.Feature(float_list=tf.train.FloatList(value=v))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=v))

    reference = tf.train.Example(features=tf.train.Features(
        feature={k: tf_feature(v) for k, v in values.items()})).SerializeToString(
        deterministic=True)
    assert ours == reference


def test_author_features_reach_the_records(tmp_path):
    import pandas as pd

    data = rows(6)
    for i, r in enumerate(data):
        r["author"] = "ann" if i < 4 else ("bob" if i == 4 else None)
    pd.DataFrame({"author": ["ann"], "vector": [[0.5, -1.0, 2.0]]}).to_parquet(
        tmp_path / "authors.parquet")
    manifest = export_posts(data, "child", tmp_path / "out",
                            ExportSettings(author_vectors=str(tmp_path / "authors.parquet")))
    assert manifest["author_vectors"]["posts_with_vector"] == 4
    records, _ = read_back(tmp_path / "out")
    by_id = {r["post_id"].numpy().decode(): r for r in records}
    # ann wrote p00000-p00003; p00000 and p00002 are children: for p00000 one of the other
    # three posts is a child.
    first = by_id["p00000"]
    assert first["user_posts"].numpy() == 3
    assert first["user_stats"].numpy()[0] == pytest.approx(1 / 3)  # any child
    assert first["vectors"].numpy().tolist() == [0.5, -1.0, 2.0]
    assert first["vectors_mask"].numpy() == 1
    lone = by_id["p00004"]
    assert lone["user_posts"].numpy() == 0 and lone["vectors_mask"].numpy() == 0
    assert lone["vectors"].numpy().tolist() == [0.0, 0.0, 0.0]
    meaning = json.loads((tmp_path / "out" / "features.json").read_text())["meaning"]
    assert "left out" in meaning["user_stats"] and "vectors_mask" in meaning
