"""The sharded export: shards planned by the stable hash (a post keeps its shard as data
grows; when a split's shard count doubles, a post moves only into one half of its shard), and
the sharded path (each shard's input serialised as the export job stores it, shards built on a
pool, pieces merged) writes the single writer's files byte for byte."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from tests.unit.test_export_columns import jpeg, varied_rows
from trainset.export import shards
from trainset.export.tfrecords import ExportSettings, VerificationError, split_of

pytest.importorskip("tensorflow")


def files(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def without_time(manifest):
    return {k: v for k, v in manifest.items() if k != "created_at"}


def test_a_post_keeps_its_shard_as_data_grows():
    settings = ExportSettings(shard_bytes=3000)
    small = varied_rows(150, seed=5)
    grown = small + [{**r, "post_id": f"new-{i}"} for i, r in enumerate(varied_rows(150, 6))]
    before = shards.plan_family(small, "child", settings)
    after = shards.plan_family(grown, "child", settings)
    where = {r["post_id"]: (before.split[i], before.shard[i]) for i, r in enumerate(small)}
    for i, row in enumerate(grown[:150]):
        split, shard = where[row["post_id"]]
        name = ("train", "validation", "test")[split]
        assert after.split[i] == split
        assert split_of(row["post_id"]) == name
        grew = after.counts[name] // before.counts[name]
        assert grew in (1, 2, 4, 8)  # counts only double, so shards only split
        assert after.shard[i] // grew == shard
    assert after.counts["train"] > before.counts["train"]


def test_shard_counts_are_readers_times_a_power_of_two():
    settings = ExportSettings(readers=3, shard_bytes=100)
    assert [shards.shard_count(n, settings) for n in (1, 300, 301, 1200, 1201)] == \
        [3, 3, 6, 12, 24]
    slots = np.array([0, 2**31 - 1, 2**31, 2**32 - 1], np.uint64)
    assert shards.shard_of(slots, 2).tolist() == [0, 0, 1, 1]
    assert shards.shard_of(slots, 3).tolist() == [0, 1, 1, 2]


@pytest.mark.parametrize("processes", [False, True])
def test_the_sharded_path_writes_the_single_writers_bytes(tmp_path, processes):
    rows = varied_rows(300, seed=21)
    rows.append(dict(rows[7]))  # a post id twice
    for i, row in enumerate(rows):
        row["image_key"] = None if i % 3 == 0 else ("gone" if i % 7 == 0 else f"img/{i % 5}")
    pd.DataFrame({"author": ["ann", "7"], "vector": [[0.5, -2.0], [1e-40, 3.0]]}).to_parquet(
        tmp_path / "vectors.parquet")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "long", "x"]) + "\n")
    settings = ExportSettings(readers=2, shard_bytes=40_000, image_bytes=800,
                              author_vectors=str(tmp_path / "vectors.parquet"),
                              vocabulary=str(vocab), max_length=9)
    load = None if processes else _Images()
    single = shards.export_family(rows, "child", tmp_path / "single", settings, load,
                                  {"run": 1})
    sharded = shards.export_sharded(rows, "child", tmp_path / "sharded", settings, load,
                                    {"run": 1}, workers=3, processes=processes)
    assert len(single["shards"]) > 6  # several shards per split
    assert without_time(sharded) == without_time(single)
    one, other = files(tmp_path / "single"), files(tmp_path / "sharded")
    assert set(one) == set(other) == {s["file"] for s in single["shards"]} | {
        "features.json", "dataset.json"}
    assert {k: v for k, v in one.items() if k != "dataset.json"} == \
        {k: v for k, v in other.items() if k != "dataset.json"}
    on_disk = json.loads((tmp_path / "sharded" / "dataset.json").read_text())
    assert without_time(on_disk) == without_time(json.loads(json.dumps(single, default=str)))
    assert single["records"] == len(rows)
    if not processes:
        assert single["images"] and single["missing_images"] > 0
    assert single["author_vectors"]["posts_with_vector"] > 0


class _Images:
    def __init__(self):
        self.picture = jpeg(40, 30)

    def __call__(self, key):
        return None if key == "gone" else self.picture


def test_a_shard_missing_from_the_merge_fails_it(tmp_path):
    rows = varied_rows(60, seed=2)
    plan = shards.plan_family(rows, "child", ExportSettings(readers=2))
    meta = plan.meta()
    pieces = [shards.export_shard(shards.load_payload(shards.shard_payload(plan, item)),
                                  tmp_path) for item in plan.items()[1:]]
    with pytest.raises(VerificationError, match="shards not exported: child-train-00000"):
        shards.merge(meta, pieces, tmp_path)


@pytest.mark.parametrize("case", ["empty shards", "rows that do not fit columns"])
def test_every_kind_of_stored_shard_input_gives_the_single_writers_bytes(tmp_path, case):
    """A shard's stored input is its columns, or the rows themselves when they do not fit
    columns (built row by row); a shard can also have no posts (several shards per split)."""
    if case == "empty shards":
        rows, settings = varied_rows(5, seed=3), ExportSettings(readers=8)
    else:
        rows, settings = varied_rows(80, seed=4), ExportSettings(readers=2)
        rows[3] = {**rows[3], "n_coders": 2**70}  # beyond int64: no int64 column holds it
    plan = shards.plan_family(rows, "child", settings)
    assert (plan.columns is None) == (case != "empty shards")
    single = shards.export_family(rows, "child", tmp_path / "single", settings)
    stored = [shards.load_payload(shards.shard_payload(plan, item)) for item in plan.items()]
    assert all((part.columns is None) == (plan.columns is None) for part in stored)
    if case == "empty shards":
        assert min(map(len, stored)) == 0
    pieces = [shards.export_shard(part, tmp_path / "sharded") for part in stored]
    sharded = shards.merge(plan.meta(), pieces, tmp_path / "sharded")
    assert without_time(sharded) == without_time(single)
    assert files(tmp_path / "sharded") == files(tmp_path / "single") | {
        "dataset.json": files(tmp_path / "sharded")["dataset.json"]}
    assert single["records"] == len(rows)


def test_a_value_no_record_can_hold_fails_its_shard_and_leaves_no_file(tmp_path):
    """The plan does not fail on a bad value: the shard that holds it does, as it is built,
    and neither writer leaves a partial file behind."""
    rows = varied_rows(60, seed=12)
    rows[9] = {**rows[9], "confidence": None}
    settings = ExportSettings(readers=2)
    plan = shards.plan_family(rows, "child", settings)
    bad = next(item for item in plan.items() if 9 in plan.members(item))
    for item in plan.items():
        part = shards.load_payload(shards.shard_payload(plan, item))
        if item["file"] == bad["file"]:
            with pytest.raises(TypeError):
                shards.export_shard(part, tmp_path / "sharded")
        else:
            shards.export_shard(part, tmp_path / "sharded")
    assert bad["file"] not in files(tmp_path / "sharded")
    with pytest.raises(TypeError):
        shards.export_family(rows, "child", tmp_path / "single", settings)
    assert not any(name.endswith(".tfrecord") and name >= bad["file"]
                   for name in files(tmp_path / "single"))


def test_an_input_stored_by_an_earlier_version_is_refused_clearly():
    """A job planned before an upgrade stored gzipped JSON rows; its children say so."""
    import gzip

    with pytest.raises(ValueError, match="earlier version.*start the export again"):
        shards.load_payload(gzip.compress(b'{"rows": []}'))
