"""Stable Diffusion memorization data: Webster's verbatim copies and three sets of ordinary images, as records.

Ross, Kamkari et al. (arXiv 2411.00113, Fig. 4; ``NOTES.md`` section 2) score *memorized* LAION
images against *non-memorized* ones with FLIPD, the CFG norm and PNG size:

* memorized: the 86 "matching verbatim" (MV) rows of Webster (2023)'s SD v1 ground truth
  (:func:`load_webster_groundtruth`, :func:`matching_verbatims`);
* non-memorized: 2,000 LAION-Aesthetics v2 6.5+ images (:func:`load_laion_aesthetics`),
  2,000 COCO images (:func:`load_coco`) and all Tuxemon images (:func:`load_tuxemon`).

**Records.** Every loader returns the same frame, one row per image: ``id`` (str, unique within
the set), ``caption`` (str), ``url`` (an http(s) URL, or a local file path; ``None`` where the
source has no image link) and ``set`` (the set's name, :data:`SET_NAMES`), then source-specific
columns. :func:`mempkg.data.fetch.fetch_images` turns records into image files (a cache keyed by the URL's hash;
failures are counted, never fatal) and :func:`mempkg.data.fetch.center_crop_resize` turns images into the
``[B, 3, S, S]`` tensors in [-1, 1] that SD's VAE encodes.

**Sources** (each needs internet once; every loader also reads a local copy through ``path=``):

* Webster: ``hf_hub_download`` of :data:`WEBSTER_FILE` from the dataset repo
  :data:`WEBSTER_REPO` (500 rows; 86 MV), md5-checked (:data:`WEBSTER_MD5`).
* LAION-Aesthetics v2 6.5+: the original ``ChristophSchuhmann/improved_aesthetics_6.5plus``
  (635,561 rows of URL + TEXT, what most papers sampled) was withdrawn with the rest of LAION in
  December 2023; :data:`LAION_AESTHETICS_DATASET` names a public mirror with the same columns
  (a parameter: point it at any caption + URL table). Sampling happens before images are
  fetched, and many LAION URLs are dead by now: sample more than you need and keep the first
  2,000 retrieved (:func:`~mempkg.data.fetch.fetch_images` keeps the records' order).
* COCO: the 2014 validation captions from the official annotation archive
  (:data:`COCO_ANNOTATIONS_URL`, ~240 MB, read once; only ``captions_val2014.json`` is kept),
  one caption per image, image URLs from its ``coco_url`` field. The authors' code used the
  2017 ``ChristophSchuhmann/MS_COCO_2017_URL_TEXT`` table instead: ``load_coco(hf_name=...)``.
* Tuxemon: ``datasets.load_dataset("diffusers/tuxemon", split="train")`` (251 images, caption
  column ``gpt4_turbo_caption``), exported once to a local folder that :func:`load_tuxemon` reads.

``datasets`` is the optional ``full`` extra; it is imported only by the functions that need it.

Layer: data (imports mempkg.core only).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from huggingface_hub import hf_hub_download

from ..core.files import atomic_write, file_digest
from ..core.hub import local_only
from ..core.progress import bar as progress_bar
from .fetch import clean_url, default_data_root, require_columns

# -- names of the sources --------------------------------------------------------------------

WEBSTER_REPO = "fraisdufour/templates-verbs"
WEBSTER_FILE = "groundtruth_parquets/sdv1_bb_edge_groundtruth.parquet"
WEBSTER_MD5 = "72c2dded275dda496de9c3f7c33c4f3d"      # also hard-coded by yupeeee/WAH for this file
WEBSTER_COLUMNS = ("caption", "url", "overfit_type", "index")
# Webster's labels: MV = the generation matches the training image verbatim (what Ross et al. call
# memorized), RV = retrieval verbatim, TV = template verbatim, N = not memorized.
OVERFIT_TYPES = {"MV": "matching verbatim", "RV": "retrieval verbatim", "TV": "template verbatim",
                 "N": "none"}

# A mirror of ChristophSchuhmann/improved_aesthetics_6.5plus (withdrawn 2023-12): its
# dataset_info.json lists the original's columns URL, TEXT, WIDTH, HEIGHT, similarity, punsafe,
# pwatermark, AESTHETIC_SCORE, hash and 635,561 rows.
LAION_AESTHETICS_DATASET = "RobinWZQ/improved_aesthetics_6.5plus"
LAION_ORIGINAL_DATASET = "ChristophSchuhmann/improved_aesthetics_6.5plus"

COCO_ANNOTATIONS_URL = "http://images.cocodataset.org/annotations/annotations_trainval2014.zip"
COCO_CAPTIONS_MEMBER = "annotations/captions_val2014.json"
COCO_AUTHORS_DATASET = "ChristophSchuhmann/MS_COCO_2017_URL_TEXT"     # what Ross et al.'s code loads

TUXEMON_DATASET = "diffusers/tuxemon"
TUXEMON_CAPTION_COLUMN = "gpt4_turbo_caption"
# Captions for a folder of Tuxemon sprites without captions (the game repository's sprites and
# metadata): the HF set's GPT-4 captions are not available offline, so describe what the sprite is.
TUXEMON_CAPTION_TEMPLATE = "a pixel-art sprite of {name}, a {types} {category} monster"

SET_NAMES = {"webster_mv": "Webster (2023) SD v1 matching verbatims (memorized)",
             "laion_aesthetics": "LAION-Aesthetics v2 6.5+ (not memorized)",
             "coco": "COCO captions (not memorized)",
             "tuxemon": "Tuxemon (not memorized)"}
RECORD_COLUMNS = ("id", "caption", "url", "set")

CAPTION_ALIASES = ("caption", "text", "prompt")
URL_ALIASES = ("url", "image_url", "coco_url")
ID_ALIASES = ("id", "image_id", "index")

DOWNLOAD_TIMEOUT_S = 60          # the COCO annotation archive: per socket operation, not in total


# -- records ---------------------------------------------------------------------------------

def _clean_caption(c) -> str:
    """One line, single spaces: COCO captions end in spaces and newlines, LAION's hold tabs."""
    return re.sub(r"\s+", " ", str(c)).strip()


def make_records(ids, captions, urls, set_name: str, **extra) -> pd.DataFrame:
    """The records frame: ``id`` (str), ``caption`` (str, whitespace collapsed), ``url`` (str or
    None), ``set``, then ``extra`` columns in the order given. Ids must be unique."""
    ids = [str(i) for i in ids]
    captions, urls = list(captions), list(urls)
    if not (len(ids) == len(captions) == len(urls)):
        raise ValueError(f"make_records: {len(ids)} ids, {len(captions)} captions and {len(urls)} urls "
                         "differ in length.")
    dup = pd.Series(ids)[pd.Series(ids).duplicated()]
    if len(dup):
        raise ValueError(f"make_records: ids must be unique within a set; {len(dup)} repeat "
                         f"(e.g. {dup.iloc[0]!r}).")
    df = pd.DataFrame({"id": ids, "caption": [_clean_caption(c) for c in captions],
                       "url": [clean_url(u) for u in urls], "set": set_name})
    for k, v in extra.items():
        df[k] = list(v)
    return _core_dtypes(df)


def _core_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    """The four record columns as Python objects, a missing URL as None: the same frame whether
    built here or read back from parquet (which would give pandas string dtypes and NaN)."""
    for c in RECORD_COLUMNS:
        df[c] = pd.Series([clean_url(v) if c == "url" else str(v) for v in df[c]], index=df.index, dtype=object)
    return df


def _sample_positions(total: int, n: int | None, seed: int) -> np.ndarray:
    """``n`` distinct positions in ``range(total)`` drawn with ``default_rng(seed)``, sorted (so
    records keep the source's order); all positions when ``n`` is None."""
    if n is None:
        return np.arange(total)
    if n < 1:
        raise ValueError(f"n must be >= 1 (or None for all rows), got {n}.")
    if n > total:
        raise ValueError(f"Asked for n={n} rows but the source has only {total}; lower n or pass n=None for all.")
    return np.sort(np.random.default_rng(int(seed)).choice(total, size=int(n), replace=False))


def sample_records(records: pd.DataFrame, n: int | None, seed: int = 0) -> pd.DataFrame:
    """``n`` rows drawn without replacement with numpy's ``default_rng(seed)``, in their original
    order (all rows when ``n`` is None). The same seed on the same table gives the same rows."""
    pos = _sample_positions(len(records), n, seed)
    return records.iloc[pos].reset_index(drop=True)


def _find_column(df: pd.DataFrame, preferred: str | None, aliases: Sequence[str]) -> str | None:
    """The column named ``preferred`` or one of ``aliases``, compared case-insensitively."""
    lower = {str(c).lower(): c for c in df.columns}
    for name in ([preferred] if preferred else []) + list(aliases):
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def _read_table(path: Path) -> pd.DataFrame:
    """A parquet, CSV (separator sniffed: Nemo et al.'s files use ';') or JSON-lines file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No file at {path}.")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".jsonl", ".ndjson"):
        return pd.read_json(path, lines=True)
    if suffix in (".csv", ".tsv", ".txt"):
        df = pd.read_csv(path, sep=None, engine="python", dtype=str, keep_default_na=False, na_values=[""])
        unnamed = [c for c in df.columns if str(c).startswith("Unnamed: ") or str(c) == ""]
        return df.drop(columns=unnamed)                 # a written-out pandas index, not data
    raise ValueError(f"Cannot read {path}: expected a .parquet, .csv or .jsonl file.")


# -- downloads of tables (Hugging Face Hub, datasets) -----------------------------------------

def _hub_file(repo_id: str, filename: str, *, download: bool, cache_dir, what: str) -> Path:
    """A file of a Hub *dataset* repo, from the local HF cache or (``download=True``) the Hub."""

    try:
        return Path(hf_hub_download(repo_id, filename, repo_type="dataset",
                                    cache_dir=None if cache_dir is None else str(cache_dir),
                                    local_files_only=not download or local_only()))
    except OSError as e:      # every hub failure (offline, HTTP, missing entry) is an OSError subclass
        if not download:
            raise FileNotFoundError(
                f"{what} is not in the Hugging Face cache and download=False: call again with download=True "
                f"(needs internet) or pass path= to a local copy of {filename}.") from e
        raise ConnectionError(
            f"Could not fetch {what} ({repo_id}: {filename}) from the Hugging Face Hub ({type(e).__name__}); "
            "check the connection (and that HF_HUB_OFFLINE is unset), or pass path= to a local copy.") from e


def import_datasets(what: str):
    """Hugging Face ``datasets``, or a plain error naming the install command: ``what`` needs it."""
    try:
        import datasets  # optional (extra 'full'): hub data sets
    except ImportError as e:
        raise ImportError(f"{what} needs the `datasets` package: pip install 'mempkg[full]' (in this repository: "
                          "make venv PROFILE=full), or pip install datasets; or pass path= to a local copy.") from e
    return datasets


def _load_hf_dataset(name: str, split: str, what: str, cache_dir=None):
    datasets = import_datasets(what)
    try:
        return datasets.load_dataset(name, split=split, cache_dir=None if cache_dir is None else str(cache_dir))
    except (OSError, ValueError) as e:      # offline: ConnectionError; gone or gated: DatasetNotFoundError
        raise ConnectionError(
            f"Could not load {what} from the Hugging Face dataset {name!r} (split {split!r}): {type(e).__name__}: "
            f"{e}. Check the connection (and HF_DATASETS_OFFLINE), pass name= to another copy with the same "
            "columns, or pass path= to a local file.") from e


def _cache_root(cache_dir) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_data_root()


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)


def _caption_url_sample(name: str, split: str, n: int | None, seed: int, caption_column: str, url_column: str,
                        set_name: str, what: str, download: bool, cache_dir, max_punsafe: float | None = None
                        ) -> pd.DataFrame:
    """``n`` rows of a caption + URL table on the Hub, as records; the sample is kept as a parquet
    under ``<cache>/captions/`` so that a re-run (or ``download=False``) needs neither the
    network nor ``datasets``."""
    key = _slug(f"{name}-{split}-n{n}-seed{seed}-punsafe{max_punsafe}")
    stored = _cache_root(cache_dir) / "captions" / f"{key}.parquet"
    if stored.is_file():
        return _core_dtypes(pd.read_parquet(stored))
    if not download:
        raise FileNotFoundError(f"No stored sample of {what} at {stored} and download=False: call with "
                                "download=True (needs internet and `datasets`), or pass path= to a local copy.")
    ds = _load_hf_dataset(name, split, what)
    header = pd.DataFrame(columns=ds.column_names)          # column lookup without reading the rows
    cap = _find_column(header, caption_column, CAPTION_ALIASES)
    url = _find_column(header, url_column, URL_ALIASES)
    if cap is None or url is None:
        raise ValueError(f"{what} ({name}) has no {'caption' if cap is None else 'URL'} column "
                         f"(looked for {caption_column!r} / {url_column!r}; it has {', '.join(ds.column_names)}).")
    rows = np.arange(len(ds))
    if max_punsafe is not None:
        if "punsafe" not in ds.column_names:
            raise ValueError(f"max_punsafe needs a 'punsafe' column; {name} has {', '.join(ds.column_names)}.")
        p = ds.select_columns(["punsafe"]).to_pandas()["punsafe"].to_numpy(dtype=float)
        rows = rows[p <= max_punsafe]          # a missing (NaN) punsafe is dropped too
    pos = rows[_sample_positions(len(rows), n, seed)]
    keep = [c for c in ds.column_names if c not in (cap, url) and c.lower() in
            ("hash", "aesthetic_score", "width", "height", "punsafe", "pwatermark", "similarity")]
    sub = ds.select(pos.tolist()).select_columns([cap, url] + keep).to_pandas()
    recs = make_records(pos, sub[cap], sub[url], set_name, **{k.lower(): sub[k] for k in keep})
    atomic_write(stored, lambda f: recs.to_parquet(f, index=False))
    return recs


def _records_from_table(df: pd.DataFrame, set_name: str, what: str, caption_column: str | None = None,
                        url_column: str | None = None, ids_from_positions: bool = False, need_url: bool = True,
                        extra: Sequence[str] = ()) -> pd.DataFrame:
    """Records from a caption (+ URL) table. Ids: the table's id/image_id/index column when it
    is unique and ``ids_from_positions`` is False, else the row positions."""
    cap = _find_column(df, caption_column, CAPTION_ALIASES)
    url = _find_column(df, url_column, URL_ALIASES)
    if cap is None or (need_url and url is None):
        missing = ["caption" if cap is None else None, "url" if (need_url and url is None) else None]
        raise ValueError(f"{what} lacks a {' and a '.join(m for m in missing if m)} column (looked for "
                         f"{[c for c in [caption_column] if c] + list(CAPTION_ALIASES)} and "
                         f"{[c for c in [url_column] if c] + list(URL_ALIASES)}; "
                         f"it has {', '.join(map(str, df.columns))}).")
    idc = None if ids_from_positions else _find_column(df, None, ID_ALIASES)
    if idc is not None and not df[idc].astype(str).is_unique:
        idc = None
    ids = df[idc].astype(str).tolist() if idc is not None else range(len(df))
    urls = df[url].tolist() if url is not None else [None] * len(df)
    present = {str(c).lower(): c for c in df.columns}
    more = {k: df[present[k]].tolist() for k in extra if k in present and present[k] not in (cap, url, idc)}
    return make_records(ids, df[cap].tolist(), urls, set_name, **more)


# -- Webster (2023): the SD v1 ground truth ---------------------------------------------------

def load_webster_groundtruth(path: str | Path | None = None, download: bool = True, cache_dir=None,
                             md5: str | None = WEBSTER_MD5) -> pd.DataFrame:
    """Webster (2023)'s Stable Diffusion v1 memorization ground truth, one row per LAION caption.

    Source: ``hf_hub_download`` of :data:`WEBSTER_FILE` from the Hub dataset repo
    :data:`WEBSTER_REPO` when ``path`` is None (md5-checked against ``md5``; pass None to skip),
    else the parquet (or a CSV export of it) at ``path``.

    Returns:
        The table as stored: 500 rows in the real file, with at least :data:`WEBSTER_COLUMNS`
        (``caption``, ``url``, ``overfit_type`` in :data:`OVERFIT_TYPES`, ``index`` = LAION row
        index) and in the real file also ``scores``, ``numdups``, ``edge_scores``, ``mse_real_gen``,
        ``gen_seeds``, ``retrieved_urls``. :func:`matching_verbatims` selects the memorized rows.
    """
    if path is None:
        path = _hub_file(WEBSTER_REPO, WEBSTER_FILE, download=download, cache_dir=cache_dir,
                         what="Webster's SD v1 ground truth")
        if md5 is not None and file_digest(path, "md5") != md5:
            raise ValueError(f"{path} has md5 {file_digest(path, 'md5')}, expected {md5}: the Hub file changed "
                             "or the download is damaged; delete it and retry, or pass md5=None to accept it.")
    df = _read_table(Path(path))
    require_columns(df, WEBSTER_COLUMNS, f"Webster's ground truth ({path})")
    return df


def matching_verbatims(df: pd.DataFrame) -> pd.DataFrame:
    """The "matching verbatim" rows (``overfit_type == "MV"``; 86 in the real file) as records.

    Returns records (``id`` = the LAION index as str, ``caption``, ``url``, ``set`` =
    ``"webster_mv"``) plus ``laion_index`` (int), ``numdups`` (LAION's duplicate count, where the
    table has it) and ``source_row`` (the row label in ``df``).
    """
    require_columns(df, WEBSTER_COLUMNS, "The Webster table given to matching_verbatims")
    mv = df[df["overfit_type"].astype(str).str.strip() == "MV"]
    extra = {"laion_index": mv["index"].astype("int64").tolist()}
    if "numdups" in mv.columns:
        extra["numdups"] = mv["numdups"].astype("int64").tolist()
    extra["source_row"] = list(mv.index)
    return make_records(mv["index"].astype("int64").astype(str), mv["caption"], mv["url"], "webster_mv", **extra)


# -- LAION-Aesthetics v2 6.5+ -----------------------------------------------------------------

def load_laion_aesthetics(n: int | None = 2000, seed: int = 0, *, path: str | Path | None = None,
                          name: str = LAION_AESTHETICS_DATASET, split: str = "train", caption_column: str = "TEXT",
                          url_column: str = "URL", max_punsafe: float | None = None, download: bool = True,
                          cache_dir=None) -> pd.DataFrame:
    """``n`` captions + URLs of LAION-Aesthetics v2 6.5+ drawn with ``seed``, as records.

    Source: the Hub dataset ``name`` (default :data:`LAION_AESTHETICS_DATASET`, a mirror of the
    withdrawn :data:`LAION_ORIGINAL_DATASET`; 635,561 rows) through ``datasets`` when ``path`` is
    None, else a local parquet / CSV / JSON-lines table at ``path``. Columns are found by
    ``caption_column`` / ``url_column`` or the usual aliases (caption/text, url), ignoring case.

    Args:
        n: rows to draw without replacement (None: all). Many LAION URLs are dead: draw more
            than the 2,000 images the paper uses and keep the first 2,000 that
            :func:`fetch_images` retrieves.
        max_punsafe: keep only rows with LAION's NSFW probability ``punsafe`` <= this before
            sampling (None: no filter, as in the paper).
        cache_dir: where the Hub sample is stored (default ``$MEMPKG_DATA`` or
            ``~/.cache/mempkg/data``); a re-run with the same arguments reads it back.

    Returns:
        Records (``id`` = row position in the source table, ``set`` = ``"laion_aesthetics"``),
        plus the source's ``hash``, ``aesthetic_score``, ``width``, ``height``, ``punsafe``, ...
        where present.
    """
    what = "LAION-Aesthetics 6.5+"
    if path is None:
        return _caption_url_sample(name, split, n, seed, caption_column, url_column, "laion_aesthetics", what,
                                   download, cache_dir, max_punsafe)
    df = _read_table(Path(path)).reset_index(drop=True)
    recs = _records_from_table(df, "laion_aesthetics", f"{what} table {path}", caption_column, url_column,
                               ids_from_positions=True,
                               extra=("hash", "aesthetic_score", "width", "height", "punsafe", "pwatermark"))
    if max_punsafe is not None:
        pcol = _find_column(df, "punsafe", ())
        if pcol is None:
            raise ValueError(f"max_punsafe needs a 'punsafe' column; {path} has {', '.join(map(str, df.columns))}.")
        recs = recs[(pd.to_numeric(df[pcol]) <= max_punsafe).to_numpy()]
    return sample_records(recs, n, seed)


# -- COCO -------------------------------------------------------------------------------------

def coco_captions_records(captions: dict) -> pd.DataFrame:
    """Records from a COCO captions file (``captions_val2014.json``, already parsed): one row per
    image, in image-id order; the caption is the image's first (lowest annotation id) of its ~5.

    Returns records (``id`` = COCO image id, ``url`` = its ``coco_url``, ``set`` = ``"coco"``)
    plus ``file_name``, ``width``, ``height``.
    """
    try:
        images = sorted(captions["images"], key=lambda im: im["id"])
        anns = sorted(captions["annotations"], key=lambda a: a["id"])
    except (KeyError, TypeError) as e:
        raise ValueError("Not a COCO captions file: it needs 'images' and 'annotations' lists.") from e
    first = {}
    for a in anns:
        first.setdefault(a["image_id"], a["caption"])
    images = [im for im in images if im["id"] in first]
    urls = [im.get("coco_url") or f"http://images.cocodataset.org/val2014/{im['file_name']}" for im in images]
    return make_records([im["id"] for im in images], [first[im["id"]] for im in images], urls, "coco",
                        file_name=[im.get("file_name") for im in images], width=[im.get("width") for im in images],
                        height=[im.get("height") for im in images])


def _download_file(url: str, dest: Path, desc: str) -> None:
    """``url`` to ``dest`` through a temporary file in the same folder and one ``os.replace``."""

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            size = int(resp.headers.get("Content-Length") or 0) or None
            got = 0
            with progress_bar(total=size, desc=desc) as pbar:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
                    got += len(block)
                    pbar.update(len(block))
            if size is not None and got != size:       # urllib returns a cut-off body without complaint
                raise ConnectionError(f"got {got} of {size} bytes")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise ConnectionError(f"Could not download {url} ({e}); check the connection, or download it elsewhere "
                              f"and pass path= to it.") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _coco_captions_json(cache_dir, download: bool) -> Path:
    """``<cache>/coco/captions_val2014.json``, extracted once from the official annotation archive
    (the archive, ~240 MB, is deleted afterwards)."""
    folder = _cache_root(cache_dir) / "coco"
    target = folder / Path(COCO_CAPTIONS_MEMBER).name
    if target.is_file():
        return target
    if not download:
        raise FileNotFoundError(f"The COCO 2014 captions are not at {target} and download=False: call with "
                                f"download=True (needs internet; fetches {COCO_ANNOTATIONS_URL}), or pass path= to "
                                "captions_val2014.json, the archive, or a caption + URL CSV.")
    archive = folder / ".annotations_trainval2014.zip"
    try:
        _download_file(COCO_ANNOTATIONS_URL, archive, "COCO 2014 annotations")
        try:
            with zipfile.ZipFile(archive) as z:
                blob = z.read(COCO_CAPTIONS_MEMBER)
        except (zipfile.BadZipFile, KeyError) as e:
            raise ValueError(f"{COCO_ANNOTATIONS_URL} did not give a zip holding {COCO_CAPTIONS_MEMBER}.") from e
        atomic_write(target, lambda f: f.write(blob))
    finally:
        if archive.exists():
            archive.unlink()
    return target


def load_coco(n: int | None = 2000, seed: int = 0, *, path: str | Path | None = None, hf_name: str | None = None,
              download: bool = True, cache_dir=None) -> pd.DataFrame:
    """``n`` COCO images with one caption each, drawn with ``seed``, as records (``set`` = ``"coco"``).

    Source, in order of precedence:

    * ``path``: ``captions_val2014.json``, the official ``annotations_trainval2014.zip``, or a
      caption table (CSV/parquet/JSON-lines with a caption column and optionally url and id
      columns; e.g. Nemo et al.'s ``coco2014_val_10000.csv``, which has captions only: its
      records get ``url = None``, so their images cannot be fetched, and a warning says so);
    * ``hf_name``: a caption + URL table on the Hub, e.g. :data:`COCO_AUTHORS_DATASET` (what Ross
      et al.'s code sampled: COCO 2017, columns TEXT and URL);
    * otherwise the 2014 validation captions of :data:`COCO_ANNOTATIONS_URL` (40,504 images),
      downloaded once into ``<cache_dir>/coco/``.
    """
    if path is not None:
        path = Path(path)
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as z:
                recs = coco_captions_records(json.loads(z.read(COCO_CAPTIONS_MEMBER)))
        elif path.suffix.lower() == ".json":
            recs = coco_captions_records(json.loads(path.read_text()))
        else:
            recs = _records_from_table(_read_table(path), "coco", f"COCO caption table {path}", need_url=False,
                                       extra=("file_name", "width", "height"))
            if recs["url"].isna().all():
                warnings.warn(f"{path} has captions but no image URLs: fetch_images will count every row missing. "
                              "Use captions_val2014.json (load_coco() downloads it) to get images too.", stacklevel=2)
        return sample_records(recs, n, seed)
    if hf_name is not None:
        return _caption_url_sample(hf_name, "train", n, seed, "TEXT", "URL", "coco", "COCO captions", download,
                                   cache_dir)
    return sample_records(coco_captions_records(json.loads(_coco_captions_json(cache_dir, download).read_text())),
                          n, seed)


# -- Tuxemon ----------------------------------------------------------------------------------

def _tuxemon_caption(row: pd.Series, template: str) -> str:
    def get(k):
        v = row.get(k)
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) or pd.isna(v) else str(v)

    fields = {"name": get("name") or get("slug"), "types": get("types").replace(";", " and "),
              "category": get("category").replace("_", " "), "shape": get("shape"),
              "description": get("description")}
    text = _clean_caption(template.format(**fields)).replace(" ,", ",")
    return re.sub(r"\ba ([aeiouAEIOU])", r"an \1", text)          # "an earth-type ..."


def _export_hf_tuxemon(folder: Path) -> None:
    """Write ``diffusers/tuxemon`` (train split) as ``folder/images/NNN.png`` + ``metadata.csv``
    (id, file_name, gpt4_turbo_caption), built in a temporary folder and moved in with one
    ``os.replace`` so that a half-written export is never read."""

    ds = _load_hf_dataset(TUXEMON_DATASET, "train", "Tuxemon")
    require_columns(pd.DataFrame(columns=ds.column_names), ("image", TUXEMON_CAPTION_COLUMN),
                     f"The Hub dataset {TUXEMON_DATASET}")
    if folder.exists():
        raise FileExistsError(f"{folder} exists but holds no metadata.csv (an unfinished export?): delete it and "
                              "call load_tuxemon() again.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        (tmp / "images").mkdir()
        rows = []
        for i, ex in enumerate(progress_bar(ds, total=len(ds), desc="Tuxemon export")):
            rel = f"images/{i:03d}.png"
            im = ex["image"]
            if im.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):      # what PNG can hold
                im = im.convert("RGB")
            im.save(tmp / rel)
            rows.append({"id": f"{i:03d}", "file_name": rel, TUXEMON_CAPTION_COLUMN: ex[TUXEMON_CAPTION_COLUMN]})
        pd.DataFrame(rows).to_csv(tmp / "metadata.csv", index=False)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_tuxemon(path: str | Path | None = None, n: int | None = None, seed: int = 0, *,
                 caption_column: str | None = None, caption_template: str = TUXEMON_CAPTION_TEMPLATE,
                 download: bool = True, cache_dir=None) -> pd.DataFrame:
    """Tuxemon images with captions, as records (``set`` = ``"tuxemon"``, ``url`` = local file path).

    Source: a folder holding ``metadata.csv`` and the images it names. With ``path=None`` that is
    ``<cache_dir>/tuxemon`` (default ``$MEMPKG_DATA`` or ``~/.cache/mempkg/data``), exported there
    once from ``datasets.load_dataset("diffusers/tuxemon", split="train")`` (251 images; caption
    column ``gpt4_turbo_caption``). Any folder of the same kind works, e.g. the game repository's
    sprites (``metadata.csv`` with ``slug``, ``name``, ``types``, ``category``, ``sprite``):

    * image column: the first of ``file_name``, ``sprite``, ``image``, ``path``;
    * caption: ``caption_column`` or the first of ``gpt4_turbo_caption``, ``caption``, ``text``;
      failing those, ``caption_template`` filled from ``name`` (or ``slug``), ``types``,
      ``category``, ``shape``, ``description``;
    * id: the ``id`` or ``slug`` column, else the image's file stem.

    ``n=None`` keeps every image (the paper uses all 251 of the Hub set).
    """
    if path is None:
        folder = _cache_root(cache_dir) / "tuxemon"
        if not (folder / "metadata.csv").is_file():
            if not download:
                raise FileNotFoundError(f"No Tuxemon export at {folder} and download=False: call with download=True "
                                        "(needs internet and `datasets`), or pass path= to a folder with "
                                        "metadata.csv.")
            _export_hf_tuxemon(folder)
    else:
        folder = Path(path)
        if not (folder / "metadata.csv").is_file():
            raise FileNotFoundError(f"{folder} holds no metadata.csv: pass a folder with metadata.csv and its "
                                    "images.")
    meta = pd.read_csv(folder / "metadata.csv", dtype={"id": str, "slug": str})    # keep ids like "007" as text
    img_col = _find_column(meta, None, ("file_name", "sprite", "image", "path"))
    if img_col is None:
        raise ValueError(f"{folder / 'metadata.csv'} names no images: it needs a file_name (or sprite, image, path) "
                         f"column; it has {', '.join(map(str, meta.columns))}.")
    cap_col = _find_column(meta, caption_column, (TUXEMON_CAPTION_COLUMN, "caption", "text"))
    if caption_column is not None and cap_col != _find_column(meta, caption_column, ()):
        raise ValueError(f"{folder / 'metadata.csv'} has no column {caption_column!r}.")
    if cap_col is not None:
        captions = meta[cap_col].tolist()
    else:
        captions = [_tuxemon_caption(r, caption_template) for _, r in meta.iterrows()]
    files = [folder / str(f) for f in meta[img_col]]
    id_col = _find_column(meta, None, ("id", "slug"))
    ids = meta[id_col].astype(str).tolist() if id_col is not None else [f.stem for f in files]
    recs = make_records(ids, captions, [str(f.resolve()) for f in files], "tuxemon",
                        **({"name": meta["name"].tolist()} if "name" in meta.columns else {}))
    return sample_records(recs, n, seed)
