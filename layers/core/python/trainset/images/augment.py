"""Image input checks and the study's augmentation, done fast and deterministically. Pure.

The study made ten variants per training photo with ``scipy.ndimage.rotate`` on the full-size
array (about 1.4 s per photo): the original, rotations by +-20 and +-40 degrees, the horizontal
flip, and the flip rotated by +-20/+-40. Here each variant is the same picture, but the photo is
first decoded at reduced scale (JPEG draft mode) and shrunk to just the size its rotated outline
needs inside the output square; only then is it flipped and rotated. Rotating a 280-pixel image
instead of a 1024-pixel one is where the speed comes from.

Every variant is the whole rotated photo (nothing cut off, like ``reshape=True``), letterboxed
in a ``size`` x ``size`` square on the fill colour. Positive angles turn counter-clockwise, as
in Pillow and scipy. The same bytes and settings always give byte-identical JPEGs: colour jitter,
when on, draws its factors from a generator seeded by the image's SHA-256, the variant's name
and the settings' seed.

Input is checked before anything is decoded in full: too many bytes, not an image (or a format
we do not read), too many pixels (decompression bombs: the header is read, the pixels are not),
truncated or corrupt data. Each raises its own ``ImageRejected`` subclass with a clear message.
"""

from __future__ import annotations

import io
import math
import random
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

from trainset.errors import InvalidInput
from trainset.images.keys import content_hash

# Formats we decode; Pillow is told to try only these (no exotic parsers on untrusted bytes).
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")


# --- errors --------------------------------------------------------------------------------


class ImageRejected(InvalidInput):
    """The bytes cannot be used as a training image; ``code`` says why."""

    code = "image_rejected"


class NotAnImage(ImageRejected):
    code = "not_an_image"


class CorruptImage(ImageRejected):
    code = "corrupt_image"


class TruncatedImage(CorruptImage):
    code = "truncated_image"


class ProcessingFailed(ImageRejected):
    """The checks passed but processing these bytes failed: retrying would fail the same way."""

    code = "processing_error"


class ImageTooLarge(ImageRejected):
    status = 413
    code = "image_too_large"


class TooManyPixels(ImageTooLarge):
    """Width x height over the limit: refused from the header, before any pixel is decoded."""

    code = "too_many_pixels"


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000  # a 48-megapixel phone photo passes; bombs do not

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1:
            raise ValueError("image limits must be positive")

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise ImageTooLarge(
                f"the file is {size:,} bytes; at most {self.max_bytes:,} are accepted",
                {"bytes": size, "max_bytes": self.max_bytes},
            )


@dataclass(frozen=True)
class SourceInfo:
    """What the source file is: its format and pixel size as stored (before EXIF rotation)."""

    sha256: str
    format: str
    width: int
    height: int
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_image(data: bytes, limits: ImageLimits = ImageLimits(), *,
               draft_size: int | None = None) -> tuple[Any, SourceInfo]:
    """Check and decode ``data`` into an upright RGB ``PIL.Image``.

    ``draft_size`` lets JPEG decode at 1/2, 1/4 or 1/8 scale as long as both sides stay at least
    that many pixels (much faster when the result is shrunk anyway). Raises an ``ImageRejected``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    limits.check_size(len(data))
    if not data:
        raise NotAnImage("the file is empty")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit is checked below; Pillow's warning about its own is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(f"the image has too many pixels: {exc}") from None
    except UnidentifiedImageError:
        raise NotAnImage(
            "the file is not an image in a format we read (" + ", ".join(FORMATS) + ")"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise _corrupt(exc) from None
    width, height = image.size
    if width < 1 or height < 1:
        raise CorruptImage(f"the image claims a size of {width}x{height}")
    if width * height > limits.max_pixels:
        raise TooManyPixels(
            f"the image is {width}x{height} = {width * height:,} pixels; at most "
            f"{limits.max_pixels:,} are accepted (a decompression bomb guard)",
            {"width": width, "height": height, "max_pixels": limits.max_pixels},
        )
    info = SourceInfo(content_hash(data), image.format or "unknown", width, height, len(data))
    try:
        if draft_size and image.format == "JPEG":
            image.draft("RGB", (draft_size, draft_size))
        image.load()
        image = ImageOps.exif_transpose(image) or image
        return _to_rgb(image), info
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(f"the image has too many pixels: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _corrupt(exc) from None


def _corrupt(exc: Exception) -> CorruptImage:
    message = str(exc) or type(exc).__name__
    if "truncated" in message.lower():
        return TruncatedImage(f"the image data is truncated ({message})")
    return CorruptImage(f"the image data is corrupt ({message})")


def _to_rgb(image: Any) -> Any:
    """RGB pixels; transparent areas are laid on white (a logo's usual background)."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode.startswith("I;16"):
        image = image.point(lambda value: value / 256).convert("L")
    return image.convert("RGB")


# --- augmentation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    angle: float  # degrees, counter-clockwise
    flip: bool  # mirrored left-right before rotating


@dataclass(frozen=True)
class AugmentSettings:
    size: int = 280  # output square, pixels
    angles: tuple[float, ...] = (20, 40)  # each gives a +angle and a -angle variant
    flip: bool = True  # also the mirrored photo and its rotations
    colour_jitter: float = 0.0  # 0 = off; 0.2 = brightness/contrast/saturation x [0.8, 1.2]
    fill: tuple[int, int, int] = (0, 0, 0)  # letterbox and rotation corners (scipy's cval=0)
    quality: int = 90  # JPEG quality of the variants
    seed: int = 0  # varies the colour jitter; same seed, same image -> same bytes
    variants: tuple[Variant, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 4096:
            raise ValueError("size must be 16..4096 pixels")
        if not 0 <= self.colour_jitter < 1:
            raise ValueError("colour_jitter must be in [0, 1)")
        if not 1 <= self.quality <= 100:
            raise ValueError("quality must be 1..100")
        if any(not 0 < a < 360 for a in self.angles) or len(set(self.angles)) != len(self.angles):
            raise ValueError("angles must be distinct and in (0, 360)")
        if len(self.fill) != 3 or any(not 0 <= c <= 255 for c in self.fill):
            raise ValueError("fill must be an (r, g, b) triple of 0..255")
        object.__setattr__(self, "angles", tuple(self.angles))
        object.__setattr__(self, "fill", tuple(self.fill))
        object.__setattr__(self, "variants", _variants(self.angles, self.flip))

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "angles": list(self.angles), "flip": self.flip,
                "colour_jitter": self.colour_jitter, "fill": list(self.fill),
                "quality": self.quality, "seed": self.seed}


def _angle_label(angle: float) -> str:
    return f"{angle:+g}"


def _variants(angles: tuple[float, ...], flip: bool) -> tuple[Variant, ...]:
    """original, rot+a, rot-a (each a), then flip, flip_rot+a, flip_rot-a: the study's ten."""
    found = []
    for mirrored in (False, True) if flip else (False,):
        found.append(Variant("flip" if mirrored else "original", 0.0, mirrored))
        for angle in angles:
            for signed in (angle, -angle):
                prefix = "flip_rot" if mirrored else "rot"
                found.append(Variant(f"{prefix}{_angle_label(signed)}", float(signed), mirrored))
    return tuple(found)


@dataclass(frozen=True)
class AugmentedVariant:
    variant: Variant
    image: Any  # PIL.Image, size x size, RGB


def _fit_scale(width: int, height: int, angle: float, size: int) -> float:
    """The scale at which the photo, rotated by ``angle`` with nothing cut off, fits ``size``."""
    radians = math.radians(angle)
    cos, sin = abs(math.cos(radians)), abs(math.sin(radians))
    return size / max(width * cos + height * sin, width * sin + height * cos)


def _jitter(image: Any, digest: str, variant: Variant, settings: AugmentSettings) -> Any:
    """Brightness, contrast and saturation, each times 1 +- ``colour_jitter``, drawn from a
    generator seeded by the image, the variant and the settings' seed (so: deterministic)."""
    from PIL import ImageEnhance

    rng = random.Random(f"{digest}:{variant.name}:{settings.seed}")
    spread = settings.colour_jitter
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhancer(image).enhance(1.0 + rng.uniform(-spread, spread))
    return image


def _work_image(image: Any, size: int) -> Any:
    """The source, box-reduced by a whole factor while its long side stays >= 2 x ``size``
    (JPEGs usually arrive at that scale already, from draft decoding)."""
    factor = max(image.size) // (2 * size)
    return image.reduce(factor) if factor >= 2 else image


def _rotated(work: Any, angle: float, size: int, fill: tuple[int, int, int]) -> Any:
    """``work`` rotated by ``angle`` (counter-clockwise) and scaled so the whole rotated photo
    fits, centred on a ``size`` square: one affine pass sampling a 2x canvas, then a 2x2 box
    reduction (four samples per output pixel: anti-aliased edges, a single resampling)."""
    from PIL import Image

    width, height = work.size
    big = 2 * size
    inverse = 1.0 / (2 * _fit_scale(width, height, angle, size))
    radians = math.radians(angle)
    cos, sin = math.cos(radians) * inverse, math.sin(radians) * inverse
    centre = big / 2
    # Output pixel (x, y) samples the source at R(-angle) (p - centre) / scale + source centre.
    matrix = (cos, -sin, width / 2 - cos * centre + sin * centre,
              sin, cos, height / 2 - sin * centre - cos * centre)
    canvas = work.transform((big, big), Image.Transform.AFFINE, matrix,
                            Image.Resampling.NEAREST, fillcolor=fill)
    return canvas.reduce(2)


def _upright(work: Any, size: int, fill: tuple[int, int, int]) -> Any:
    """``work`` resized (bicubic) to fit, letterboxed on a ``size`` square."""
    from PIL import Image

    width, height = work.size
    scale = _fit_scale(width, height, 0.0, size)
    target = (max(1, min(size, round(width * scale))), max(1, min(size, round(height * scale))))
    return _letterbox(work.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0), size, fill)


def augment_image(image: Any, settings: AugmentSettings = AugmentSettings(), *,
                  digest: str = "") -> list[AugmentedVariant]:
    """The settings' variants of an RGB ``PIL.Image``, each ``size`` x ``size``.

    A mirrored photo rotated by +a is the mirror image of the photo rotated by -a, so without
    colour jitter the flipped variants are mirrored copies of the rotated ones (no resampling).
    ``digest`` (the source's SHA-256) seeds the colour jitter; the original is never jittered.
    """
    from PIL import Image

    size, fill = settings.size, settings.fill
    work = _work_image(image, size)

    def render(source: Any, angle: float) -> Any:
        return _rotated(source, angle, size, fill) if angle else _upright(source, size, fill)

    out = []
    if settings.colour_jitter:
        mirrored = None
        for variant in settings.variants:
            source = work
            if variant.flip:
                if mirrored is None:
                    mirrored = work.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                source = mirrored
            if variant.name != "original":
                source = _jitter(source, digest, variant, settings)
            out.append(AugmentedVariant(variant, render(source, variant.angle)))
        return out
    plain: dict[float, Any] = {}
    for variant in settings.variants:
        angle = -variant.angle if variant.flip else variant.angle
        if angle not in plain:
            plain[angle] = render(work, angle)
        canvas = plain[angle]
        if variant.flip:
            canvas = canvas.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out.append(AugmentedVariant(variant, canvas))
    return out


def _letterbox(image: Any, size: int, fill: tuple[int, int, int]) -> Any:
    """``image`` centred on a ``size`` square."""
    from PIL import Image

    width, height = image.size
    if (width, height) == (size, size):
        return image
    canvas = Image.new("RGB", (size, size), fill)
    canvas.paste(image, ((size - width) // 2, (size - height) // 2))
    return canvas


def encode_jpeg(image: Any, quality: int = 90) -> bytes:
    """Baseline JPEG, no metadata: the same pixels always give the same bytes."""
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


@dataclass(frozen=True)
class EncodedVariant:
    variant: Variant
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class AugmentResult:
    source: SourceInfo
    settings: AugmentSettings
    variants: list[EncodedVariant]


def augment_bytes(data: bytes, settings: AugmentSettings = AugmentSettings(),
                  limits: ImageLimits = ImageLimits()) -> AugmentResult:
    """Check ``data``, decode it (at reduced scale where JPEG allows) and make every variant
    as JPEG bytes. Raises an ``ImageRejected`` for input that cannot be used."""
    image, source = open_image(data, limits, draft_size=settings.size)
    variants = [
        EncodedVariant(v.variant, encode_jpeg(v.image, settings.quality), *v.image.size)
        for v in augment_image(image, settings, digest=source.sha256)
    ]
    return AugmentResult(source, settings, variants)
