"""benchmarks/dream_speed.py keeps working: its --quick mode runs both dreams on tiny images."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "dream_speed.py"


def test_quick_benchmark_runs_and_writes_nothing():
    results = BENCHMARK.parent / "results"
    before = sorted(results.iterdir()) if results.exists() else []
    proc = subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--device", "cpu",
                           "--sizes", "64", "96"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # tiny: threads only spin
    assert proc.returncode == 0, proc.stderr
    assert "| 64² |" in proc.stdout and "| 96² |" in proc.stdout and "speedup" in proc.stdout
    after = sorted(results.iterdir()) if results.exists() else []
    assert after == before
