#!/usr/bin/env bash
# Traffic4Cast 2021 in PredBench's layout, as openstl_unistd.datasets.traffic4cast.Traffic4Cast reads it:
#
#   DATA_ROOT/Traffic4Cast2021/<CITY>/training/<date>_<CITY>_8ch.h5     dataset 'array', (288, 495, 436, 8) uint8
#   DATA_ROOT/annotations/traffic4cast2021/traffic4cast2021_train.json  PredBench's split lists (day files
#   DATA_ROOT/annotations/traffic4cast2021/traffic4cast2021_val.json    relative to Traffic4Cast2021/)
#   DATA_ROOT/annotations/traffic4cast2021/traiifc4cast2021_test.json   (sic: PredBench's file name)
#
# A PredBench checkout already has this layout: pass its data/ folder as data_root and nothing needs doing.
#
# Sources:
# - Traffic movies: IARAI Traffic4cast 2021 competition (https://github.com/iarai/NeurIPS2021-traffic4cast).
#   The city tarballs (ANTWERP.tar.gz, BANGKOK.tar.gz, …) are given out after registering and accepting the
#   competition's terms, so this script cannot download them: fetch them yourself and pass their folder.
#   Each tarball extracts to <CITY>/training/*.h5 (plus static files, unused here).
# - Split lists: PredBench (https://github.com/OpenEarthLab/PredBench, data/annotations/traffic4cast2021/):
#   1280 train, 160 val, 161 test days of ANTWERP, BANGKOK, BARCELONA, BERLIN, CHICAGO, ISTANBUL, MELBOURNE.
#
# Usage: tools/prepare_data/download_traffic4cast.sh DATA_ROOT TARBALL_DIR
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 DATA_ROOT TARBALL_DIR   (TARBALL_DIR holds the Traffic4cast 2021 <CITY>.tar.gz files)" >&2
    exit 2
fi
DATA_ROOT=$1
TARBALL_DIR=$2
LISTS_URL=https://raw.githubusercontent.com/OpenEarthLab/PredBench/main/data/annotations/traffic4cast2021

mkdir -p "$DATA_ROOT/annotations/traffic4cast2021" "$DATA_ROOT/Traffic4Cast2021"
for name in traffic4cast2021_train traffic4cast2021_val traiifc4cast2021_test; do
    curl -fL --retry 3 -o "$DATA_ROOT/annotations/traffic4cast2021/$name.json" "$LISTS_URL/$name.json"
done

for city in ANTWERP BANGKOK BARCELONA BERLIN CHICAGO ISTANBUL MELBOURNE; do
    tarball="$TARBALL_DIR/$city.tar.gz"
    if [ ! -f "$tarball" ]; then
        echo "missing $tarball (download it from the Traffic4cast 2021 competition page)" >&2
        exit 1
    fi
    echo "extracting $tarball"
    tar -xzf "$tarball" -C "$DATA_ROOT/Traffic4Cast2021" --wildcards "$city/training/*"
done

missing=0
for name in traffic4cast2021_train traffic4cast2021_val traiifc4cast2021_test; do
    while read -r day; do
        [ -f "$DATA_ROOT/Traffic4Cast2021/$day" ] || { echo "listed in $name.json but absent: $day" >&2; missing=$((missing + 1)); }
    done < <(grep -o '"[^"]*\.h5"' "$DATA_ROOT/annotations/traffic4cast2021/$name.json" | tr -d '"')
done
echo "Traffic4Cast 2021 laid out under $DATA_ROOT ($missing listed day(s) missing)"
