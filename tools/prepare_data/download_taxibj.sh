#!/usr/bin/env bash
# TaxiBJ crowd flows as openstl_unistd.datasets.taxibj.TaxiBJ (format='openstl') reads them:
#
#   DATA_ROOT/taxibj/dataset.npz    X_train, Y_train, X_test, Y_test: (N, 4, 2, 32, 32) in [-1, 1]
#
# Source: the archive OpenSTL publishes as a release asset (chengtan9907/OpenSTL, release v0.1.0,
# taxibj_dataset.zip; see OpenSTL's tools/prepare_data/download_taxibj.sh). The raw TaxiBJ data is
# from Zhang et al., "Deep Spatio-Temporal Residual Networks for Citywide Crowd Flows Prediction"
# (AAAI 2017).
#
# PredBench's layout (taxibj/{train,val,test}.npy of raw counts, format='predbench') comes from
# PredBench's own preparation of the same data; users who hold it need nothing from this script.
#
# Usage: tools/prepare_data/download_taxibj.sh DATA_ROOT
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DATA_ROOT" >&2
    exit 2
fi
DATA_ROOT=$1
mkdir -p "$DATA_ROOT/taxibj"
cd "$DATA_ROOT/taxibj"
wget -O taxibj_dataset.zip https://github.com/chengtan9907/OpenSTL/releases/download/v0.1.0/taxibj_dataset.zip
unzip -o taxibj_dataset.zip
rm taxibj_dataset.zip
test -f dataset.npz || { echo "dataset.npz not found after unzipping" >&2; exit 1; }
echo "TaxiBJ laid out under $DATA_ROOT/taxibj"
