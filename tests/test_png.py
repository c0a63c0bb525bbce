"""phashdb.png: the plain 8-bit PNGs it decodes come out exactly as Pillow decodes them (every
row filter, every kind, real photos), every other PNG is left to Pillow, and a damaged file is
still refused by Pillow's words, naming it."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from phashdb import ImageError, png
from phashdb.phash import read_image

SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True, params=["isal", "zlib"])
def inflating(request, monkeypatch):
    """Every test with ISA-L's inflate and with zlib's (phashdb installed without isal)."""
    if request.param == "zlib":
        monkeypatch.setattr(png, "inflating", zlib)
    else:
        assert png.inflating.__name__ == "isal.isal_zlib"


CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples a pixel


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def filtered(rows: np.ndarray, filters: list[int], bpp: int) -> bytes:
    """`rows` (height x row bytes, uint8) as a PNG's filtered scanlines, row y with filter
    filters[y % len(filters)]: the encoder's side of the specification, written plainly."""
    out, above = [], np.zeros(rows.shape[1], dtype=np.int32)
    for y, row in enumerate(rows.astype(np.int32)):
        kind = filters[y % len(filters)]
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])[: len(row)]
        corner = np.concatenate([np.zeros(bpp, np.int32), above[:-bpp]])[: len(row)]
        if kind == 4:
            p = left + above - corner
            pa, pb, pc = abs(p - left), abs(p - above), abs(p - corner)
            predictor = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, above, corner))
        else:
            predictor = [0 * row, left, above, (left + above) // 2][kind]
        out.append(bytes([kind]) + ((row - predictor) % 256).astype(np.uint8).tobytes())
        above = row
    return b"".join(out)


def png_file(rows: np.ndarray, colour: int, *, depth=8, filters=(0, 1, 2, 3, 4), data=None,
             before=b"", after=b"", idat_size=1000, width=None) -> bytes:  # fmt: skip
    """A PNG of `rows` (height x width x samples, bytes as stored) in IDAT chunks of `idat_size`,
    with the chunks `before` and `after` the image data; `data` replaces the compressed stream,
    `width` the width (for samples of other than 8 bits)."""
    height, width = rows.shape[0], width or rows.shape[1]
    bpp = max(1, CHANNELS[colour] * depth // 8)
    if data is None:
        data = zlib.compress(filtered(rows.reshape(height, -1), list(filters), bpp))
    idats = b"".join(
        chunk(b"IDAT", data[i : i + idat_size]) for i in range(0, len(data), idat_size)
    )
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return SIGNATURE + chunk(b"IHDR", ihdr) + before + idats + after + chunk(b"IEND", b"")


def sixteen_bit(rows: np.ndarray) -> np.ndarray:
    """8-bit `rows` as 16-bit big-endian samples (the low byte not a copy of the high one)."""
    wide = rows.astype(">u2") * 256 + (255 - rows)
    return wide.view(np.uint8).reshape(*rows.shape[:2], -1)


def pillow(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def fast(data: bytes) -> Image.Image | None:
    with Image.open(io.BytesIO(data)) as img:
        return png.decoded(img)


def assert_same_image(data: bytes) -> None:
    """Pillow's image, and with `grey`, an opaque RGB one as Pillow's convert("L") of it."""
    theirs, ours = pillow(data), fast(data)
    assert ours is not None, "the fast path was not taken"
    assert (ours.mode, ours.size, ours.info) == (theirs.mode, theirs.size, theirs.info)
    assert ours.tobytes() == theirs.tobytes()
    with Image.open(io.BytesIO(data)) as img:
        grey = png.decoded(img, grey=True)
    if theirs.mode == "RGB" and "transparency" not in theirs.info:
        theirs = theirs.convert("L")
    assert (grey.mode, grey.size, grey.info) == (theirs.mode, theirs.size, theirs.info)
    assert grey.tobytes() == theirs.tobytes()


def random_rows(height: int, width: int, samples: int, seed: int) -> np.ndarray:
    # smooth ramps plus noise: every predictor has real work, and each branch of Paeth is taken
    rng = np.random.default_rng(seed)
    ramp = (np.arange(width)[None, :, None] * 7 + np.arange(height)[:, None, None] * 3) % 256
    noise = rng.integers(0, 40, (height, width, samples))
    return ((ramp + noise) % 256).astype(np.uint8)


# --- the kinds decoded here: the same pixels, mode and info as Pillow's -----------------------


@pytest.mark.parametrize("colour", [0, 2, 4, 6], ids=["L", "RGB", "LA", "RGBA"])
@pytest.mark.parametrize("filter_type", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("width", [1, 2, 37])
def test_every_filter_and_kind_is_pillows(colour, filter_type, width):
    rows = random_rows(9, width, CHANNELS[colour], seed=width * 10 + filter_type)
    assert_same_image(png_file(rows, colour, filters=[filter_type]))


@pytest.mark.parametrize("colour", [0, 2, 4, 6], ids=["L", "RGB", "LA", "RGBA"])
def test_mixed_filters_in_many_idat_chunks(colour):
    rows = random_rows(64, 50, CHANNELS[colour], seed=colour)
    assert_same_image(png_file(rows, colour, filters=[4, 0, 3, 1, 2, 4, 4], idat_size=97))


@pytest.mark.parametrize(
    "colour, trns", [(0, struct.pack(">H", 60)), (2, struct.pack(">HHH", 60, 61, 62))],
    ids=["L", "RGB"],
)  # fmt: skip
def test_transparent_colour_kept_as_pillow_keeps_it(colour, trns):
    rows = random_rows(20, 20, CHANNELS[colour], seed=3)
    rows[5:9, 5:9] = 60 + np.arange(CHANNELS[colour])  # pixels of the transparent colour
    data = png_file(rows, colour, before=chunk(b"tRNS", trns))
    assert_same_image(data)
    assert fast(data).convert("RGBA").tobytes() == pillow(data).convert("RGBA").tobytes()


def test_gamma_and_colour_chunks_ignored_as_pillow_ignores_them():
    before = (
        chunk(b"gAMA", struct.pack(">I", 100000))  # gamma 1.0, far from the usual 0.45
        + chunk(b"cHRM", struct.pack(">8I", *range(8)))
        + chunk(b"sRGB", b"\x00")
        + chunk(b"tEXt", b"Comment\x00before the data")
    )
    assert_same_image(png_file(random_rows(16, 16, 3, seed=4), 2, before=before))


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_pillow_saved_files(mode, photo_images):
    img = photo_images["astronaut"].convert(mode)
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    assert_same_image(buffer.getvalue())


def test_photos_saved_as_png_hash_as_before(photo_images, tmp_path, monkeypatch):
    """Read whole (hash, size, descriptor with its variants and keys), each photo as a PNG file,
    with this path and with Pillow's decoder alone."""
    paths = []
    for name, img in photo_images.items():
        paths.append(tmp_path / f"{name}.png")
        img.save(paths[-1])
        with Image.open(paths[-1]) as opened:
            assert png.decoded(opened) is not None, name
    ours = [read_image(p) for p in paths]
    monkeypatch.setattr(png, "decoded", lambda img, grey=False: None)
    theirs = [read_image(p) for p in paths]
    assert [(p.hash, p.width, p.height, p.descriptor) for p in ours] == [
        (p.hash, p.width, p.height, p.descriptor) for p in theirs
    ]


def test_transparent_source_keys_as_before(tmp_path, monkeypatch):
    """An RGBA picture whose renderings make stored keys: the same keys either way."""
    rows = random_rows(120, 90, 4, seed=5)
    rows[..., 3] = np.where(np.arange(90)[None, :] < 45, 0, 255)  # left half transparent
    path = tmp_path / "half.png"
    path.write_bytes(png_file(rows, 6))
    ours = read_image(path)
    monkeypatch.setattr(png, "decoded", lambda img, grey=False: None)
    theirs = read_image(path)
    assert (ours.hash, ours.descriptor) == (theirs.hash, theirs.descriptor)


def read_as_pillow_does(data: bytes, monkeypatch):
    """read_image of `data`, asserted the same as with Pillow's decoder alone; returned."""
    ours = read_image(data)
    monkeypatch.setattr(png, "decoded", lambda img, grey=False: None)
    theirs = read_image(data)
    assert (ours.hash, ours.width, ours.height, ours.descriptor) == (
        theirs.hash, theirs.width, theirs.height, theirs.descriptor,
    )  # fmt: skip
    return ours


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_exif_orientation_read_as_pillow_reads_it(orientation, photo_images, monkeypatch):
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    photo_images["chelsea"].save(buffer, "PNG", exif=exif)
    data = buffer.getvalue()
    assert fast(data) is not None
    ours = read_as_pillow_does(data, monkeypatch)
    assert (ours.width, ours.height) == ((300, 451) if orientation != 1 else (451, 300))


# --- the kinds left to Pillow ------------------------------------------------------------------


def saved(img: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "PNG", **options)
    return buffer.getvalue()


def interlaced(rows: np.ndarray, colour: int) -> bytes:
    """Adam7: the seven passes' sub-images, one after the other, rows unfiltered."""
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
              (0, 1, 1, 2)]  # fmt: skip
    stream = b""
    for x0, y0, dx, dy in passes:
        sub = rows[y0::dy, x0::dx]
        if sub.size:
            stream += b"".join(b"\x00" + row.tobytes() for row in sub)
    data = png_file(rows, colour, data=zlib.compress(stream))
    ihdr = struct.pack(">IIBBBBB", rows.shape[1], rows.shape[0], 8, colour, 0, 0, 1)
    return data[:8] + chunk(b"IHDR", ihdr) + data[33:]


def apng() -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "green")]
    return saved(frames[0], save_all=True, append_images=frames[1:])


def palette_with_alpha() -> bytes:
    img = Image.new("P", (16, 16))
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    img.paste(1, (0, 0, 8, 8))
    return saved(img, transparency=bytes([255, 0, 128]))


def a_row_short() -> bytes:
    """A whole zlib stream, one row short of the image: Pillow hashes what it has."""
    rows = random_rows(6, 6, 3, seed=14)
    return png_file(rows, 2, data=zlib.compress(filtered(rows.reshape(6, -1), [0], 3)[:-19]))


def text_after_data() -> bytes:
    data = png_file(random_rows(8, 8, 3, seed=6), 2)
    return data[:-12] + chunk(b"tEXt", b"Comment\x00after") + data[-12:]


PILLOWS = {
    "palette": lambda: saved(Image.new("P", (16, 16), 3)),
    "palette+tRNS": palette_with_alpha,
    "16-bit grey": lambda: saved(Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 250)),
    "16-bit RGB": lambda: png_file(sixteen_bit(random_rows(8, 16, 3, seed=7)), 2, depth=16),
    "16-bit RGBA": lambda: png_file(sixteen_bit(random_rows(8, 16, 4, seed=8)), 6, depth=16),
    "16-bit grey+alpha": lambda: png_file(sixteen_bit(random_rows(8, 16, 2, seed=16)), 4, depth=16),
    "1-bit": lambda: saved(Image.new("1", (16, 16), 1)),
    "4-bit grey": lambda: png_file(random_rows(8, 4, 1, seed=9), 0, depth=4, width=8),
    "interlaced RGB": lambda: interlaced(random_rows(13, 11, 3, seed=10), 2),
    "APNG": apng,
    "text after the data": text_after_data,
    "a row short": a_row_short,
}  # fmt: skip


@pytest.mark.parametrize("kind", PILLOWS)
def test_other_kinds_are_left_to_pillow(kind, monkeypatch):
    data = PILLOWS[kind]()
    assert fast(data) is None
    read_as_pillow_does(data, monkeypatch)


def test_without_the_c_extension_pillow_decodes(monkeypatch):
    """MapReduce tasks import phashdb from a zip of its .py files: no phashdb._png there."""
    data = png_file(random_rows(8, 8, 3, seed=17), 2)
    monkeypatch.setattr(png, "_png", None)
    assert fast(data) is None
    assert read_image(data).hash == read_image(pillow(data)).hash


def test_large_images_are_left_to_pillow():
    side = int(png.MAX_PIXELS**0.5) + 1
    assert fast(png_file(np.zeros((side, side, 1), np.uint8), 0, filters=[0])) is None


# --- damaged files: refused as before, naming the file ------------------------------------------


def stored_stream_with_one_byte_flipped() -> bytes:
    """Only the stream's Adler-32 tells this one: a byte inside a stored (uncompressed) block."""
    rows = random_rows(6, 6, 3, seed=11)
    stream = bytearray(zlib.compress(filtered(rows.reshape(6, -1), [0], 3), 0))
    stream[12] ^= 0x01
    return png_file(rows, 2, data=bytes(stream))


def cut_in_the_data() -> bytes:
    data = png_file(random_rows(40, 40, 3, seed=12), 2)
    return data[: len(data) // 2]


def bad_filter_type() -> bytes:
    rows = random_rows(6, 6, 3, seed=13)
    scanlines = bytearray(filtered(rows.reshape(6, -1), [0], 3))
    scanlines[3 * (1 + 18)] = 5  # filter types are 0..4
    return png_file(rows, 2, data=zlib.compress(bytes(scanlines)))


DAMAGED = {
    "Adler-32 wrong": stored_stream_with_one_byte_flipped,
    "cut in the data": cut_in_the_data,
    "unknown filter type": bad_filter_type,
}


@pytest.mark.parametrize("kind", DAMAGED)
def test_damaged_files_refused_by_pillow_naming_them(kind, tmp_path, monkeypatch):
    path = tmp_path / "damaged.png"
    path.write_bytes(DAMAGED[kind]())
    with Image.open(path) as img:
        assert png.decoded(img) is None
    with pytest.raises(ImageError) as ours:
        read_image(path)
    monkeypatch.setattr(png, "decoded", lambda img, grey=False: None)
    with pytest.raises(ImageError) as theirs:
        read_image(path)
    assert str(ours.value) == str(theirs.value)
    assert str(ours.value).startswith(f"{path}: truncated or corrupt image data")


def test_max_pixels_refuses_before_any_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(png_file(random_rows(100, 100, 3, seed=15), 2))

    def never(img):
        raise AssertionError("decoded despite max_pixels")

    monkeypatch.setattr(png, "decoded", never)
    with pytest.raises(ImageError, match="10,000 pixels is more than the limit of 9,999"):
        read_image(path, max_pixels=9_999)


@pytest.mark.parametrize("rows, row_bytes", [(2**60, 15), (2**61, 7), (2**63 - 1, 2**63 - 1)])
def test_unfilter_refuses_sizes_whose_product_wraps(rows, row_bytes):
    """rows * (1 + row_bytes) wrapped round to the buffer's length (signed overflow, undefined
    behaviour): checked, it is a clean refusal."""
    from phashdb import _png

    with pytest.raises(ValueError, match="'data' must be rows"):
        _png.unfilter(b"", rows, row_bytes, 1)


def test_unfilter_of_no_rows_allocates_nothing_for_their_width():
    from phashdb import _png

    assert _png.unfilter(b"", 0, 2**62, 2) == b""


def test_paeth_predicts_as_the_specification_for_every_left_up_and_up_left():
    """The C predictor (stb_image's branchless form) against the specification's, for all 2**24
    (a, b, c): row pairs of 65,536 two-pixel cells, the upper row (filter 0) holding (c, b) and
    the lower (filter 4) unfiltering to a in each cell's left pixel and 0-raw in its right one,
    whose unfiltered value is then the predictor paeth(a, b, c)."""
    from phashdb import _png

    def paeth(a, b, c):  # PNG specification, section 9.4
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))

    cells = np.arange(1 << 16, dtype=np.int32)
    b, c = cells & 0xFF, cells >> 8
    for a in range(256):
        upper = np.stack([c, b], axis=1).ravel()
        lower = np.zeros(2 * len(cells), dtype=np.int32)
        # the left pixel of cell k has the previous cell's right pixel on its left, (b, c) of
        # cell k - 1 above-left: its raw byte is a minus its own predictor
        prev_right = np.concatenate([[0], paeth(a, b, c)[:-1]])
        prev_up = np.concatenate([[0], b[:-1]])
        left = (a - paeth(prev_right, c, prev_up)) & 0xFF
        lower[0::2] = left
        data = b"".join(
            [b"\x00", upper.astype(np.uint8).tobytes(), b"\x04", lower.astype(np.uint8).tobytes()]
        )
        out = np.frombuffer(_png.unfilter(data, 2, 2 * len(cells), 1), np.uint8).reshape(2, -1)
        assert (out[1, 0::2] == a).all()
        assert np.array_equal(out[1, 1::2], paeth(np.full_like(b, a), b, c)), a


def test_grey_rows_are_pillows_convert_of_every_colour():
    """unfilter's grey: Pillow's RGB -> L of all 2**24 colours, rows of 4,096 (filter 0)."""
    from phashdb import _png

    colours = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([colours >> 16, (colours >> 8) & 0xFF, colours & 0xFF], axis=1)
    rgb = rgb.astype(np.uint8).reshape(4096, 4096 * 3)
    data = np.concatenate([np.zeros((4096, 1), np.uint8), rgb], axis=1).tobytes()
    want = Image.frombytes("RGB", (4096, 4096), rgb.tobytes()).convert("L").tobytes()
    assert _png.unfilter(data, 4096, 4096 * 3, 3, True) == want
