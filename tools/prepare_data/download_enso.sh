#!/usr/bin/env bash
# ICAR-ENSO 2021 (Tianchi "AI Earth" competition) as openstl_unistd.datasets.enso.ENSO reads it:
#
#   DATA_ROOT/enso/CMIP_train.nc   sst, t300, ua, va: (year=4645, month=36, lat=24, lon=72)
#   DATA_ROOT/enso/CMIP_label.nc   nino: (year=4645, month=36)
#
# Source: enso_round1_train_20210201.zip, published on Tianchi (https://tianchi.aliyun.com/dataset/98942,
# needs an account) and mirrored by Earthformer on a public S3 bucket, which this script uses:
# s3://deep-earth/datasets/icar_enso_2021/enso_round1_train_20210201.zip (anonymous access; see
# download_ENSO in amazon-science/earth-forecasting-transformer, src/earthformer/datasets/enso/enso_dataloader.py).
# The zip holds enso_round1_train_20210201/{CMIP_train,CMIP_label,SODA_train,SODA_label}.nc and readme.txt;
# the two CMIP files are moved to DATA_ROOT/enso/.
#
# Usage: tools/prepare_data/download_enso.sh DATA_ROOT [ZIP]   (ZIP: an already downloaded copy)
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 DATA_ROOT [enso_round1_train_20210201.zip]" >&2
    exit 2
fi
DATA_ROOT=$1
mkdir -p "$DATA_ROOT/enso"
ZIP=${2:-$DATA_ROOT/enso/enso_round1_train_20210201.zip}
if [ ! -f "$ZIP" ]; then
    if command -v aws >/dev/null; then
        aws s3 cp --no-sign-request s3://deep-earth/datasets/icar_enso_2021/enso_round1_train_20210201.zip "$ZIP"
    else
        curl -fL --retry 3 -o "$ZIP" \
            https://deep-earth.s3.amazonaws.com/datasets/icar_enso_2021/enso_round1_train_20210201.zip
    fi
fi
unzip -o -j "$ZIP" 'enso_round1_train_20210201/CMIP_train.nc' 'enso_round1_train_20210201/CMIP_label.nc' \
    -d "$DATA_ROOT/enso"
echo "ICAR-ENSO laid out under $DATA_ROOT/enso"
