"""Face clipping: the keep/crop rules with a scripted detector, and real MTCNN on real photos."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from trainset.images.augment import NotAnImage
from trainset.images.faces import (
    Detection,
    FaceSettings,
    MtcnnDetector,
    clip_faces_bytes,
    crop_box,
    find_faces,
)


@pytest.fixture(scope="session")
def mtcnn() -> MtcnnDetector:
    """One loaded MTCNN for the session (the model is cached per process, too)."""
    return MtcnnDetector().load()


def jpeg(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(out, format="JPEG", quality=92)
    return out.getvalue()


class ScriptedDetector:
    """A stand-in detector that reports fixed faces (in the pixels of what it is given)."""

    name = "scripted"

    def __init__(self, faces: list[Detection]) -> None:
        self.faces = faces
        self.seen: list[tuple[int, int]] = []

    def detect(self, rgb):
        self.seen.append((rgb.shape[1], rgb.shape[0]))
        return list(self.faces)


def test_small_and_unsure_faces_are_dropped_and_order_is_left_to_right():
    detector = ScriptedDetector([
        Detection((300, 40, 80, 100), 0.99),
        Detection((20, 50, 60, 70), 0.97),
        Detection((150, 10, 40, 45), 0.99),  # 40 px wide: under 50
        Detection((200, 200, 90, 90), 0.60),  # unsure
    ])
    kept = find_faces(Image.new("RGB", (500, 400)), detector, FaceSettings())
    assert [d.box for d in kept] == [(20, 50, 60, 70), (300, 40, 80, 100)]


def test_detection_runs_on_a_smaller_copy_and_boxes_come_back_in_source_pixels():
    settings = FaceSettings(detect_max_side=1000)
    detector = ScriptedDetector([Detection((100, 50, 30, 40), 0.95, {"nose": (115, 70)})])
    kept = find_faces(Image.new("RGB", (4000, 2000)), detector, settings)
    # 4000 px would be shrunk to 1000, but a 50-px face must stay >= 24 px: scale 0.48.
    assert detector.seen == [(1920, 960)]
    scale = 1 / 0.48
    assert kept[0].box == (round(100 * scale), round(50 * scale), round(30 * scale),
                           round(40 * scale))
    assert kept[0].keypoints["nose"] == (round(115 * scale), round(70 * scale))


def test_crops_are_squares_around_the_box():
    settings = FaceSettings(margin=0.25)
    assert crop_box(Detection((100, 100, 60, 80), 1.0), FaceSettings()) == (90, 100, 170, 180)
    assert crop_box(Detection((100, 100, 60, 80), 1.0), settings) == (70, 80, 190, 200)
    detector = ScriptedDetector([Detection((0, 0, 60, 80), 0.99)])  # at the image's corner
    result = clip_faces_bytes(jpeg(np.full((300, 300, 3), 200, "uint8")), detector)
    (face,) = result.faces
    crop = Image.open(io.BytesIO(face.data))
    assert crop.size == (200, 200) and face.crop_box == (-10, 0, 70, 80)
    assert np.asarray(crop)[100, :10].max() < 30  # the part past the edge is black


def test_tiny_images_and_bad_settings():
    detector = ScriptedDetector([Detection((0, 0, 60, 60), 0.99)])
    assert find_faces(Image.new("RGB", (40, 400)), detector, FaceSettings()) == []
    assert detector.seen == []  # never handed to the detector
    with pytest.raises(ValueError):
        FaceSettings(min_size=10)
    with pytest.raises(NotAnImage):
        clip_faces_bytes(b"not an image", detector)


def test_astronaut_gives_exactly_one_200px_face(mtcnn):
    result = clip_faces_bytes(jpeg(data.astronaut()), mtcnn)
    assert len(result.faces) == 1
    face = result.faces[0]
    x, y, w, h = face.detection.box
    assert 150 < x < 220 and 30 < y < 100 and min(w, h) >= 50  # Eileen Collins' face
    assert face.detection.confidence > 0.95
    assert set(face.detection.keypoints) >= {"left_eye", "right_eye", "nose"}
    crop = Image.open(io.BytesIO(face.data))
    assert crop.size == (200, 200) and (face.width, face.height) == (200, 200)


def test_coffee_gives_no_face(mtcnn):
    assert clip_faces_bytes(jpeg(data.coffee()), mtcnn).faces == []


def test_camera_mans_face_is_found(mtcnn):
    result = clip_faces_bytes(jpeg(np.stack([data.camera()] * 3, axis=-1)), mtcnn)
    assert len(result.faces) == 1


class BrokenDetector:
    name = "broken"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def detect(self, rgb):
        raise self.error


def test_a_detector_crash_quarantines_the_file_but_a_broken_install_raises(tmp_path):
    from trainset.blobs.local import LocalBlobs
    from trainset.services.images import QUARANTINED, Upload, clip_faces_upload

    store = LocalBlobs(tmp_path)
    store.put("uploads/a.jpg", jpeg(data.astronaut()))
    upload = Upload("uploads/a.jpg")
    outcome = clip_faces_upload(store, upload, detector=BrokenDetector(ValueError("odd shape")))
    assert outcome.status == QUARANTINED and outcome.error["code"] == "processing_error"
    assert store.list("quarantine/") == ["quarantine/a.jpg", "quarantine/a.jpg.faces.error.json"]
    with pytest.raises(ImportError):  # retried by Lambda, then alarmed: not the file's fault
        clip_faces_upload(store, upload, detector=BrokenDetector(ImportError("no tensorflow")))
