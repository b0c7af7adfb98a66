#!/usr/bin/env bash
# BAIR robot pushing for the `bair` task, in the TFRecord layout that OpenSTL reads:
#
#   <data_root>/softmotion30_44k/train/traj_*_to_*.tfrecords   43264 episodes, 256 per file
#   <data_root>/softmotion30_44k/test/traj_0_to_255.tfrecords  256 episodes
#
# One record per 30-frame episode; frame j is the feature '{j}/image_aux1/encoded' (raw 64x64x3
# uint8 bytes). The loader reads them with the `tfrecord` package; TensorFlow is not needed.
# Source: the BAIR robot pushing dataset (Ebert et al. 2017), as OpenSTL's
# tools/prepare_data/download_bair.sh downloads it (about 30 GB).
#
# PredBench reads `bair/{train,val,test}.npy` (uint8 (N, 30, 64, 64, 3)) instead; PredBench has not
# published those arrays, so only users who already hold them use format='npy'.
#
# Usage: bash tools/prepare_data/download_bair.sh [data_root]   (default: data)
set -euo pipefail

DATA_ROOT="${1:-data}"
mkdir -p "$DATA_ROOT"

wget -c "http://rail.eecs.berkeley.edu/datasets/bair_robot_pushing_dataset_v0.tar" -O "$DATA_ROOT/bair_robot_pushing_dataset_v0.tar"
tar -xvf "$DATA_ROOT/bair_robot_pushing_dataset_v0.tar" -C "$DATA_ROOT"
rm -f "$DATA_ROOT/bair_robot_pushing_dataset_v0.tar"

for split in train test; do
    ls "$DATA_ROOT/softmotion30_44k/$split/"*.tfrecords > /dev/null || { echo "no tfrecords in $DATA_ROOT/softmotion30_44k/$split" >&2; exit 1; }
done
echo "BAIR ready in $DATA_ROOT/softmotion30_44k"
