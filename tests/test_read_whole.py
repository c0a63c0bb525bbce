"""Small files are read whole before decoding, larger ones streamed: the picture, the digest
and the errors are the same either way (phashdb.source.WHOLE_BYTES is only where the line is)."""

from __future__ import annotations

import pytest
from PIL import Image as PILImage

import phashdb.source
from phashdb.errors import ImageError
from phashdb.source import read_file


@pytest.fixture
def files(tmp_path, photos, near_copies):
    png = tmp_path / "coffee.png"
    PILImage.open(photos["coffee"]).convert("RGBA").save(png)
    return [str(p) for p in (*photos.values(), *near_copies.values(), png)]


def both_ways(path, monkeypatch):
    """read_file(path) streamed, then read whole."""
    monkeypatch.setattr(phashdb.source, "WHOLE_BYTES", -1)
    streamed = read_file(path)
    monkeypatch.setattr(phashdb.source, "WHOLE_BYTES", 1 << 40)
    return streamed, read_file(path)


def test_the_same_picture_and_digest_either_way(files, monkeypatch):
    for path in files:
        (s_picture, s_fields), (w_picture, w_fields) = both_ways(path, monkeypatch)
        assert s_picture == w_picture and s_picture.variants == w_picture.variants
        assert s_fields == w_fields and len(w_fields["digest"]) == 64


def test_the_same_error_naming_the_file_either_way(tmp_path, photos, monkeypatch):
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(photos["rocket"].read_bytes()[:3000])
    errors = []
    for whole in (-1, 1 << 40):
        monkeypatch.setattr(phashdb.source, "WHOLE_BYTES", whole)
        with pytest.raises(ImageError) as e:
            read_file(str(cut))
        errors.append(str(e.value))
    assert errors[0] == errors[1] and errors[0].startswith(f"{cut}: truncated")
