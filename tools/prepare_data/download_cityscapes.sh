#!/usr/bin/env bash
# Cityscapes video sequences for the `cityscapes` task, in the HDF5 layout that PredBench reads:
#
#   <data_root>/cityscapes/Cityscapes128_h5/{train,val,test}/shard_0001.hdf5
#
# (one group per 30-frame snippet, frames as uint8 128x128x3 datasets "0".."29", plus a group
# `len`), as MCVD's datasets/cityscapes_convert.py writes it: centre-crop to a square, resize to
# 128x128 (Lanczos). Source: leftImg8bit_sequence_trainvaltest.zip (package 14, about 324 GB) from
# https://www.cityscapes-dataset.com, which needs a free account: set CITYSCAPES_USERNAME and
# CITYSCAPES_PASSWORD. The archive is then converted by tools/prepare_data/convert_cityscapes.py
# (2975 train, 500 val and 1525 test snippets).
#
# Usage: CITYSCAPES_USERNAME=... CITYSCAPES_PASSWORD=... \
#        bash tools/prepare_data/download_cityscapes.sh [data_root] [workers]   (default: data, 8)
set -euo pipefail

DATA_ROOT="${1:-data}"
WORKERS="${2:-8}"
RAW="$DATA_ROOT/cityscapes/raw"
mkdir -p "$RAW"
: "${CITYSCAPES_USERNAME:?set CITYSCAPES_USERNAME to your cityscapes-dataset.com account}"
: "${CITYSCAPES_PASSWORD:?set CITYSCAPES_PASSWORD to your cityscapes-dataset.com password}"

COOKIES="$(mktemp)"
trap 'rm -f "$COOKIES"' EXIT
wget --keep-session-cookies --save-cookies="$COOKIES" \
     --post-data "username=$CITYSCAPES_USERNAME&password=$CITYSCAPES_PASSWORD&submit=Login" \
     -O /dev/null https://www.cityscapes-dataset.com/login/
wget -c --load-cookies="$COOKIES" --content-disposition \
     "https://www.cityscapes-dataset.com/file-handling/?packageID=14" -P "$RAW"
unzip -q -o "$RAW/leftImg8bit_sequence_trainvaltest.zip" -d "$RAW"

python tools/prepare_data/convert_cityscapes.py \
    --sequence-dir "$RAW/leftImg8bit_sequence" \
    --out "$DATA_ROOT/cityscapes/Cityscapes128_h5" \
    --workers "$WORKERS"
echo "Cityscapes ready in $DATA_ROOT/cityscapes/Cityscapes128_h5 (the raw PNGs in $RAW can be deleted)"
