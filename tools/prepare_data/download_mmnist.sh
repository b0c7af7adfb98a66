#!/usr/bin/env bash
# Moving MNIST in the layout OpenSTL reads (chengtan9907/OpenSTL tools/prepare_data/download_mmnist.sh):
#   <data_root>/moving_mnist/train-images-idx3-ubyte.gz  MNIST training digits (LeCun et al.), idx3 gzip;
#                                                        training sequences are drawn from them on the fly
#   <data_root>/moving_mnist/mnist_test_seq.npy          the fixed test set of Srivastava et al. (2015),
#                                                        uint8 (20, 10000, 64, 64), time first
# Sources: http://www.cs.toronto.edu/~nitish/unsupervised_video/ and http://yann.lecun.com/exdb/mnist/
# (with torchvision's mirror https://ossci-datasets.s3.amazonaws.com/mnist/ when the latter refuses).
# MD5 sums are the ones torchvision checks.
#
# Usage: bash tools/prepare_data/download_mmnist.sh [data_root]    (data_root defaults to ./data)
set -euo pipefail

root="${1:-data}/moving_mnist"
mkdir -p "$root"
cd "$root"

# download FILE MD5 URL...: the first URL that gives FILE with the right checksum
download() {
    local file=$1 md5=$2
    shift 2
    if [ -f "$file" ] && echo "$md5  $file" | md5sum -c --status; then
        echo "$file: present"
        return 0
    fi
    for url in "$@"; do
        if wget -q --show-progress -O "$file.part" "$url" && echo "$md5  $file.part" | md5sum -c --status; then
            mv "$file.part" "$file"
            return 0
        fi
        echo "$file: $url failed or gave a wrong checksum" >&2
    done
    rm -f "$file.part"
    echo "$file: could not be downloaded" >&2
    return 1
}

download mnist_test_seq.npy be083ec986bfe91a449d63653c411eb2 \
    http://www.cs.toronto.edu/~nitish/unsupervised_video/mnist_test_seq.npy
download train-images-idx3-ubyte.gz f68b3c2dcbeaaa9fbdd348bbdeb94873 \
    http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz \
    https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz

echo "Moving MNIST ready in $(pwd)"
