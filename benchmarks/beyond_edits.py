"""Edits people make to images beyond photos: overlays (captions, watermarks, boxes, logos,
frames, stickers), re-framed and cropped copies, and the exports of a transparent source.

Each edit is a function of the upright RGB image (transparent sources: of the RGBA image, see
TRANSPARENT) returning the edited image; benchmarks/accuracy.py --beyond hashes them.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont, ImageOps

TEXT = "When you finally find the duplicate"


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, size))


def captioned(img: Image.Image, *, top: bool) -> Image.Image:
    """A meme caption: white text with a black outline across the top or the bottom."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    size = max(8, img.height // 10)
    font = _font(size)
    while font.getlength(TEXT) > img.width * 0.95 and size > 8:
        size = size * 9 // 10
        font = _font(size)
    x = (img.width - font.getlength(TEXT)) / 2
    y = img.height * 0.03 if top else img.height * 0.97 - size * 1.2
    draw.text((x, y), TEXT, fill="white", font=font, stroke_width=max(1, size // 12),
              stroke_fill="black")  # fmt: skip
    return out


def watermarked(img: Image.Image) -> Image.Image:
    """A stock-photo watermark: large half-transparent white text across the middle."""
    base = img.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = _font(max(8, img.width // 9))
    text = "© phashdb stock"
    x = (img.width - font.getlength(text)) / 2
    draw.text((x, img.height * 0.42), text, fill=(255, 255, 255, 110), font=font,
              stroke_width=max(1, img.width // 300), stroke_fill=(0, 0, 0, 60))  # fmt: skip
    return Image.alpha_composite(base, layer).convert("RGB")


def boxed(img: Image.Image, colour: str) -> Image.Image:
    """A caption box (as issue 24 met it): 1/4 of the width, 15% of the height, bottom left."""
    out = img.copy()
    w, h = max(1, img.width // 4), max(1, round(img.height * 0.15))
    x, y = img.width // 40, img.height - h - img.height // 40
    draw = ImageDraw.Draw(out)
    draw.rectangle((x, y, x + w, y + h), fill=colour)
    ink = "black" if colour == "white" else "white"
    draw.text((x + w // 12, y + h // 4), "caption", fill=ink, font=_font(h // 3))
    return out


def logo(img: Image.Image) -> Image.Image:
    """A channel logo in the top right corner: a coloured disc with a letter, 12% of the width."""
    out = img.copy()
    d = max(4, round(min(img.size) * 0.12))
    x, y = img.width - d - img.width // 30, img.height // 30
    draw = ImageDraw.Draw(out)
    draw.ellipse((x, y, x + d, y + d), fill=(220, 40, 60), outline="white", width=max(1, d // 16))
    draw.text((x + d * 0.28, y + d * 0.12), "P", fill="white", font=_font(d * 3 // 4))
    return out


def framed(img: Image.Image) -> Image.Image:
    """A frame: a border of 5% of each side added around the picture."""
    border = (round(img.width * 0.05), round(img.height * 0.05))
    return ImageOps.expand(img, border=border + border, fill=(40, 30, 20))


def sticker(img: Image.Image) -> Image.Image:
    """A round sticker, a fifth of the width, right of centre, half over the picture's middle."""
    out = img.copy()
    d = max(4, round(min(img.size) * 0.2))
    x, y = round(img.width * 0.62), round(img.height * 0.55)
    draw = ImageDraw.Draw(out)
    draw.ellipse((x, y, x + d, y + d), fill=(255, 210, 0), outline="black", width=max(1, d // 20))
    draw.text((x + d * 0.22, y + d * 0.3), "NEW", fill="black", font=_font(d // 3))
    return out


def aspect_crop(img: Image.Image, ratio: float) -> Image.Image:
    """The largest centred window of width/height `ratio`."""
    w, h = img.size
    if w / h > ratio:
        nw = max(1, round(h * ratio))
        return img.crop(((w - nw) // 2, 0, (w - nw) // 2 + nw, h))
    nh = max(1, round(w / ratio))
    return img.crop((0, (h - nh) // 2, w, (h - nh) // 2 + nh))


def centre_crop(img: Image.Image, keep: float) -> Image.Image:
    w, h = img.size
    nw, nh = max(1, round(w * keep)), max(1, round(h * keep))
    return img.crop(((w - nw) // 2, (h - nh) // 2, (w - nw) // 2 + nw, (h - nh) // 2 + nh))


def corner_crop(img: Image.Image, keep: float) -> Image.Image:
    """The bottom-right `keep` of each side: cut from the top left corner."""
    w, h = img.size
    return img.crop((w - round(w * keep), h - round(h * keep), w, h))


OVERLAYS = {
    "caption top": lambda im: captioned(im, top=True),
    "caption bottom": lambda im: captioned(im, top=False),
    "watermark text": watermarked,
    "white box 1/4": lambda im: boxed(im, "white"),
    "black box 1/4": lambda im: boxed(im, "black"),
    "logo in a corner": logo,
    "frame 5%": framed,
    "sticker": sticker,
}
REFRAMES = {
    "centre crop 16:9": lambda im: aspect_crop(im, 16 / 9),
    "centre crop 16:10": lambda im: aspect_crop(im, 16 / 10),
    "centre crop 4:3": lambda im: aspect_crop(im, 4 / 3),
    "centre crop 5:4": lambda im: aspect_crop(im, 5 / 4),
    "centre crop 1:1": lambda im: aspect_crop(im, 1),
    "corner crop 10%": lambda im: corner_crop(im, 0.9),
    "centre crop 20%": lambda im: centre_crop(im, 0.8),
}


def on(rgba: Image.Image, colour: tuple) -> Image.Image:
    flat = Image.new("RGB", rgba.size, colour)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


# Exports of a transparent source (the image as decoded, any mode with transparency): what an
# editor writes, and what Pillow's convert("RGB") writes (the colours under the transparency),
# each published as a JPEG (q85), the usual format of an opaque copy.
TRANSPARENT = {
    "flattened on white": lambda im: as_jpeg(on(im.convert("RGBA"), (255, 255, 255))),
    "flattened on black": lambda im: as_jpeg(on(im.convert("RGBA"), (0, 0, 0))),
    "alpha dropped": lambda im: as_jpeg((im.copy() if im.mode == "P" else im).convert("RGB")),
}


def as_jpeg(img: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()
