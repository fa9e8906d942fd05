"""Post records built from columns: byte for byte the per-row records and TensorFlow's
deterministic serialisation on varied data (empty strings, unicode, missing images, multi-hot
vectors, awkward floats, author vectors with masks, token ids); the batch split and author
figures equal the per-row ones; an export's shards are the bytes the per-row path writes; and
a shard that fails verification on a worker thread fails the export."""

import hashlib
import io
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from trainset import codebook
from trainset.export import author_features, wire
from trainset.export.columns import AuthorColumns, IrregularRows, PostColumns
from trainset.export.tfrecords import (
    SPLITS,
    AuthorFeatures,
    ExportSettings,
    ShardWriter,
    VerificationError,
    _example,
    _feature,
    export_posts,
    feature_spec,
    post_example,
    post_records,
    split_indices,
    split_of,
)
from trainset.export.wordpiece import Vocabulary

tf = pytest.importorskip("tensorflow")

AGES = ["0 to less than 1 year (baby/infant)", "1 to 4 years (toddler/pre-school)",
        "5 to 10 years (elementary school)", "11 to 13 years (middle school)",
        "14 to 17 years (high school)", "Unsure"]
FLOATS = [0.0, -0.0, 0.1, 1 / 3, 0.9, 1.0, 1e-40, 1e-50, 3.4e38, -2.5, 123456.789]
IDS = ["p{:05d}", "пост-{}", "😀{}", "{}", "id with space {}", "Ünïcode-{}-ß"]
TEXTS = ["", "a", "naïve café 🙂 ", "x" * 127, "y" * 128, "é" * 70, "long " * 3300,
         "line\nbreak\ttab \x00 nul", "日本語のテキスト"]


def jpeg(width, height):
    out = io.BytesIO()
    Image.new("RGB", (width, height), (width % 256, 10, 10)).save(out, "JPEG")
    return out.getvalue()


def varied_rows(n=240, seed=3):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        is_child = rng.random() < 0.6
        answers = {"is_child": is_child}
        if is_child:
            answers["age"] = rng.sample(AGES, rng.randint(1, 3))
        columns = codebook.label_columns("child", answers)
        rows.append({
            "post_id": rng.choice(IDS).format(i), "text": rng.choice(TEXTS) + str(i),
            "keyword": rng.choice([None, "", "toddler", "é", "kw" * 40]),
            "image_key": None, "author": rng.choice([None, "", "ann", "bob", "cy", 7]),
            **columns,
            "study_soft_labels": [rng.choice(FLOATS) for _ in columns["study_labels"]],
            "soft_labels": [rng.choice(FLOATS) for _ in columns["multi_hot"]],
            "confidence": rng.choice(FLOATS), "n_coders": rng.choice([0, 1, 3, 127, 128, 2**40]),
            "sampling_weight": rng.choice([None, 0, 0.25, 12.5, 1e-40]),
            "calibrated_weight": rng.choice([None, 0.123456, 7.0]),
        })
    return rows


def vocabulary():
    return Vocabulary(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "long", "café", "x", "##x",
                       "naive", "line", "break"])


def tf_example(row, image, size, tokens, author):
    """The record built with TensorFlow's own protobuf classes."""
    def b(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def i(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    def f(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    feature = {
        "post_id": b(str(row["post_id"]).encode()), "text": b(str(row["text"]).encode()),
        "keyword": b(str(row["keyword"] or "").encode()), "is_child": i([int(row["gate"])]),
        "labels": i(row["study_labels"]), "soft_labels": f(row["study_soft_labels"]),
        "detail_labels": i(row["multi_hot"]), "detail_soft_labels": f(row["soft_labels"]),
        "confidence": f([row["confidence"]]), "n_coders": i([row["n_coders"]]),
        "sampling_weight": f([row["sampling_weight"] or 0.0]),
        "calibrated_weight": f([row["calibrated_weight"] or 0.0]),
        "image/encoded": b(image or b""), "image/height": i([size[0]]),
        "image/width": i([size[1]]), "image/channels": i([size[2]]),
        "token_ids": i(tokens[0]), "attention_mask": i(tokens[1]),
        "user_stats": f(author.stats), "user_posts": i([author.other_posts]),
        "vectors": f(author.vector), "vectors_mask": i([int(author.has_vector)]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(
        deterministic=True)


def test_column_records_equal_the_per_row_records_and_tensorflows():
    rows = varied_rows()
    pictures = [jpeg(32, 24), jpeg(7, 300), jpeg(640, 2)]
    images = [None if i % 4 == 0 else pictures[i % 3] for i in range(len(rows))]
    vocab = vocabulary()
    tokens = [vocab.encode(r["text"], 12) for r in rows]
    vectors = {"ann": [0.5, -1.0, 1e-40], "7": [1 / 3, 0.0, 3.4e38]}
    shares, others = author_features.user_stats_columns("child", rows)
    matrix, mask = author_features.vector_columns(vectors, 3, rows)
    authors = AuthorColumns(shares, others, matrix, mask)
    assert 0 < mask.sum() < len(rows) and 0 < (others > 0).sum() < len(rows)

    columns = PostColumns.from_rows(rows, images=images, tokens=tokens, authors=authors)
    built = columns.records("is_child")
    assert post_records(rows, "is_child", images=images, tokens=tokens,
                        authors=authors) == built
    stats = author_features.user_stats("child", rows)
    for k, row in enumerate(rows):
        vector = vectors.get(str(row["author"]))
        author = AuthorFeatures(*stats[row["post_id"]], vector or [0.0] * 3,
                                vector is not None)
        assert built[k] == post_example(row, images[k], True, tokens[k], "is_child",
                                        author), row["post_id"]
        size = (0, 0, 0)
        if images[k]:
            with Image.open(io.BytesIO(images[k])) as im:
                size = (im.height, im.width, 3)
        assert built[k] == tf_example(row, images[k], size, tokens[k], author)
    parsed = tf.io.parse_example(tf.constant(built), feature_spec("child", True, 12, 3))
    assert parsed["image/height"].numpy().tolist()[1:4] == [300, 2, 24]


def test_column_records_without_images_tokens_or_authors():
    rows = varied_rows(60, seed=5)
    built = post_records(rows, "is_child")
    assert built == [post_example(r, None, False, None, "is_child") for r in rows]
    assert post_records(rows[:0], "is_child") == []


def test_wire_examples_equal_the_per_row_encoder_on_random_columns():
    rng = np.random.default_rng(0)
    for trial in range(40):
        n = int(rng.integers(0, 60))
        columns, per_row = {}, [{} for _ in range(n)]
        for f in range(int(rng.integers(1, 8))):
            name = str(rng.choice(["a", "ab", "abc", "b", "t", "x" * 200, "é"])) + str(f % 3)
            kind = int(rng.integers(0, 4))
            if kind == 0:  # bytes, short (matrix) or long (joined as they are)
                top = int(rng.choice([1, 3, 64, 65, 20000]))
                values = [rng.integers(0, 256, int(rng.integers(0, top))).astype(np.uint8)
                          .tobytes() for _ in range(n)]
                columns[name] = values
                encoded = [_feature(v) for v in values]
            elif kind == 1:  # int64 lists, with negatives and ten-byte varints
                width = int(rng.integers(0, 5))
                scale = int(rng.choice([1, 2, 200, 2**20, 2**62]))
                values = rng.integers(-scale if rng.random() < 0.3 else 0, scale, (n, width))
                columns[name] = values
                encoded = [_feature([int(x) for x in v]) for v in values]
            elif kind == 2:
                values = rng.normal(size=(n, int(rng.integers(1, 5)))) * float(
                    rng.choice([1, 1e-3, 1e30]))
                columns[name] = values
                encoded = [_feature([float(x) for x in v]) for v in values]
            else:  # a scalar per row
                values = rng.integers(0, 2, n)
                columns[name] = values
                encoded = [_feature(int(v)) for v in values]
            for row, value in zip(per_row, encoded, strict=True):
                row[name] = value
        assert wire.examples(columns, n) == [_example(r) for r in per_row], trial


def test_rows_that_do_not_fit_columns_are_built_row_by_row():
    rows = varied_rows(30, seed=8)
    rows[4] = {**rows[4], "study_labels": rows[4]["study_labels"][:-1]}  # one label short
    with pytest.raises(IrregularRows):
        PostColumns.from_rows(rows)
    assert post_records(rows, "is_child") == [post_example(r, None, False, None, "is_child")
                                              for r in rows]
    rows = varied_rows(30, seed=8)
    rows[2] = {**rows[2], "n_coders": 2**70}  # beyond int64: the per-row encoder's bytes
    assert post_records(rows, "is_child") == [post_example(r, None, False, None, "is_child")
                                              for r in rows]


def test_values_the_per_row_records_refuse_are_refused():
    rows = varied_rows(10, seed=9)
    for bad, error in (({"confidence": None}, TypeError), ({"confidence": 1e39}, OverflowError),
                       ({"soft_labels": [None] * 6}, TypeError)):
        broken = [*rows[:3], {**rows[3], **bad}, *rows[4:]]
        with pytest.raises(error):
            post_example(broken[3], None, False, None, "is_child")
        with pytest.raises(error):
            post_records(broken, "is_child")


def test_split_indices_equal_split_of():
    ids = [fmt.format(i) for i in range(3000) for fmt in IDS[:2]] + ["", "ß", "\U0010ffff"]
    for fractions, salt in (((0.8, 0.1, 0.1), "trainset-split-v1"), ((0.7, 0.2, 0.1), "x"),
                            ((1.0, 0.0, 0.0), "y"), ((0.0, 0.5, 0.5), "z")):
        expected = [SPLITS.index(split_of(p, fractions, salt)) for p in ids]
        assert split_indices(ids, fractions, salt).tolist() == expected
        assert split_indices([p.encode() for p in ids], fractions, salt).tolist() == expected


def test_user_stats_columns_equal_user_stats():
    rows = varied_rows(300, seed=11)
    shares, others = author_features.user_stats_columns("child", rows)
    stats = author_features.user_stats("child", rows)
    assert shares.tolist() == [stats[r["post_id"]][0] for r in rows]
    assert others.tolist() == [stats[r["post_id"]][1] for r in rows]
    for r in rows:
        r["author"] = None
    shares, others = author_features.user_stats_columns("child", rows)
    assert not shares.any() and not others.any()


def reference_export(rows, settings, load_image, vocab_size=None, vectors=None):
    """The records as the per-row exporter built them, in its order, split by split."""
    vocab = Vocabulary.from_file(Path(settings.vocabulary)) if settings.vocabulary else None
    stats = author_features.user_stats("child", rows)
    by_split = {s: [] for s in SPLITS}
    for row in sorted(rows, key=lambda r: str(r["post_id"])):
        image = load_image(row["image_key"]) if load_image and row.get("image_key") else None
        vector = vectors.get(str(row.get("author"))) if vectors is not None else None
        author = AuthorFeatures(*stats[str(row["post_id"])],
                                (vector or [0.0] * vocab_size) if vectors is not None else None,
                                vector is not None)
        tokens = vocab.encode(str(row["text"]), settings.max_length) if vocab else None
        by_split[split_of(str(row["post_id"]), settings.fractions, settings.salt)].append(
            post_example(row, image, load_image is not None, tokens, "is_child", author))
    return by_split


def sha256s(manifest):
    return [(s["file"], s["records"], s["sha256"]) for s in manifest["shards"]]


def by_hash(by_split, manifest, settings):
    """The reference's records in the manifest's shards: a post in split shard
    ``slot * S >> 32``, its slot bytes 8-11 of the split's hash (records keep their order)."""
    import re

    from trainset.export.tfrecords import write_shard

    def shard(record, count):
        post_id = tf.train.Example.FromString(record).features.feature["post_id"] \
            .bytes_list.value[0]
        digest = hashlib.sha256(f"{settings.salt}:".encode() + post_id).digest()
        return int.from_bytes(digest[8:12], "big") * count >> 32

    return {s["file"]: [r for r in by_split[s["split"]]
                        if shard(r, int(re.search(r"of-(\d+)", s["file"])[1]))
                        == int(re.search(r"-(\d+)-of", s["file"])[1])]
            for s in manifest["shards"]}, write_shard


def test_export_shards_are_the_bytes_of_the_per_row_records(tmp_path):
    rows = varied_rows(400, seed=21)
    rows.append(dict(rows[7]))  # a post id twice: both records carry the same figures
    picture = jpeg(40, 30)
    for i, row in enumerate(rows):
        row["image_key"] = None if i % 3 == 0 else ("gone" if i % 7 == 0 else f"img/{i}")
    load = lambda key: None if key == "gone" else picture  # noqa: E731
    pd.DataFrame({"author": ["ann", "7"], "vector": [[0.5, -2.0], [1e-40, 3.0]]}).to_parquet(
        tmp_path / "vectors.parquet")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "long", "x"]) + "\n")
    cases = [
        (ExportSettings(readers=2), load, None),
        (ExportSettings(gzip=True, shard_bytes=20_000, author_vectors=str(
            tmp_path / "vectors.parquet")), None, {"ann": [0.5, -2.0], "7": [1e-40, 3.0]}),
        (ExportSettings(vocabulary=str(vocab), max_length=9, fractions=(0.5, 0.3, 0.2)),
         None, None),
    ]
    for k, (settings, load_image, vectors) in enumerate(cases):
        manifest = export_posts(rows, "child", tmp_path / f"new{k}", settings,
                                load_image=load_image)
        gzip = manifest["compression"] == "GZIP"
        shards, write_shard = by_hash(reference_export(rows, settings, load_image, 2, vectors),
                                      manifest, settings)
        old = tmp_path / f"old{k}"
        old.mkdir()
        for name, records in shards.items():
            write_shard(old / name, records, gzip)
        assert [(s["file"], s["records"]) for s in manifest["shards"]] == [
            (name, len(records)) for name, records in shards.items()], k
        assert [s["sha256"] for s in manifest["shards"]] == [
            hashlib.sha256((old / name).read_bytes()).hexdigest() for name in shards], k
        assert len(manifest["shards"]) >= 3
        for shard in manifest["shards"]:
            data = (tmp_path / f"new{k}" / shard["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == shard["sha256"]


def test_a_shard_that_does_not_parse_fails_on_the_worker_thread(tmp_path):
    spec = feature_spec("child", False, None)
    good = post_records(varied_rows(20), "is_child",
                        authors=AuthorColumns(np.zeros((20, 6)), np.zeros(20, np.int64)))
    bad = [_example({"post_id": _feature("x")})]  # no text, labels...: does not parse
    with ShardWriter(tmp_path, "child", ExportSettings(), False, spec) as writer:
        writer.add("train", good)
        writer.add("test", bad)
        with pytest.raises(VerificationError, match="child-test-00000-of-00001.*unreadable"):
            writer.finish()


def test_a_batch_of_any_rows_gives_the_same_records():
    """What a shard of the export builds: its rows' records, in any order, are those the
    whole family's batch gives them (author figures are the family's, taken per row)."""
    rows = varied_rows(80, seed=13)
    shares, others = author_features.user_stats_columns("child", rows)
    authors = AuthorColumns(shares, others)
    whole = PostColumns.from_rows(rows, authors=authors).records("is_child")
    order = sorted(range(len(rows)), key=lambda i: rows[i]["post_id"])
    shard = [i for i in order if i % 3 == 1]
    assert PostColumns.from_rows(rows, authors=authors).take(shard).records("is_child") == [
        whole[i] for i in shard]
    assert post_records([rows[i] for i in shard], "is_child",
                        authors=authors.take(shard)) == [whole[i] for i in shard]


def test_columns_read_back_from_their_arrays():
    """Stored in the smallest types that give the same records (floats as the float32 a
    record holds, small integers unsigned), read back in the columns' own types."""
    rows = varied_rows(40, seed=17)
    rows[5] = {**rows[5], "text": "", "keyword": None}
    rows[6] = {**rows[6], "n_coders": 2**40, "confidence": float("nan"),
               "sampling_weight": -0.0, "calibrated_weight": 1e-42}
    rows[7] = {**rows[7], "gate": -1, "confidence": float("inf"), "sampling_weight": 3.4e38}
    authors = AuthorColumns(np.arange(240.0).reshape(40, 6) / 7, np.arange(40) * 1000,
                            np.ones((40, 2)), np.arange(40) % 2 == 0)
    columns = PostColumns.from_rows(rows, authors=authors)
    stored = columns.to_arrays()
    assert stored["labels"].dtype == np.uint8 and stored["soft_labels"].dtype == np.float32
    assert stored["gate"].dtype == np.int64 and stored["authors__other_posts"].dtype == np.uint16
    for part in (columns, columns.rows(0, 0), columns.rows(3, 9).take([5, 0, 2])):
        again = PostColumns.from_arrays(np.load(_saved(part.to_arrays()), allow_pickle=False))
        assert again.records("is_child") == part.records("is_child")
        assert again.authors.has_vector.dtype == bool
        assert again.labels.dtype == np.int64 and again.confidence.dtype == np.float64


def test_a_value_too_large_for_a_record_is_refused_after_storing_too():
    rows = varied_rows(10, seed=19)
    rows[2] = {**rows[2], "confidence": 1e39}  # finite, beyond float32
    columns = PostColumns.from_rows(rows)
    assert columns.to_arrays()["confidence"].dtype == np.float64
    again = PostColumns.from_arrays(np.load(_saved(columns.to_arrays()), allow_pickle=False))
    for part in (columns, again):
        with pytest.raises(OverflowError):
            part.records("is_child")


def _saved(arrays):
    out = io.BytesIO()
    np.savez(out, **arrays)
    out.seek(0)
    return out
