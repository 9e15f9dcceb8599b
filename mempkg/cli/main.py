"""The command line (layer: cli, the top): ``python -m mempkg score`` gives every image of a folder one
memorization score.

    python -m mempkg score --model MODEL --images FOLDER --metric flipd|volume|cfgnorm|png --out scores.csv

* ``--model`` is a Hugging Face Hub id or a local folder in diffusers' layout, loaded with
  ``from_pretrained``: a Stable Diffusion pipeline (scored in VAE latent space,
  :class:`mempkg.models.stable_diffusion.StableDiffusion`) or an unconditional pixel-space DDPM pipeline
  (``unet/`` + ``scheduler/``, :class:`mempkg.models.adapters.DDPMScoreModel`); :func:`inspect_model` tells them
  apart from the folder's ``model_index.json`` and configs before any weight is read.
* The metrics are the book's estimators, called unchanged: FLIPD (:func:`mempkg.estimators.lid.flipd`), volume
  growth along the PF-ODE (:func:`mempkg.estimators.volume.volume_growth`), the real-image CFG norm
  (:func:`mempkg.estimators.guidance.cfg_norm`) and the PNG size (:func:`mempkg.estimators.complexity.png_size`).
* Random draws (FLIPD's probes, volume growth's axes) are seeded per image from ``--seed`` and the
  image's file name (:func:`image_seed`), so an image's score does not depend on the other images in
  the folder, the batch size, or whether the run was resumed.
* The output CSV (:class:`ScoreTable`) is appended one batch at a time with complete rows, flushed and
  fsynced, so an interrupted run loses at most the batch in flight; a re-run with the same settings
  scores only the images missing from it; one with other settings refuses to mix them. When a run
  ends the table is rewritten once, atomically, sorted by file name, and the run's resolved options
  go to ``<out>.json`` beside it.

Under ``torchrun`` or ``accelerate launch`` the run is split across the processes
(:mod:`mempkg.cli.distributed`): each scores its shard into a part file, and rank 0 merges them into ``--out``.

Exit codes: 0 success, 1 a problem with the inputs or the run (one plain message; ``--debug`` shows the
traceback), 2 a usage error (argparse), 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import Optional

from ..models.pretrained import PretrainedError
from .args import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, UserError, build_parser, check_args, error_reason, note
from .distributed import launch_env, run_distributed
from .scoring import run_score


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``) and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        check_args(parser, args)
    except SystemExit as e:             # argparse: --help (0) or a usage error (2)
        return int(e.code or 0)
    args._argv = list(sys.argv[1:] if argv is None else argv)
    try:
        launched = launch_env()
        return run_distributed(args, *launched) if launched else run_score(args)
    except KeyboardInterrupt:
        if getattr(args, "_batches_saved", 0):
            note(f"\nInterrupted. {args._batches_saved} complete batch(es) are saved in {args.out}; run the same "
                 "command again to resume.")
        else:
            note(f"\nInterrupted before the first batch was complete: nothing was saved in {args.out}.")
        return EXIT_INTERRUPTED
    except (UserError, PretrainedError) as e:      # a plain message: what is wrong and what to do
        if args.debug:
            raise
        note(f"error: {e}")
        return EXIT_ERROR
    except Exception as e:
        if args.debug:
            raise
        note(f"error: {error_reason(e)}\n(run again with --debug to see the traceback)")
        return EXIT_ERROR
