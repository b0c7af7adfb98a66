#!/usr/bin/env bash
# KTH human actions (Schuldt et al., 2004) in the layout OpenSTL reads
# (chengtan9907/OpenSTL tools/prepare_data/download_kth.sh and openstl/datasets/dataloader_kth.py):
#   <data_root>/kth/{boxing,handclapping,handwaving,jogging,running,walking}/
#       personXX_<action>_dY_uncomp/image_NNNN.jpg       one folder of frames per video
# Persons 01-16 are the training split, 17-25 the test split.
#
# Default source: the frames OpenSTL publishes as a release asset,
#   https://github.com/chengtan9907/OpenSTL/releases/download/v0.1.0/kth_action.zip
# Alternative (--avi): the original videos from https://www.csc.kth.se/cvap/actions/ (160 x 120,
# 25 fps), cut into frames with ffmpeg. Frames made this way may differ slightly (JPEG settings)
# from the ones in OpenSTL's zip, so results are not bit-comparable with OpenSTL's.
#
# Usage: bash tools/prepare_data/download_kth.sh [data_root] [--avi]   (data_root defaults to ./data)
set -euo pipefail

root="${1:-data}/kth"
format="${2:-}"
actions="boxing handclapping handwaving jogging running walking"
mkdir -p "$root"
cd "$root"

if [ "$format" = "--avi" ]; then
    command -v ffmpeg >/dev/null || { echo "ffmpeg is needed to cut the videos into frames" >&2; exit 1; }
    for action in $actions; do
        wget -q --show-progress -c -O "$action.zip" "http://www.csc.kth.se/cvap/actions/$action.zip"
        mkdir -p "avi_$action" "$action"
        unzip -q -o "$action.zip" -d "avi_$action"
        for video in "avi_$action"/*.avi; do
            name=$(basename "$video" .avi)
            mkdir -p "$action/$name"
            ffmpeg -loglevel error -y -i "$video" -q:v 2 "$action/$name/image_%04d.jpg"
        done
        rm -rf "avi_$action" "$action.zip"
    done
else
    wget -q --show-progress -c -O kth_action.zip \
        https://github.com/chengtan9907/OpenSTL/releases/download/v0.1.0/kth_action.zip
    unzip -q -o kth_action.zip
    rm kth_action.zip
    # If the archive unpacked into one folder (e.g. kth_action/), move the action folders up.
    for action in $actions; do
        if [ ! -d "$action" ]; then
            found=$(find . -mindepth 2 -maxdepth 3 -type d -name "$action" | head -n 1)
            [ -n "$found" ] && mv "$found" "$action"
        fi
    done
fi

for action in $actions; do
    [ -d "$action" ] || { echo "kth: $(pwd)/$action is missing after the download" >&2; exit 1; }
done
echo "KTH ready in $(pwd)"
