"""The procedural shapes source: seeded, labelled, any size and channel count."""

from __future__ import annotations

import pytest

from latentstudio.data import load_dataset
from latentstudio.data.shapes import CLASSES
from latentstudio.errors import UserError


def test_same_seed_same_fingerprint_other_seed_differs():
    a = load_dataset("shapes:16", resolution=16, seed=1)
    b = load_dataset("shapes:16", resolution=16, seed=1)
    c = load_dataset("shapes:16", resolution=16, seed=2)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_labels_in_range_and_names():
    images = load_dataset("shapes:40", resolution=16)
    assert images.class_names == CLASSES
    assert images.labels.min() >= 0 and images.labels.max() < len(CLASSES)
    assert len(set(images.labels.tolist())) > 1


def test_one_channel_and_limit():
    images = load_dataset("shapes:10", resolution=28, channels=1, limit=4)
    assert images.images.shape == (4, 1, 28, 28)


@pytest.mark.parametrize("spec", ["shapes:abc", "shapes:0"])
def test_bad_counts(spec):
    with pytest.raises(UserError):
        load_dataset(spec)
