"""Benchmark: the study's ten augmented variants of a 1024x768 JPEG, three ways; face clipping.

All three start from the same JPEG bytes and end with ten 280x280 RGB images: the original,
rotations by +-20 and +-40 degrees, the horizontal flip and the flip rotated +-20/+-40, each
whole and letterboxed.

- trainset: ``trainset.images.augment`` (JPEG draft decoding, shrink first, one resampling
  per variant, flips as mirror copies). Also timed with the ten JPEG encodings the Lambda
  function does.
- study: what the study ran: ``scipy.ndimage.rotate`` (its defaults: cubic spline,
  ``reshape=True``) on the full-size array for every variant, then a resize to 280.
- albumentations (bench-only dependency, ``bench/requirements.txt``): ``SafeRotate`` +
  ``LongestMaxSize`` + ``PadIfNeeded`` per variant on the cv2-decoded image, as written
  naively (rotate the full image) and shrinking first (the fair, fast way to use it).

Then face clipping: photos per second through ``trainset.images.faces.clip_faces_bytes``
with MTCNN on scikit-image's photos and the benchmark JPEG (model loaded once, not counted).

    python bench/augment.py [--repeats 40] [--study-repeats 3] [--face-rounds 3]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from trainset.images.augment import AugmentSettings, augment_bytes, augment_image, open_image

SIZE = 280
VARIANTS = [(v.angle, v.flip) for v in AugmentSettings().variants]


def bench_jpeg() -> bytes:
    from skimage import data

    image = Image.fromarray(data.coffee()).resize((1024, 768), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def timed(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median milliseconds per call over ``repeats`` calls (after one warm-up call)."""
    result = run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def letterbox(array: np.ndarray) -> np.ndarray:
    image = Image.fromarray(array)
    scale = SIZE / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)),
                         Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (SIZE, SIZE))
    canvas.paste(image, ((SIZE - image.width) // 2, (SIZE - image.height) // 2))
    return np.asarray(canvas)


def study(jpeg: bytes) -> list[np.ndarray]:
    from scipy import ndimage

    full = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    out = []
    for angle, flip in VARIANTS:
        array = full[:, ::-1] if flip else full
        if angle:
            array = ndimage.rotate(array, angle, axes=(1, 0), reshape=True)
        out.append(letterbox(np.ascontiguousarray(array)))
    return out


def trainset_arrays(jpeg: bytes) -> list[Any]:
    image, info = open_image(jpeg, draft_size=SIZE)
    return [v.image for v in augment_image(image, digest=info.sha256)]


def albumentations_pipelines() -> tuple[Callable[[bytes], Any], Callable[[bytes], Any]]:
    warnings.filterwarnings("ignore", module="albumentations")
    import albumentations as A
    import cv2

    def steps(angle: float, flip: bool) -> list[Any]:
        found = [A.HorizontalFlip(p=1.0)] if flip else []
        if angle:
            found.append(A.SafeRotate(limit=(angle, angle), border_mode=cv2.BORDER_CONSTANT,
                                      fill=0, p=1.0))
        return found

    fit = [A.LongestMaxSize(max_size=SIZE, interpolation=cv2.INTER_AREA),
           A.PadIfNeeded(SIZE, SIZE, border_mode=cv2.BORDER_CONSTANT, fill=0)]
    naive = [A.Compose(steps(a, f) + fit) for a, f in VARIANTS]
    shrink = A.Compose(fit)
    after = [A.Compose(steps(a, f)) for a, f in VARIANTS]

    def decode(jpeg: bytes) -> np.ndarray:
        bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def run_naive(jpeg: bytes) -> list[np.ndarray]:
        image = decode(jpeg)
        return [p(image=image)["image"] for p in naive]

    def run_shrink_first(jpeg: bytes) -> list[np.ndarray]:
        small = shrink(image=decode(jpeg))["image"]
        return [p(image=small)["image"] for p in after]

    return run_naive, run_shrink_first


def psnr(a: Any, b: Any) -> float:
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return 10 * np.log10(255**2 / max(float((diff**2).mean()), 1e-9))


def augmentation(args: argparse.Namespace) -> None:
    jpeg = bench_jpeg()
    print(f"input: 1024x768 JPEG, {len(jpeg):,} bytes; output: 10 variants of {SIZE}x{SIZE}")
    rows = []
    ours, ours_images = timed(lambda: trainset_arrays(jpeg), args.repeats)
    rows.append(("trainset (decode + 10 variants)", ours))
    end_to_end, _ = timed(lambda: augment_bytes(jpeg), args.repeats)
    rows.append(("trainset, + 10 JPEG encodings (the Lambda's work)", end_to_end))
    slow, study_images = timed(lambda: study(jpeg), args.study_repeats)
    rows.append(("study: scipy.ndimage.rotate on the full image", slow))
    alb_naive = alb_fast = None
    try:
        run_naive, run_shrink_first = albumentations_pipelines()
    except ImportError:
        print("albumentations is not installed: pip install -r bench/requirements.txt")
    else:
        import cv2

        alb_naive, _ = timed(lambda: run_naive(jpeg), args.repeats)
        alb_fast, _ = timed(lambda: run_shrink_first(jpeg), args.repeats)
        rows.append(("albumentations, rotate full size then fit", alb_naive))
        rows.append(("albumentations, fit then rotate", alb_fast))
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        alb_one, _ = timed(lambda: run_shrink_first(jpeg), args.repeats)
        cv2.setNumThreads(threads)
        rows.append(("albumentations, fit then rotate, OpenCV on 1 thread", alb_one))
    width = max(len(name) for name, _ in rows)
    print(f"{'approach':<{width}}  ms per image (median)")
    for name, ms in rows:
        print(f"{name:<{width}}  {ms:8.1f}")
    print()
    print(f"study / trainset: {slow / ours:.0f}x faster (target >= 20x)")
    if alb_fast is not None:
        print(f"trainset / albumentations (fit then rotate): {ours / alb_fast:.2f} "
              "(target <= 1.5)")
        print(f"trainset / albumentations (rotate full size): {ours / alb_naive:.2f}")
    agreement = [psnr(a, b) for a, b in zip(ours_images, study_images, strict=True)]
    print(f"agreement with the study's variants: PSNR {min(agreement):.1f}-"
          f"{max(agreement):.1f} dB (same pictures; resampling differs)")


def faces(args: argparse.Namespace) -> None:
    from skimage import data

    from trainset.images.faces import MtcnnDetector, clip_faces_bytes

    def encode(array: np.ndarray) -> bytes:
        out = io.BytesIO()
        Image.fromarray(array).convert("RGB").save(out, format="JPEG", quality=90)
        return out.getvalue()

    photos = {
        "astronaut 512x512": encode(data.astronaut()),
        "camera 512x512": encode(np.stack([data.camera()] * 3, axis=-1)),
        "coffee 600x400": encode(data.coffee()),
        "chelsea 451x300": encode(data.chelsea()),
        "bench 1024x768": bench_jpeg(),
    }
    started = time.perf_counter()
    detector = MtcnnDetector().load()
    print(f"face clipping: TensorFlow import + MTCNN load {time.perf_counter() - started:.1f} s "
          "(once per process / Lambda container)")
    for data_bytes in photos.values():
        clip_faces_bytes(data_bytes, detector)  # warm-up: graph tracing per input shape
    per_photo: dict[str, list[float]] = {name: [] for name in photos}
    found: dict[str, int] = {}
    started = time.perf_counter()
    for _ in range(args.face_rounds):
        for name, data_bytes in photos.items():
            t0 = time.perf_counter()
            found[name] = len(clip_faces_bytes(data_bytes, detector).faces)
            per_photo[name].append((time.perf_counter() - t0) * 1000)
    total = time.perf_counter() - started
    for name, times in per_photo.items():
        print(f"  {name:<20} {statistics.median(times):7.0f} ms  faces: {found[name]}")
    count = args.face_rounds * len(photos)
    print(f"face clipping: {count / total:.1f} photos/s ({1000 * total / count:.0f} ms per "
          "photo, one process)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--study-repeats", type=int, default=3)
    parser.add_argument("--face-rounds", type=int, default=3)
    parser.add_argument("--skip-faces", action="store_true")
    args = parser.parse_args(argv)
    augmentation(args)
    if not args.skip_faces:
        print()
        faces(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
