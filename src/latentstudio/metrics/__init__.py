"""Judging generated images with numbers: Fréchet distance, KID, precision/recall,
density/coverage and a memorisation score, on features from a pluggable extractor
(`lite0` offline by default, `inception` for paper-comparable FID, `domain` trained on the data).

Math on feature vectors lives in one file per metric (fid, kid, precision_recall, memorisation);
`evaluate` ties them to images and runs, `compare` tabulates runs, `nearest` draws the
copy-check sheet, `callback` evaluates during training.
"""

from latentstudio.metrics.evaluate import (
    METRICS,
    EvalConfig,
    EvalResult,
    evaluate_features,
    evaluate_images,
    evaluate_run,
    metric_key,
    metric_label,
)
from latentstudio.metrics.extractors import EXTRACTORS, Extractor, build_extractor, extract_features
from latentstudio.metrics.fid import frechet_distance, frechet_distance_from_stats, gaussian_stats
from latentstudio.metrics.kid import kernel_distance
from latentstudio.metrics.memorisation import memorisation_score
from latentstudio.metrics.precision_recall import density_coverage, precision_recall

__all__ = [
    "METRICS", "EXTRACTORS", "EvalConfig", "EvalResult", "Extractor", "build_extractor",
    "density_coverage", "evaluate_features", "evaluate_images", "evaluate_run", "extract_features",
    "frechet_distance", "frechet_distance_from_stats", "gaussian_stats", "kernel_distance",
    "memorisation_score", "metric_key", "metric_label", "precision_recall",
]
