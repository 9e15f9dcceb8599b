"""Images from URLs and local paths, fetched once into a cache, and turned into tensors (layer: data).

:func:`fetch_images` downloads the images of a records frame (see :mod:`mempkg.data.laion`) into a
cache keyed by the URL's hash: in parallel, with retries for transient failures, a size limit, and a
``.missing`` marker for failures that retrying will not fix. A dead URL, a non-image body and a
timeout are each counted in the :class:`FetchReport` and skipped, never fatal; an interrupted fetch
leaves no partial file. :func:`load_image` and :func:`center_crop_resize` turn files into the
``[B, 3, S, S]`` tensors in [-1, 1] that Stable Diffusion's VAE encodes.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
import torch
from PIL import Image

from ..core.files import write_json_atomic
from ..core.progress import bar as progress_bar

if TYPE_CHECKING:
    import pandas as pd


def default_data_root() -> Path:
    """Where downloaded data sets live: ``$MEMPKG_DATA`` if set, else ``~/.cache/mempkg/data``."""
    env = os.environ.get("MEMPKG_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mempkg" / "data"


def clean_url(u) -> str | None:
    if u is None or (isinstance(u, float) and math.isnan(u)):
        return None
    u = str(u).strip()
    return u or None


def require_columns(df: pd.DataFrame, required: Iterable[str], what: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks the column(s) {', '.join(map(repr, missing))} "
                         f"(it has: {', '.join(map(str, df.columns))}).")


_CHUNK_BYTES = 1 << 16
_IMAGE_SUFFIX = ".img"
_MISSING_SUFFIX = ".missing.json"
# Statuses worth another try; any other HTTP error (404, 403, 410, ...) will not change on retry.
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "mempkg/0.1 (research; memorization study image fetch)"


class _Transient(Exception):
    """A failure that may go away on retry (timeout, dropped connection, 5xx)."""


class _Permanent(Exception):
    """A failure retrying will not fix (404, not an image, too large)."""


def url_key(url: str) -> str:
    """sha256 of the URL (hex): the name of its cache entry."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def cached_image_path(cache_dir: str | Path, url: str) -> Path:
    """Where :func:`fetch_images` keeps the image of ``url``: ``<cache_dir>/<k[:2]>/<k>.img``.
    A file there is always complete and decodable (it is written only by ``os.replace``)."""
    k = url_key(url)
    return Path(cache_dir) / k[:2] / f"{k}{_IMAGE_SUFFIX}"


def _missing_marker(cache_dir: Path, url: str) -> Path:
    k = url_key(url)
    return Path(cache_dir) / k[:2] / f"{k}{_MISSING_SUFFIX}"


def _request_url(url: str) -> str:
    """The URL as urllib can send it: LAION URLs hold spaces and non-ASCII characters, which
    http.client refuses; percent-encode those (existing %XX escapes are kept) and IDNA-encode a
    non-ASCII host. The cache key stays the URL as given."""
    try:
        parts = urllib.parse.urlsplit(url)
        netloc = parts.netloc if parts.netloc.isascii() else parts.netloc.encode("idna").decode("ascii")
        path = urllib.parse.quote(parts.path, safe="/%:@!$&'()*+,;=~")
        query = urllib.parse.quote(parts.query, safe="%=&/:?@!$'()*+,;~")
        return urllib.parse.urlunsplit((parts.scheme, netloc, path, query, ""))
    except (UnicodeError, ValueError):
        return url


def _is_remote(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def _local_path(url: str) -> Path:
    if url.lower().startswith("file://"):
        return Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    return Path(url)


def _image_problem(path: Path) -> str | None:
    """None if ``path`` decodes fully as an image, else why not. A full decode (not just the
    header) is what catches a truncated JPEG or an HTML error page served with status 200."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.width < 1 or im.height < 1:
                return "not an image: empty"
    except Image.DecompressionBombError:
        return "not an image: too many pixels"
    except Exception as e:         # Pillow raises OSError, SyntaxError, ValueError, ... on bad data
        return f"not an image: {type(e).__name__}"
    return None


def _write_block(f, block: bytes) -> None:
    """One chunk of a download to its temporary file (a seam for the interruption test)."""
    f.write(block)


def _download(url: str, dest: Path, *, timeout: float, max_bytes: int, user_agent: str) -> None:
    """Stream ``url`` into a temporary file beside ``dest``, check it decodes, then ``os.replace``.

    Whatever goes wrong (an exception, an interrupt) the temporary file is removed, so ``dest``
    exists only complete. Raises :class:`_Transient` or :class:`_Permanent` with a short reason.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        req = urllib.request.Request(_request_url(url), headers={"User-Agent": user_agent,
                                                                 "Accept": "image/*,*/*;q=0.8"})
    except ValueError as e:
        raise _Permanent(f"bad url: {e}") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                resp = urllib.request.urlopen(req, timeout=timeout)
            except urllib.error.HTTPError as e:
                e.close()
                raise (_Transient if e.code in _RETRY_STATUS else _Permanent)(f"HTTP {e.code}") from None
            except urllib.error.URLError as e:
                if isinstance(e.reason, TimeoutError):
                    raise _Transient("timeout") from None
                raise _Transient(f"connection error: {e.reason}") from None
            except TimeoutError:        # urllib does not wrap a timeout while waiting for the response
                raise _Transient("timeout") from None
            except http.client.InvalidURL as e:
                raise _Permanent(f"bad url: {e}") from None
            except (http.client.HTTPException, OSError) as e:
                raise _Transient(f"connection error: {type(e).__name__}") from None
            except ValueError as e:     # e.g. an unknown scheme after a redirect
                raise _Permanent(f"bad url: {e}") from None
            with resp:
                expected = resp.headers.get("Content-Length")
                expected = int(expected) if expected and expected.isdigit() else None
                if expected is not None and expected > max_bytes:
                    raise _Permanent(f"too large: {expected} bytes")
                got = 0
                # urllib's timeout bounds each socket read, not the transfer: a server dripping a
                # byte at a time would never time out, so the whole body gets a deadline too
                deadline = time.monotonic() + 6 * timeout
                while True:
                    try:
                        block = resp.read(_CHUNK_BYTES)
                    except TimeoutError:
                        raise _Transient("timeout") from None
                    except http.client.IncompleteRead:
                        raise _Transient("incomplete download") from None
                    except (http.client.HTTPException, OSError) as e:
                        raise _Transient(f"connection error: {type(e).__name__}") from None
                    if not block:
                        break
                    got += len(block)
                    if got > max_bytes:
                        raise _Permanent(f"too large: over {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise _Transient("timeout")
                    _write_block(f, block)
                if expected is not None and got != expected:
                    raise _Transient("incomplete download")
            f.flush()
            os.fsync(f.fileno())
        problem = _image_problem(Path(tmp))
        if problem is not None:
            raise _Permanent(problem)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass
class _Outcome:
    status: str                 # "cached", "downloaded", "local", "missing"
    path: Path | None = None
    reason: str | None = None
    remembered: bool = False    # missing because of an earlier run's marker


def _fetch_one(url, cache_dir: Path, *, timeout, retries, backoff, retry_missing, max_bytes, user_agent) -> _Outcome:
    url = clean_url(url)
    if url is None:
        return _Outcome("missing", reason="no url")
    if not _is_remote(url):
        p = _local_path(url)
        if not p.is_file():
            return _Outcome("missing", reason="local file not found")
        problem = _image_problem(p)
        return _Outcome("local", p) if problem is None else _Outcome("missing", reason=problem)
    dest = cached_image_path(cache_dir, url)
    if dest.is_file():
        try:
            with Image.open(dest):
                return _Outcome("cached", dest)
        except Exception:          # damaged outside this code: fetch it again
            dest.unlink(missing_ok=True)
    marker = _missing_marker(cache_dir, url)
    if marker.is_file() and not retry_missing:
        try:
            reason = json.loads(marker.read_text()).get("reason", "missing earlier")
        except (OSError, ValueError):
            reason = "missing earlier"
        return _Outcome("missing", reason=reason, remembered=True)
    reason = "unknown"
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))      # exponential backoff: 1x, 2x, 4x ...
        try:
            _download(url, dest, timeout=timeout, max_bytes=max_bytes, user_agent=user_agent)
            marker.unlink(missing_ok=True)
            return _Outcome("downloaded", dest)
        except _Permanent as e:
            reason = str(e)
            break
        except _Transient as e:
            reason = str(e)
        except Exception as e:     # anything unforeseen about one URL: report it, keep going
            reason = f"error: {type(e).__name__}: {e}"
            break
    write_json_atomic(marker, {"url": url, "reason": reason, "attempts": attempt + 1,
                               "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return _Outcome("missing", reason=reason)


@dataclass
class FetchReport:
    """What :func:`fetch_images` did. ``missing_reasons`` maps record id -> reason (``"HTTP 404"``,
    ``"timeout"``, ``"incomplete download"``, ``"not an image: ..."``, ``"connection error: ..."``,
    ``"too large: ..."``, ``"no url"``, ``"local file not found"``)."""

    requested: int
    retrieved: int
    from_cache: int
    downloaded: int
    local: int
    remembered_missing: int                  # missing because an earlier run's marker said so
    missing_reasons: dict = field(default_factory=dict)

    @property
    def missing(self) -> int:
        return len(self.missing_reasons)

    def reason_counts(self) -> dict:
        """Missing records per kind of reason (the text before a colon), most common first."""
        return dict(Counter(r.split(":")[0] for r in self.missing_reasons.values()).most_common())

    def as_dict(self) -> dict:
        return {"requested": self.requested, "retrieved": self.retrieved, "missing": self.missing,
                "from_cache": self.from_cache, "downloaded": self.downloaded, "local": self.local,
                "remembered_missing": self.remembered_missing, "reason_counts": self.reason_counts()}

    def __str__(self) -> str:
        reasons = ", ".join(f"{k} x{v}" for k, v in self.reason_counts().items())
        return (f"requested {self.requested}, retrieved {self.retrieved} ({self.from_cache} cached, "
                f"{self.downloaded} downloaded, {self.local} local), missing {self.missing}"
                + (f" ({reasons})" if reasons else ""))


@dataclass
class FetchResult:
    """The retrieved records (input order, with ``path`` to each image file) and the report."""

    records: pd.DataFrame
    report: FetchReport

    @property
    def paths(self) -> list[Path]:
        return [Path(p) for p in self.records["path"]]

    def images(self) -> list[Image.Image]:
        """The retrieved images, decoded into memory as RGB (see :func:`load_image`)."""
        return [load_image(p) for p in self.paths]


def fetch_images(records, cache_dir: str | Path | None = None, timeout: float = 10.0, retries: int = 2,
                 max_workers: int = 8, *, backoff: float = 1.0, retry_missing: bool = False,
                 max_bytes: int = 50 * 2**20, user_agent: str = USER_AGENT, progress: bool = True) -> FetchResult:
    """Fetch the image of every record, through an on-disk cache keyed by the URL's sha256.

    Each http(s) URL is downloaded at most once: into a temporary file in the cache folder, fully
    decoded with Pillow, then moved into place with ``os.replace``, so an interrupted download
    never leaves a file that a later call takes for valid. A URL that times out, answers an HTTP
    error, breaks off, is too large, or returns something that is not a decodable image counts as
    *missing*, not as an error; transient failures (timeouts, dropped connections, 408/429/5xx)
    are retried ``retries`` times with backoff ``backoff * 2**k`` seconds. A missing URL leaves a
    small marker (``<key>.missing.json``) so that re-runs skip it; ``retry_missing=True`` tries
    again. Local paths (``url`` that is a file path or ``file://``) are used in place.

    Args:
        records: a records frame (or list of dicts) with unique ``id`` and a ``url`` column.
        cache_dir: the cache folder (default ``<$MEMPKG_DATA or ~/.cache/mempkg/data>/images``).
        timeout: seconds per socket operation (connect, each read); a whole body gets 6x this.
        max_workers: parallel downloads (threads: the work is waiting on the network).
    Returns:
        :class:`FetchResult`: the retrieved records in input order with a ``path`` column, and a
        :class:`FetchReport` (requested, retrieved, missing with reasons).
    """
    import pandas as pd  # optional (extra 'full'): the records table of the LAION-scale data

    df = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    require_columns(df, ("id", "url"), "The records given to fetch_images")
    if not df["id"].astype(str).is_unique:
        raise ValueError("fetch_images needs unique record ids (the report is keyed by id).")
    if timeout <= 0 or retries < 0 or max_workers < 1:
        raise ValueError(f"fetch_images needs timeout > 0, retries >= 0 and max_workers >= 1; got timeout={timeout}, "
                         f"retries={retries}, max_workers={max_workers}.")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_data_root() / "images"

    urls = [clean_url(u) for u in df["url"]]
    unique = list(dict.fromkeys(urls))          # a URL shared by two records is fetched once
    opts = dict(timeout=timeout, retries=retries, backoff=backoff, retry_missing=retry_missing,
                max_bytes=max_bytes, user_agent=user_agent)
    outcomes: dict = {}
    pool = ThreadPoolExecutor(max_workers=max_workers)
    try:
        futures = {pool.submit(_fetch_one, u, cache, **opts): u for u in unique}
        with progress_bar(total=len(futures), desc="fetching images", disable=not progress) as pbar:
            for fut in as_completed(futures):
                outcomes[futures[fut]] = fut.result()
                pbar.update(1)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)

    keep, paths, reasons = [], [], {}
    counts = Counter()
    for i, (rid, u) in enumerate(zip(df["id"].astype(str), urls)):
        o = outcomes[u]
        counts[o.status] += 1
        counts["remembered"] += o.remembered
        if o.status == "missing":
            reasons[rid] = o.reason
        else:
            keep.append(i)
            paths.append(str(o.path))
    out = df.iloc[keep].reset_index(drop=True).copy()
    out["path"] = paths
    report = FetchReport(requested=len(df), retrieved=len(keep), from_cache=counts["cached"],
                         downloaded=counts["downloaded"], local=counts["local"],
                         remembered_missing=counts["remembered"], missing_reasons=reasons)
    return FetchResult(out, report)


# -- preprocessing ----------------------------------------------------------------------------

def load_image(path: str | Path, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """An image file as RGB, decoded into memory (the file is closed). Transparent pixels are
    laid over ``background``: Tuxemon sprites are transparent, and dropping alpha would leave
    whatever colour the transparent pixels happen to store."""
    with Image.open(path) as im:
        im.load()
        return _to_rgb(im, background)


def _to_rgb(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, tuple(background) + (255,)), rgba).convert("RGB")
    return im.convert("RGB")


def center_crop_resize(images, size: int = 512, output: str = "tensor",
                       resample: Image.Resampling = Image.Resampling.BICUBIC,
                       background: tuple[int, int, int] = (255, 255, 255)):
    """Center-crop each image to a square (the shorter side) and resize it to ``size`` x ``size``.

    Args:
        images: PIL images or image file paths (or one of either).
        size: output side, 512 for Stable Diffusion v1 (latents 4 x 64 x 64).
        output: ``"tensor"`` or ``"pil"``.
        resample: Pillow filter (bicubic, antialiased when shrinking).
        background: colour under transparent pixels.
    Returns:
        ``"tensor"``: float32 ``[B, 3, size, size]`` in [-1, 1] (``v / 127.5 - 1`` of the 8-bit
        RGB values, the range SD's VAE expects); ``"pil"``: a list of B RGB images.
    """
    if output not in ("tensor", "pil"):
        raise ValueError(f"output must be 'tensor' or 'pil', got {output!r}.")
    if int(size) < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}.")
    if isinstance(images, (Image.Image, str, Path)):
        images = [images]
    out = []
    for im in images:
        im = load_image(im, background) if isinstance(im, (str, Path)) else _to_rgb(im, background)
        w, h = im.size
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        out.append(im.crop((left, top, left + s, top + s)).resize((int(size), int(size)), resample))
    if output == "pil":
        return out

    if not out:
        return torch.empty(0, 3, int(size), int(size))
    arr = np.stack([np.asarray(im, dtype=np.uint8) for im in out])          # [B, S, S, 3]
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()
