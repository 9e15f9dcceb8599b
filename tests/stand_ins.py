"""Stand-ins for what the `full` profile downloads, in the official formats, written by the tests."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import pickle
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

CIFAR10_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar10(root: Path, n_per_train_batch: int = 8, n_test: int = 40, seed: int = 0) -> dict:
    """A CIFAR-10 "python version" folder ``root/cifar-10-batches-py`` (``data_batch_1..5``, ``test_batch``,
    ``batches.meta``) of random images; returns ``{file: md5}`` of the batches, the sums the loader is given."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    md5 = {}
    for f in CIFAR10_BATCHES:
        n = n_test if f == "test_batch" else n_per_train_batch
        x = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        with open(folder / f, "wb") as fh:
            pickle.dump({b"batch_label": f"stand-in {f}".encode(), b"data": x,
                         b"labels": rng.integers(0, 10, size=n).tolist(), b"filenames": [b"x.png"] * n}, fh)
        md5[f] = hashlib.md5((folder / f).read_bytes()).hexdigest()
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                                      b"horse", b"ship", b"truck"], b"num_cases_per_batch": n_per_train_batch,
                     b"num_vis": 3072}, fh)
    return md5


# -- the LAION, COCO and Tuxemon sources, served from 127.0.0.1 --------------------------------------------

class ImageServer:
    """A local HTTP server for the image URLs of stand-in records: ``/img/<k>.png`` a PNG, ``/dead/<k>.png``
    404, ``/text/<k>.png`` an HTML body, ``/slow/<k>.png`` an answer after ``slow_s`` seconds."""

    def __init__(self, slow_s: float = 3.0, size: int = 24):
        def png(k: int) -> bytes:
            rng = np.random.default_rng(k)
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
            return buf.getvalue()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                kind, _, name = self.path.strip("/").partition("/")
                k = int(Path(name).stem or 0)
                if kind == "slow":
                    time.sleep(slow_s)
                if kind in ("img", "slow"):
                    body, ctype, status = png(k), "image/png", 200
                elif kind == "text":
                    body, ctype, status = b"<html>not an image</html>", "text/html", 200
                else:
                    body, ctype, status = b"", "text/plain", 404
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):       # the client gave up (its timeout)
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, kind: str, k: int) -> str:
        return f"{self.base}/{kind}/{k}.png"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def write_laion_sources(root: Path, server: ImageServer, webster_parquet: Path | None = None) -> dict:
    """Local copies of the four sources of chapter 04's full profile, their image URLs on ``server``:
    Webster's ground truth (the real parquet's rows when given, else a synthetic table of the same schema),
    a LAION-Aesthetics caption/URL table, COCO's captions_val2014.json and a Tuxemon folder. Each set has
    some good images and one dead URL, one non-image body and one slow answer. Returns the settings."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    kinds = ["img", "dead", "img", "text", "img", "slow", "img", "img"]
    if webster_parquet is not None and Path(webster_parquet).is_file():
        web = pd.read_parquet(webster_parquet)
        web = pd.concat([web[web["overfit_type"] == "MV"].head(len(kinds)), web[web["overfit_type"] != "MV"].head(4)])
    else:
        web = pd.DataFrame({"caption": [f"a verbatim caption {i}" for i in range(len(kinds) + 4)],
                            "overfit_type": ["MV"] * len(kinds) + ["N"] * 4, "index": range(len(kinds) + 4)})
    web = web.reset_index(drop=True)
    web["url"] = [server.url(kinds[i % len(kinds)], 100 + i) for i in range(len(web))]
    web.to_parquet(root / "webster.parquet")
    pd.DataFrame({"URL": [server.url(k, 200 + i) for i, k in enumerate(kinds)],
                  "TEXT": [f"an aesthetic photo {i}" for i in range(len(kinds))]}).to_csv(root / "laion.csv", index=False)
    images = [{"id": 300 + i, "coco_url": server.url(k, 300 + i), "file_name": f"{300 + i}.jpg", "width": 24,
               "height": 24} for i, k in enumerate(kinds)]
    anns = [{"id": i, "image_id": 300 + i, "caption": f"a coco scene {i}"} for i in range(len(kinds))]
    (root / "captions_val2014.json").write_text(json.dumps({"images": images, "annotations": anns}))
    tux = root / "tuxemon"
    tux.mkdir()
    rng = np.random.default_rng(4)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (24, 24, 4), dtype=np.uint8), "RGBA").save(tux / f"m{i}.png")
    pd.DataFrame({"file_name": [f"m{i}.png" for i in range(5)],
                  "caption": [f"a pixel-art monster {i}" for i in range(5)]}).to_csv(tux / "metadata.csv", index=False)
    return dict(webster_path=str(root / "webster.parquet"), laion_path=str(root / "laion.csv"),
                coco_path=str(root / "captions_val2014.json"), tuxemon_path=str(tux))
