"""The command line: ``python -m mempkg score`` gives every image of a folder one memorization score.

    python -m mempkg score --model MODEL --images FOLDER --metric flipd|volume|cfgnorm|png --out scores.csv

* ``--model`` is a Hugging Face Hub id or a local folder in diffusers' layout, loaded with
  ``from_pretrained``: a Stable Diffusion pipeline (scored in VAE latent space,
  :class:`mempkg.stable_diffusion.StableDiffusion`) or an unconditional pixel-space DDPM pipeline
  (``unet/`` + ``scheduler/``, :class:`mempkg.models.DDPMScoreModel`); :func:`inspect_model` tells them
  apart from the folder's ``model_index.json`` and configs before any weight is read.
* The metrics are the book's estimators, called unchanged: FLIPD (:func:`mempkg.lid.flipd`), volume
  growth along the PF-ODE (:func:`mempkg.volume.volume_growth`), the real-image CFG norm
  (:func:`mempkg.guidance.cfg_norm`) and the PNG size (:func:`mempkg.complexity.png_size`).
* Random draws (FLIPD's probes, volume growth's axes) are seeded per image from ``--seed`` and the
  image's file name (:func:`image_seed`), so an image's score does not depend on the other images in
  the folder, the batch size, or whether the run was resumed.
* The output CSV (:class:`ScoreTable`) is appended one batch at a time with complete rows, flushed and
  fsynced, so an interrupted run loses at most the batch in flight; a re-run with the same settings
  scores only the images missing from it; one with other settings refuses to mix them. When a run
  ends the table is rewritten once, atomically, sorted by file name, and the run's resolved options
  go to ``<out>.json`` beside it.

Exit codes: 0 success, 1 a problem with the inputs or the run (one plain message; ``--debug`` shows the
traceback), 2 a usage error (argparse), 130 interrupted.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

METRICS = ("flipd", "volume", "cfgnorm", "png")
COLUMN = {"flipd": "flipd", "volume": "log_volume_growth", "cfgnorm": "cfg_norm", "png": "png_size"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
SD_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
DTYPES = ("auto", "float32", "float16", "bfloat16")
VOLUME_TIMES = (1e-3, 1.0)       # the ODE's t_start and t_end, as in the volume-growth chapter
CFG_T_START = 1e-4               # the earliest start of cfg_norm's Euler steps (continuous schedules; a discrete
                                 # schedule starts at its first timestep: mempkg.guidance.ode_start_time)
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UserError(Exception):
    """A problem the user can fix (a bad folder, file, option or model): printed as one message, exit code 1."""


def note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- options --------------------------------------------------------------------------------------------

def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s!r}") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s!r}")
    return v


def _time(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a time in (0, 1], got {s!r}") from None
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"times live in (0, 1] (t = 1 is pure noise), got {s!r}")
    return v


def _probes(s: str):
    if s.strip().lower() == "exact":
        return None
    try:
        return _positive_int(s)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive number of probes or 'exact', got {s!r}") from None


EPILOG = """\
models:
  --model takes a Hugging Face Hub id or a local folder in diffusers' layout; both are loaded with
  from_pretrained (a hub id from the local cache when offline). Two kinds are recognised from the
  folder's model_index.json and subfolders:
    Stable Diffusion  unet/ vae/ text_encoder/ tokenizer/ scheduler/ (StableDiffusionPipeline.save_pretrained).
                      Images are VAE-encoded (posterior mean x scaling factor); scores live in latent space.
                      flipd and volume are unconditional (empty prompt) unless --captions is given.
    pixel-space DDPM  unet/ (UNet2DModel, eps-prediction) + scheduler/ (DDPMPipeline.save_pretrained).
                      Unconditional; images in [-1, 1] as diffusers' pipelines use.
  Either way the score is s(x, t) = -eps(x, n(t)) / sigma(t) on the scheduler's own alphas_cumprod,
  training timestep n at time t = (n + 1) / N (mempkg.stable_diffusion.DiscreteVPSchedule).

images:
  Every .png .jpg .jpeg .webp .bmp file of --images (sorted by name; subfolders with --recursive),
  converted to RGB (transparency over white; grey for a 1-channel model), centre-cropped to a square
  and resized (bicubic) to the model's resolution or --image-size. --metric png measures the file's
  own pixels (as RGB) unless --image-size is given.

output (--out, CSV, one row per image, sorted by file):
  file               the image's path relative to --images
  flipd              FLIPD(x, t0) = D + sigma(t0)^2 [tr grad s + |s|^2] at psi(t0) x (Kamkari et al. 2024),
                     D the data dimension; low values point at memorization (Ross, Kamkari et al. 2024)
  log_volume_growth  L, the summed log-stretches of --axes axes of radius --radius carried by --steps
                     Euler steps of the PF-ODE from t = 0.001 to 1 (Hasegawa & Yasuda 2025; they report
                     e^L); large values point at memorization
  cfg_norm           |eps(x_t0, t0 | caption) - eps(x_t0, t0 | "")| after --cfg-steps Euler steps of the
                     conditional PF-ODE to --cfg-t0 (Ross, Kamkari et al. 2024, App. A.1); large = memorized
  png_size           bytes of the image as a PNG at zlib level 9 (image complexity, a control)
  error              empty, or why the image was skipped (--on-error skip)
  caption            the caption used, when --captions is given
  then the settings that change the numbers (metric, model, image_size, dtype, ...), repeated on
  every row. <out>.json records the run's resolved options, the model and versions.

resuming:
  Rows are appended after every batch (complete rows, flushed and fsynced). Run the same command
  again after an interruption and only the images missing from --out are scored (and rows with an
  error retried). An image's random draws are seeded by --seed and its file name, so the final file
  equals an uninterrupted run's (up to float rounding where batches were formed differently).
  Other settings (or other captions) with the same --out are refused; --overwrite starts afresh.

exit codes: 0 success, 1 a problem with the inputs or the run, 2 a usage error, 130 interrupted.

examples:
  python -m mempkg score --model stable-diffusion-v1-5/stable-diffusion-v1-5 --images laion/ \\
      --metric flipd --captions captions.csv --t0 0.1 --out flipd.csv
  python -m mempkg score --model ./my_ddpm --images train/ --metric volume --axes 10 --steps 100 --out vol.csv
  python -m mempkg score --model ./sd_folder --images laion/ --metric cfgnorm --captions captions.csv --out cfg.csv
  python -m mempkg score --images laion/ --metric png --image-size 512 --out png.csv
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mempkg", description="Memorization scores of images under a diffusion model "
        "(the memorization book's estimators as a command line).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("score", help="score every image of a folder with one metric and write a CSV",
                       description="Score every image of a folder with one memorization metric under a diffusers "
                                   "model, resumably, into a CSV.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)

    io_ = p.add_argument_group("what to score")
    io_.add_argument("--model", metavar="ID_OR_FOLDER",
                     help="Hugging Face Hub id or local folder of a diffusers pipeline (see 'models' below); "
                          "required for every metric except png")
    io_.add_argument("--images", metavar="FOLDER", required=True,
                     help="folder of images (.png .jpg .jpeg .webp .bmp); required")
    io_.add_argument("--metric", choices=METRICS, required=True,
                     help="flipd: FLIPD local intrinsic dimension; volume: log volume growth along the PF-ODE; "
                          "cfgnorm: real-image CFG norm (needs --captions and a Stable Diffusion model); "
                          "png: PNG size in bytes (no model); required")
    io_.add_argument("--captions", metavar="CSV",
                     help="CSV with a header and columns file,caption (file relative to --images), one row per "
                          "image; makes flipd and volume conditional on the caption, required by cfgnorm "
                          "(default: none, unconditional)")
    io_.add_argument("--out", metavar="CSV", required=True,
                     help="output CSV, appended batch by batch and resumed on a re-run; required")
    io_.add_argument("--image-size", type=_positive_int, metavar="PIXELS",
                     help="side of the square the images are centre-cropped and resized to (default: the "
                          "model's native resolution, e.g. 512 for SD v1.5; for png the original pixels)")
    io_.add_argument("--recursive", action="store_true",
                     help="also score images in subfolders of --images (default: only the folder itself)")
    io_.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                     help="an unreadable image: 'fail' stops with a message naming it (checked before the "
                          "model loads; rows already written are kept), 'skip' scores the rest and records it "
                          "with an empty score and the reason in the error column (retried on a re-run) "
                          "(default: fail)")

    fl = p.add_argument_group("FLIPD (--metric flipd)")
    fl.add_argument("--t0", type=_time, default=0.1, metavar="T",
                    help="time t0 in (0, 1] at which the score is read (default: 0.1, Ross, Kamkari et al.'s "
                         "choice for Stable Diffusion)")
    fl.add_argument("--probes", type=_probes, default=1, metavar="K|exact",
                    help="Hutchinson probes per image for the trace of the score's Jacobian, or 'exact' for "
                         "the exact trace (D model passes per image: small models only) (default: 1, as Ross, "
                         "Kamkari et al.)")

    vo = p.add_argument_group("volume growth (--metric volume)")
    vo.add_argument("--axes", type=_positive_int, default=100, metavar="N",
                    help="number of orthonormal axes N around each image, 1 <= N <= D (default: 100, "
                         "Hasegawa & Yasuda's)")
    vo.add_argument("--steps", type=_positive_int, default=1000, metavar="N",
                    help="Euler steps of the PF-ODE from t = 0.001 to 1; each costs N + 1 model passes per "
                         "image (default: 1000, Hasegawa & Yasuda's)")
    vo.add_argument("--radius", type=_positive_float, default=0.05, metavar="R",
                    help="radius r of the sphere whose axes are pushed by finite differences, in data units "
                         "(latent units for Stable Diffusion) (default: 0.05)")

    cf = p.add_argument_group("CFG norm (--metric cfgnorm)")
    cf.add_argument("--cfg-t0", type=_time, default=0.01, metavar="T",
                    help=f"time the image is carried to before the CFG vector is read, in ({CFG_T_START:g}, 1] "
                         "(default: 0.01, Ross, Kamkari et al.)")
    cf.add_argument("--cfg-steps", type=_positive_int, default=3, metavar="N",
                    help="Euler steps of the conditional PF-ODE up to --cfg-t0 (default: 3, Ross, Kamkari et al.)")

    run = p.add_argument_group("running")
    run.add_argument("--batch-size", type=_positive_int, default=8, metavar="N",
                     help="images loaded, scored and appended to --out together (default: 8)")
    run.add_argument("--max-rows", type=_positive_int, default=64, metavar="N",
                     help="most inputs (image x probe, image x axis) sent through the network in one call; "
                          "lower it if memory runs out (default: 64)")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                     help="where the model runs; auto: cuda when a GPU is visible (default: auto)")
    run.add_argument("--dtype", choices=DTYPES, default="auto",
                     help="the network's float type; auto: float16 for Stable Diffusion on CUDA (its released "
                          "weights), float32 otherwise (default: auto)")
    run.add_argument("--seed", type=int, default=0, metavar="N",
                     help="seeds FLIPD's probes and volume growth's axes, per image together with its file name; "
                          "the same seed gives the same numbers (default: 0)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an existing --out made with other settings instead of refusing "
                          "(default: resume or refuse)")
    run.add_argument("--debug", action="store_true", help="show the full traceback of an error (default: off)")
    parser.score_parser = p
    return parser


def _check_args(parser: argparse.ArgumentParser, args) -> None:
    """Option combinations that are wrong whatever the files: usage errors (exit code 2)."""
    sp = parser.score_parser                  # so that errors read 'usage: python -m mempkg score ...'
    if args.metric != "png" and not args.model:
        sp.error(f"--metric {args.metric} needs --model (a diffusers model id or folder); only png needs none")
    if args.metric == "cfgnorm" and not args.captions:
        sp.error("--metric cfgnorm needs --captions: the CFG norm compares the model with and without each "
                 "image's caption")
    if args.metric == "cfgnorm" and not args.cfg_t0 > CFG_T_START:
        sp.error(f"--cfg-t0 must exceed {CFG_T_START:g}, where the Euler steps start")


# -- images ---------------------------------------------------------------------------------------------

def list_images(folder, recursive: bool = False) -> list[tuple[str, Path]]:
    """(name relative to ``folder`` with '/', path) of every image file, sorted by name; a bad folder fails early."""
    root = Path(folder).expanduser()
    if not root.exists():
        raise UserError(f"--images {folder}: no such folder.")
    if not root.is_dir():
        raise UserError(f"--images {folder} is a file, not a folder; give the folder that holds the images.")
    walk = root.rglob("*") if recursive else root.iterdir()
    files, others = [], 0
    for p in walk:
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES:
            files.append((rel.as_posix(), p))
        else:
            others += 1
    if not files:
        hint = ""
        if not recursive and any(q.is_dir() and any(r.suffix.lower() in IMAGE_SUFFIXES for r in q.rglob("*"))
                                 for q in root.iterdir()):
            hint = " Its subfolders hold images: pass --recursive."
        raise UserError(f"--images {folder} holds no image files (looked for {' '.join(IMAGE_SUFFIXES)}; "
                        f"found {others} other file(s)).{hint}")
    return sorted(files)


def check_readable(path: Path) -> Optional[str]:
    """None if Pillow identifies the file as an image (it reads the header only), else why not."""
    from PIL import Image

    try:
        with Image.open(path):
            pass
    except Exception as e:          # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError...
        return _reason(e)
    return None


def _reason(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())


def load_pixels(path: Path, size: Optional[int], channels: int = 3):
    """uint8 ``[H, W, C]`` pixels of an image file: RGB (transparency laid over white) or grey for C = 1,
    centre-cropped and resized to ``size`` x ``size`` as :func:`mempkg.laion.center_crop_resize` does
    (``size=None``: the file's own pixels)."""
    import numpy as np

    from .laion import center_crop_resize, load_image

    im = load_image(path)
    if size is not None:
        im = center_crop_resize([im], int(size), output="pil")[0]
    if channels == 1:
        im = im.convert("L")
    arr = np.asarray(im, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def read_captions(path, names: list[str]) -> dict[str, str]:
    """{file: caption} for every image name from a CSV with columns file,caption (whitespace runs in a
    caption, newlines included, become one space, as CLIP's tokenizer does anyway)."""
    import pandas as pd

    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"--captions {path}: no such file.")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    except Exception as e:
        raise UserError(f"--captions {path} cannot be read as CSV ({_reason(e)}); it needs a header line "
                        "'file,caption' and one row per image.") from None
    cols = {str(c).strip().lower(): c for c in df.columns}
    missing = [c for c in ("file", "caption") if c not in cols]
    if missing:
        raise UserError(f"--captions {path} lacks the column(s) {', '.join(missing)} (it has: "
                        f"{', '.join(map(str, df.columns)) or 'nothing'}); it needs a header line 'file,caption' "
                        "and one row per image.")
    files = [f.strip() for f in df[cols["file"]]]
    caps = [" ".join(str(c).split()) for c in df[cols["caption"]]]
    seen, dup = set(), []
    for f in files:
        if f in seen:
            dup.append(f)
        seen.add(f)
    if dup:
        raise UserError(f"--captions {path} gives {len(set(dup))} file(s) more than one caption "
                        f"(e.g. {dup[0]!r}); keep one row per image.")
    table = dict(zip(files, caps))
    lacking = [n for n in names if n not in table]
    if lacking:
        shown = ", ".join(lacking[:3]) + (", ..." if len(lacking) > 3 else "")
        raise UserError(f"{len(lacking)} of {len(names)} images have no caption in --captions {path} ({shown}); "
                        "its file column must name each image as it is relative to --images.")
    extra = len(set(table) - set(names))
    if extra:
        note(f"note: {extra} row(s) of {path} name files that are not among the images; they are not used.")
    return {n: table[n] for n in names}


def image_seed(seed: int, name: str) -> int:
    """The seed of one image's random draws: 63 bits of sha256("<seed>/<file name>")."""
    return int.from_bytes(hashlib.sha256(f"{int(seed)}/{name}".encode()).digest()[:8], "little") >> 1


# -- models ---------------------------------------------------------------------------------------------

@dataclass
class ModelInfo:
    """What a model folder or hub id holds, read from its JSON configs only (no weights)."""

    kind: str                  # "stable_diffusion" or "ddpm"
    source: str                # absolute folder path or hub id
    local: bool
    native_size: int           # image side the model was made for (pixels)
    channels: int              # image channels it reads (3 for SD)
    latent_factor: int         # pixels per latent cell (SD's VAE: 8) or 1
    latent_channels: int
    levels: int                # UNet resolution levels: the latent side must be a multiple of 2^(levels - 1)
    configs: dict = field(default_factory=dict, repr=False)

    def data_shape(self, size: int) -> tuple[int, int, int]:
        s = size // self.latent_factor
        return (self.latent_channels, s, s)

    def check_size(self, size: int) -> None:
        s, f = size, self.latent_factor
        m = 2 ** (self.levels - 1)
        if s % f or (s // f) % m:
            raise UserError(f"--image-size {size} does not fit this model: the side must be a multiple of {f * m} "
                            f"({'the VAE divides it by ' + str(f) + ', then ' if f > 1 else ''}the UNet halves it "
                            f"{self.levels - 1} times); its native size is {self.native_size}.")


def _is_local(model_id: str) -> bool:
    from .stable_diffusion import _is_local as is_local
    return is_local(model_id)


def _hub_problem(model_id: str, filename: str, e: BaseException) -> UserError:
    names = {c.__name__ for c in type(e).__mro__}
    if "LocalEntryNotFoundError" in names or "ConnectionError" in names or "OfflineModeIsEnabled" in names:
        return UserError(
            f"--model {model_id}: {filename} is not in the local Hugging Face cache and the Hub cannot be reached "
            "(offline, or HF_HUB_OFFLINE=1). Fill the cache once with internet (`hf download "
            f"{model_id}`, or run this command online; it lands in ~/.cache/huggingface), or pass a local folder "
            "(pipeline.save_pretrained(folder)).")
    if "RepositoryNotFoundError" in names or "GatedRepoError" in names:
        return UserError(f"--model {model_id}: no such model on the Hugging Face Hub, or it is private or gated "
                         "(log in with `hf auth login`); a local folder must exist.")
    if "HFValidationError" in names:
        return UserError(f"--model {model_id} is neither an existing folder nor a valid Hub id ('org/name').")
    if "EntryNotFoundError" in names or "RemoteEntryNotFoundError" in names:
        return UserError(f"--model {model_id} has no {filename}: it is not a diffusers pipeline folder "
                         "(see 'models' in --help).")
    return UserError(f"--model {model_id}: could not fetch {filename} from the Hugging Face Hub ({_reason(e)}).")


def _read_config(model_id: str, local: bool, filename: str, required: bool = True) -> Optional[dict]:
    """A JSON file of a model folder or hub repo (from the local cache when offline); a local file that
    is absent gives None unless ``required``."""
    if local:
        path = Path(model_id).expanduser() / filename
        if not path.is_file():
            if required:
                raise UserError(f"--model {model_id} lacks {filename}; was it written by save_pretrained?")
            return None
    else:
        from huggingface_hub import hf_hub_download
        try:
            path = Path(hf_hub_download(model_id, filename))
        except Exception as e:
            raise _hub_problem(model_id, filename, e) from None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"--model {model_id}: {filename} is not readable JSON ({_reason(e)}).") from None


def inspect_model(model_id: str) -> ModelInfo:
    """Tell a Stable Diffusion pipeline from a pixel-space DDPM pipeline by its ``model_index.json`` and
    configs, and say what is missing when it is neither. Reads no weights."""
    local = _is_local(model_id)
    if local:
        folder = Path(model_id).expanduser()
        if not folder.exists():
            raise UserError(f"--model {model_id}: no such folder (a local path must exist; a hub id looks like "
                            "'org/name').")
        if not folder.is_dir():
            raise UserError(f"--model {model_id} is a file; give the pipeline's folder (the one holding "
                            "model_index.json, unet/, scheduler/, ...).")
        source = str(folder.resolve())
    else:
        source = model_id
    index = _read_config(source, local, "model_index.json", required=not local)   # a local folder may lack it
    if index is not None:
        components = {k for k, v in index.items() if not k.startswith("_") and isinstance(v, list) and v[0]}
        if local:
            components = {c for c in components if (Path(source) / c).is_dir()}
    else:
        components = {p.name for p in Path(source).iterdir() if p.is_dir()}
    pipeline = (index or {}).get("_class_name", "")
    what = f"--model {model_id}" + (f" (a {pipeline})" if pipeline else "")
    if "unet" not in components:
        raise UserError(f"{what} has no unet/ subfolder. Expected a Stable Diffusion pipeline "
                        f"({', '.join(SD_COMPONENTS)}) or a pixel-space DDPM pipeline (unet/ with a UNet2DModel "
                        "and scheduler/), as save_pretrained writes them.")
    unet = _read_config(source, local, "unet/config.json")
    unet_class = unet.get("_class_name", "")
    sd_like = unet_class == "UNet2DConditionModel" or {"vae", "text_encoder"} & components
    if sd_like:
        missing = [c for c in SD_COMPONENTS if c not in components]
        if missing:
            lacks = ", ".join(m + "/" for m in missing)
            raise UserError(f"{what} looks like a Stable Diffusion pipeline but lacks {lacks}: it needs "
                            f"{', '.join(SD_COMPONENTS)} (StableDiffusionPipeline.save_pretrained writes them).")
        vae = _read_config(source, local, "vae/config.json")
        f = 2 ** (len(vae.get("block_out_channels", [0] * 4)) - 1)
        channels, latent_channels, kind = 3, int(unet.get("in_channels", 4)), "stable_diffusion"
    elif unet_class == "UNet2DModel":
        if "scheduler" not in components:
            raise UserError(f"{what} has a UNet2DModel but no scheduler/: the noise schedule it was trained with "
                            "(alphas_cumprod) comes from there; save the pipeline (unet + scheduler), not the UNet "
                            "alone.")
        f, channels, kind = 1, int(unet.get("in_channels", 3)), "ddpm"
        latent_channels = channels
        if channels not in (1, 3):
            raise UserError(f"{what}: its UNet2DModel reads {channels}-channel images; images can be given as "
                            "grey (1) or RGB (3) only.")
    else:
        raise UserError(f"{what}: its unet is a {unet_class or 'model of unknown class'}; this command scores "
                        "UNet2DConditionModel (Stable Diffusion) and UNet2DModel (pixel-space DDPM) networks.")
    size = unet.get("sample_size", 64)
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            raise UserError(f"{what}: its UNet works on non-square {size[0]}x{size[1]} inputs; this command "
                            "centre-crops images to squares.")
        size = size[0]
    return ModelInfo(kind=kind, source=source, local=local, native_size=int(size) * f, channels=channels,
                     latent_factor=f, latent_channels=latent_channels,
                     levels=len(unet.get("block_out_channels", [0])), configs={"unet": unet, "index": index})


def resolve_dtype(name: str, info: ModelInfo, device: str):
    import torch

    if name == "auto":
        return torch.float16 if info.kind == "stable_diffusion" and str(device).startswith("cuda") else torch.float32
    return getattr(torch, name)


def quiet_libraries() -> None:
    """Keep diffusers' and transformers' loading chatter (weight bars, advice to install accelerate) off the
    terminal: the command prints its own progress."""
    import importlib

    for name in ("diffusers.utils.logging", "transformers.utils.logging"):
        try:
            logging = importlib.import_module(name)
            logging.set_verbosity_error()
            logging.disable_progress_bar()
        except (ImportError, AttributeError):
            pass


def load_model(info: ModelInfo, device: str, dtype, size: int):
    """The score model of an inspected folder or hub id, on ``device`` in ``dtype``, for images of side ``size``."""
    if info.kind == "stable_diffusion":
        from .stable_diffusion import load_stable_diffusion

        try:
            model = load_stable_diffusion(info.source, device=device, dtype=dtype)
        except (OSError, ValueError) as e:
            raise UserError(f"--model {info.source}: could not load the Stable Diffusion pipeline "
                            f"({_reason(e)}).") from e
        prediction = getattr(model.scheduler.config, "prediction_type", "epsilon")
        if prediction != "epsilon":
            raise UserError(f"--model {info.source} predicts {prediction!r} (e.g. SD 2's v-prediction); the scores "
                            "here read an eps-prediction network.")
        model.data_shape = info.data_shape(size)
        return model

    import diffusers
    from diffusers import DDPMScheduler, UNet2DModel

    from .models import DDPMScoreModel

    try:
        unet = UNet2DModel.from_pretrained(info.source, subfolder="unet", torch_dtype=dtype)
        sched_cfg = DDPMScheduler.load_config(info.source, subfolder="scheduler")
        scheduler = getattr(diffusers, sched_cfg["_class_name"]).from_config(sched_cfg)
    except (OSError, ValueError, KeyError, AttributeError) as e:
        raise UserError(f"--model {info.source}: could not load the UNet and scheduler ({_reason(e)}).") from e
    try:
        model = DDPMScoreModel(unet, scheduler)
    except (TypeError, ValueError) as e:
        raise UserError(f"--model {info.source}: {e}") from None
    model.unet.to(device)
    model.data_shape = info.data_shape(size)
    return model


# -- the table ------------------------------------------------------------------------------------------

def _fmt(v) -> str:
    """A CSV cell: floats at full precision (repr), booleans as true/false, None empty."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


class ScoreTable:
    """The output CSV: a header, then one row per image, appended a batch at a time.

    Every append writes complete rows in one call, then flushes and fsyncs; a run killed mid-write
    leaves at most a partial last line, which the next run drops (and says so). Rows carry the run's
    settings; opening a table whose rows were made with other settings raises :class:`UserError` unless
    ``overwrite``. :meth:`finish` rewrites the table atomically, sorted by file, one row per file.
    """

    def __init__(self, path, columns: list[str], settings: dict[str, str], overwrite: bool = False):
        self.path = Path(path).expanduser()
        self.columns, self.settings = list(columns), dict(settings)
        self.rows: dict[str, dict[str, str]] = {}
        if self.path.is_dir():
            raise UserError(f"--out {path} is a folder; give a file name such as {Path(path) / 'scores.csv'}.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.created = False                     # the file is (re)written at the first append, not before
        if self.path.exists() and self.path.stat().st_size > 0 and not overwrite:
            self._load()
        elif self.path.exists() and overwrite:
            note(f"note: --overwrite: {self.path} will be replaced.")

    def _load(self) -> None:
        text = self.path.read_text(encoding="utf-8", errors="replace")
        repaired = not text.endswith("\n")
        if repaired:
            cut = text.rfind("\n") + 1
            note(f"note: {self.path} ends in an incomplete row (an interrupted write); it is dropped.")
            text = text[:cut]
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or rows[0] != self.columns:
            have = ", ".join(rows[0]) if rows else "nothing"
            raise UserError(f"--out {self.path} already exists with other columns ({have}) than this run writes "
                            f"({', '.join(self.columns)}): it holds another metric, or was made with(out) "
                            "captions. Write to another --out, or pass --overwrite to replace it.")
        diffs: dict[str, set] = {}
        for r in rows[1:]:
            if len(r) != len(self.columns):
                continue                         # cannot happen with complete rows; never trusted
            row = dict(zip(self.columns, r))
            for k, v in self.settings.items():
                if row[k] != v:
                    diffs.setdefault(k, set()).add(row[k])
            self.rows[row["file"]] = row
        if diffs:
            said = "; ".join(f"{k}: {', '.join(sorted(v))} there, {self.settings[k]} now" for k, v in diffs.items())
            raise UserError(f"--out {self.path} holds scores made with other settings ({said}). Re-run with its "
                            "settings to resume it, write to another --out, or pass --overwrite to replace it.")
        self.created = True
        if repaired or len(self.rows) != len(rows) - 1:
            self._rewrite()                      # drop the partial line and any repeated file now

    def done(self) -> set[str]:
        """Files with a score (rows with an error do not count: they are retried)."""
        return {f for f, r in self.rows.items() if not r.get("error")}

    def append(self, rows: list[dict]) -> None:
        if not self.created:
            self._rewrite()
        cells = [[_fmt(r.get(c, self.settings.get(c))) for c in self.columns] for r in rows]
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            f.write(_csv_text(cells))
            f.flush()
            os.fsync(f.fileno())
        for c in cells:
            self.rows[c[0]] = dict(zip(self.columns, c))

    def _rewrite(self) -> None:
        from .cache import _atomic_write

        body = [self.columns] + [[self.rows[f][c] for c in self.columns] for f in sorted(self.rows)]
        _atomic_write(self.path, lambda f: f.write(_csv_text(body)), mode="w")
        self.created = True

    finish = _rewrite


# -- scoring --------------------------------------------------------------------------------------------

def _settings(args, info: Optional[ModelInfo], size: Optional[int], dtype, conditional: bool) -> dict:
    """The settings that change the numbers, as CSV cells; every row repeats them."""
    s = {"metric": args.metric}
    if args.metric == "png":
        s["image_size"] = size if size is not None else "original"
        return {k: _fmt(v) for k, v in s.items()}
    s.update(model=info.source, image_size=size, dtype=str(dtype).replace("torch.", ""))
    if args.metric == "flipd":
        s.update(t0=args.t0, probes="exact" if args.probes is None else args.probes, seed=args.seed,
                 conditional=conditional)
    elif args.metric == "volume":
        s.update(axes=args.axes, steps=args.steps, radius=args.radius, t_start=VOLUME_TIMES[0],
                 t_end=VOLUME_TIMES[1], seed=args.seed, conditional=conditional)
    else:
        s.update(cfg_t0=args.cfg_t0, cfg_steps=args.cfg_steps, cfg_t_start="first timestep")
    return {k: _fmt(v) for k, v in s.items()}


def _score_batch(args, model, pixels, names: list[str], captions: Optional[list[str]]):
    """Scores of one batch of uint8 ``[H, W, C]`` images -> list of floats (the model path)."""
    import numpy as np
    import torch

    from .guidance import cfg_norm
    from .lid import flipd
    from .volume import volume_growth

    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    if hasattr(model, "encode_images"):                           # Stable Diffusion: score VAE latents
        data = model.encode_images(x, max_batch=args.batch_size)
        cond = model.encode_prompts(captions) if captions is not None else None
    else:
        data, cond = x.to(model.device), None
    seeds = [image_seed(args.seed, n) for n in names]
    if args.metric == "flipd":
        out = flipd(model, data, args.t0, args.probes, cond=cond, seed=seeds, max_batch=args.max_rows)
    elif args.metric == "volume":
        out = volume_growth(model, data, n_axes=args.axes, radius=args.radius, n_steps=args.steps,
                            t_start=VOLUME_TIMES[0], t_end=VOLUME_TIMES[1], method="finite", seed=seeds,
                            cond=cond, max_batch=args.max_rows)[:, -1]
    else:
        out = cfg_norm(model, data, cond, t0=args.cfg_t0, n_steps=args.cfg_steps, max_batch=args.max_rows)
    return [float(v) for v in out]


@dataclass
class Job:
    """A ``score`` run's inputs, resolved and checked before any weight is read."""

    names: list[str]                      # images, relative to --images, sorted
    paths: dict[str, Path]
    captions: Optional[dict[str, str]]    # None: unconditional
    info: Optional[ModelInfo]             # None for png
    device: Optional[str] = None
    dtype: object = None
    size: Optional[int] = None            # image side; None: the files' own pixels (png only)


def prepare(args) -> Job:
    """List the images, read the captions, inspect the model and check that the options fit it."""
    images = list_images(args.images, args.recursive)
    names = [n for n, _ in images]
    uses_captions = args.metric != "png" and args.captions is not None
    if args.captions and not uses_captions:
        note("note: --metric png does not use --captions.")
    if args.metric == "png" and args.model:
        note("note: --metric png reads only the images; --model is not loaded.")
    job = Job(names, dict(images), read_captions(args.captions, names) if uses_captions else None, None,
              size=args.image_size)
    if args.metric == "png":
        return job
    info = job.info = inspect_model(args.model)
    if info.kind != "stable_diffusion":
        if args.metric == "cfgnorm":
            raise UserError(f"--metric cfgnorm needs a text-conditional (Stable Diffusion) model; --model "
                            f"{args.model} is an unconditional pixel-space model.")
        if job.captions is not None:
            raise UserError(f"--captions: --model {args.model} is an unconditional pixel-space model; captions "
                            "apply to Stable Diffusion pipelines only. Leave out --captions.")
    job.size = job.size or info.native_size
    info.check_size(job.size)
    shape = info.data_shape(job.size)
    if args.metric == "volume" and args.axes > shape[0] * shape[1] * shape[2]:
        raise UserError(f"--axes {args.axes} exceeds the data dimension D = {shape[0] * shape[1] * shape[2]} "
                        f"({'x'.join(map(str, shape))}): at most D axes can be orthonormal.")
    from .profiles import resolve_device

    try:
        job.device = resolve_device(args.device)
    except RuntimeError:
        raise UserError("--device cuda was asked for, but torch sees no CUDA GPU; use --device cpu or auto.") from None
    job.dtype = resolve_dtype(args.dtype, info, job.device)
    return job


def score_images(args, job: Job, table: ScoreTable, todo: list[str], bad: dict[str, str], model) -> dict:
    """Score ``todo`` a batch at a time, appending each batch's rows to ``table``; returns counts."""
    from .complexity import png_size
    from .progress import bar

    column, caps = COLUMN[args.metric], job.captions
    counts = {"scored": 0, "unreadable": 0, "non_finite": 0}
    with bar(total=len(todo), desc=args.metric, disable=not todo) as pbar:
        for start in range(0, len(todo), args.batch_size):
            batch = todo[start:start + args.batch_size]
            rows, ok, pixels = [], [], []
            for n in batch:
                reason = bad.get(n)
                if reason is None:
                    try:
                        pixels.append(load_pixels(job.paths[n], job.size, job.info.channels if job.info else 3))
                        ok.append(n)
                        continue
                    except Exception as e:          # a body that fails to decode (truncated, corrupt)
                        reason = _reason(e)
                if args.on_error == "fail":
                    raise UserError(f"--images: {n} cannot be read as an image ({reason}). Fix or remove it, or "
                                    "pass --on-error skip; the images scored so far are kept in --out.")
                rows.append({"file": n, column: None, "error": f"unreadable image: {reason}"})
            if ok and args.metric == "png":
                values = [int(png_size(p[None])[0]) for p in pixels]
            elif ok:
                values = _score_batch(args, model, pixels, ok, [caps[n] for n in ok] if caps is not None else None)
            else:
                values = []
            for n, v in zip(ok, values):
                counts["non_finite"] += not math.isfinite(v)
                rows.append({"file": n, column: v, "error": None})
            for r in rows:
                r["caption"] = caps[r["file"]] if caps is not None else None
            table.append(sorted(rows, key=lambda r: r["file"]))
            counts["scored"] += len(ok)
            counts["unreadable"] += len(batch) - len(ok)
            pbar.update(len(batch))
    return counts


def run_score(args) -> int:
    """The ``score`` command (options already checked by :func:`_check_args`)."""
    t_begin = time.perf_counter()
    job = prepare(args)
    settings = _settings(args, job.info, job.size, job.dtype, job.captions is not None)
    columns = (["file", COLUMN[args.metric], "error"] + (["caption"] if job.captions is not None else [])
               + list(settings))
    table = ScoreTable(args.out, columns, settings, overwrite=args.overwrite)
    done = table.done() & set(job.names)
    if job.captions is not None:
        changed = sorted(n for n in done if table.rows[n]["caption"] != job.captions[n])
        if changed:
            raise UserError(f"--captions gives {len(changed)} image(s) another caption than the one they were scored "
                            f"with in {table.path} (e.g. {changed[0]}: {table.rows[changed[0]]['caption']!r} there, "
                            f"{job.captions[changed[0]]!r} now). Write to another --out, or pass --overwrite.")
    todo = [n for n in job.names if n not in done]
    if done:
        note(f"Resuming {table.path}: {len(done)} of {len(job.names)} images already scored, skipped; "
             f"scoring the other {len(todo)}.")
    stale = len(set(table.rows) - set(job.names))
    if stale:
        note(f"note: {table.path} holds {stale} row(s) for files no longer in --images; they are kept.")

    # files Pillow cannot even identify, found before the model loads (a truncated body shows when decoded)
    bad = {n: r for n in todo if (r := check_readable(job.paths[n])) is not None}
    if bad and args.on_error == "fail":
        shown = "; ".join(f"{n} ({r})" for n, r in list(bad.items())[:3]) + ("; ..." if len(bad) > 3 else "")
        raise UserError(f"{len(bad)} of {len(job.names)} files in --images cannot be read as images: {shown}. Fix "
                        "or remove them, or pass --on-error skip to score the rest and record these.")

    model = None
    if todo and job.info is not None:
        kind = {"stable_diffusion": "Stable Diffusion", "ddpm": "pixel-space DDPM"}[job.info.kind]
        note(f"Loading the {kind} model {job.info.source} on {job.device} ({str(job.dtype)[6:]}) ...")
        if not args.debug:
            quiet_libraries()
        model = load_model(job.info, job.device, job.dtype, job.size)
    t_score = time.perf_counter()
    counts = score_images(args, job, table, todo, bad, model)
    table.finish()
    seconds = time.perf_counter() - t_begin

    from .cache import write_json_atomic

    record = {"command": "python -m mempkg " + shlex.join(args._argv), "settings": settings,
              "options": {k: v for k, v in vars(args).items() if not k.startswith("_")},
              "images": dict(folder=str(Path(args.images).expanduser().resolve()), n=len(job.names),
                             already_scored=len(done), **counts),
              "seconds": round(seconds, 3), "scoring_seconds": round(time.perf_counter() - t_score, 3),
              "versions": _versions()}
    if job.info is not None:
        record["model"] = {"kind": job.info.kind, "source": job.info.source, "device": str(job.device),
                           "data_shape": list(job.info.data_shape(job.size)),
                           "schedule": model.sde.config() if model is not None else None}
    write_json_atomic(Path(str(table.path) + ".json"), record)

    parts = [f"{counts['scored']} scored in {seconds:.1f} s"]
    if done:
        parts.append(f"{len(done)} already in the file")
    if counts["unreadable"]:
        parts.append(f"{counts['unreadable']} unreadable (see the error column)")
    if counts["non_finite"]:
        parts.append(f"{counts['non_finite']} non-finite (try --dtype float32)")
    print(f"{args.metric}: {len(job.names)} images, " + ", ".join(parts) + f" -> {table.path}", flush=True)
    return EXIT_OK


def _versions() -> dict:
    from . import __version__
    out = {"mempkg": __version__, "python": sys.version.split()[0]}
    for mod in ("torch", "diffusers", "transformers", "PIL"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = getattr(m, "__version__", None)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``) and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        _check_args(parser, args)
    except SystemExit as e:             # argparse: --help (0) or a usage error (2)
        return int(e.code or 0)
    args._argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return run_score(args)
    except KeyboardInterrupt:
        note(f"\nInterrupted. Complete batches are saved in {args.out}; run the same command again to resume.")
        return EXIT_INTERRUPTED
    except UserError as e:
        if args.debug:
            raise
        note(f"error: {e}")
        return EXIT_ERROR
    except Exception as e:
        if args.debug:
            raise
        note(f"error: {_reason(e)}\n(run again with --debug to see the traceback)")
        return EXIT_ERROR
