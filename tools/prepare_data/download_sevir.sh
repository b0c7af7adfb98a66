#!/usr/bin/env bash
# SEVIR VIL in the layout of the public release, as Earthformer and
# openstl_unistd.datasets.sevir.SEVIR (format='earthformer') read it:
#
#   DATA_ROOT/sevir/CATALOG.csv                       one row per event and image type
#   DATA_ROOT/sevir/data/vil/<year>/SEVIR_VIL_*.h5    dataset 'vil', (N, 384, 384, 49) uint8
#
# Source: the SEVIR bucket of the AWS Open Data registry (https://registry.opendata.aws/sevir/,
# s3://sevir, anonymous access), the same two copies Earthformer's download_SEVIR makes
# (amazon-science/earth-forecasting-transformer, src/earthformer/datasets/sevir/sevir_torch_wrap.py).
# About 1 TB in all; the VIL part alone is far smaller. Needs the AWS CLI (pip install awscli).
#
# PredBench's layout (sevir/{train,val,test}/*.npy, one event per file, format='predbench') is not
# published; users who already hold it need nothing from this script.
#
# Usage: tools/prepare_data/download_sevir.sh DATA_ROOT
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DATA_ROOT" >&2
    exit 2
fi
DATA_ROOT=$1
command -v aws >/dev/null || { echo "the AWS CLI is needed: pip install awscli" >&2; exit 1; }

mkdir -p "$DATA_ROOT/sevir/data"
aws s3 cp --no-sign-request s3://sevir/CATALOG.csv "$DATA_ROOT/sevir/CATALOG.csv"
aws s3 sync --no-sign-request s3://sevir/data/vil "$DATA_ROOT/sevir/data/vil"
echo "SEVIR VIL laid out under $DATA_ROOT/sevir"
