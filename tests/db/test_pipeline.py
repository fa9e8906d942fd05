"""The export job end to end, locally: the state machine definition in moto's interpreter,
tasks in-process, files in the local S3 stand-in, the job recorded in the database."""

import json

import boto3
import pytest

from tests.factories import (
    CHILD_NO,
    CHILD_YES,
    make_campaign,
    make_coder,
    make_posts,
    service,
    submission,
)
from trainset.local import pipeline as local
from trainset.services.pipeline import start_job
from trainset.store.jobs import JobStore


@pytest.fixture()
def stand_in(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("TRAINSET_DATABASE_URL", database_url)
    monkeypatch.setenv("TRAINSET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("TRAINSET_EXPORTS_BUCKET", "trainset-exports")
    monkeypatch.delenv("TRAINSET_IMAGES_BUCKET", raising=False)
    url = local.ensure_stand_in()
    yield url
    local.stop_stand_in()


def labeled(db, n=8):
    make_campaign(db, make_posts(db, n), labels_per_post=2)
    for name in ("ana", "ben"):
        coder = make_coder(db, name)
        svc = service(db)
        while (task := svc.next_task(coder, "child")["task"]) is not None:
            answers = CHILD_YES if int(task["post_id"][-1]) % 2 == 0 else CHILD_NO
            svc.submit(coder, submission(task["post_id"], answers))


def run_job(db, families, copy_to=None):
    arns = {}
    job = start_job(JobStore(db), lambda job_id, fams: arns.update(
        {job_id: local.start(job_id, fams, copy_to)}), families, None)
    result = local.wait(arns[job["job_id"]], timeout=300)
    return job, result, JobStore(db).get(job["job_id"])


def test_local_run_end_to_end_matches_the_database(db, stand_in, tmp_path, monkeypatch):
    import pandas as pd

    labeled(db)
    # Half the posts have an author with an embedding: the job joins them (a local path).
    db.run("UPDATE posts SET author = CASE WHEN right(id, 1) IN ('0', '1', '2', '3')"
           " THEN 'ann' ELSE 'bob' END")
    pd.DataFrame({"author": ["ann"], "vector": [[0.25, 0.5]]}).to_parquet(
        tmp_path / "authors.parquet")
    monkeypatch.setenv("TRAINSET_EXPORT_AUTHOR_VECTORS", str(tmp_path / "authors.parquet"))
    job, result, record = run_job(db, ["child"], tmp_path / "exports")
    assert result["status"] == "SUCCEEDED", result
    assert record["status"] == "succeeded" and record["finished_at"] is not None
    kept = db.run("SELECT count(*) FROM screened_posts WHERE kept")[0][0]
    summary = record["output"]
    assert summary["records"] == kept == 8
    s3 = boto3.client("s3", endpoint_url=stand_in, region_name="us-east-1")
    manifest = json.loads(s3.get_object(Bucket="trainset-exports",
                                        Key=f"exports/{job['job_id']}/child/dataset.json")
                          ["Body"].read())
    assert manifest["records"] == kept
    assert sum(s["records"] for s in manifest["splits"].values()) == kept
    assert manifest["splits"]["train"]["labels"]["toddler"] + \
        manifest["splits"]["validation"]["labels"]["toddler"] + \
        manifest["splits"]["test"]["labels"]["toddler"] == 4
    keys = {o["Key"] for o in s3.list_objects_v2(
        Bucket="trainset-exports", Prefix=f"exports/{job['job_id']}/")["Contents"]}
    assert f"exports/{job['job_id']}/summary.json" in keys
    assert any(k.endswith("-of-00001.tfrecord") for k in keys)
    # The files are copied out of the in-memory stand-in, and read back with the README's
    # tf.data snippet.
    folder = local.download(job["job_id"], tmp_path / "exports") / "child"
    import pathlib

    import tensorflow as tf

    spec = {name: tf.io.FixedLenFeature(f["shape"], getattr(tf, f["dtype"]), f["default"])
            for name, f in json.loads((folder / "features.json").read_text())[
                "features"].items()}
    on_disk = json.loads((folder / "dataset.json").read_text())
    records = tf.data.TFRecordDataset(
        [str(pathlib.Path(folder) / s["file"]) for s in on_disk["shards"]],
        compression_type=on_disk["compression"] or "",
    ).map(lambda record: tf.io.parse_single_example(record, spec))
    read = list(records)
    assert len(read) == kept
    assert sum(int(r["vectors_mask"].numpy()) for r in read) == 4  # ann's posts
    assert all(r["user_posts"].numpy() == 3 for r in read)  # each author has 3 other posts


def test_a_failed_verification_fails_the_job_with_a_clear_error(db, stand_in, monkeypatch):
    from trainset.export import tfrecords

    labeled(db, 2)

    def corrupted(*args, **kwargs):
        raise tfrecords.VerificationError("child-train-00000-of-00001.tfrecord: unreadable")

    # The tasks run in this process: a shard's child of the Distributed Map fails.
    monkeypatch.setattr(tfrecords, "verify_shard", corrupted)
    job, result, record = run_job(db, ["child"])
    assert result["status"] == "FAILED"
    assert record["status"] == "failed"
    assert record["error"].startswith("VerificationError")
    assert "child-train-00000-of-00001.tfrecord: unreadable" in record["error"]


def test_a_scheduled_run_without_a_job_row_is_recorded(db, stand_in):
    labeled(db, 2)
    arn = local.start("export-scheduled-1", ["child"])  # as EventBridge would: no row first
    assert local.wait(arn, timeout=300)["status"] == "SUCCEEDED"
    record = JobStore(db).get("export-scheduled-1")
    assert record["status"] == "succeeded" and record["families"] == ["child"]
