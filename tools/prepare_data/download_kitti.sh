#!/usr/bin/env bash
# KITTI for the `kitti` task, in the PredNet hickle layout that OpenSTL reads:
#
#   <data_root>/kitti_hkl/X_{train,val,test}.hkl        uint8 (N, 128, 160, 3), recordings one after another
#   <data_root>/kitti_hkl/sources_{train,val,test}.hkl  one '<category>-<recording>' name per frame
#
# Source: PredNet's processed KITTI raw data (coxlab/prednet download_data.sh; OpenSTL
# tools/prepare_data/download_kitticaltech.sh uses the same archive). The same files are mirrored on
# figshare (https://figshare.com/articles/dataset/KITTI_hkl_files/7985684, pointed to by OpenSTL's
# maintainers) and on OpenSTL's Baidu Cloud share. PredNet's splits: val = city/2011_09_26_drive_0005,
# test = city/2011_09_26_drive_0104, residential/2011_09_26_drive_0079, road/2011_09_26_drive_0070,
# train = every other recording of the city/residential/road categories.
# The files were written by hickle 2 (Python 2); the loader reads them with h5py as they are, so no
# conversion is needed (hickle >= 3 refuses to load them under Python 3).
#
# Usage: bash tools/prepare_data/download_kitti.sh [data_root]   (default: data)
set -euo pipefail

DATA_ROOT="${1:-data}"
TARGET="$DATA_ROOT/kitti_hkl"
mkdir -p "$TARGET"

wget -c "https://www.dropbox.com/s/rpwlnn6j39jjme4/kitti_data.zip?dl=0" -O "$DATA_ROOT/prednet_kitti_data.zip"
unzip -o "$DATA_ROOT/prednet_kitti_data.zip" -d "$TARGET"

# The archive may hold the files inside a folder: move every .hkl up to kitti_hkl/.
find "$TARGET" -mindepth 2 -name '*.hkl' -exec mv -f {} "$TARGET"/ \;
rm -f "$DATA_ROOT/prednet_kitti_data.zip"

for split in train val test; do
    for name in "X_$split.hkl" "sources_$split.hkl"; do
        [ -f "$TARGET/$name" ] || { echo "missing $TARGET/$name" >&2; exit 1; }
    done
done
echo "KITTI ready in $TARGET"
