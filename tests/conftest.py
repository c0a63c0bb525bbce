from __future__ import annotations

import pytest
from PIL import Image as PILImage
from PIL import ImageEnhance

import phashdb

PHOTO_NAMES = ["astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field"]


def skimage_photo(name: str) -> PILImage.Image:
    from skimage import data

    return PILImage.fromarray(getattr(data, name)())


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> dict:
    """Distinct real photos (scikit-image's bundled ones) as JPEG files, by name."""
    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name in PHOTO_NAMES:
        out[name] = folder / f"{name}.jpg"
        skimage_photo(name).convert("RGB").save(out[name], quality=92)
    return out


@pytest.fixture(scope="session")
def near_copies(tmp_path_factory, photos) -> dict:
    """Each photo cropped by 2%, given more contrast, shrunk and re-encoded at low quality:
    a near-duplicate 2 to 6 bits from its photo, by name."""
    folder = tmp_path_factory.mktemp("copies")
    out = {}
    for name, path in photos.items():
        with PILImage.open(path) as img:
            edited = ImageEnhance.Contrast(img.crop((img.width // 50, 0, *img.size))).enhance(1.3)
            out[name] = folder / f"{name}-copy.jpg"
            edited.resize((edited.width * 3 // 4, edited.height * 3 // 4)).save(out[name], quality=40)
    return out


BACKENDS = ["embedded"]


@pytest.fixture(params=BACKENDS)
def reopen(request, tmp_path):
    """A function opening the test's index (fresh for each test) again and again."""
    location = str(tmp_path / "index")
    return lambda **options: phashdb.open(location, **options)


@pytest.fixture
def index(reopen):
    with reopen() as index:
        yield index
