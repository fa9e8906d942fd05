"""The local image pipeline: moto's S3 server in-process, uploads trigger the real handlers;
and the `images` commands (upload, augment and faces backfills)."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import urllib.request

import pytest
from PIL import Image
from skimage import data

from trainset.blobs.s3 import forget_clients
from trainset.errors import TrainsetError
from trainset.images import keys as image_keys
from trainset.images.faces import MtcnnDetector
from trainset.local.images import ENDPOINT_FILE, running_stand_in, start_local_images


def jpeg(array) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


ASTRONAUT = jpeg(data.astronaut())
COFFEE = jpeg(data.coffee())


@pytest.fixture(scope="session")
def mtcnn() -> MtcnnDetector:
    return MtcnnDetector().load()


@pytest.fixture()
def local(trainset_home, mtcnn):
    images = start_local_images(poll_seconds=0.1, detector=mtcnn)
    yield images
    images.stop()


def keys(local, prefix: str) -> list[str]:
    found = local.client().list_objects_v2(Bucket=local.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in found.get("Contents", []))


def images_cli(argv: list[str]) -> int:
    """The `images` commands as `python -m trainset` parses and runs them."""
    from trainset.cli.images import register

    parser = argparse.ArgumentParser(prog="python -m trainset")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def trainset_command() -> list[str]:
    """`python -m trainset`, or, until cli.py registers the images commands, the same parser
    run through a small shim (the commands and their error handling are the same)."""
    from trainset.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "images" in commands.choices:
        return [sys.executable, "-m", "trainset"]
    shim = ("import sys, argparse\n"
            "from trainset.cli.images import register\n"
            "from trainset.errors import TrainsetError\n"
            "p = argparse.ArgumentParser(prog='python -m trainset')\n"
            "register(p.add_subparsers(dest='command', required=True))\n"
            "a = p.parse_args()\n"
            "try:\n    sys.exit(a.func(a))\n"
            "except TrainsetError as e:\n    print('error: ' + e.message, file=sys.stderr)\n"
            "    sys.exit(2)\n")
    return [sys.executable, "-c", shim]


def test_an_upload_gets_variants_and_face_crops_by_itself(local):
    assert local.endpoint_url.startswith("http://127.0.0.1:")
    assert local.stages == ["augment", "faces"]
    local.client().put_object(Bucket=local.bucket, Key="uploads/astronaut.jpg", Body=ASTRONAUT)
    assert local.wait_idle(60)
    digest = image_keys.content_hash(ASTRONAUT)
    assert len(keys(local, "variants/")) == 10
    assert keys(local, "faces/") == [image_keys.face_key(digest, 0)]
    assert keys(local, "manifests/") == [image_keys.manifest_key("augment", digest),
                                         image_keys.manifest_key("faces", digest)]


def test_a_presigned_put_like_the_api_hands_out_triggers_the_pipeline(local):
    from chalicelib import routes_images

    # The stand-in points the process (the API included) at itself.
    assert os.environ["TRAINSET_IMAGES_BUCKET"] == local.bucket
    assert os.environ["AWS_ENDPOINT_URL_S3"] == local.endpoint_url
    forget_clients()
    url = routes_images.images_store().upload_url("uploads/abc/coffee.jpg", "image/jpeg")
    assert url.startswith(local.endpoint_url)
    request = urllib.request.Request(url, data=COFFEE, method="PUT",
                                     headers={"Content-Type": "image/jpeg"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    forget_clients()
    assert local.wait_idle(60)
    digest = image_keys.content_hash(COFFEE)
    assert len(keys(local, f"variants/{digest[:2]}/")) == 10
    faces = json.loads(local.store().get(image_keys.manifest_key("faces", digest)))
    assert faces["outputs"] == []  # a cup of coffee has no face


def test_bad_upload_is_quarantined_and_the_trigger_keeps_going(local):
    client = local.client()
    client.put_object(Bucket=local.bucket, Key="uploads/notes.txt", Body=b"not a picture")
    client.put_object(Bucket=local.bucket, Key="uploads/coffee.jpg", Body=COFFEE)
    assert local.wait_idle(60)
    assert keys(local, "quarantine/") == ["quarantine/notes.txt",
                                         "quarantine/notes.txt.augment.error.json",
                                         "quarantine/notes.txt.faces.error.json"]
    assert len(keys(local, "variants/")) == 10


def test_upload_command_finds_the_running_stand_in(local, trainset_home, tmp_path):
    assert running_stand_in() == {"endpoint_url": local.endpoint_url, "bucket": local.bucket}
    photo = tmp_path / "class photo.jpg"
    photo.write_bytes(COFFEE)
    env = {k: v for k, v in os.environ.items()
           if k not in ("AWS_ENDPOINT_URL_S3", "TRAINSET_IMAGES_BUCKET", "AWS_ACCESS_KEY_ID",
                        "AWS_SECRET_ACCESS_KEY")}
    env["TRAINSET_HOME"] = str(trainset_home)
    result = subprocess.run([*trainset_command(), "images", "upload", str(photo),
                             "--prefix", "batch1"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "uploads/batch1/class photo.jpg" in result.stdout
    assert local.wait_idle(60)
    assert keys(local, "uploads/") == ["uploads/batch1/class photo.jpg"]
    assert len(keys(local, "variants/")) == 10

    missing = subprocess.run([*trainset_command(), "images", "upload", str(tmp_path / "no.jpg")],
                             env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "not a file" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_stop_restores_the_environment(trainset_home, mtcnn, monkeypatch):
    monkeypatch.delenv("TRAINSET_IMAGES_BUCKET", raising=False)
    before = dict(os.environ)
    images = start_local_images(faces=False, poll_seconds=0.1)
    assert (trainset_home / ENDPOINT_FILE).is_file() and images.stages == ["augment"]
    images.stop()
    assert dict(os.environ) == before
    assert not (trainset_home / ENDPOINT_FILE).exists() and running_stand_in() is None


def test_upload_without_a_bucket_is_explained(trainset_home, tmp_path, monkeypatch):
    monkeypatch.delenv("TRAINSET_IMAGES_BUCKET", raising=False)
    photo = tmp_path / "a.jpg"
    photo.write_bytes(COFFEE)
    with pytest.raises(TrainsetError, match="no images bucket"):
        images_cli(["images", "upload", str(photo)])


def test_augment_backfill_over_a_folder(tmp_path, capsys):
    src, dst = tmp_path / "photos", tmp_path / "out"
    (src / "trip").mkdir(parents=True)
    (src / "trip" / "coffee.jpg").write_bytes(COFFEE)
    (src / "broken.jpg").write_bytes(COFFEE[:500])
    (src / ".DS_Store").write_bytes(b"finder junk")
    assert images_cli(["images", "augment", str(src), str(dst)]) == 2  # one was quarantined
    out = capsys.readouterr()
    assert "2 file(s): 1 processed, 1 quarantined" in out.out
    assert "quarantined broken.jpg: truncated_image" in out.err
    digest = image_keys.content_hash(COFFEE)
    assert len(list((dst / "variants").rglob("*.jpg"))) == 10
    manifest = json.loads((dst / image_keys.manifest_key("augment", digest)).read_text())
    assert manifest["source_key"] == "trip/coffee.jpg"
    assert (dst / "quarantine" / "broken.jpg.augment.error.json").is_file()

    again = images_cli(["images", "augment", str(src), str(dst), "--size", "280"])
    assert again == 2 and "1 already processed" in capsys.readouterr().out
    images_cli(["images", "augment", str(src), str(dst), "--size", "128"])  # new settings
    assert "1 processed" in capsys.readouterr().out
    assert Image.open(dst / image_keys.variant_key(digest, "original")).size == (128, 128)


def test_faces_backfill_over_a_folder(tmp_path, mtcnn, capsys):
    src, dst = tmp_path / "photos", tmp_path / "out"
    src.mkdir()
    (src / "astronaut.jpg").write_bytes(ASTRONAUT)
    assert images_cli(["images", "faces", str(src), str(dst)]) == 0
    digest = image_keys.content_hash(ASTRONAUT)
    assert Image.open(dst / image_keys.face_key(digest, 0)).size == (200, 200)
    assert "1 processed" in capsys.readouterr().out


def test_backfill_input_errors_are_one_line(tmp_path):
    with pytest.raises(TrainsetError, match="is not a folder"):
        images_cli(["images", "augment", str(tmp_path / "nope"), str(tmp_path / "out")])
    with pytest.raises(TrainsetError, match="must be a bucket"):
        images_cli(["images", "augment", str(tmp_path), "s3://bucket/some/prefix"])
    with pytest.raises(TrainsetError, match="size must be"):
        images_cli(["images", "augment", str(tmp_path), str(tmp_path / "o"), "--size", "3"])
    with pytest.raises(SystemExit) as caught:  # argparse: usage line and exit 2
        images_cli(["images", "augment", str(tmp_path)])
    assert caught.value.code == 2
