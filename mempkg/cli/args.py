"""The options of ``python -m mempkg score``: the parser, its checks and the user-facing error (layer: cli)."""

from __future__ import annotations

import argparse
import sys

import torch

from ..core import __version__

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


METRICS = ("flipd", "volume", "cfgnorm", "png")


DTYPES = ("auto", "float32", "float16", "bfloat16")


VOLUME_TIMES = (1e-3, 1.0)       # the ODE's t_start and t_end, as in the volume-growth chapter


VOLUME_QUICK = (10, 100)         # axes, steps: the volume-growth chapter's quick profile, 1,100 UNet passes per image
VOLUME_PAPER = (100, 1000)       # Hasegawa & Yasuda's: 101,000 UNet passes per image


T0_READINGS = ("linear_beta", "scheduler")   # the clock --t0 is read on; linear_beta first: chapter 04's default


CFG_T_START = 1e-4               # the earliest start of cfg_norm's Euler steps (continuous schedules; a discrete

                                 # schedule starts at its first timestep: mempkg.estimators.guidance.ode_start_time)


class UserError(Exception):
    """A problem the user can fix (a bad folder, file, option or model): printed as one message, exit code 1."""


def note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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


def _device(s: str) -> str:
    if s == "auto":
        return s
    try:
        return str(torch.device(s))
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{s!r} is not a torch device; pass auto, cpu, cuda, cuda:N (e.g. cuda:1) "
                                         "or mps") from None


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
  training timestep n at time t = (n + 1) / N (mempkg.core.schedules.DiscreteVPSchedule).
  Any other model enters through --model-factory package.module:function, a function of yours that
  returns a score model: an object with `sde` (a schedule of mempkg.core.schedules) and
  `score(x, t, cond=None)`, plus `data_shape` = (C, H, W), e.g. mempkg.EDMDenoiser(D, sigma_data=0.5,
  data_shape=(3, 32, 32)) around an NVlabs/edm or k-diffusion denoiser. It is called with device= when
  it takes that keyword. A text-conditional latent model also has encode_images(x) and
  encode_prompts(captions), as mempkg.StableDiffusion does, and image_size (its pixel side) unless
  --image-size is given. Times are read on the model's own sde (--t0-reading scheduler; on EDM's
  clock t is sigma).

images:
  Every .png .jpg .jpeg .webp .bmp file of --images (sorted by name; subfolders with --recursive),
  converted to RGB (transparency over white; grey for a 1-channel model), centre-cropped to a square
  and resized (bicubic) to the model's resolution or --image-size. --metric png measures the file's
  own pixels (as RGB) unless --image-size is given.

output (--out, CSV or with --format jsonl one JSON object a line, one row per image, sorted by file):
  file               the image's path relative to --images
  flipd              FLIPD(x, t0) = D + sigma(t0)^2 [tr grad s + |s|^2] at psi(t0) x (Kamkari et al. 2024),
                     D the data dimension; low values point at memorization (Ross, Kamkari et al. 2024)
  sigma_t0           (flipd) sigma(t0), the noise level --t0 stands for under --t0-reading: rows made under
                     the two readings are comparable through it, not through t0; (cfgnorm) the noise
                     level of --cfg-t0 on the model's own schedule
  log_volume_growth  L, the summed log-stretches of --axes axes of radius --radius carried by --steps
                     Euler steps of the PF-ODE from t = 0.001 to 1 (Hasegawa & Yasuda 2025; they report
                     e^L); large values point at memorization
  cfg_norm           |eps(x_t0, t0 | caption) - eps(x_t0, t0 | "")| after --cfg-steps Euler steps of the
                     conditional PF-ODE to --cfg-t0 (Ross, Kamkari et al. 2024, App. A.1); large = memorized
  png_size           bytes of the image as a PNG at zlib level 9 (image complexity, a control)
  error              empty, or why the image was skipped (--on-error skip)
  caption            the caption used, when --captions is given
  then the settings that change the numbers (metric, model, image_size, dtype, ...), repeated on
  every row. <out>.json records the run's resolved options, the model and versions. In jsonl the cells
  are the CSV's strings, except that an empty cell is null and the score and sigma_t0 are numbers.

t0 readings (--t0-reading, flipd):
  linear_beta  Ross, Kamkari et al.'s clock: their code reads Stable Diffusion with beta(t) linear from
               N beta_start to N beta_end (mempkg.core.schedules.linear_beta_schedule), on which t0 = 0.1
               is sigma = 0.362 for SD v1.5; the score is then read where the model's own schedule has
               that sigma (t = 0.121 for SD v1.5), as chapter 04 does. Their t0 = 0.1 means this.
  scheduler    the model's own alphas_cumprod: t0 = 0.1 is sigma = 0.323 for SD v1.5; for a
               --model-factory model its own sde (the default there).

resuming:
  Rows are appended after every batch (complete rows, flushed and fsynced). Run the same command
  again after an interruption and only the images missing from --out are scored (and rows with an
  error retried). An image's random draws are seeded by --seed and its file name, so the final file
  equals an uninterrupted run's (up to float rounding where batches were formed differently).
  Other settings (or other captions) with the same --out are refused; --overwrite starts afresh.

several processes:
  Under torchrun (or accelerate launch --multi_gpu) each process scores every N-th image of the sorted
  list on its own GPU into <out>.part-<rank>-of-<N>, resumable like --out, and rank 0 merges the parts
  into --out when all are done (mempkg.cli.distributed):
    torchrun --standalone --nproc-per-node 8 -m mempkg score --model ... --images ... --out scores.csv

exit codes: 0 success, 1 a problem with the inputs or the run, 2 a usage error, 130 interrupted.

examples:
  python -m mempkg score --model stable-diffusion-v1-5/stable-diffusion-v1-5 --images laion/ \\
      --metric flipd --captions captions.csv --t0 0.1 --out flipd.csv
  python -m mempkg score --model ./my_ddpm --images train/ --metric volume --out vol.csv
  python -m mempkg score --model ./my_ddpm --images train/ --metric volume --paper-settings --out vol_paper.csv
  python -m mempkg score --model ./sd_folder --images laion/ --metric cfgnorm --captions captions.csv --out cfg.csv
  python -m mempkg score --model-factory my_models:edm_cifar --images train/ --metric flipd --t0 0.05 --out f.csv
  python -m mempkg score --images laion/ --metric png --image-size 512 --out png.csv
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mempkg", description="Memorization scores of images under a diffusion model "
        "(the memorization book's estimators as a command line).")
    parser.add_argument("--version", action="version", version=f"mempkg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("score", help="score every image of a folder with one metric and write a CSV",
                       description="Score every image of a folder with one memorization metric under a diffusers "
                                   "model, resumably, into a CSV.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)

    io_ = p.add_argument_group("what to score")
    io_.add_argument("--model", metavar="ID_OR_FOLDER",
                     help="Hugging Face Hub id or local folder of a diffusers pipeline (see 'models' below); "
                          "required for every metric except png")
    io_.add_argument("--model-factory", metavar="MODULE:FUNCTION",
                     help="instead of --model: a function, importable as package.module:function (the current folder "
                          "is searched), that returns a score model (see 'models' below)")
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
    io_.add_argument("--out", metavar="FILE", required=True,
                     help="output table, appended batch by batch and resumed on a re-run; required")
    io_.add_argument("--format", choices=("csv", "jsonl"), default=None,
                     help="csv: a header and comma-separated rows; jsonl: one JSON object per row (default: jsonl "
                          "when --out ends in .jsonl, else csv)")
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
                    help="time t0 in (0, 1] at which the score is read, on the clock of --t0-reading (default: 0.1; "
                         "Ross, Kamkari et al.'s choice for Stable Diffusion when read on their linear_beta clock)")
    fl.add_argument("--t0-reading", choices=T0_READINGS, default=None,
                    help="the clock --t0 is read on: linear_beta, the FLIPD authors' linear-beta schedule (as chapter "
                         "04), or scheduler, the model's own schedule; rows record sigma_t0 either way (default: "
                         "linear_beta for a diffusers --model, scheduler for --model-factory; see 't0 readings' below)")
    fl.add_argument("--probes", type=_probes, default=1, metavar="K|exact",
                    help="Hutchinson probes per image for the trace of the score's Jacobian, or 'exact' for "
                         "the exact trace (D model passes per image: small models only) (default: 1, as Ross, "
                         "Kamkari et al.)")

    vo = p.add_argument_group("volume growth (--metric volume)")
    vo.add_argument("--axes", type=_positive_int, default=None, metavar="N",
                    help=f"number of orthonormal axes N around each image, 1 <= N <= D (default: {VOLUME_QUICK[0]}, "
                         f"the volume-growth chapter's quick profile; {VOLUME_PAPER[0]} with --paper-settings)")
    vo.add_argument("--steps", type=_positive_int, default=None, metavar="N",
                    help="Euler steps of the PF-ODE from t = 0.001 to 1; each costs N + 1 model passes per "
                         f"image (default: {VOLUME_QUICK[1]}, about 1,100 UNet passes per image with the default "
                         f"axes; {VOLUME_PAPER[1]} with --paper-settings)")
    vo.add_argument("--paper-settings", action="store_true",
                    help=f"Hasegawa & Yasuda's {VOLUME_PAPER[0]} axes x {VOLUME_PAPER[1]} steps, about 101,000 UNet "
                         "passes per image (hours per image for Stable Diffusion on one GPU) instead of the quick "
                         f"{VOLUME_QUICK[0]} x {VOLUME_QUICK[1]}, about 1,100; --axes and --steps still override "
                         "(default: off)")
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
    run.add_argument("--device", type=_device, default="auto", metavar="DEVICE",
                     help="where the model runs: auto, or any torch device string (cpu, cuda, cuda:1, mps); auto: "
                          "cuda when a GPU is visible (default: auto)")
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


def check_args(parser: argparse.ArgumentParser, args) -> None:
    """Option combinations that are wrong whatever the files: usage errors (exit code 2)."""
    sp = parser.score_parser                  # so that errors read 'usage: python -m mempkg score ...'
    if args.model and args.model_factory:
        sp.error("give --model or --model-factory, not both")
    if args.metric != "png" and not (args.model or args.model_factory):
        sp.error(f"--metric {args.metric} needs --model (a diffusers model id or folder) or --model-factory; only png "
                 "needs none")
    if args.model_factory and args.dtype != "auto":
        sp.error("--dtype applies to diffusers models; a --model-factory model runs in the dtype its function gives "
                 "it")
    if args.t0_reading is None:
        args.t0_reading = "scheduler" if args.model_factory else "linear_beta"
    if args.metric == "cfgnorm" and not args.captions:
        sp.error("--metric cfgnorm needs --captions: the CFG norm compares the model with and without each "
                 "image's caption")
    if args.metric == "cfgnorm" and not args.cfg_t0 > CFG_T_START:
        sp.error(f"--cfg-t0 must exceed {CFG_T_START:g}, where the Euler steps start")
    if args.paper_settings and args.metric != "volume":
        sp.error("--paper-settings sets volume growth's axes and steps; it applies to --metric volume only")
    axes, steps = VOLUME_PAPER if args.paper_settings else VOLUME_QUICK
    args.axes = axes if args.axes is None else args.axes
    args.steps = steps if args.steps is None else args.steps
    if args.format is None:
        args.format = "jsonl" if str(args.out).lower().endswith(".jsonl") else "csv"


def error_reason(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())
