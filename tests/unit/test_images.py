"""Augmentation geometry and determinism, the key layout, and the checks on untrusted bytes."""

from __future__ import annotations

import io
import math
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from trainset.images import keys as image_keys
from trainset.images.augment import (
    AugmentSettings,
    CorruptImage,
    ImageLimits,
    ImageRejected,
    ImageTooLarge,
    NotAnImage,
    TooManyPixels,
    TruncatedImage,
    augment_bytes,
    augment_image,
    open_image,
)

STUDY_VARIANTS = ["original", "rot+20", "rot-20", "rot+40", "rot-40",
                  "flip", "flip_rot+20", "flip_rot-20", "flip_rot+40", "flip_rot-40"]


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def photo(width: int = 640, height: int = 480) -> Image.Image:
    """A smooth, textured picture (JPEG-friendly) with distinct halves."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([(x * 255 // width), (y * 255 // height),
                    (128 + 100 * np.sin(x / 17.0) * np.cos(y / 23.0))], axis=-1)
    return Image.fromarray(rgb.clip(0, 255).astype("uint8"))


def white_with_marker(width: int = 400, height: int = 200) -> Image.Image:
    """White picture with a blue square near the middle of its right edge."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    image.paste((0, 0, 255), (width - 60, height // 2 - 15, width - 30, height // 2 + 15))
    return image


def content_box(image: Image.Image) -> tuple[int, int]:
    """Width and height of the non-black (non-letterbox) area."""
    pixels = np.asarray(image).max(axis=2) > 60
    ys, xs = np.nonzero(pixels)
    return xs.max() - xs.min() + 1, ys.max() - ys.min() + 1


def marker_centre(image: Image.Image) -> tuple[float, float]:
    rgb = np.asarray(image).astype(int)
    blue = (rgb[..., 2] > 150) & (rgb[..., 0] < 100) & (rgb[..., 1] < 100)
    ys, xs = np.nonzero(blue)
    return xs.mean(), ys.mean()


def by_name(variants):
    return {v.variant.name: v.image for v in variants}


# --- variants ------------------------------------------------------------------------------


def test_the_studys_ten_variants_each_a_280_square():
    settings = AugmentSettings()
    assert [v.name for v in settings.variants] == STUDY_VARIANTS
    result = augment_bytes(encode(photo()), settings)
    assert [v.variant.name for v in result.variants] == STUDY_VARIANTS
    for v in result.variants:
        decoded = Image.open(io.BytesIO(v.data))
        assert decoded.format == "JPEG" and decoded.mode == "RGB"
        assert decoded.size == (v.width, v.height) == (280, 280)
    assert result.source.width == 640 and result.source.height == 480
    assert result.source.format == "JPEG"


def test_size_and_angles_are_settings():
    settings = AugmentSettings(size=96, angles=(15,), flip=False)
    assert [v.name for v in settings.variants] == ["original", "rot+15", "rot-15"]
    images = augment_image(photo(), settings)
    assert {v.image.size for v in images} == {(96, 96)}


@pytest.mark.parametrize("angle", [0, 20, -20, 40, -40])
def test_whole_rotated_photo_fits_the_square(angle):
    """Nothing is cut off (like scipy's reshape=True): the content is the rotated outline of
    the photo, scaled so its longer side fills the square."""
    width, height, size = 400, 200, 280
    name = "original" if angle == 0 else f"rot{angle:+d}"
    image = by_name(augment_image(Image.new("RGB", (width, height), "white")))[name]
    radians = math.radians(abs(angle))
    outline = (width * math.cos(radians) + height * math.sin(radians),
               width * math.sin(radians) + height * math.cos(radians))
    scale = size / max(outline)
    found = content_box(image)
    assert found[0] == pytest.approx(outline[0] * scale, abs=2)
    assert found[1] == pytest.approx(outline[1] * scale, abs=2)
    assert max(found) >= size - 2  # fills the square along its longer side
    corners = np.asarray(image)[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() < 40  # letterbox / rotation corners are the fill colour


def test_positive_angles_turn_counter_clockwise_and_flip_mirrors():
    variants = by_name(augment_image(white_with_marker()))
    centre = 140
    x, y = marker_centre(variants["original"])
    assert x > centre + 60 and abs(y - centre) < 3  # right of the centre
    _, y_ccw = marker_centre(variants["rot+40"])
    _, y_cw = marker_centre(variants["rot-40"])
    assert y_ccw < centre - 30 and y_cw > centre + 30  # +40 lifts the right side
    x_flip, _ = marker_centre(variants["flip"])
    assert x_flip < centre - 60  # mirrored to the left
    _, y_flip_ccw = marker_centre(variants["flip_rot+40"])
    assert y_flip_ccw > centre + 30  # the left side goes down when turned counter-clockwise


def test_flipped_variants_are_mirror_images():
    variants = by_name(augment_image(photo()))
    for angle in ("", "_rot+20", "_rot-40"):
        plain_angle = {"": "original", "_rot+20": "rot-20", "_rot-40": "rot+40"}[angle]
        flipped = np.asarray(variants["flip" + angle]).astype(int)
        mirrored = np.asarray(variants[plain_angle])[:, ::-1].astype(int)
        assert np.abs(flipped - mirrored).mean() < 2


def test_same_bytes_and_settings_give_identical_outputs():
    data = encode(photo())
    first = augment_bytes(data, AugmentSettings(colour_jitter=0.3, seed=4))
    second = augment_bytes(data, AugmentSettings(colour_jitter=0.3, seed=4))
    assert [v.data for v in first.variants] == [v.data for v in second.variants]
    other_seed = augment_bytes(data, AugmentSettings(colour_jitter=0.3, seed=5))
    plain = augment_bytes(data)
    assert other_seed.variants[3].data != first.variants[3].data
    # The original is never jittered; the letterbox keeps its colour under jitter.
    assert first.variants[0].data == plain.variants[0].data
    jittered = np.asarray(Image.open(io.BytesIO(first.variants[3].data)))
    assert jittered[:3, :3].max() < 20


def test_large_photos_are_shrunk_before_anything_else():
    """A big PNG (no JPEG draft decoding) gives the same geometry."""
    big = encode(photo(3000, 2000), "PNG")
    result = augment_bytes(big)
    assert {(v.width, v.height) for v in result.variants} == {(280, 280)}
    original = Image.open(io.BytesIO(result.variants[0].data))
    assert content_box(original) == pytest.approx((280, 187), abs=2)


def test_modes_and_orientation_are_normalised():
    rgba = Image.new("RGBA", (100, 50), (255, 0, 0, 0))
    image, _ = open_image(encode(rgba, "PNG"))
    assert image.mode == "RGB" and image.getpixel((5, 5)) == (255, 255, 255)  # clear -> white
    grey, _ = open_image(encode(Image.new("L", (30, 20), 90), "PNG"))
    assert grey.mode == "RGB" and grey.getpixel((0, 0)) == (90, 90, 90)
    gif, info = open_image(encode(photo(60, 40).convert("P"), "GIF"))
    assert gif.mode == "RGB" and info.format == "GIF"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees to show
    upright, info = open_image(encode(photo(64, 32), exif=exif))
    assert (info.width, info.height) == (64, 32) and upright.size == (32, 64)


def test_settings_are_checked():
    for bad in ({"size": 8}, {"colour_jitter": 1.5}, {"angles": (0,)}, {"quality": 0},
                {"fill": (0, 0, 300)}):
        with pytest.raises(ValueError):
            AugmentSettings(**bad)
    assert AugmentSettings().as_dict()["angles"] == [20, 40]


# --- keys ----------------------------------------------------------------------------------


def test_keys_are_bucketed_by_content_hash():
    digest = image_keys.content_hash(b"same bytes")
    assert digest == image_keys.content_hash(b"same bytes") != image_keys.content_hash(b"other")
    ab, cd = digest[:2], digest[2:4]
    assert image_keys.variant_key(digest, "rot+20") == f"variants/{ab}/{cd}/{digest}/rot+20.jpg"
    assert image_keys.face_key(digest, 0) == f"faces/{ab}/{cd}/{digest}/face-00.jpg"
    for stage in ("augment", "faces"):
        expected = f"manifests/{stage}/{ab}/{cd}/{digest}.json"
        assert image_keys.manifest_key(stage, digest) == expected
    assert image_keys.quarantine_keys("uploads/a b/c.jpg", "faces") == (
        "quarantine/a b/c.jpg", "quarantine/a b/c.jpg.faces.error.json")
    with pytest.raises(ValueError):
        image_keys.variant_key("not-a-hash", "original")
    with pytest.raises(ValueError):
        image_keys.variant_key(digest, "../escape")
    with pytest.raises(ValueError):
        image_keys.manifest_key("resize", digest)
    assert image_keys.is_upload("uploads/x.jpg")
    assert not image_keys.is_upload("uploads/") and not image_keys.is_upload("variants/x.jpg")
    assert not image_keys.is_upload("uploads/folder/")


def test_every_variant_name_makes_a_valid_key():
    digest = image_keys.content_hash(b"x")
    settings = AugmentSettings(angles=(12.5, 90))
    keys = {image_keys.variant_key(digest, v.name) for v in settings.variants}
    assert len(keys) == len(settings.variants) == 10


# --- untrusted input -----------------------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_bad_input_raises_a_clear_typed_error():
    good = encode(photo())
    cases = [
        (b"", NotAnImage, "empty"),
        (b"this is a caption, not a photo", NotAnImage, "not an image"),
        (b"%PDF-1.7\n" + b"0" * 200, NotAnImage, "not an image"),
        (good[: len(good) // 2], TruncatedImage, "truncated"),
        (good[:600] + b"\x00" * (len(good) - 600), CorruptImage, "corrupt"),
    ]
    for data, error, words in cases:
        with pytest.raises(error, match=words) as caught:
            augment_bytes(data)
        assert isinstance(caught.value, ImageRejected)
        assert caught.value.code in ("not_an_image", "truncated_image", "corrupt_image")


def test_size_limits_guard_bytes_and_pixels():
    data = encode(photo())
    with pytest.raises(ImageTooLarge, match="at most 1,000 are accepted") as caught:
        open_image(data, ImageLimits(max_bytes=1000))
    assert caught.value.status == 413 and caught.value.code == "image_too_large"
    with pytest.raises(TooManyPixels, match="640x480"):
        open_image(data, ImageLimits(max_pixels=640 * 480 - 1))
    open_image(data, ImageLimits(max_pixels=640 * 480))  # the limit itself is fine
    bomb = png_claiming(60_000, 60_000)
    assert len(bomb) < 200
    with pytest.raises(TooManyPixels) as caught:
        open_image(bomb)
    assert caught.value.code == "too_many_pixels"
    with pytest.raises(TooManyPixels):
        open_image(png_claiming(9_000, 9_000))  # under Pillow's own limit, over ours
    with pytest.raises(ValueError):
        ImageLimits(max_bytes=0)
