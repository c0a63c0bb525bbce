#!/usr/bin/env bash
# Builds a corpus of images that are not photos (a few hundred, distinct: no two within pHash
# distance 14, as shared/photos/build.sh keeps its photos) from Debian and npm packages only,
# downloaded and unpacked, never installed: painted artworks (Wesnoth's portraits, transparent,
# and story paintings), clipart (Open Clip Art, mostly transparent), screenshots (the GIMP
# manual), icons (Oxygen, 256 px, transparent) and emoji (Twemoji, 64 px, transparent: a set of
# distinct images of one style, the hardest case for false matches).
# Desktop wallpaper packages are never used (kept aside for an independent check), nor any file
# whose path says wallpaper or background.
# Needs: apt-get, npm, dpkg-deb, tar, and a python with phashdb ($PYTHON, default python3).
# Usage: corpus_beyond_photos.sh OUT_DIR -> OUT_DIR/images/<kind>/... and OUT_DIR/manifest.tsv
# (kind = artwork, clipart, screenshot, icon, emoji); each package's copyright file is kept
# beside its images as COPYRIGHT.<package>.
set -euo pipefail
OUT=${1:?usage: corpus_beyond_photos.sh OUT_DIR}
DL=$OUT/_dl; X=$OUT/_x
mkdir -p "$DL" "$X"

DEBS="wesnoth-1.16-data openclipart-png gimp-help-en oxygen-icon-theme"
( cd "$DL" && { apt-get download $DEBS 2>/dev/null || { apt-get update -qq; apt-get download $DEBS; }; } )
for d in "$DL"/*.deb; do n=$(basename "$d"); n=${n%%_*}; mkdir -p "$X/$n"; dpkg-deb -x "$d" "$X/$n"; done
( cd "$DL" && npm pack emoji-datasource-twitter@16.0.0 --silent >/dev/null )
mkdir -p "$X/emoji" && tar -xzf "$DL/emoji-datasource-twitter-16.0.0.tgz" -C "$X/emoji"

"${PYTHON:-python3}" - "$X" "$OUT" <<'EOF'
import glob, hashlib, os, re, shutil, sys
from PIL import Image
from phashdb.phash import read_image

x, out = sys.argv[1], sys.argv[2]
W = f"{x}/wesnoth-1.16-data/usr/share/games/wesnoth/1.16/data/core/images"
# kind, package (for its copyright file), files (sorted), how many to take, smallest side
SOURCES = [
    ("artwork", "wesnoth-1.16-data", glob.glob(f"{W}/portraits/**/*.png", recursive=True), 90, 200),
    ("artwork", "wesnoth-1.16-data", glob.glob(f"{W}/story/*.jpg"), 19, 200),
    ("clipart", "openclipart-png", glob.glob(f"{x}/openclipart-png/usr/share/openclipart/png/**/*.png", recursive=True), 110, 200),
    ("screenshot", "gimp-help-en", glob.glob(f"{x}/gimp-help-en/usr/share/gimp/2.0/help/en/images/**/*.png", recursive=True), 80, 250),
    ("icon", "oxygen-icon-theme", glob.glob(f"{x}/oxygen-icon-theme/usr/share/icons/oxygen/base/256x256/**/*.png", recursive=True), 100, 256),
    # base emoji only: skin tones (1F3FB..1F3FF) are recolourings of one picture
    ("emoji", "emoji-datasource-twitter", [p for p in glob.glob(f"{x}/emoji/package/img/twitter/64/*.png") if not re.search(r"1f3f[b-f]", p)], 120, 64),
]
COPYRIGHT = {
    "wesnoth-1.16-data": f"{x}/wesnoth-1.16-data/usr/share/doc/wesnoth-1.16-data/copyright",
    "openclipart-png": f"{x}/openclipart-png/usr/share/doc/openclipart-png/copyright",
    "gimp-help-en": f"{x}/gimp-help-en/usr/share/doc/gimp-help-en/copyright",
    "oxygen-icon-theme": f"{x}/oxygen-icon-theme/usr/share/doc/oxygen-icon-theme/copyright",
    "emoji-datasource-twitter": f"{x}/emoji/package/LICENSE",
}
kept, rows = [], []
for kind, package, files, want, side in SOURCES:
    files = sorted(p for p in files if not re.search(r"wallpaper|background", p, re.I))
    taken, step = 0, max(1, len(files) // (want * 2))  # every step-th file, spread over the set
    for path in files[::step] + files:
        if taken == want:
            break
        try:
            with Image.open(path) as im:
                size, mode = im.size, im.mode
                alpha = im.has_transparency_data
            h = read_image(path).hash
        except Exception:
            continue
        if min(size) < side or any((h ^ k).bit_count() <= 14 for k in kept):
            continue
        kept.append(h)
        dst = os.path.join(out, "images", kind, package, os.path.relpath(path, x).replace("/", "__"))
        if os.path.exists(dst):
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(path, dst)
        rows.append((os.path.relpath(dst, os.path.join(out, "images")), kind, package,
                     hashlib.sha256(open(path, "rb").read()).hexdigest(), mode, size[0], size[1], int(alpha)))
        taken += 1
    if os.path.exists(COPYRIGHT[package]):
        shutil.copy(COPYRIGHT[package], os.path.join(out, "images", kind, package, f"COPYRIGHT.{package}"))
with open(os.path.join(out, "manifest.tsv"), "w") as fh:
    fh.write("path\tkind\tpackage\tsha256\tmode\twidth\theight\ttransparent\n")
    for r in sorted(rows):
        fh.write("\t".join(map(str, r)) + "\n")
print(len(rows), "images ->", os.path.join(out, "manifest.tsv"))
EOF
