"""A scoring run: prepare the job, score the batches with the estimators, write the table (layer: cli)."""

from __future__ import annotations

import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..core import __version__
from ..core.devices import resolve_device
from ..core.digests import content_digest
from ..core.files import write_json_atomic
from ..core.hub import local_only
from ..core.progress import announce_eta, bar
from ..core.protocol import modules_of
from ..core.schedules import schedule_of
from ..estimators.complexity import png_size
from ..estimators.guidance import cfg_norm
from ..estimators.lid import flipd
from ..estimators.volume import volume_growth
from ..models.factory import FactoryError, image_side, is_text_conditional, load_factory_model
from ..models.pretrained import (
    ModelInfo,
    inspect_model,
    load_model,
    quiet_libraries,
    resolve_dtype,
    weights_digest,
)
from .args import EXIT_OK, VOLUME_TIMES, UserError, error_reason, note
from .inputs import check_readable, image_seed, list_images, load_pixels, read_captions
from .table import COLUMN, ScoreTable, exclusive, format_value


def run_settings(args, source: Optional[str], size: Optional[int], dtype, conditional: bool,
                 weights: Optional[str] = None) -> dict:
    """The settings that change the numbers, as CSV cells; every row repeats them. ``source`` is the model's
    folder, hub id or factory; ``weights`` identifies its weights by content
    (:func:`~mempkg.models.pretrained.weights_digest`, or the digest of a factory model's network and schedule):
    a table is resumed only with the same ones."""
    s = {"metric": args.metric}
    if args.metric == "png":
        s["image_size"] = size if size is not None else "original"
        return {k: format_value(v) for k, v in s.items()}
    s.update(model=source, weights=weights, image_size=size, dtype=str(dtype).replace("torch.", ""))
    if args.metric == "flipd":
        s.update(t0=args.t0, t0_reading=args.t0_reading, sigma_t0=args._sigma_t0,
                 probes="exact" if args.probes is None else args.probes, seed=args.seed, conditional=conditional)
    elif args.metric == "volume":
        s.update(axes=args.axes, steps=args.steps, radius=args.radius, t_start=VOLUME_TIMES[0],
                 t_end=VOLUME_TIMES[1], seed=args.seed, conditional=conditional)
    else:
        s.update(cfg_t0=args.cfg_t0, sigma_t0=args._sigma_t0, cfg_steps=args.cfg_steps,
                 cfg_t_start="first timestep")
    return {k: format_value(v) for k, v in s.items()}


def score_batch(args, model, pixels, names: list[str], captions: Optional[list[str]], progress=False,
                device=None):
    """Scores of one batch of uint8 ``[H, W, C]`` images -> list of floats (the model path). ``progress``
    (a label) shows the estimator's own bar within the batch: per Euler step, per block of probes. ``device``:
    where pixel-space images go (default: the model's ``device``)."""

    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    if hasattr(model, "encode_images"):                           # Stable Diffusion: score VAE latents
        data = model.encode_images(x, max_batch=args.batch_size)
        cond = model.encode_prompts(captions) if captions is not None else None
    else:
        data, cond = x.to(device if device is not None else model.device), None
    seeds = [image_seed(args.seed, n) for n in names]
    if args.metric == "flipd":
        out = flipd(model, data, args._t0_model, args.probes, cond=cond, seed=seeds, max_batch=args.max_rows,
                    progress=progress)
    elif args.metric == "volume":
        out = volume_growth(model, data, n_axes=args.axes, radius=args.radius, n_steps=args.steps,
                            t_start=VOLUME_TIMES[0], t_end=VOLUME_TIMES[1], method="finite", seed=seeds,
                            cond=cond, max_batch=args.max_rows, progress=progress)[:, -1]
    else:
        out = cfg_norm(model, data, cond, t0=args.cfg_t0, n_steps=args.cfg_steps, max_batch=args.max_rows)
    return [float(v) for v in out]


def load_scheduler(info: ModelInfo):
    """The diffusers scheduler of an inspected model, from its ``scheduler/`` config only (no weights)."""
    import diffusers  # heavy: diffusers takes seconds to import

    try:
        cfg = diffusers.DDPMScheduler.load_config(info.source, subfolder="scheduler",
                                                  local_files_only=not info.local and local_only())
        return getattr(diffusers, cfg["_class_name"]).from_config(cfg)
    except (OSError, ValueError, KeyError, AttributeError) as e:
        raise UserError(f"--model {info.source}: could not read its scheduler/ config ({error_reason(e)}).") from None


def t0_on_model_clock(scheduler, t0: float, reading: str) -> tuple[float, float]:
    """The noise level of t0 under ``reading`` and the time of the model's own schedule with it:

        sigma_t0 = sigma_reading(t0),    t = sigma_scheduler^-1(sigma_t0)    -> (sigma_t0, t)

    as :func:`mempkg.models.stable_diffusion.equal_sigma_time` reads chapter 04's t0 (SD v1.5, t0 = 0.1:
    linear_beta gives sigma 0.362, reached at t = 0.121; scheduler gives sigma 0.323 at t = 0.1).

    Args:
        scheduler: the model's diffusers scheduler (``alphas_cumprod``, ``beta_start``, ``beta_end``).
        t0: the time given, in (0, 1].
        reading: ``"linear_beta"`` (the FLIPD authors' clock) or ``"scheduler"`` (the model's own).
    """
    sigma = float(schedule_of(scheduler, reading).sigma(t0))
    if reading == "scheduler":
        return sigma, float(t0)
    try:
        t = float(schedule_of(scheduler, "scheduler").t_from_sigma(sigma))
    except ValueError:
        t = math.inf
    if not 0 < t <= 1:
        raise UserError(f"--t0 {t0:g} on the linear_beta clock is sigma = {sigma:.4g}, a noise level the model's own "
                        "schedule does not reach in (0, 1]; give a smaller --t0 or --t0-reading scheduler.")
    return sigma, t


def resolve_run_device(device: str) -> str:
    """``auto`` (CUDA when visible, else CPU) or a torch device string, checked against what torch sees."""
    try:
        return resolve_device(device)
    except (RuntimeError, ValueError) as e:
        raise UserError(f"--device: {e}".replace("device=", "")) from None


@dataclass
class Job:
    """A ``score`` run's inputs, resolved and checked before any weight of a diffusers model is read."""

    names: list[str]                      # images, relative to --images, sorted
    paths: dict[str, Path]
    captions: Optional[dict[str, str]]    # None: unconditional
    info: Optional[ModelInfo]             # a diffusers --model, inspected; None for png and --model-factory
    device: Optional[str] = None
    dtype: object = None
    size: Optional[int] = None            # image side; None: the files' own pixels (png only)
    model: object = None                  # a --model-factory model, built in prepare (its shape is known only then)
    weights: Optional[str] = None         # the weights' digest, computed once (hashing SD's files takes a while)

    @property
    def source(self) -> Optional[str]:
        return self.info.source if self.info is not None else getattr(self, "factory", None)

    @property
    def text_conditional(self) -> bool:
        return self.info.kind == "stable_diffusion" if self.info is not None else is_text_conditional(self.model)

    @property
    def channels(self) -> int:
        if self.info is not None:
            return self.info.channels
        return 3 if self.model is None or self.text_conditional else int(self.model.data_shape[0])


def prepare(args) -> Job:
    """List the images, read the captions, inspect the model (or build a --model-factory one) and check that
    the options fit it."""
    images = list_images(args.images, args.recursive)
    names = [n for n, _ in images]
    uses_captions = args.metric != "png" and args.captions is not None
    if args.captions and not uses_captions:
        note("note: --metric png does not use --captions.")
    if args.metric == "png" and (args.model or args.model_factory):
        note("note: --metric png reads only the images; the model is not loaded.")
    job = Job(names, dict(images), read_captions(args.captions, names) if uses_captions else None, None,
              size=args.image_size)
    if args.metric == "png":
        return job
    if args.model_factory:
        return prepare_factory(args, job)
    info = job.info = inspect_model(args.model)
    check_conditioning(args, job, f"--model {args.model} is an unconditional pixel-space model")
    job.size = job.size or info.native_size
    info.check_size(job.size)
    check_axes(args, info.data_shape(job.size))
    job.device = resolve_run_device(args.device)
    if args.metric == "flipd":
        args._sigma_t0, args._t0_model = t0_on_model_clock(load_scheduler(info), args.t0, args.t0_reading)
    elif args.metric == "cfgnorm":                 # cfg_norm reads --cfg-t0 on the model's own schedule
        args._sigma_t0 = t0_on_model_clock(load_scheduler(info), args.cfg_t0, "scheduler")[0]
    job.dtype = resolve_dtype(args.dtype, info, job.device)
    return job


def prepare_factory(args, job: Job) -> Job:
    """Build the --model-factory model on the run's device and check it as :func:`prepare` checks a diffusers
    one: its data shape against --image-size, captions against its conditioning, t0 on its own schedule."""
    job.device = resolve_run_device(args.device)
    needs = () if args.metric == "cfgnorm" or job.captions is not None else ("data_shape",)   # else: the next check
    try:
        model = job.model = load_factory_model(args.model_factory, job.device, needs)
    except FactoryError as e:
        raise UserError(f"--model-factory: {e}") from None
    job.factory = args.model_factory
    check_conditioning(args, job, f"--model-factory {args.model_factory} returned a model without "
                                  "encode_images and encode_prompts (not text-conditional)")
    if job.text_conditional:
        side = job.size or image_side(model)
        if side is None:
            raise UserError(f"--model-factory {args.model_factory}: a text-conditional model needs --image-size (or an "
                            "image_size or vae_scale attribute: its images' pixel side, or pixels per latent cell).")
        job.size = int(side)
    else:
        C, H, W = model.data_shape
        if H != W or C not in (1, 3):
            raise UserError(f"--model-factory {args.model_factory}: its data_shape {tuple(model.data_shape)} is not "
                            "square grey or RGB images (C, H, H) with C 1 or 3; images are centre-cropped squares.")
        if job.size is not None and job.size != H:
            raise UserError(f"--image-size {job.size}: the model reads {H}x{W} images (its data_shape); leave out "
                            "--image-size or give that side.")
        job.size = int(H)
        check_axes(args, model.data_shape)
    if args.metric == "flipd":
        args._sigma_t0, args._t0_model = t0_on_factory_clock(args, model)
    elif args.metric == "cfgnorm":
        args._sigma_t0 = float(model.sde.sigma(torch.tensor(args.cfg_t0, dtype=torch.float64)))
    net = modules_of(model)
    job.dtype = next(net.parameters()).dtype if net is not None and any(True for _ in net.parameters()) \
        else torch.float32
    return job


def t0_on_factory_clock(args, model) -> tuple[float, float]:
    """(sigma_t0, t) for a --model-factory model: on its own ``sde`` (``scheduler``), or on the linear-beta clock
    of the diffusers ``scheduler`` it exposes (``linear_beta``, as Stable Diffusion does)."""
    if args.t0_reading == "linear_beta":
        if getattr(model, "scheduler", None) is None:
            raise UserError("--t0-reading linear_beta reads a diffusers scheduler's beta_start and beta_end; the "
                            "--model-factory model has no `scheduler`. Use --t0-reading scheduler (its own sde).")
        return t0_on_model_clock(model.scheduler, args.t0, args.t0_reading)
    return float(model.sde.sigma(torch.tensor(args.t0, dtype=torch.float64))), float(args.t0)


def check_conditioning(args, job: Job, unconditional: str) -> None:
    """cfgnorm and --captions need a text-conditional model; ``unconditional`` says what the model is instead."""
    if job.text_conditional:
        return
    if args.metric == "cfgnorm":
        raise UserError(f"--metric cfgnorm needs a text-conditional (Stable Diffusion) model; {unconditional}.")
    if job.captions is not None:
        raise UserError(f"--captions: {unconditional}; captions apply to text-conditional models only. Leave out "
                        "--captions.")


def check_axes(args, shape) -> None:
    """Volume growth's axes must be orthonormal in the data space: at most its dimension D of them."""
    D = int(np.prod(shape))
    if args.metric == "volume" and args.axes > D:
        raise UserError(f"--axes {args.axes} exceeds the data dimension D = {D} ({'x'.join(map(str, shape))}): at "
                        "most D axes can be orthonormal.")


def score_images(args, job: Job, table: ScoreTable, todo: list[str], bad: dict[str, str], model) -> dict:
    """Score ``todo`` a batch at a time, appending each batch's rows to ``table``; returns counts."""

    column, caps = COLUMN[args.metric], job.captions
    counts = {"scored": 0, "unreadable": 0, "non_finite": 0}
    n_batches = -(-len(todo) // args.batch_size)
    t_begin = time.perf_counter()
    args._batches_saved = 0
    with bar(total=len(todo), desc=args.metric, disable=not todo) as pbar:
        for i, start in enumerate(range(0, len(todo), args.batch_size)):
            batch = todo[start:start + args.batch_size]
            rows, ok, pixels = [], [], []
            for n in batch:
                reason = bad.get(n)
                if reason is None:
                    try:
                        pixels.append(load_pixels(job.paths[n], job.size, job.channels))
                        ok.append(n)
                        continue
                    except Exception as e:          # a body that fails to decode (truncated, corrupt)
                        reason = error_reason(e)
                if args.on_error == "fail":
                    raise UserError(f"--images: {n} cannot be read as an image ({reason}). Fix or remove it, or "
                                    "pass --on-error skip; the images scored so far are kept in --out.")
                rows.append({"file": n, column: None, "error": f"unreadable image: {reason}"})
            if ok and args.metric == "png":
                values = [int(png_size(p[None])[0]) for p in pixels]
            elif ok:
                values = score_batch(args, model, pixels, ok, [caps[n] for n in ok] if caps is not None else None,
                                     progress=f"{args.metric}, batch {i + 1} of {n_batches}", device=job.device)
            else:
                values = []
            for n, v in zip(ok, values):
                counts["non_finite"] += not math.isfinite(v)
                rows.append({"file": n, column: v, "error": None})
            for r in rows:
                r["caption"] = caps[r["file"]] if caps is not None else None
            table.append(sorted(rows, key=lambda r: r["file"]))
            args._batches_saved += 1
            counts["scored"] += len(ok)
            counts["unreadable"] += len(batch) - len(ok)
            pbar.update(len(batch))
            if i == 0:
                announce_eta(f"{args.metric}, {len(todo)} images", time.perf_counter() - t_begin, len(batch),
                             len(todo), unit="image")
    return counts


def run_score(args) -> int:
    """The ``score`` command (options already checked by :func:`check_args`), holding ``--out``'s lock."""
    t_begin = time.perf_counter()
    job = prepare(args)
    with exclusive(args.out):
        table = open_table(args, job, args.out, overwrite=args.overwrite)
        done, counts = score_into(args, job, table, job.names)
        write_record(args, job, table, len(done), counts, t_begin)
    return EXIT_OK


def open_table(args, job: Job, path, overwrite: bool = False) -> ScoreTable:
    """The run's table at ``path`` (opened for resuming, or refused when made with other settings, weights or
    captions): the score, error and caption columns, then every setting that changes the numbers."""
    if job.weights is None and (job.info is not None or job.model is not None):
        job.weights = weights_digest(job.info) if job.info is not None else content_digest(job.model)
    settings = run_settings(args, job.source, job.size, job.dtype, job.captions is not None, job.weights)
    columns = (["file", COLUMN[args.metric], "error"] + (["caption"] if job.captions is not None else [])
               + list(settings))
    table = ScoreTable(path, columns, settings, overwrite=overwrite, fmt=args.format)
    if job.captions is not None:
        changed = sorted(n for n in table.done() & set(job.names) if table.rows[n]["caption"] != job.captions[n])
        if changed:
            raise UserError(f"--captions gives {len(changed)} image(s) another caption than the one they were scored "
                            f"with in {table.path} (e.g. {changed[0]}: {table.rows[changed[0]]['caption']!r} there, "
                            f"{job.captions[changed[0]]!r} now). Write to another --out, or pass --overwrite.")
    return table


def score_into(args, job: Job, table: ScoreTable, names: list[str], already: frozenset = frozenset()):
    """Score those of ``names`` that neither ``table`` nor ``already`` holds, appending to ``table``, and rewrite
    it sorted. Returns (the names already scored, the counts of :func:`score_images`)."""
    done = (table.done() | set(already)) & set(names)
    todo = [n for n in names if n not in done]
    if done:
        note(f"Resuming {table.path}: {len(done)} of {len(names)} images already scored, skipped; "
             f"scoring the other {len(todo)}.")
    stale = len(set(table.rows) - set(job.names))
    if stale:
        note(f"note: {table.path} holds {stale} row(s) for files no longer in --images; they are kept.")

    # files Pillow cannot even identify, found before the model loads (a truncated body shows when decoded)
    bad = {n: r for n in todo if (r := check_readable(job.paths[n])) is not None}
    if bad and args.on_error == "fail":
        shown = "; ".join(f"{n} ({r})" for n, r in list(bad.items())[:3]) + ("; ..." if len(bad) > 3 else "")
        raise UserError(f"{len(bad)} of {len(names)} files in --images cannot be read as images: {shown}. Fix "
                        "or remove them, or pass --on-error skip to score the rest and record these.")

    model = job.model
    if todo and job.info is not None:
        kind = {"stable_diffusion": "Stable Diffusion", "ddpm": "pixel-space DDPM"}[job.info.kind]
        note(f"Loading the {kind} model {job.info.source} on {job.device} ({str(job.dtype)[6:]}) ...")
        if not args.debug:
            quiet_libraries()
        model = job.model = load_model(job.info, job.device, job.dtype, job.size)
    t_score = time.perf_counter()
    counts = score_images(args, job, table, todo, bad, model)
    counts["scoring_seconds"] = round(time.perf_counter() - t_score, 3)
    table.finish()
    return done, counts


def write_record(args, job: Job, table: ScoreTable, n_done: int, counts: dict, t_begin: float,
                 processes: Optional[list] = None) -> None:
    """``<out>.json`` beside the table (the command, settings, options, counts with ``n_done`` images found
    already scored, model, versions; with ``processes`` each rank's counts), then one line on stdout."""
    model, seconds = job.model, time.perf_counter() - t_begin
    record = {"command": "python -m mempkg " + shlex.join(args._argv), "settings": table.settings,
              "options": {k: v for k, v in vars(args).items() if not k.startswith("_")},
              "images": dict(folder=str(Path(args.images).expanduser().resolve()), n=len(job.names),
                             already_scored=n_done, **{k: v for k, v in counts.items() if k != "scoring_seconds"}),
              "seconds": round(seconds, 3), "scoring_seconds": counts["scoring_seconds"],
              "versions": library_versions()}
    if processes is not None:
        record["processes"] = processes
    if job.source is not None:
        shape = job.info.data_shape(job.size) if job.info is not None else getattr(model, "data_shape", None)
        record["model"] = {"kind": job.info.kind if job.info is not None else "factory", "source": job.source,
                           "class": type(model).__name__ if model is not None else None, "device": str(job.device),
                           "data_shape": list(shape) if shape is not None else None,
                           "schedule": model.sde.config() if hasattr(getattr(model, "sde", None), "config") else None}
        if args.metric == "flipd":
            record["model"]["t0_on_its_schedule"] = args._t0_model
    write_json_atomic(Path(str(table.path) + ".json"), record)

    parts = [f"{counts['scored']} scored in {seconds:.1f} s"]
    if n_done:
        parts.append(f"{n_done} already in the file")
    if counts["unreadable"]:
        parts.append(f"{counts['unreadable']} unreadable (see the error column)")
    if counts["non_finite"]:
        parts.append(f"{counts['non_finite']} non-finite (try --dtype float32)")
    print(f"{args.metric}: {len(job.names)} images, " + ", ".join(parts) + f" -> {table.path}", flush=True)


def library_versions() -> dict:
    out = {"mempkg": __version__, "python": sys.version.split()[0]}
    for mod in ("torch", "diffusers", "transformers", "PIL"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = getattr(m, "__version__", None)
    return out
