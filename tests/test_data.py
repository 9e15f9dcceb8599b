"""Image data sets by name: digits (bundled), the CIFAR-10 reader on data written here, downloads
faked offline (the network is never touched)."""

import hashlib
import io
import pickle
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

import mempkg.data.images as data
from mempkg.data.images import ImageSet, load_images, overfit_subset, with_flips

ROOT = Path(__file__).resolve().parents[1]
REAL_FIRST20 = [p / "data/foolbox_cifar10_test_first20/cifar10_test_first20.npz"
                for p in (Path("/work/shared"), ROOT.parent / "shared")]


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Exact inverse of v / 255 * 2 - 1."""
    return torch.round((x + 1) * 127.5).to(torch.uint8).numpy()


def write_batch(path: Path, images_chw: np.ndarray, labels) -> None:
    """One CIFAR-10 "python version" batch: b"data" uint8 [n, 3072] (R, G, B planes), b"labels"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"fake", b"data": images_chw.reshape(len(images_chw), -1),
                     b"labels": list(map(int, labels))}, f)


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    """A CIFAR-10 folder with 3 images per training batch and 4 test images, in the official format; the
    loader's expected md5 sums (CIFAR10_FILES, the official ones) are set to the stand-in's."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    imgs = {}
    for f, n in [(f"data_batch_{i}", 3) for i in range(1, 6)] + [("test_batch", 4)]:
        x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        x[0, 0, 0, 0], x[0, 2, 31, 31] = 0, 255                  # both ends of the range
        y = rng.integers(0, 10, size=n)
        write_batch(folder / f, x, y)
        imgs[f] = (x, y)
    monkeypatch.setattr(data, "CIFAR10_FILES", {f: hashlib.md5((folder / f).read_bytes()).hexdigest() for f in imgs})
    return tmp_path, imgs


# -- digits ---------------------------------------------------------------------------------

def test_digits_shapes_range_indices_and_split():
    from sklearn.datasets import load_digits

    tr, te = load_images("digits", "train"), load_images("digits", "test")
    assert tr.x.shape == (1000, 1, 8, 8) and te.x.shape == (797, 1, 8, 8)
    assert tr.x.dtype == torch.float32 and tr.labels.dtype == torch.long and tr.indices.dtype == torch.long
    assert tr.x.min() == -1 and tr.x.max() == 1 and te.x.min() >= -1 and te.x.max() <= 1
    assert torch.equal(tr.indices, torch.arange(1000)) and torch.equal(te.indices, torch.arange(1000, 1797))
    d = load_digits()
    np.testing.assert_array_equal(((te.x[5, 0].double() + 1) / 2 * 16).round().numpy(), d.images[1005])
    assert te.labels[5] == d.target[1005] and (tr.name, tr.split, te.split) == ("digits", "train", "test")
    assert not tr.flipped.any() and tr.image_shape == (1, 8, 8)


def test_subset_keeps_indices_labels_and_flips():
    te = load_images("digits", "test")
    pos = [7, 2, 30]
    s = te.subset(pos)
    assert torch.equal(s.indices, torch.tensor([1007, 1002, 1030])) and torch.equal(s.x, te.x[pos])
    assert torch.equal(s.labels, te.labels[pos]) and s.split == "test"
    assert torch.equal(te.subset(range(4)).indices, te.subset(slice(0, 4)).indices)
    mask = te.labels == 3
    assert torch.equal(te.subset(mask).indices, te.indices[mask])
    assert torch.equal(te.subset(mask.tolist()).indices, te.indices[mask]) and len(te.subset([])) == 0
    assert torch.equal(s.with_flips().subset([4]).indices, torch.tensor([1002]))
    with pytest.raises(IndexError, match="subset positions"):
        te.subset([797])
    with pytest.raises(ValueError, match="labels must have shape"):
        ImageSet(te.x[:2], te.labels[:3], te.indices[:2], "digits", "test")


def test_flips():
    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).reshape(2, 1, 2, 3)
    f = with_flips(x)
    assert f.shape == (4, 1, 2, 3) and torch.equal(f[:2], x)
    assert torch.equal(f[2, 0, 0], torch.tensor([2.0, 1.0, 0.0]))           # left-right mirror
    assert torch.equal(with_flips(f[2:])[2:], x)                              # flipping twice is the identity
    s = load_images("digits").subset(range(3)).with_flips()
    assert torch.equal(s.flipped, torch.tensor([False] * 3 + [True] * 3))
    assert torch.equal(s.indices, torch.tensor([0, 1, 2, 0, 1, 2])) and torch.equal(s.x[3:], s.x[:3].flip(-1))


def test_overfit_subset_groups():
    o = overfit_subset("digits", n=8)
    assert len(o.trained) == len(o.heldout) == 16 and o.n == 8
    assert torch.equal(o.trained.indices, torch.arange(8).repeat(2))
    assert torch.equal(o.heldout.indices, torch.arange(1000, 1008).repeat(2))
    assert torch.equal(o.trained.flipped, o.heldout.flipped) and o.trained.flipped.sum() == 8
    assert torch.equal(o.train_x, load_images("digits").x[:8])
    both, member = o.combined()
    assert len(both) == 32 and member.sum() == 16 and member[:16].all()
    with pytest.raises(ValueError, match="exceeds"):
        overfit_subset("digits", n=900)


def test_unknown_names_and_splits_are_refused():
    with pytest.raises(ValueError, match="known: digits, cifar10"):
        load_images("mnist")
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_images("digits", "validation")


# -- CIFAR-10 --------------------------------------------------------------------------------

def test_cifar10_reader_on_fake_batches(fake_cifar):
    root, imgs = fake_cifar
    tr = load_images("cifar10", "train", root=root)
    assert tr.x.shape == (15, 3, 32, 32) and tr.x.dtype == torch.float32
    assert tr.x.min() == -1 and tr.x.max() == 1
    want = np.concatenate([imgs[f"data_batch_{i}"][0] for i in range(1, 6)])        # batch order kept
    np.testing.assert_array_equal(to_uint8(tr.x), want)
    np.testing.assert_array_equal(tr.labels.numpy(), np.concatenate([imgs[f"data_batch_{i}"][1] for i in range(1, 6)]))
    assert torch.equal(tr.indices, torch.arange(15)) and tr.name == "cifar10"
    te = load_images("cifar10", "test", root=root)
    np.testing.assert_array_equal(to_uint8(te.x), imgs["test_batch"][0])
    o = overfit_subset("cifar10", n=2, root=root)
    assert o.trained.x.shape == (4, 3, 32, 32) and torch.equal(o.heldout.x[2:], te.x[:2].flip(-1))


def test_cifar10_root_from_environment(fake_cifar, monkeypatch):
    root, _ = fake_cifar
    monkeypatch.setenv("MEMPKG_DATA", str(root))
    assert len(load_images("cifar10", "test")) == 4


def test_md5_check_runs_before_unpickling_with_given_sums(fake_cifar, monkeypatch):
    """The md5 check runs before unpickling and takes the sums as a parameter."""
    root, imgs = fake_cifar
    sums = dict(data.CIFAR10_FILES)
    monkeypatch.setattr(data, "CIFAR10_FILES", dict(sums, test_batch="0" * 32))      # the official-sums path
    with pytest.raises(ValueError, match="test_batch has md5 .* expected 0{32}: it is not the official"):
        load_images("cifar10", "test", root=root)
    te = load_images("cifar10", "test", root=root, md5=sums)                          # a stand-in's own sums
    np.testing.assert_array_equal(to_uint8(te.x), imgs["test_batch"][0])
    with pytest.raises(ValueError, match="No md5 is given for test_batch"):
        load_images("cifar10", "test", root=root, md5={"data_batch_1": sums["data_batch_1"]})

    def no_unpickling(*a, **k):
        raise AssertionError("a file that fails its md5 check must never be unpickled")
    monkeypatch.setattr(data.pickle, "load", no_unpickling)
    with pytest.raises(ValueError, match="not the official"):
        load_images("cifar10", "test", root=root, md5=dict(sums, test_batch="1" * 32))


@pytest.mark.skipif(not any(p.is_file() for p in REAL_FIRST20), reason="the 20 real CIFAR-10 test images are absent")
def test_cifar10_reader_is_pixel_exact_on_real_test_images(tmp_path, monkeypatch):
    npz = np.load(next(p for p in REAL_FIRST20 if p.is_file()))
    x_hwc, y = npz["x"], npz["y"]                                     # uint8 (20, 32, 32, 3)
    write_batch(tmp_path / "cifar-10-batches-py" / "test_batch", x_hwc.transpose(0, 3, 1, 2), y)
    md5 = {"test_batch": hashlib.md5((tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes()).hexdigest()}
    te = load_images("cifar10", "test", root=tmp_path, md5=md5)
    assert te.x.shape == (20, 3, 32, 32) and te.x.min() >= -1 and te.x.max() <= 1
    np.testing.assert_array_equal(to_uint8(te.x).transpose(0, 2, 3, 1), x_hwc)
    np.testing.assert_array_equal(te.labels.numpy(), y)
    assert te.labels[:4].tolist() == [3, 8, 8, 0]                     # cat, ship, ship, airplane


def test_missing_cifar10_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMPKG_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as e:
        load_images("cifar10", "train")
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in msg
    assert "download=True" in msg and "MEMPKG_DATA" in msg and "data_batch_1" in msg
    assert not (tmp_path / "nowhere").exists()                       # looking creates nothing


class FakeResponse(io.BytesIO):
    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def test_download_failure_leaves_nothing(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match="Could not download CIFAR-10"):
        load_images("cifar10", root=tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []                            # no temporary archive or folder


def test_corrupt_download_is_discarded(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: FakeResponse(b"not a tarball"))
    with pytest.raises(ValueError, match="md5"):
        load_images("cifar10", root=tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []


def test_download_extracts_and_checks_every_file(fake_cifar, tmp_path, monkeypatch):
    src, imgs = fake_cifar
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    payload = buf.getvalue()
    md5s = {f: hashlib.md5((src / "cifar-10-batches-py" / f).read_bytes()).hexdigest() for f in data.CIFAR10_FILES}
    monkeypatch.setattr(data, "CIFAR10_TGZ_MD5", hashlib.md5(payload).hexdigest())
    monkeypatch.setattr(data, "CIFAR10_FILES", md5s)
    calls = []
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, timeout: calls.append((url, timeout)) or FakeResponse(payload))
    dest = tmp_path / "dest"
    te = load_images("cifar10", "test", root=dest, download=True)
    np.testing.assert_array_equal(to_uint8(te.x), imgs["test_batch"][0])
    assert calls == [(data.CIFAR10_URL, data.DOWNLOAD_TIMEOUT_S)]
    assert [p.name for p in dest.iterdir()] == ["cifar-10-batches-py"]        # archive and temp folder gone
    load_images("cifar10", "train", root=dest, download=True)
    assert len(calls) == 1                                                  # present: not fetched again
    # a batch that fails its md5 check: nothing is moved into place
    monkeypatch.setattr(data, "CIFAR10_FILES", dict(md5s, test_batch="0" * 32))
    other = tmp_path / "other"
    with pytest.raises(ValueError, match="test_batch"):
        load_images("cifar10", "test", root=other, download=True)
    assert list(other.iterdir()) == []
