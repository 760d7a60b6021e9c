# Sourced by gpu_checks.sh and gpu_fewshot.sh: `gpu_setup NAME [OUT]` makes the output folder
# ($out: OUT, else $OUT, else /tmp/NAME) and its log ($log), installs the carried wheels (.whl/)
# and sets PYTHONPATH; `part NAME SECONDS COMMAND...` runs one check under its own time limit,
# so one that hangs does not cost the others, its output in $out/logs/NAME.log.

gpu_setup() {
    out=${2:-${OUT:-/tmp/$1}}
    mkdir -p "$out/logs"
    log="$out/$1.log"
    : >"$log"
    # Pure-Python dependencies the machine lacks install from .whl/ when it exists.
    if ls .whl/*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "/tmp/$1_site" .whl/*.whl >>"$log" 2>&1 && export PYTHONPATH="/tmp/$1_site"
    fi
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    (nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true) >>"$log"
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" >>"$log" 2>&1
}

part() {
    local name=$1 limit=$2 start=$SECONDS status
    shift 2
    echo "== $name (limit ${limit} s): $*" | tee -a "$log"
    timeout "$limit" "$@" >"$out/logs/$name.log" 2>&1
    status=$?
    echo "== $name: exit $status after $((SECONDS - start)) s" | tee -a "$log"
}
