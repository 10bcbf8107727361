#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: Debian packages, the virtual environment (.venv) and
# asr_ee installed into it. Quiet when everything is already there.
# Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox
              libsox-fmt-all ffmpeg libportaudio2 fortunes fortunes-min wordnet-base alsa-utils)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.asr_ee_installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing asr_ee and its dependencies into .venv (torch comes from local disk here)"
  if ! .venv/bin/pip install -q -e '.[dev,voices]' > .venv/pip-install.log 2>&1; then
    grep -v "^WARNING: Location" .venv/pip-install.log | tail -30 >&2
    echo "setup: pip install failed (full log: .venv/pip-install.log)" >&2; exit 1
  fi
  .venv/bin/python -c "import torch, torchaudio, lhotse, sentencepiece, asr_ee" \
    || { echo "setup: the install failed; see the pip output above" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
