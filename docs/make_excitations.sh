#!/usr/bin/env bash
# Regenerates docs/excitations.png: a full SE-ResNet-50 trained from scratch for four epochs on a
# synthetic four-colour ImageFolder (senet_zoo.finetune.synthetic), then `senet-zoo excitations` on its
# validation images. Offline and CPU-only; about five minutes on two cores. Usage: docs/make_excitations.sh [WORKDIR]
set -euo pipefail
work=${1:-$(mktemp -d)}
python -c "from senet_zoo.finetune.synthetic import make_colour_folder as make; \
make('$work/colours', {'train': 40, 'val': 20}, size=64, classes=('blue', 'green', 'red', 'yellow'))"
senet-zoo finetune --model se_resnet50 --pretrained none --data "$work/colours" --out "$work/run" \
    --epochs 4 --img-size 64 --batch-size 16 --optimizer adamw --lr 0.001 --weight-decay 0.05 \
    --warmup-epochs 1 --workers 0 --seed 0 --no-progress
senet-zoo excitations --weights "$work/run/checkpoints/epoch_004.safetensors" --data "$work/colours/val" \
    --out "$work/excitations" --img-size 64 --workers 0 --dpi 56
cp "$work/excitations/excitations.png" "$(dirname "$0")/excitations.png"
