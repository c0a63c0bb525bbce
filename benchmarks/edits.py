"""The edits of benchmarks/accuracy.py (and of accuracy_beyond.py's photos): each a function from a
picture to its edited copy, as an image (hashed as it is) or bytes (hashed as an uploaded file)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from phashdb import phash as hashing


def encoded(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def scaled(img: Image.Image, fx: float, fy: float) -> Image.Image:
    return img.resize(
        (max(1, round(img.width * fx)), max(1, round(img.height * fy))), Image.LANCZOS
    )


def cropped(img: Image.Image, fraction: float, *, centred: bool = True) -> Image.Image:
    """`fraction` of each side cut away: half from each edge, or all from the right/bottom."""
    dx, dy = round(img.width * fraction), round(img.height * fraction)
    if centred:
        return img.crop((dx // 2, dy // 2, img.width - (dx - dx // 2), img.height - (dy - dy // 2)))
    return img.crop((0, 0, img.width - dx, img.height - dy))


def overlaid(img: Image.Image) -> Image.Image:
    """A white caption box, a quarter of the width, in the bottom-right corner (a watermark)."""
    out = img.copy()
    w, h = max(1, img.width // 4), max(1, img.height // 12)
    box = (img.width - w - img.width // 40, img.height - h - img.height // 40)
    draw = ImageDraw.Draw(out)
    draw.rectangle((*box, box[0] + w, box[1] + h), fill="white")
    font = ImageFont.load_default(size=max(8, h * 2 // 3))
    draw.text((box[0] + h // 6, box[1] + h // 8), "© phashdb", fill="black", font=font)
    return out


# name -> the edited copy: an image (hashed as is) or bytes (hashed as an uploaded file).
TRANSFORMS = {
    "jpeg q90": lambda im: encoded(im, "JPEG", quality=90),
    "jpeg q70": lambda im: encoded(im, "JPEG", quality=70),
    "jpeg q50": lambda im: encoded(im, "JPEG", quality=50),
    "jpeg q30": lambda im: encoded(im, "JPEG", quality=30),
    "png": lambda im: encoded(im, "PNG", compress_level=1),
    "webp q80": lambda im: encoded(im, "WEBP", quality=80),
    "resize 50%": lambda im: scaled(im, 0.5, 0.5),
    "resize 25%": lambda im: scaled(im, 0.25, 0.25),
    "resize 200%": lambda im: scaled(im, 2, 2),
    "aspect 130% wide": lambda im: scaled(im, 1.3, 1),
    "crop 5%": lambda im: cropped(im, 0.05),
    "crop 10%": lambda im: cropped(im, 0.10),
    "crop 10% one corner": lambda im: cropped(im, 0.10, centred=False),
    "brightness +20%": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "brightness -20%": lambda im: ImageEnhance.Brightness(im).enhance(0.8),
    "contrast +30%": lambda im: ImageEnhance.Contrast(im).enhance(1.3),
    "contrast -30%": lambda im: ImageEnhance.Contrast(im).enhance(0.7),
    "greyscale": lambda im: im.convert("L"),
    "caption box": overlaid,
    "rotate 2°": lambda im: im.rotate(2, Image.BICUBIC),
    "rotate 3°": lambda im: im.rotate(3, Image.BICUBIC),
    "resize 50% + jpeg q70": lambda im: encoded(scaled(im, 0.5, 0.5), "JPEG", quality=70),
    "mirror": lambda im: ImageOps.mirror(im),
    "rotate 90°": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "rotate 180°": lambda im: im.transpose(Image.Transpose.ROTATE_180),
    "rotate 270°": lambda im: im.transpose(Image.Transpose.ROTATE_270),
    "mirror + jpeg q70": lambda im: encoded(ImageOps.mirror(im), "JPEG", quality=70),
}


def upright_rgb(path: str) -> Image.Image:
    """The photo as phashdb sees it before greyscale: oriented, transparency on white."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.has_transparency_data:
            rgba = img.convert("RGBA")
            img = Image.new("RGB", img.size, hashing.BACKGROUND)
            img.paste(rgba, mask=rgba.getchannel("A"))
        return img.convert("RGB")
