"""Data of the Stable Diffusion memorization experiment (Ross, Kamkari et al. Fig. 4), offline:
Webster's ground-truth parser, the caption loaders (on the real files in ../shared/data when
present), reproducible sampling, and image fetching against a local HTTP server that serves a
good image, a 404, a timeout, a non-image, a body cut short and a flaky 503."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")          # a hub call fails at once instead of retrying
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import zipfile  # noqa: E402
from collections import Counter  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import mempkg.data.fetch as fetch  # noqa: E402
import mempkg.data.laion as laion  # noqa: E402
from mempkg.data.fetch import cached_image_path, center_crop_resize, fetch_images  # noqa: E402
from mempkg.data.laion import (  # noqa: E402
    load_coco,
    load_laion_aesthetics,
    load_tuxemon,
    load_webster_groundtruth,
    matching_verbatims,
    sample_records,
)

ROOT = Path(__file__).resolve().parents[1]


def shared(rel: str) -> Path | None:
    """A file of the project's shared data folder, wherever the checkout sits; None if absent."""
    for base in (Path("/work/shared/data"), ROOT.parent / "shared" / "data"):
        if (base / rel).exists():
            return base / rel
    return None


# -- Webster (2023) -------------------------------------------------------------------------

WEBSTER_COLS = ["caption", "index", "scores", "url", "numdups", "edge_scores", "mse_real_gen", "overfit_type",
                "gen_seeds", "retrieved_urls"]


def webster_frame(types):
    n = len(types)
    return pd.DataFrame({
        "caption": [f"caption {i}\n" for i in range(n)], "index": [1000 + 7 * i for i in range(n)],
        "scores": np.linspace(1, 2, n), "url": [f"https://example.org/{i}.jpg" for i in range(n)],
        "numdups": list(range(n)), "edge_scores": np.zeros(n), "mse_real_gen": np.zeros(n, np.float32),
        "overfit_type": types, "gen_seeds": [[1, 2]] * n, "retrieved_urls": [[]] * n,
    }, index=[50 + i for i in range(n)])


def test_matching_verbatims_keeps_only_the_mv_rows(tmp_path):
    f = tmp_path / "gt.parquet"
    webster_frame(["N", "MV", "TV", "RV", "MV", "N"]).to_parquet(f)
    df = load_webster_groundtruth(f)
    assert list(df.columns) == WEBSTER_COLS and len(df) == 6
    mv = matching_verbatims(df)
    assert list(mv.columns[:4]) == ["id", "caption", "url", "set"]
    assert mv["id"].tolist() == ["1007", "1028"]                   # the LAION index, as text
    assert mv["caption"].tolist() == ["caption 1", "caption 4"]    # whitespace cleaned
    assert mv["url"].tolist() == ["https://example.org/1.jpg", "https://example.org/4.jpg"]
    assert set(mv["set"]) == {"webster_mv"}
    assert mv["source_row"].tolist() == [51, 54] and mv["numdups"].tolist() == [1, 4]


def test_webster_missing_columns_are_named(tmp_path):
    f = tmp_path / "gt.parquet"
    webster_frame(["MV"]).drop(columns=["url", "overfit_type"]).to_parquet(f)
    with pytest.raises(ValueError, match="'url', 'overfit_type'"):
        load_webster_groundtruth(f)
    with pytest.raises(ValueError, match="overfit_type"):
        matching_verbatims(pd.read_parquet(f))


def test_webster_real_file_has_86_matching_verbatims():
    f = shared("webster2023/sdv1_bb_edge_groundtruth.parquet")
    if f is None:
        pytest.skip("Webster's ground truth is not in ../shared/data/webster2023")
    assert laion.file_digest(f, "md5") == laion.WEBSTER_MD5      # the checksum the hub download is held to
    df = load_webster_groundtruth(f)
    assert len(df) == 500
    mv = matching_verbatims(df)
    assert len(mv) == 86 and mv["id"].is_unique and mv["url"].str.startswith("http").all()
    assert (mv["caption"].str.len() > 0).all()
    csv = shared("webster2023/sdv1_matching_verbatim_MV86.csv")
    if csv is not None:                       # agrees with the CSV export made independently
        assert set(mv["caption"]) == set(pd.read_csv(csv)["caption"].str.replace(r"\s+", " ", regex=True).str.strip())


def test_webster_hub_download_fails_plainly_offline(tmp_path):
    t0 = time.time()
    with pytest.raises(ConnectionError, match="path="):
        load_webster_groundtruth(cache_dir=tmp_path / "hf")
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_webster_groundtruth(download=False, cache_dir=tmp_path / "hf")
    assert time.time() - t0 < 10


# -- caption sources -------------------------------------------------------------------------

def laion_frame(n=50):
    return pd.DataFrame({"URL": [f"https://img.example/{i}.jpg" for i in range(n)],
                         "TEXT": [f"photo number {i}" for i in range(n)],
                         "AESTHETIC_SCORE": np.linspace(6.5, 8.0, n), "punsafe": np.linspace(0, 1, n),
                         "hash": np.arange(n) * 31})


def test_sampling_with_a_seed_is_reproducible(tmp_path):
    f = tmp_path / "laion.parquet"
    laion_frame().to_parquet(f)
    a = load_laion_aesthetics(10, seed=3, path=f)
    b = load_laion_aesthetics(10, seed=3, path=f)
    c = load_laion_aesthetics(10, seed=4, path=f)
    pd.testing.assert_frame_equal(a, b)
    assert a["id"].tolist() != c["id"].tolist()
    assert len(a) == 10 and a["id"].is_unique and set(a["set"]) == {"laion_aesthetics"}
    assert [int(i) for i in a["id"]] == sorted(int(i) for i in a["id"])      # source order kept
    row = a.iloc[0]
    assert row["url"] == f"https://img.example/{row['id']}.jpg" and row["caption"] == f"photo number {row['id']}"
    assert "aesthetic_score" in a.columns and "hash" in a.columns
    assert len(load_laion_aesthetics(None, path=f)) == 50
    assert (load_laion_aesthetics(None, path=f, max_punsafe=0.5)["punsafe"].astype(float) <= 0.5).all()
    with pytest.raises(ValueError, match="only 50"):
        load_laion_aesthetics(51, path=f)
    recs = sample_records(a, 4, seed=0)
    pd.testing.assert_frame_equal(recs, sample_records(a, 4, seed=0))


def test_laion_loader_reads_a_real_caption_url_csv():
    f = shared("nemo2024/unmemorized_laion_prompts.csv")       # 500 LAION captions + URLs, ';'-separated
    if f is None:
        pytest.skip("Nemo et al.'s LAION prompt file is not in ../shared/data/nemo2024")
    recs = load_laion_aesthetics(100, seed=0, path=f)
    assert len(recs) == 100 and recs["url"].str.startswith("http").all() and (recs["caption"].str.len() > 0).all()


class FakeHFDataset:
    """The few `datasets.Dataset` methods the loaders use, over a DataFrame or a list of rows."""

    def __init__(self, df: pd.DataFrame):
        self.df = df.reset_index(drop=True)
        self.column_names = list(df.columns)

    def __len__(self):
        return len(self.df)

    def __getitem__(self, col):
        return self.df[col].tolist()

    def __iter__(self):
        return iter(self.df.to_dict("records"))

    def select(self, idx):
        return FakeHFDataset(self.df.iloc[list(idx)])

    def select_columns(self, cols):
        return FakeHFDataset(self.df[cols])

    def to_pandas(self):
        return self.df.copy()


def test_laion_hub_sample_is_stored_and_reused(tmp_path, monkeypatch):
    calls = []

    def fake_load(name, split, what, cache_dir=None):
        calls.append(name)
        return FakeHFDataset(laion_frame(40))
    monkeypatch.setattr(laion, "_load_hf_dataset", fake_load)
    a = load_laion_aesthetics(8, seed=1, cache_dir=tmp_path)
    b = load_laion_aesthetics(8, seed=1, cache_dir=tmp_path, download=False)       # read back, no loader call
    assert calls == [laion.LAION_AESTHETICS_DATASET]
    pd.testing.assert_frame_equal(a, b)
    # the same rows as sampling the same table from a local file: ids are source positions
    f = tmp_path / "same.parquet"
    laion_frame(40).to_parquet(f)
    assert a["id"].tolist() == load_laion_aesthetics(8, seed=1, path=f)["id"].tolist()
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_laion_aesthetics(8, seed=2, cache_dir=tmp_path, download=False)


def test_hub_loaders_need_datasets_and_say_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)           # import datasets -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'mempkg\[full\]' \(in this repository: make venv PROFILE=full"):
        load_laion_aesthetics(cache_dir=tmp_path)
    with pytest.raises(ImportError, match="pip install datasets"):
        load_tuxemon(cache_dir=tmp_path)
    with pytest.raises(ImportError, match="pip install datasets"):
        load_coco(hf_name=laion.COCO_AUTHORS_DATASET, cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_tuxemon(cache_dir=tmp_path, download=False)
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_coco(cache_dir=tmp_path, download=False)


def test_coco_csv_reader():
    f = shared("nemo2024/coco2014_val_10000.csv")
    if f is None:
        pytest.skip("Nemo et al.'s COCO caption file is not in ../shared/data/nemo2024")
    with pytest.warns(UserWarning, match="no image URLs"):         # that file has captions only
        recs = load_coco(2000, seed=0, path=f)
    assert len(recs) == 2000 and recs["id"].is_unique and recs["url"].isna().all()
    assert (recs["caption"].str.len() > 0).all() and set(recs["set"]) == {"coco"}
    assert recs["id"].iloc[0] != recs["id"].iloc[1]


def test_coco_small_csv_with_urls(tmp_path):
    f = tmp_path / "coco.csv"
    f.write_text(";Caption;URL;Index\n" + "".join(
        f"{i};A cat number {i} on a mat. ;http://images.cocodataset.org/val2014/x{i}.jpg;{i:04d}\n"
        for i in range(30)))
    recs = load_coco(5, seed=0, path=f)
    assert len(recs) == 5 and recs["url"].str.startswith("http://images.cocodataset.org").all()
    assert recs["caption"].iloc[0].endswith(".") and recs["id"].iloc[0].startswith("00")
    pd.testing.assert_frame_equal(recs, load_coco(5, seed=0, path=f))


def test_coco_captions_json_and_archive(tmp_path):
    caps = {"images": [{"id": 9, "file_name": "COCO_val2014_000000000009.jpg", "width": 640, "height": 480,
                        "coco_url": "http://images.cocodataset.org/val2014/COCO_val2014_000000000009.jpg"},
                       {"id": 3, "file_name": "COCO_val2014_000000000003.jpg", "width": 500, "height": 375}],
            "annotations": [{"id": 70, "image_id": 9, "caption": "second caption of 9"},
                            {"id": 12, "image_id": 9, "caption": "A dog.\n"},
                            {"id": 40, "image_id": 3, "caption": "A bus "}]}
    j = tmp_path / "captions_val2014.json"
    j.write_text(json.dumps(caps))
    recs = load_coco(None, path=j)
    assert recs["id"].tolist() == ["3", "9"] and recs["caption"].tolist() == ["A bus", "A dog."]
    assert recs["url"].tolist() == ["http://images.cocodataset.org/val2014/COCO_val2014_000000000003.jpg",
                                    caps["images"][0]["coco_url"]]
    z = tmp_path / "annotations_trainval2014.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(laion.COCO_CAPTIONS_MEMBER, json.dumps(caps))
    pd.testing.assert_frame_equal(recs, load_coco(None, path=z))


def test_coco_official_archive_is_downloaded_once_and_only_captions_kept(server, tmp_path, monkeypatch):
    caps = {"images": [{"id": i, "file_name": f"COCO_val2014_{i:012d}.jpg",
                        "coco_url": f"http://images.cocodataset.org/val2014/COCO_val2014_{i:012d}.jpg"}
                       for i in range(1, 31)],
            "annotations": [{"id": 100 + i, "image_id": i, "caption": f"picture {i}"} for i in range(1, 31)]}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(laion.COCO_CAPTIONS_MEMBER, json.dumps(caps))
        zf.writestr("annotations/instances_val2014.json", "{}")
    server.files["annotations.zip"] = buf.getvalue()
    monkeypatch.setattr(laion, "COCO_ANNOTATIONS_URL", server.base + "/annotations.zip")
    recs = load_coco(10, seed=0, cache_dir=tmp_path)
    assert len(recs) == 10 and recs["url"].str.startswith("http://images.cocodataset.org/val2014/").all()
    assert all(c == f"picture {i}" for c, i in zip(recs["caption"], recs["id"]))
    assert sorted(p.name for p in (tmp_path / "coco").iterdir()) == ["captions_val2014.json"]   # archive gone
    pd.testing.assert_frame_equal(recs, load_coco(10, seed=0, cache_dir=tmp_path, download=False))
    assert server.hits["/annotations.zip"] == 1


def test_tuxemon_real_folder(tmp_path):
    folder = shared("tuxemon")
    if folder is None or not (folder / "metadata.csv").is_file():
        pytest.skip("The Tuxemon sprites are not in ../shared/data/tuxemon")
    recs = load_tuxemon(folder)
    # the game repository's 378 sprites: a stand-in for the Hub set's 251 images, not the same set
    assert len(recs) == len(pd.read_csv(folder / "metadata.csv")) == 378
    assert recs["id"].is_unique and set(recs["set"]) == {"tuxemon"}
    assert all(Path(u).is_file() for u in recs["url"])
    first = recs.iloc[0]
    assert first["caption"].startswith(f"a pixel-art sprite of {first['name']}, an earth")     # Aardart
    assert (recs["caption"].str.len() > 20).all() and not recs["caption"].str.contains("nan").any()
    res = fetch_images(recs.head(5), tmp_path, progress=False)      # local files: used in place, not copied
    assert res.report.retrieved == 5 and res.report.local == 5 and not list(tmp_path.iterdir())
    x = center_crop_resize(res.paths, size=64)
    assert x.shape == (5, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    assert sample_records(recs, 251, seed=0)["id"].tolist() == load_tuxemon(folder, n=251, seed=0)["id"].tolist()


def test_tuxemon_hub_export_is_read_back(tmp_path, monkeypatch):
    rows = pd.DataFrame({"image": [Image.new("RGB", (20, 10), (i * 40, 0, 0)) for i in range(4)],
                         "gpt4_turbo_caption": [f"a red monster {i}" for i in range(4)],
                         "blip_caption": ["x"] * 4})
    monkeypatch.setattr(laion, "_load_hf_dataset", lambda name, split, what, cache_dir=None: FakeHFDataset(rows))
    recs = load_tuxemon(cache_dir=tmp_path)
    assert recs["caption"].tolist() == [f"a red monster {i}" for i in range(4)]
    assert recs["id"].tolist() == ["000", "001", "002", "003"]
    with Image.open(recs["url"].iloc[2]) as im:
        assert im.size == (20, 10) and im.getpixel((0, 0)) == (80, 0, 0)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]      # no half-done export left
    pd.testing.assert_frame_equal(recs, load_tuxemon(cache_dir=tmp_path, download=False))


# -- image fetching ----------------------------------------------------------------------------

def png_bytes(w=48, h=32, seed=0) -> bytes:
    rng = np.random.default_rng(seed)          # noise: compresses badly, so the file spans many chunks
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


GOOD = png_bytes()
SLOW_S = 1.5


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.hits[self.path] += 1
        try:
            if self.path.startswith("/good"):
                self._send(200, "image/png", GOOD)
            elif self.path == "/annotations.zip":
                self._send(200, "application/zip", self.server.files["annotations.zip"])
            elif self.path == "/missing.png":
                self.send_error(404)
            elif self.path == "/slow.png":
                time.sleep(SLOW_S)
                self._send(200, "image/png", GOOD)
            elif self.path == "/page.png":
                self._send(200, "text/html", b"<html><body>Image removed</body></html>")
            elif self.path == "/cut.png":          # promises the whole PNG, sends half, hangs up
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(GOOD)))
                self.end_headers()
                self.wfile.write(GOOD[: len(GOOD) // 2])
                self.wfile.flush()
                self.close_connection = True
            elif self.path == "/cut-nolength.png":  # no Content-Length: only decoding can tell
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(GOOD[: len(GOOD) // 2])
                self.close_connection = True
            elif self.path == "/flaky.png":        # 503 the first time, the image after
                if self.server.hits[self.path] == 1:
                    self.send_error(503)
                else:
                    self._send(200, "image/png", GOOD)
            else:
                self.send_error(404)
        except (BrokenPipeError, ConnectionResetError):
            pass                                   # the client gave up (the timeout case)

    def _send(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.block_on_close = False
    srv.hits = Counter()
    srv.files = {}
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def records(base, paths):
    return pd.DataFrame({"id": [p.strip("/").split(".")[0] for p in paths], "caption": "c",
                         "url": [base + p for p in paths], "set": "test"})


def valid_entries(cache: Path):
    """What a later call would take for a cached image: any *.img file."""
    return sorted(cache.rglob("*.img"))


def leftovers(cache: Path):
    return sorted(p for p in cache.rglob("*") if p.name.endswith(".tmp"))


def test_good_image_is_fetched_once_and_then_served_from_the_cache(server, tmp_path):
    cache = tmp_path / "cache"
    recs = records(server.base, ["/good.png"])
    res = fetch_images(recs, cache, timeout=2, progress=False)
    assert res.report.requested == 1 and res.report.retrieved == 1 and res.report.downloaded == 1
    assert res.report.missing == 0 and server.hits["/good.png"] == 1
    assert res.paths == [cached_image_path(cache, server.base + "/good.png")]
    assert res.paths[0].read_bytes() == GOOD
    again = fetch_images(recs, cache, timeout=2, progress=False)
    assert server.hits["/good.png"] == 1                       # not asked again
    assert again.report.from_cache == 1 and again.report.downloaded == 0
    img = again.images()[0]
    assert img.size == (48, 32) and np.array_equal(np.asarray(img), np.asarray(Image.open(io.BytesIO(GOOD))))


def test_failures_are_counted_missing_not_fatal(server, tmp_path):
    cache = tmp_path / "cache"
    paths = ["/good.png", "/missing.png", "/slow.png", "/page.png", "/flaky.png"]
    recs = pd.concat([records(server.base, paths),
                      pd.DataFrame({"id": ["nourl"], "caption": "c", "url": [None], "set": "test"})])
    t0 = time.time()
    res = fetch_images(recs, cache, timeout=0.3, retries=1, backoff=0.01, max_workers=4, progress=False)
    elapsed = time.time() - t0
    r = res.report
    assert r.requested == 6 and r.retrieved == 2 and r.missing == 4
    assert res.records["id"].tolist() == ["good", "flaky"]         # input order; flaky made it on the retry
    assert r.missing_reasons == {"missing": "HTTP 404", "slow": "timeout",
                                 "page": "not an image: UnidentifiedImageError", "nourl": "no url"}
    assert r.reason_counts() == {"HTTP 404": 1, "timeout": 1, "not an image": 1, "no url": 1}
    assert server.hits["/missing.png"] == 1                   # a 404 is not retried
    assert server.hits["/slow.png"] == 2 and server.hits["/flaky.png"] == 2      # transient: retried once
    assert elapsed < SLOW_S * 2
    assert len(valid_entries(cache)) == 2 and not leftovers(cache)
    assert "missing 4" in str(r) and json.dumps(r.as_dict())

    # a re-run remembers what was missing instead of asking again ...
    again = fetch_images(recs, cache, timeout=0.3, retries=1, backoff=0.01, progress=False)
    assert again.report.remembered_missing == 3 and again.report.missing_reasons == r.missing_reasons
    assert server.hits["/missing.png"] == 1 and server.hits["/page.png"] == 1
    # ... unless asked to
    fetch_images(records(server.base, ["/missing.png"]), cache, retries=0, retry_missing=True, progress=False)
    assert server.hits["/missing.png"] == 2


def test_a_body_cut_short_leaves_nothing_that_looks_valid(server, tmp_path):
    cache = tmp_path / "cache"
    res = fetch_images(records(server.base, ["/cut.png", "/cut-nolength.png"]), cache, timeout=2, retries=1,
                       backoff=0.01, progress=False)
    assert res.report.retrieved == 0
    assert res.report.missing_reasons["cut"] == "incomplete download"
    assert res.report.missing_reasons["cut-nolength"].startswith("not an image")
    assert valid_entries(cache) == [] and leftovers(cache) == []


class Interrupted(BaseException):
    """Stands in for Ctrl-C or a kill arriving in the middle of a download."""


def test_an_interrupted_write_leaves_no_cached_file(server, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setattr(fetch, "_CHUNK_BYTES", 256)
    assert len(GOOD) > 4 * 256
    written = []

    def write_then_die(f, block):
        if written:
            raise Interrupted()
        written.append(len(block))
        f.write(block)
    monkeypatch.setattr(fetch, "_write_block", write_then_die)
    recs = records(server.base, ["/good.png"])
    with pytest.raises(Interrupted):
        fetch_images(recs, cache, timeout=2, progress=False)
    assert written == [256]                                     # it died half-way through the body
    assert valid_entries(cache) == [] and leftovers(cache) == []
    assert not list(cache.rglob("*.missing.json"))             # an interrupt is not a verdict on the URL
    monkeypatch.undo()
    res = fetch_images(recs, cache, timeout=2, progress=False)      # the next run downloads it afresh
    assert res.report.downloaded == 1 and res.paths[0].read_bytes() == GOOD


def test_a_damaged_cache_entry_is_fetched_again(server, tmp_path):
    cache = tmp_path / "cache"
    url = server.base + "/good2.png"
    dest = cached_image_path(cache, url)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"garbage")
    res = fetch_images(pd.DataFrame({"id": ["g"], "url": [url]}), cache, timeout=2, progress=False)
    assert res.report.downloaded == 1 and dest.read_bytes() == GOOD


def test_shared_urls_are_fetched_once_and_bad_input_is_refused(server, tmp_path):
    url = server.base + "/good3.png"
    res = fetch_images([{"id": "a", "url": url}, {"id": "b", "url": url}], tmp_path, timeout=2, progress=False)
    assert res.report.retrieved == 2 and server.hits["/good3.png"] == 1
    # LAION URLs hold spaces and non-ASCII characters: sent percent-encoded, cached under the URL as given
    iri = server.base + "/good photo é.png?w=1 2"
    res = fetch_images([{"id": "iri", "url": iri}], tmp_path, timeout=2, progress=False)
    assert res.report.retrieved == 1 and server.hits["/good%20photo%20%C3%A9.png?w=1%202"] == 1
    assert res.paths == [cached_image_path(tmp_path, iri)]
    with pytest.raises(ValueError, match="unique"):
        fetch_images([{"id": "a", "url": url}, {"id": "a", "url": url}], tmp_path, progress=False)
    with pytest.raises(ValueError, match="'url'"):
        fetch_images(pd.DataFrame({"id": ["a"]}), tmp_path, progress=False)


# -- preprocessing -------------------------------------------------------------------------------

def test_center_crop_resize_keeps_the_centre_square():
    # 40 x 30: the centre square is columns 5..34; paint the outer 5 columns red, the rest blue
    a = np.zeros((30, 40, 3), np.uint8)
    a[:, :, 2] = 255
    a[:, :5] = (255, 0, 0)
    a[:, 35:] = (255, 0, 0)
    tall = np.zeros((50, 20, 3), np.uint8)
    tall[15:35] = (0, 255, 0)                    # rows 15..34 are the centre square of a 20 x 50 image
    x = center_crop_resize([Image.fromarray(a), Image.fromarray(tall)], size=16, resample=Image.Resampling.NEAREST)
    assert x.shape == (2, 3, 16, 16) and x.dtype == torch.float32
    assert torch.equal(x[0], torch.tensor([-1.0, -1.0, 1.0]).view(3, 1, 1).expand(3, 16, 16))
    assert torch.equal(x[1], torch.tensor([-1.0, 1.0, -1.0]).view(3, 1, 1).expand(3, 16, 16))
    pil = center_crop_resize(Image.fromarray(a), size=512, output="pil")
    assert len(pil) == 1 and pil[0].size == (512, 512) and pil[0].mode == "RGB"
    # transparent pixels go over white (Tuxemon sprites), not the colour they happen to store
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert torch.equal(center_crop_resize(clear, size=4), torch.ones(1, 3, 4, 4))
    with pytest.raises(ValueError, match="output"):
        center_crop_resize(clear, output="numpy")


def test_laion_ids_are_source_positions_even_after_the_punsafe_filter(tmp_path):
    f = tmp_path / "laion.csv"
    laion_frame(20).assign(Index=range(100, 120)).to_csv(f, index=False)     # an index column is not the id
    recs = load_laion_aesthetics(None, path=f, max_punsafe=0.5)
    assert recs["id"].tolist() == [str(i) for i in range(10)]
    assert recs["caption"].tolist() == [f"photo number {i}" for i in range(10)]
