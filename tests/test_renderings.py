"""phashdb.renderings: a transparent source's keys (on black, alpha dropped) are read from its
grey and its alpha, reduced to about renderings.KEY_SIDE pixels: the same keys as the
renderings read at full size, whole or a band of rows at a time, in every mode with
transparency; golden vectors pin the reduced read (the keys are stored: index format 2)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_backdrop import encoded, on, sun
from test_stored_keys import banner, exports, hidden, keys_of

from phashdb import confirm, descriptor, phash
from phashdb.phash import read_image
from phashdb.renderings import KEY_SIDE, NAMES

# The keys of large(banner) and large(hidden(sun)), read from their renderings reduced by 3.
GOLDEN_LARGE_BANNER = {"on black": "fb28f782dd88d520"}
GOLDEN_LARGE_HIDDEN = {"on black": "da2b602bd62d98dc", "alpha dropped": "8c9572954b97cc27"}
# The large banner's stored key: name byte 3, pHash, 49 compared bytes.
GOLDEN_LARGE_BANNER_KEY = (
    "03fb28f782dd88d520bbbe28b4e619823c9946889781192099ffda7f7ca1a6ddce29e981c96ee8a2238e4b3039"
    "4927373827273a3b274b4c434d"
)


def large(img: Image.Image) -> Image.Image:
    """`img` three times larger (each pixel a 3x3 block): its renderings are reduced by 3."""
    return img.resize((img.width * 3, img.height * 3), Image.Resampling.NEAREST)


def paletted(img: Image.Image) -> Image.Image:
    """`img` (RGBA, transparent where its alpha is 0) as a palette image with a transparent
    index, as GIFs and small PNGs store it."""
    clear = np.asarray(img)[..., 3] == 0
    p = on(img, (0, 0, 0)).quantize(32)
    index = int(np.asarray(p)[clear][0])
    a = np.asarray(p).copy()
    a[clear] = index
    out = Image.fromarray(a, "P")
    out.putpalette(p.getpalette())
    out.info["transparency"] = index
    return out


def test_golden_vectors_pin_the_keys_read_from_reduced_renderings():
    assert min(large(banner()).size) // KEY_SIDE == 3
    for source, golden in ((banner, GOLDEN_LARGE_BANNER), (hidden, GOLDEN_LARGE_HIDDEN)):
        keys = keys_of(encoded(large(source(sun) if source is hidden else source()), "PNG"))
        assert {n: h for n, h in keys.items() if n in NAMES} == golden
    stored = read_image(encoded(large(banner()), "PNG")).descriptor
    first = stored[descriptor.STORED_SIZE :][: descriptor.KEY_SIZE]  # then its window keys
    assert first.hex() == GOLDEN_LARGE_BANNER_KEY


@pytest.mark.parametrize("source", [banner, lambda: hidden(sun)])
def test_a_reduced_rendering_gives_the_full_size_renderings_key(source):
    img = large(source())
    keys = {k.name: k for k in read_image(img).keys if k.name in NAMES}
    full = {
        "on black": read_image(on(img, (0, 0, 0))).variants[0],
        "alpha dropped": read_image(img.convert("RGB")).variants[0],
    }
    assert keys
    for name, key in keys.items():
        assert (key.hash ^ full[name].hash).bit_count() <= 2
        # identical images score -80
        assert confirm.confirms(key.descriptor, full[name].descriptor)[1] < -60


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_keys_made_a_band_of_rows_at_a_time_are_the_whole_images(monkeypatch, mode):
    img = large(hidden(sun))
    img = paletted(img) if mode == "P" else img.convert(mode)
    monkeypatch.setattr(phash, "STRIP_PIXELS", img.width * img.height)  # one strip
    whole = read_image(img).keys
    assert {k.name for k in whole} & set(NAMES)
    monkeypatch.setattr(phash, "STRIP_PIXELS", 7 * img.width + 5)  # ragged last strip
    assert read_image(img).keys == whole


def test_a_key_is_the_as_is_variant_alone(photo_images):
    pixels = np.asarray(
        photo_images["astronaut"].convert("L").resize((32, 32), Image.Resampling.LANCZOS),
        dtype=np.float64,
    )
    assert descriptor.variants(pixels, 1) == descriptor.variants(pixels)[:1]


def test_a_large_transparent_logos_three_exports_are_found(index):
    index.add(encoded(large(banner()), "PNG"), id="banner")
    found = {
        name: [(m.id, m.variant) for m in index.check(data).matches]
        for name, data in exports(large(banner())).items()
    }
    assert found == {
        "on white": [("banner", "as-is")],
        "on black": [("banner", "on black")],
        "alpha dropped": [("banner", "on black")],
    }
