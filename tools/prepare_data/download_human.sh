#!/usr/bin/env bash
# Human3.6M (Ionescu et al., 2014) in the layout OpenSTL reads
# (chengtan9907/OpenSTL tools/prepare_data/download_human3.6m.sh and openstl/datasets/dataloader_human.py):
#   <data_root>/human/images/S1_Directions.54138969_000001.jpg   frames resized to 256 x 256
#   <data_root>/human/train.txt, test.txt                        one sample per line: <prefix>,<start>,<end>
#
# Sources, as OpenSTL names them:
#   frames of subjects S1, S5, S6, S7, S8, S9, S11 (1000 x 1000 jpgs):
#       http://visiondata.cis.upenn.edu/volumetric/h36m/S<k>.tar
#   the sample lists, from STRPM (github.com/ZhengChang467/STRPM) as shipped by OpenSTL in
#   tools/prepare_data/meta/human/ (73,404 train and 8,582 test lines; CRLF line ends):
#       https://raw.githubusercontent.com/chengtan9907/OpenSTL/<commit>/tools/prepare_data/meta/human/
# The frames are resized to 256 x 256 once, as OpenSTL does (bilinear, cv2.resize's default), by
# tools/prepare_data/resize_human.py; the loader would otherwise resize every frame it reads.
# Human3.6M's licence applies: register at http://vision.imar.ro/human3.6m/ before using it.
#
# Usage: bash tools/prepare_data/download_human.sh [data_root]   (data_root defaults to ./data)
# Needs about 100 GB free while the full-size frames are on disk.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python="${PYTHON:-python}"
root="${1:-data}/human"
meta=https://raw.githubusercontent.com/chengtan9907/OpenSTL/a0f4606afe395a0442d210d352bb263e55805f30/tools/prepare_data/meta/human
mkdir -p "$root/images_source" "$root/images"
cd "$root"

wget -q --show-progress -O train.txt "$meta/train.txt"
wget -q --show-progress -O test.txt "$meta/test.txt"
echo "3cca4454322eb43e730a735069013889  train.txt" | md5sum -c
echo "69ba47dd751b44e204361e3c103ee6a6  test.txt" | md5sum -c

for subject in S1 S5 S6 S7 S8 S9 S11; do
    wget -q --show-progress -c -O "images_source/$subject.tar" \
        "http://visiondata.cis.upenn.edu/volumetric/h36m/$subject.tar"
    tar -xf "images_source/$subject.tar" -C images_source
    rm "images_source/$subject.tar"
    "$python" "$here/resize_human.py" images_source images --size 256
    rm -rf images_source/*
done
rmdir images_source

first=$(head -n 1 test.txt | tr -d '\r' | cut -d, -f1,2)
frame=$(printf '%s%06d.jpg' "${first%,*}" "${first#*,}")
[ -f "$frame" ] || { echo "human: $(pwd)/$frame, the first frame of test.txt, is missing" >&2; exit 1; }
echo "Human3.6M ready in $(pwd)"
