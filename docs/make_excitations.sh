#!/usr/bin/env bash
# Regenerates docs/excitations.png: SE-ResNet-50 trained from scratch with the default fine-tuning
# settings for four epochs on scikit-learn's handwritten digits (real data, 10 classes, bundled with
# scikit-learn: nothing is downloaded; ~97 % val top-1), then `senet-zoo excitations` on the 360
# validation images. Offline and CPU-only; about five minutes on two cores.
# Usage: docs/make_excitations.sh [WORKDIR]
set -euo pipefail
work=${1:-$(mktemp -d)}
python -c "from senet_zoo.finetune.synthetic import make_digits_folder; make_digits_folder('$work/digits')"
senet-zoo finetune --model se_resnet50 --pretrained none --data "$work/digits" --out "$work/run" \
    --img-size 32 --epochs 4 --no-progress
senet-zoo excitations --weights "$work/run" --data "$work/digits/val" --out "$work/excitations" \
    --img-size 32 --dpi 56
cp "$work/excitations/excitations.png" "$(dirname "$0")/excitations.png"
