#!/usr/bin/env bash
# The README's first command: the main job on a fresh machine. Installs Debian's Fashion-MNIST (47 MB of IDX files,
# root only) when it is missing, then runs QuickStart: models built from the stage table, measured, run, and ResNet-20
# learning Fashion-MNIST with a progress line. Without root or apt the training part says how to get the data.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "== installing dataset-fashion-mnist (the real data QuickStart learns) =="
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null
fi
# A training step frees and reallocates tens of activation-sized buffers; glibc's defaults hand each back to the kernel
# and fault in fresh pages next step. The app (not the library) chooses to keep them: the same settings `resnet train`
# applies with mallopt, given here through glibc's tunables.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824}"
exec dotnet run --project samples/QuickStart -c Release
