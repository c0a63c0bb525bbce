"""phashdb.descriptor and the images it exists for: the second stage's stored descriptor, the
eight flips and rotations of a query, its confirmation of edited copies, and indexes made
before it."""

from __future__ import annotations

import hashlib

import pytest
from hashing_help import jpeg
from PIL import Image

import phashdb
from phashdb import confirm, descriptor
from phashdb.confirm import confirms, judge
from phashdb.descriptor import DESCRIPTOR_VERSION, SIZE, VARIANTS
from phashdb.phash import read_image
from phashdb.windows import NAMES as WINDOWS

# The persisted definition: these must never change under DESCRIPTOR_VERSION.
GOLDEN = {
    "astronaut": (
        "c2d692764c9f550f3228bd90ddb1c09bcc15b60a7b35b5e29cf14a51b50a67ad"
        "ea7a9ea98f805bb49a82706b336b733025"
    ),
    "camera": (
        "bf78f183c102c06743fc4e9c8cd8bc223327787761d3b39897888f8f4b172e5c"
        "6fcf93c6c855408bb3124c899b24849292"
    ),
    "chelsea": (
        "b1ac5ffae6df46225131214897e25edba411e16552ca376ab8c93d465d07426f"
        "7c826d6a6777607d7f7273728485826e92"
    ),
    "coffee": (
        "bb2483cc209e37f24cf10fc336bc37cf32c29b273209330e60cf9936333c773c"
        "993b949f9164878c876c2d476484203063"
    ),
    "coins": (
        "e053d552b52ca9732b58544d52923aac7becc603d05333d4d6a552ab8ffbcc25"
        "cd8181756b6d6861445453566054564861"
    ),
    "moon": (
        "a327d9855647109b14db367998dc7764d9346d268d93a6c763c3c0cdb36399d0"
        "207475727574707078716a6d756f666372"
    ),
    "rocket": (
        "c0d937671b96ec201bdfe521125e67a19c7e0381fc7e0381ec7a1387e4f81b0f"
        "34282e281c3d423926505649314f5d5e2c"
    ),
    "motorcycle_left": (
        "c5110711c6316b0f925a70e8a88573693576cd52694b973b8c29b58ce59f7df9"
        "b3489c73674f5551656f676b4ca2948965"
    ),
    "hubble_deep_field": (
        "8486cc4e4f679ec1ba124d1d331c3eb0387374e52ba6a3da95a77963332313dc"
        "46111b1212141511121012171712141411"
    ),
    "retina": (
        "c010cc7a1feb97a27afcc01f2d010ff5781f70952c7e0fc770ecec0a2de08d6a"
        "4b236761227d83745a7583775b23655e20"
    ),
    "brick": (
        "a2728dc1cb7515456efafded4659f98a9ef5234f259100ae7c72496c84624974"
        "596e6f7072706f6f726f6e6e6f706f706f"
    ),
    "grass": (
        "92bbf2c8e1c08bdcabd80b0e77720dbe5132b7c06789db1588daa8e0a7ae9b31"
        "6978747b787173797671767a797075787a"
    ),
    "gravel": (
        "c61d75441cb5aeef347624762495a6b49a2ee58d058be5ecf3b741858b9cb40c"
        "7a7d7e7b7a7e7f7b7d808381837b83817e"
    ),
    "page": (
        "806eed31a431a99c664ed00a90c2da06d2469b9ec299db31b36e6f7774b13df9"
        "6c87abcaea7296bace6c94c1db6895c7e3"
    ),
    "text": (
        "b69930f3bb588eb223c9713fcdd0dc3b90612438a8b337d9d7ea64cdec640183"
        "5b73707f867d77777f7f8988888a878e8b"
    ),
}

# Layout v2's tail: each photo's seven other variants' pHashes, and the sha256 of its first 329
# stored bytes (whose first 49 are GOLDEN's; layout v3 adds keys after them).
GOLDEN_V2 = {
    "astronaut": (
        "97c7191867e88a9d c26d4caa3242dd3f 973819f767178862 c7b30c5e2736ca16"
        " 92e6590b73639d43 c74c0cb137c9cae9 921959f4629c9dbc",
        "a06353b8beea14ad77985f200f67bad1ede7bcd7836b4204a79ce2551d4bdf2e",
    ),
    "camera": (
        "eaa49495161bd9e9 bf0ec13f43b18c43 ea5b946a16e4d916 f37cc1c187878ce8"
        " a6299494d2d2d9bd f383c13e87788c17 a6d6946bd22dd942",
        "d6eb8069693de6c089de60c160f3f5a104788c448ddb6e346d31f4c00bd8c9f6",
    ),
    "chelsea": (
        "f40ab33b5474c60f b1a0e6b951de17a1 e0f5b3ec048bc2f4 a079a4cb417373ce"
        " f52cf19e1426269b a28eb4bc518f7331 f7d3f16114592664",
        "13a2e3c526adac782101f4ef8a8cbcf7b746bd1695166b11d955b7f90907796b",
    ),
    "coffee": (
        "eed67562195a6322 bb7c20dc6cf036c8 ee29758919a56399 c008bb938c1fd7d5"
        " 955deed6d95a8280 c0f6b36c8ce0d72a 95a2e629d9a4827f",
        "6e66874be75d0e33f81df0d9a51d32673b0d2b086a102c6ec0bb25bd3a618de0",
    ),
    "coins": (
        "b580e1fc7e01076f e42ab5562bab52c5 b17fe0037cfc0790 f0c6b96719e40b78"
        " a593ec324cb15e2d f039b998199b0ba7 a56ceccd4c4e52d2",
        "bbf370fd0326d61c82ffb044c6e249199930c6372b921950e0599045fc475414",
    ),
    "moon": (
        "f69c33474163cd23 a32676ef14c99c89 f67303b8419cc9dc c271a57f422fa5c1"
        " 9734f02a177af095 c29ea5e042d2b53f 97cbd0d51785e06a",
        "f404f18e3e9b2fb759c50bbcc536d0b627181265bb3e686460dffc61dcf02c74",
    ),
    "rocket": (
        "95724eb94eb24732 c8d81b131b1b1ede 959d46464c4f47cd 9495556a38556b6d"
        " c1c1007fef033f3c 946a55d538aa6f92 c13f00c04dff36c7",
        "9388c46e70fa4b1a290653a8e24b5b6b49681c5365e7cedd71afc70eca402c18",
    ),
    "motorcycle_left": (
        "9052933ec725fd26 c5f8c6b4928faa8c 90ad93c1c6caf9c9 aab5170d12e07bd9"
        " ffe0525847b52e84 aa4a17f2121f792e ff1f42a247482c73",
        "06fd6f736474a730c5a8b15b42c68779f738075f6729a9497251532f77c4519f",
    ),
    "hubble_deep_field": (
        "d1991ac3ef18466b 84334f69baba33c1 91661a34efe74694 d8640b1b6dd53b26"
        " 8d315e4e3ca06e73 d89b09e46d0a3bd9 8d4e5cb1285f6e8c",
        "81f4b65ee81ed1879199281caabd1fabc2eb47c9011995f7208c52dfbb282e92",
    ),
    "retina": (
        "95994ac22fb5785a c0331f687a3f2db0 95664a3d2f4a78a5 d4cd0a386b733933"
        " 81985f6d3e266c66 d4330ec76b8c39cc 81665b923ed96c99",
        "2cd9137281ec1327d31de9ce76eb78d416d86c4269cfbe46936b8efbdb48b4b6",
    ),
    "brick": (
        "f7d8de4033a813ac a276dfea6e02460e f7238a9a33570353 e50f8d15641eaa75"
        " b07ad860396bff20 e5f08dea65a1aa8a b085c89d3084ffcf",
        "94a6a901da8d5a028a33bf248e8f8148740d178aa8a6689bbf79490b217a9ff9",
    ),
    "grass": (
        "c5a3b49ee65e2258 9205e134a3f477f2 c758b461fea122a7 f8626ac21503de3f"
        " ad273f9700568b6a f88d6a3515bc5ec0 add83f6848a98b95",
        "a7fdd04e090a89cfb636f3bec39f8eff03f5cd055329aa47f4e95d2996f57b2d",
    ),
    "gravel": (
        "932249eb687171f3 ce8a1d513ddb2459 93df491469ce714c 91c05f7838ffd148"
        " c4950a3dedaac43d 913f5f873800d1b7 c46f0ad26d55c4ea",
        "b156a9099dc83d74859079833a1afc908298ef20e6ae50bfc4c82f99ab7dc9c0",
    ),
    "page": (
        "d4b8f1cc3285c58f 8112a4766f3fb235 d547f1033372c770 f74d780755684bd0"
        " a2183f570c3d5e8d f7b268e851970927 a2e72dad00c25efa",
        "aa68e734ba6e9b663fa7be0d58504999d945564475c5bb0eccb6619999717d2f",
    ),
    "text": (
        "e365eedb72248889 b6cfba60238ecd03 e38aee2472da8876 b307eca53393b80e"
        " e652b8a066c6ed4b b3f8ec183364b8d1 e6adb90d6631ed80",
        "1e4a42b75d18a18720a603caaeb4ba8b99659eac58c78417a36577e871225eb0",
    ),
}

# PIL's transposition giving the query each variant names, from the stored image.
MAKES = {
    "as-is": None,
    "mirrored": Image.Transpose.FLIP_LEFT_RIGHT,
    "flipped": Image.Transpose.FLIP_TOP_BOTTOM,
    "rotated 180": Image.Transpose.ROTATE_180,
    "transposed": Image.Transpose.TRANSPOSE,
    "rotated 90": Image.Transpose.ROTATE_90,
    "rotated 270": Image.Transpose.ROTATE_270,
    "transverse": Image.Transpose.TRANSVERSE,
}


def test_golden_vectors_pin_the_descriptor(photo_images):
    assert DESCRIPTOR_VERSION == "dct256-q-thumb4-variants-keys-v4"
    stored = {name: read_image(img).descriptor for name, img in photo_images.items()}
    keys = {name: {k.name for k in descriptor.stored_keys(d)} for name, d in stored.items()}
    assert {name for name, k in keys.items() if k - set(WINDOWS)} == {
        "hubble_deep_field", "retina",  # black around the picture: a backdrop key (GOLDEN_V4)
        "motorcycle_left",  # a plain bright patch at its top: an unboxed key (phashdb.unbox)
    }  # fmt: skip
    # every photo keeps window keys (phashdb.windows: 8 to 10 of them here), so no descriptor
    # is v2's 329 bytes any more
    assert {name: len(k & set(WINDOWS)) for name, k in keys.items()} == GOLDEN_WINDOW_COUNTS
    assert {name: d[:SIZE].hex() for name, d in stored.items()} == GOLDEN
    tails = {
        name: (
            " ".join(f"{h:016x}" for h in _variant_hashes(d)),
            hashlib.sha256(d[: descriptor.STORED_SIZE]).hexdigest(),
        )
        for name, d in stored.items()
    }
    assert tails == GOLDEN_V2


# Layout v4's keys (phashdb.trim, phashdb.backdrop, phashdb.windows): for an image that has
# them, each key's name and pHash, and the sha256 of the stored bytes (whose first 329 are v2's
# layout; then each key but a window in 58 bytes, each window in 26: descriptor.COMPACT).
# Re-derived when the windows became compact: the names and pHashes are GOLDEN_V3's but that
# "retina" lost its "centre 5:4" window (windows._confirmed judges by the compact rule now: its
# "centre 4:3", kept before it, confirms it).
GOLDEN_V4 = {
    "astronaut framed": (
        "trimmed c2924c5532bddfc8 centre 16:9 d193cd4220b67bb5 "
        "centre 16:10 d193cc4222b57b3d centre 4:3 d193cc4e32b55b49 "
        "centre 80% d2b2cc4f32bb9158 top left 90% 82b6497637b95d48 "
        "top right 90% d191665b3b0c4a6f bottom left 90% 82b60dc97622bbd5 "
        "bottom right 90% d19124ce73353dca",
        "4e074be2b06e4bdf469c97cb391f87ae3aba448045fda10b500c9aaab01fd2f9",
    ),
    "sun on black": (
        "backdrop a5d48fd01dd07d23 trimmed 9e9a6918e5619967 centre 16:9 cf2334237323f323 "
        "centre 16:10 ce23742b722bd22b centre 5:4 cf2b742bd20d88dc "
        "centre 1:1 cf227d22f308cacd centre 80% cf227d227722d728 "
        "top left 90% 9a656196e6989a79 top right 90% cf3034c3b3cdcb0c "
        "bottom left 90% 9a1e6169a6679e86 bottom right 90% cf0b342cb3328bd3",
        "41af4b0cd9a1bd181426944244e6ffd492c13e7a1d17232bb3a885819fa43215",
    ),
    "hubble_deep_field": (
        "backdrop fb32b449c1b2ce43 centre 16:9 84e145b0f8c5cfa7 "
        "centre 16:10 846945b2fc45c7ab centre 4:3 84c9cd8ece4d878e "
        "centre 5:4 84cd4d9eaa4d03be centre 1:1 c5ce4194be4f3334 "
        "centre 80% c5ebc090dfcbc303 top left 90% 8dcacfb5dc423530 "
        "top right 90% c6ed409a4f71323e bottom left 90% 85c84b85b5dc43cf "
        "bottom right 90% d6ef4980bacf41c1",
        "358178a03d54b32147bb7048b9e624b8fc06d466162ce6f6bc232ba8a0edaed1",
    ),
    "retina": (
        "backdrop ea4abd17f0e0852d centre 16:9 c068051f72f09f3f "
        "centre 16:10 c078053f52f01f9f centre 4:3 c0e9059f52f01f8f "
        "centre 80% d0ef058354ff018f top left 90% 801e1f7e5f785a60 "
        "top right 90% d50f022b0a2f0f7f bottom left 90% 80e01f855f857a9f "
        "bottom right 90% d5f506d50af22f82",
        "4bad605508f7ae8cd62fa6e14fa9ca0b0861df03b2ac8471496a202572111848",
    ),
}
# Layout v3 (every key in 58 bytes: name byte 1 + its place in KEYS, pHash, 49 compared bytes),
# what indexes of format 3 hold: the sha256 of the rows phashdb wrote before layout v4 (git
# 1a2111d), rebuilt from the keys read today (as_v3) for the three images whose keys are the
# same; they must still be read, and judged, as v4's rows are.
GOLDEN_V3 = {
    "astronaut framed": "fd23268e3debbb85b3fda58882e47a35fbe1d936803a42157f993cb88faef00d",
    "sun on black": "7f2f7bbcc347ac29b5cb592c86009adb083fdc115afc286e29d43b221bec962c",
    "hubble_deep_field": "34695a68b34f065b5b3ac81e84274928617b75c6e095a0e54b33575cf4ba18ef",
}


def as_v3(picture) -> bytes:
    """The descriptor layout v3 stored for `picture`: its variants, then each key in 58 bytes."""
    entries = (
        bytes([descriptor.KEYS.index(k.name) + 1]) + k.hash.to_bytes(8, "big") + k.descriptor
        for k in picture.keys
    )
    return descriptor.pack(picture.variants) + b"".join(entries)


# How many window keys (phashdb.windows) each photo keeps: the ratio windows that cut >= 4% of
# a side, the five parts, less those the whole or an earlier window confirms. Re-derived when
# windows were judged by the compact rule (confirm.STRICT, within windows.SAME = 4): coins
# 8 -> 9 (its "centre 4:3" kept), retina 9 -> 8 and grass 9 -> 8 (each its "centre 5:4" left
# out); the others as before.
GOLDEN_WINDOW_COUNTS = {
    "astronaut": 8, "camera": 9, "chelsea": 8, "coffee": 10, "coins": 9, "moon": 9, "rocket": 9,
    "motorcycle_left": 10, "hubble_deep_field": 10, "retina": 8, "brick": 9, "grass": 8,
    "gravel": 9, "page": 9, "text": 9,
}  # fmt: skip


def keyed_images(photo_images) -> dict:
    from test_backdrop import logo, on, sun
    from test_trim import framed

    return {
        "astronaut framed": framed(photo_images["astronaut"]),
        "sun on black": on(logo(sun), (0, 0, 0)),
        "hubble_deep_field": photo_images["hubble_deep_field"],
        "retina": photo_images["retina"],
    }


def test_golden_vectors_pin_the_stored_keys(photo_images):
    """Layout v4: v2's 329 bytes, then per key its name byte and pHash, then a window's quality
    and thumbnail (26 bytes, under name byte 18 + its place among the windows), any other key's
    49 compared bytes (58)."""
    got = {}
    for name, img in keyed_images(photo_images).items():
        picture = read_image(img)
        stored = picture.descriptor
        assert stored[: descriptor.STORED_SIZE] == descriptor.pack(picture.variants)
        windows = sum(k.name in WINDOWS for k in picture.keys)
        other = len(picture.keys) - windows
        assert len(stored) == descriptor.STORED_SIZE + other * 58 + windows * 26
        shown = " ".join(f"{k.name} {k.hash:016x}" for k in descriptor.stored_keys(stored))
        got[name] = (shown, hashlib.sha256(stored).hexdigest())
        # a window as stored: its name byte, pHash, quality and thumbnail; read back with no
        # 256-bit hash (zeros), which no rule reads
        first = next(k for k in picture.keys if k.name in WINDOWS)
        at = descriptor.STORED_SIZE + other * 58
        assert stored[at] == 18 + WINDOWS.index(first.name)
        assert stored[at + 9 : at + 26] == first.descriptor[32:]
        read = {k.name: k for k in descriptor.stored_keys(stored)}[first.name]
        assert read.descriptor == bytes(32) + first.descriptor[32:]
    assert got == GOLDEN_V4


def test_a_v3_row_is_read_and_judged_as_its_v4_row(photo_images):
    """The rows of layout v3 (indexes of format 3): their keys read, the 58-byte windows with
    their 256-bit hash, and every key judged as the same key of the v4 row is."""
    for name, img in keyed_images(photo_images).items():
        picture = read_image(img)
        if name not in GOLDEN_V3:
            continue
        old, new = as_v3(picture), picture.descriptor
        assert hashlib.sha256(old).hexdigest() == GOLDEN_V3[name]
        assert not descriptor.damaged(old) and len(old) > len(new)
        assert descriptor.stored_keys(old) == picture.keys  # every byte as read
        assert descriptor.core(old) == descriptor.core(new) == picture.variants[0].descriptor
        assert descriptor.stored_variants(picture.hash, old) == picture.variants
        pairs = list(zip(descriptor.stored_keys(old), descriptor.stored_keys(new)))
        assert [a.name for a, _ in pairs] == [k.name for k in picture.keys]
        for other in keyed_images(photo_images).values():  # each key against each image
            query = read_image(other).variants[0]
            for a, b in pairs:
                d = (a.hash ^ query.hash).bit_count()
                seen = [confirm.judge(a.name, d, 8, query.descriptor, k.descriptor, "theirs")
                        for k in (a, b)]  # fmt: skip
                assert seen[0] == seen[1]


def test_the_stored_keys_are_the_computed_ones(photo_images):
    from phashdb.backdrop import NAME as BACKDROP
    from phashdb.renderings import NAMES as RENDERINGS
    from phashdb.renderings import SMALL_NAMES
    from phashdb.trim import NAME as TRIMMED
    from phashdb.unbox import NAME as UNBOXED

    # (renderings: index format 2; a small source's, searched wide, appended after)
    small = tuple(SMALL_NAMES[n] for n in RENDERINGS)
    assert descriptor.KEYS == (BACKDROP, TRIMMED, *RENDERINGS, UNBOXED, *small, *WINDOWS)
    assert confirm.WIDE_KEYS == {*small, UNBOXED}
    for img in keyed_images(photo_images).values():
        picture = read_image(img)
        stored = descriptor.stored_keys(picture.descriptor)
        assert picture.keys and stored == tuple(map(descriptor.as_stored, picture.keys))
        assert descriptor.stored_variants(picture.hash, picture.descriptor) == picture.variants
        assert descriptor.core(picture.descriptor) == picture.variants[0].descriptor
    photo = read_image(photo_images["astronaut"])  # most images: their window keys alone
    assert photo.keys and {k.name for k in photo.keys} <= set(WINDOWS)
    assert descriptor.stored_keys(photo.descriptor) == tuple(map(descriptor.as_stored, photo.keys))
    page = read_image(Image.new("L", (400, 300), 200))  # no window shows a picture: no key
    assert page.keys == () and len(page.descriptor) == descriptor.STORED_SIZE


@pytest.mark.parametrize("layout", ["v3", "v4"])
def test_a_row_with_a_bad_key_is_damaged(photo_images, layout):
    picture = read_image(keyed_images(photo_images)["sun on black"])
    stored, at = picture.descriptor, descriptor.STORED_SIZE
    stored = as_v3(picture) if layout == "v3" else stored
    one = stored[: at + descriptor.KEY_SIZE]  # its backdrop key, 58 bytes in either
    assert not descriptor.damaged(one) and len(descriptor.stored_keys(one)) == 1
    backwards = stored[:at] + stored[at + descriptor.KEY_SIZE :] + one[at:]
    unknown = stored[:at] + b"\x1c" + stored[at + 1 :]
    bad = [backwards, unknown, stored + one[at:], stored[:-1], stored + b"\x00"]
    if layout == "v4":  # a window's short entry read as a long one, or repeated in both forms
        last = stored[-descriptor.COMPACT_SIZE :]
        v3_window = as_v3(picture)[-descriptor.KEY_SIZE :]
        bad += [stored[:-26] + bytes([last[0] - 10]) + last[1:], stored[:-26] + v3_window + last]
        bad += [stored[:-26] + stored[-52:-26]]  # a window twice
    for damaged in bad:
        assert descriptor.damaged(damaged) and descriptor.stored_keys(damaged) == ()
        assert descriptor.stored_variants(picture.hash, damaged) == ()
    with pytest.raises(ValueError, match="'keys' must be named in"):
        descriptor.pack(picture.variants, picture.keys[::-1])


def _variant_hashes(stored: bytes) -> list[int]:
    at = range(SIZE, descriptor.STORED_SIZE, descriptor.VARIANT_SIZE)
    return [int.from_bytes(stored[k : k + 8], "big") for k in at]


def test_the_stored_variants_are_the_computed_ones(photo_images):
    """What a batch pass reads back from a stored descriptor is exactly what a check computes
    from the pixels: hashes, compared bytes, the thumbnail flipped and rotated."""
    for img in photo_images.values():
        picture = read_image(img)
        assert descriptor.stored_variants(picture.hash, picture.descriptor) == picture.variants
        assert descriptor.core(picture.descriptor) == picture.variants[0].descriptor


def test_a_v1_or_damaged_descriptor_has_no_stored_variants(photo_images):
    picture = read_image(photo_images["astronaut"])
    v1 = picture.descriptor[:SIZE]
    assert descriptor.stored_variants(picture.hash, v1) == ()
    assert descriptor.core(v1) == v1 and not descriptor.damaged(v1)
    for bad in (v1[:-1], picture.descriptor + b"\0", b""):
        assert descriptor.damaged(bad) and descriptor.core(bad) is None
        assert descriptor.stored_variants(picture.hash, bad) == ()
        # judged as no descriptor at all: the plain threshold
        assert judge("as-is", 3, 8, picture.descriptor, bad) == (True, None)
        assert judge("mirrored", 3, 8, picture.descriptor, bad) == (False, None)


def test_the_as_is_variant_is_the_images_own_hash(photo_images):
    for img in photo_images.values():
        picture = read_image(img)
        assert [v.name for v in picture.variants] == [name for name, *_ in VARIANTS]
        assert picture.variants[0].hash == picture.hash == phashdb.hash_image(img)


@pytest.mark.parametrize("name", list(MAKES))
def test_each_variant_undoes_its_flip_or_rotation(name, photo_images):
    """The variant named for how a query was made from a photo is (nearly) the photo itself:
    derived from the query's DCT coefficients, it equals the hash of the query flipped back,
    up to the resampling of a transposed image."""
    for photo in ("astronaut", "camera", "coffee", "rocket"):
        img = photo_images[photo]
        query = img if MAKES[name] is None else img.transpose(MAKES[name])
        stored = read_image(img)
        variant = {v.name: v for v in read_image(query).variants}[name]
        assert (variant.hash ^ stored.hash).bit_count() <= 2, photo
        ok, score = confirms(variant.descriptor, stored.descriptor)
        assert ok and score < -70, (photo, score)
        # and no other variant looks like the photo
        others = [v for v in read_image(query).variants if v.name != name]
        assert all((v.hash ^ stored.hash).bit_count() > 10 for v in others), photo


def test_distinct_photos_are_not_confirmed(photo_images):
    descs = [(name, read_image(img).descriptor) for name, img in photo_images.items()]
    for a, da in descs:
        for b, db in descs:
            if a < b:
                ok, score = confirms(da, db)
                assert not ok and score > confirm.SCORE_LIMIT, (a, b, score)


def test_an_edited_copy_beyond_the_threshold_is_confirmed(photo_images):
    """A 3-degree rotation of a photo is further from it than the plain threshold, and the
    second stage still finds it: the point of gathering candidates at a wider radius."""
    img = photo_images["astronaut"].convert("RGB")
    copy = read_image(jpeg(img.rotate(3, Image.BICUBIC)))
    stored = read_image(img)
    d = (copy.hash ^ stored.hash).bit_count()
    assert 8 < d <= 16
    assert judge("as-is", d, 8, copy.descriptor, stored.descriptor)[0]
    assert not judge("as-is", d, 8, None, None)[0]  # without descriptors: the plain threshold


def test_an_embedded_index_made_before_the_second_stage_is_read_and_extended(tmp_path, photos):
    """An index of v1 hashes without the descriptor column: its hashes are matched by the plain
    threshold, new images are stored with their descriptors."""
    import sqlite3

    location = tmp_path / "index"
    with phashdb.open(location) as index:
        index.add(photos["astronaut"], id="old")
    db = sqlite3.connect(location / "index.sqlite3")
    db.execute("DROP INDEX images_keyed")  # (index format 2's, of keyed rows)
    db.execute("ALTER TABLE images DROP COLUMN descriptor")
    db.execute("DELETE FROM meta WHERE key = 'descriptor_version'")
    db.execute("UPDATE meta SET value = '\"phash-dct64-v1\"' WHERE key = 'hash_version'")
    db.commit()
    db.close()
    with phashdb.open(location) as index:
        assert index.get("old").descriptor is None
        assert index.settings["descriptor_version"] == DESCRIPTOR_VERSION
        [match] = index.check(photos["astronaut"]).matches
        assert (match.id, match.distance, match.score) == ("old", 0, None)
        index.add(photos["coffee"], id="new")
        assert index.get("new").descriptor == read_image(photos["coffee"]).descriptor


@pytest.mark.parametrize("variant", ["as-is", "mirrored", "unboxed", "on black"])
@pytest.mark.parametrize("keyed", ["mine", "theirs"])
def test_pairs_judged_at_once_are_judged_as_one_by_one(variant, keyed, photo_images):
    """confirm.judge_pairs (a dedupe's every hit of a variant at once, each pair its own
    query) gives each pair the verdict and score `judge` gives it alone: photos, edited copies,
    a blank page, none and a damaged descriptor, at distances on both sides of the threshold."""
    imgs = [img.convert("RGB") for img in list(photo_images.values())[:4]]
    descs = [read_image(img).descriptor for img in imgs]
    descs += [read_image(jpeg(img.rotate(3, Image.BICUBIC))).descriptor for img in imgs[:2]]
    descs += [read_image(Image.new("RGB", (64, 64), "white")).descriptor, None, b"\x01" * 7]
    pairs = [(m, t, s) for m in descs for t in descs for s in (descs[0], None)]
    distances = [(3 * k) % 17 for k in range(len(pairs))]
    mines, theirs, sources = zip(*pairs)
    got = confirm.judge_pairs(variant, distances, 8, list(mines), list(theirs), keyed,
                                 list(sources))  # fmt: skip
    assert got == [judge(variant, d, 8, m, t, keyed, s) for d, (m, t, s) in zip(distances, pairs)]
    assert any(ok for ok, _ in got) and not all(ok for ok, _ in got)
