"""Face clipping for the child-age model: find faces with MTCNN, keep the big sure ones, crop.

The study ran MTCNN over its photos by hand. Here ``clip_faces_bytes`` takes the uploaded bytes
(checked like every image: ``trainset.images.augment.open_image``), runs a detector on a copy no
larger than it needs to be, keeps faces whose box is at least ``min_size`` pixels on its shorter
side (in the source's pixels) with at least ``min_confidence``, and cuts a square around each box
(its longer side, plus ``margin`` on every side) resized to ``crop_size`` x ``crop_size``.

The detector is behind a small protocol, so the rules here are tested without TensorFlow;
``MtcnnDetector`` is the real one (PyPI ``mtcnn``, which ships its weights: no download). Its
model is loaded once per process, on first use, because importing TensorFlow takes seconds.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from trainset.images.augment import ImageLimits, SourceInfo, encode_jpeg, open_image

# MTCNN's smallest reliable face is about 20 px (its default min_face_size); a face we keep is
# never shrunk below this many pixels for detection.
_DETECTABLE = 24


@dataclass(frozen=True)
class FaceSettings:
    min_size: int = 50  # pixels, shorter side of the face box in the source image
    crop_size: int = 200  # output square, pixels
    min_confidence: float = 0.9
    margin: float = 0.0  # extra context around the box, as a fraction of its longer side
    detect_max_side: int = 1024  # detection runs on a copy at most this long (see detect_scale)
    quality: int = 90  # JPEG quality of the crops

    def __post_init__(self) -> None:
        if self.min_size < _DETECTABLE:
            raise ValueError(f"min_size must be at least {_DETECTABLE} pixels")
        if not 16 <= self.crop_size <= 2048:
            raise ValueError("crop_size must be 16..2048 pixels")
        if not 0 <= self.min_confidence <= 1:
            raise ValueError("min_confidence must be in [0, 1]")
        if not 0 <= self.margin <= 1:
            raise ValueError("margin must be in [0, 1]")
        if self.detect_max_side < 64:
            raise ValueError("detect_max_side must be at least 64")

    def as_dict(self) -> dict[str, Any]:
        return {"min_size": self.min_size, "crop_size": self.crop_size,
                "min_confidence": self.min_confidence, "margin": self.margin,
                "detect_max_side": self.detect_max_side, "quality": self.quality}

    def detect_scale(self, width: int, height: int) -> float:
        """Shrink for detection to ``detect_max_side``, but never so far that a face of
        ``min_size`` pixels drops under what MTCNN can see."""
        fit = self.detect_max_side / max(width, height)
        return min(1.0, max(fit, _DETECTABLE / self.min_size))


@dataclass(frozen=True)
class Detection:
    """A face in image pixels: box (x, y, width, height), confidence, landmarks by name."""

    box: tuple[int, int, int, int]
    confidence: float
    keypoints: dict[str, tuple[int, int]] = field(default_factory=dict)

    def scaled(self, factor: float) -> Detection:
        x, y, w, h = self.box
        return Detection(
            (round(x * factor), round(y * factor), round(w * factor), round(h * factor)),
            self.confidence,
            {k: (round(px * factor), round(py * factor)) for k, (px, py) in self.keypoints.items()},
        )


class FaceDetector(Protocol):
    name: str

    def detect(self, rgb: Any) -> list[Detection]:
        """Faces in an RGB uint8 array of shape (height, width, 3)."""
        ...


_model_lock = threading.Lock()
_model: Any = None


def _mtcnn() -> Any:
    """The process's one MTCNN model (TensorFlow), loaded on first use."""
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no C++ info banners
                from mtcnn import MTCNN

                _model = MTCNN()
    return _model


class MtcnnDetector:
    """MTCNN from PyPI ``mtcnn`` (weights included). Cheap to create; the model loads on the
    first ``detect`` (or ``load``) and is shared by every instance in the process."""

    name = "mtcnn"

    def load(self) -> MtcnnDetector:
        _mtcnn()
        return self

    @property
    def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("mtcnn")
        except PackageNotFoundError:  # pragma: no cover - only without the package
            return "unknown"

    def detect(self, rgb: Any) -> list[Detection]:
        found = _mtcnn().detect_faces(rgb)
        return [
            Detection(
                tuple(int(v) for v in face["box"]),
                float(face["confidence"]),
                {name: (int(p[0]), int(p[1])) for name, p in face.get("keypoints", {}).items()},
            )
            for face in found
        ]


def find_faces(image: Any, detector: FaceDetector, settings: FaceSettings) -> list[Detection]:
    """The faces worth keeping in an RGB ``PIL.Image``, left to right (then top to bottom)."""
    import numpy as np
    from PIL import Image

    width, height = image.size
    if min(width, height) < settings.min_size:
        return []  # no kept face can fit; MTCNN also fails on tiny inputs
    scale = settings.detect_scale(width, height)
    small = image
    if scale < 1.0:
        small = image.resize((max(1, round(width * scale)), max(1, round(height * scale))),
                             Image.Resampling.BILINEAR, reducing_gap=2.0)
    found = [d if scale == 1.0 else d.scaled(1.0 / scale)
             for d in detector.detect(np.asarray(small))]
    kept = [d for d in found
            if d.confidence >= settings.min_confidence and min(d.box[2:]) >= settings.min_size]
    return sorted(kept, key=lambda d: (d.box[0], d.box[1], -d.confidence))


def crop_box(detection: Detection, settings: FaceSettings) -> tuple[int, int, int, int]:
    """The square (left, top, right, bottom) cut around a face; it may reach past the image's
    edge, where the crop is filled black."""
    x, y, w, h = detection.box
    side = max(w, h) * (1 + 2 * settings.margin)
    cx, cy = x + w / 2, y + h / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    side_px = max(1, round(side))
    return (left, top, left + side_px, top + side_px)


def crop_face(image: Any, detection: Detection, settings: FaceSettings) -> Any:
    from PIL import Image

    square = image.crop(crop_box(detection, settings))
    return square.resize((settings.crop_size, settings.crop_size), Image.Resampling.BICUBIC,
                         reducing_gap=2.0)


@dataclass(frozen=True)
class FaceCrop:
    index: int
    detection: Detection
    crop_box: tuple[int, int, int, int]
    data: bytes  # JPEG, crop_size x crop_size
    width: int
    height: int


@dataclass(frozen=True)
class FacesResult:
    source: SourceInfo
    settings: FaceSettings
    faces: list[FaceCrop]


def clip_faces_bytes(data: bytes, detector: FaceDetector,
                     settings: FaceSettings = FaceSettings(),
                     limits: ImageLimits = ImageLimits()) -> FacesResult:
    """Check ``data``, find the faces worth keeping and crop each. Raises an ``ImageRejected``
    for input that cannot be used; a photo without faces gives an empty list."""
    image, source = open_image(data, limits)
    faces = []
    for index, detection in enumerate(find_faces(image, detector, settings)):
        crop = crop_face(image, detection, settings)
        faces.append(FaceCrop(index, detection, crop_box(detection, settings),
                              encode_jpeg(crop, settings.quality), *crop.size))
    return FacesResult(source, settings, faces)
