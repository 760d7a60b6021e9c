"""CIFAR-10: the python archive through a local mirror, class filters, safe unpickling, cache."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from datafiles import write_cifar_archive

from latentstudio.data import cifar, load_dataset
from latentstudio.errors import UserError


def test_downloads_and_decodes_both_splits(serve_cifar, http_server, cache):
    data = serve_cifar
    train = load_dataset("cifar10", resolution=32)
    assert train.images.shape == (20, 3, 32, 32)
    assert torch.equal(train.images, torch.from_numpy(data["train"][0]))
    assert torch.equal(train.labels, torch.from_numpy(data["train"][1]))
    assert train.class_names == cifar.CLASS_NAMES
    test = load_dataset("cifar10:test", resolution=32)
    assert torch.equal(test.images, torch.from_numpy(data["test"][0]))
    assert http_server.requests == ["/" + cifar.ARCHIVE]  # one download serves both splits
    assert {p.name for p in (cache / "cifar10").iterdir()} == {cifar.ARCHIVE, "train.npz", "test.npz"}


def test_cache_reused_without_server(serve_cifar, http_server, cache):
    first = load_dataset("cifar10", resolution=32)
    http_server.stop()
    (cache / "cifar10" / cifar.ARCHIVE).unlink()
    assert load_dataset("cifar10", resolution=32).fingerprint() == first.fingerprint()


@pytest.mark.parametrize("spec", ["cifar10:horse", "cifar10:7", "cifar10:HORSE"])
def test_single_class(serve_cifar, spec):
    images = load_dataset(spec, resolution=32)
    horses = serve_cifar["train"][1] == 7
    assert len(images) == horses.sum()
    assert images.class_names == ["horse"] and set(images.labels.tolist()) <= {0}
    assert torch.equal(images.images, torch.from_numpy(serve_cifar["train"][0][horses]))


def test_several_classes_relabelled_in_class_order(serve_cifar):
    images = load_dataset("cifar10:horse,deer", resolution=16, channels=1)
    labels = serve_cifar["train"][1]
    assert images.class_names == ["deer", "horse"]
    assert images.images.shape[1:] == (1, 16, 16)
    want = [0 if v == 4 else 1 for v in labels if v in (4, 7)]
    assert images.labels.tolist() == want


def test_bad_class_lists_valid_names_before_downloading(http_server, monkeypatch):
    monkeypatch.setattr(cifar, "MIRRORS", [http_server.url])
    with pytest.raises(UserError, match="airplane, automobile, bird") as e:
        load_dataset("cifar10:zebra")
    assert "zebra" in str(e.value) and http_server.requests == []


def test_hash_mismatch(serve_cifar, monkeypatch, cache):
    monkeypatch.setitem(cifar.SHA256, cifar.ARCHIVE, "f" * 64)
    with pytest.raises(UserError, match="sha256"):
        load_dataset("cifar10")
    assert not (cache / "cifar10" / cifar.ARCHIVE).exists()


def test_offline_message(monkeypatch, dead_url, cache):
    monkeypatch.setattr(cifar, "MIRRORS", [dead_url])
    with pytest.raises(UserError) as e:
        load_dataset("cifar10")
    assert f"save {dead_url}{cifar.ARCHIVE} as {cache / 'cifar10' / cifar.ARCHIVE}" in str(e.value)


def test_default_mirror_is_the_canonical_url():
    assert cifar.MIRRORS[0] + cifar.ARCHIVE == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_archive_with_code_in_a_pickle_is_refused(tmp_path):
    path = tmp_path / cifar.ARCHIVE
    write_cifar_archive(path, extra={"test_batch": pickle.dumps({b"data": _Boom()}, protocol=2)})
    with pytest.raises(UserError, match="refusing to load"):
        cifar.read_archive(path)


def test_archive_missing_batches(tmp_path):
    import tarfile

    path = tmp_path / cifar.ARCHIVE
    with tarfile.open(path, "w:gz"):
        pass
    with pytest.raises(UserError, match="data_batch_1"):
        cifar.read_archive(path)
