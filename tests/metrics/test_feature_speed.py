"""benchmarks/feature_speed.py --quick runs (so the benchmark never rots) and writes nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from latentstudio.precision import resolve_precision

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "feature_speed.py"


def test_quick_mode_measures_every_variant_and_writes_nothing_on_cpu(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("feature_speed", BENCHMARK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "speed.json"
    result = module.main(["--quick", "--out", str(out)])
    rows = result["results"]
    bf16 = resolve_precision("auto", "cpu", "features") == "bf16"  # a CPU with native bf16
    assert {(r["extractor"], r["variant"]) for r in rows} == {
        ("lite0", "nchw fp32"), ("lite0", "channels_last fp32"),
        ("domain", "nchw fp32"), ("domain", "channels_last fp32")} | (
        {("lite0", "channels_last bf16"), ("domain", "channels_last bf16")} if bf16 else set())
    assert all(r["images_per_s"] > 0 for r in rows)
    # the layout changes speed, not features
    assert all(r.get("max_abs_diff_vs_baseline", 0) < 1e-3 for r in rows if "fp32" in r["variant"])
    assert not out.exists()  # results are only written from a GPU run (or --save)
