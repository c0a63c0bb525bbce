#!/usr/bin/env bash
# The main job on the embedded index: ingest a folder of real photos, then check a new upload
# (a re-encoded, shrunk copy of one of them) and a photo that is not in the index.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${DEMO:-var/demo}
rm -rf "$DEMO" && mkdir -p "$DEMO/photos" "$DEMO/uploads"
.venv/bin/python - "$DEMO" <<'PY'
import sys
from PIL import Image
from skimage import data
demo = sys.argv[1]
for name in ["astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field", "coins"]:
    Image.fromarray(getattr(data, name)()).convert("RGB").save(f"{demo}/photos/{name}.jpg", quality=90)
cat = Image.open(f"{demo}/photos/chelsea.jpg")
cat.resize((cat.width // 2, cat.height // 2)).save(f"{demo}/uploads/cat-upload.jpg", quality=45)
Image.fromarray(data.retina()).save(f"{demo}/uploads/retina.jpg", quality=90)
PY
export PHASHDB_URL=$DEMO/index
set -x
.venv/bin/phashdb ingest "$DEMO/photos"
.venv/bin/phashdb check "$DEMO/uploads/cat-upload.jpg" "$DEMO/uploads/retina.jpg" || true
.venv/bin/phashdb add --on-duplicate trash "$DEMO/uploads/cat-upload.jpg" "$DEMO/uploads/retina.jpg" || true
.venv/bin/phashdb stats
