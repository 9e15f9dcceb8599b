"""``score`` across processes and GPUs, on torch's own launcher (layer: cli).

Under ``torchrun --nproc-per-node N -m mempkg score ...`` (or ``accelerate launch -m mempkg score ...``), each
process reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` from the environment the launcher sets and:

1. joins a gloo process group (``MASTER_ADDR``/``MASTER_PORT``, set by the launcher), used for a few small
   messages only, and runs on ``cuda:<LOCAL_RANK>`` under ``--device auto`` or ``cuda`` when GPUs are visible;
2. checks that every rank lists the same images and scores them with the same settings and weights;
3. scores its shard -- every W-th file of the sorted list, from its rank on -- into its own part file
   ``<out>.part-<R>-of-<W>`` (the table's format, complete rows appended and fsynced per batch), skipping the
   images ``--out`` (or a part of an earlier run with another number of processes) already holds;
4. sends its rows to rank 0, which merges them into ``--out`` (rewritten atomically, sorted by file) with its
   ``<out>.json`` record; then every rank deletes its part.

A rank that dies loses only its unfinished batch: the launcher stops the others, and the same command resumes
every part where it stopped. Several machines need ``--images`` at the same path on each, and ``--out``'s folder
on a file system they share (for the parts of earlier runs; the merge itself goes through rank 0).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist

from .args import EXIT_ERROR, EXIT_OK, UserError, note
from .scoring import open_table, prepare, score_into, write_record
from .table import ScoreTable, exclusive

WAIT = timedelta(hours=72)      # the longest a rank waits for the others: a resumed shard may finish days earlier


def launch_env() -> Optional[tuple[int, int, int]]:
    """(rank, world size, local rank) under a launcher that set ``WORLD_SIZE`` > 1, else None."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    except (KeyError, ValueError):
        raise UserError("WORLD_SIZE is set but RANK (or LOCAL_RANK) is missing or not a number: launch several "
                        "processes with torchrun or accelerate launch, which set them.") from None
    if not 0 <= rank < world:
        raise UserError(f"RANK {rank} is outside 0 to WORLD_SIZE - 1 = {world - 1}.")
    return rank, world, local


def rank_device(device: str, local_rank: int) -> str:
    """The device of the process with ``local_rank`` on its machine: ``auto`` and ``cuda`` mean
    ``cuda:<local_rank>`` when torch sees GPUs (one GPU per process); anything else stays as given."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        n = torch.cuda.device_count()
        if local_rank >= n:
            raise UserError(f"LOCAL_RANK {local_rank} has no GPU of its own: torch sees {n}. Launch at most {n} "
                            "processes per machine (--nproc-per-node).")
        return f"cuda:{local_rank}"
    return device


def part_path(out, rank: int, world: int) -> Path:
    """Where rank ``rank`` of ``world`` appends its rows: ``<out>.part-<rank>-of-<world>``."""
    out = Path(out).expanduser()
    return out.with_name(f"{out.name}.part-{rank}-of-{world}")


def other_parts(out, world: int) -> list[Path]:
    """Part files beside ``out`` left by runs with another number of processes."""
    out = Path(out).expanduser()
    pattern = re.compile(re.escape(out.name) + r"\.part-(\d+)-of-(\d+)$")
    return sorted(p for p in out.parent.glob(out.name + ".part-*")
                  if (m := pattern.match(p.name)) and int(m.group(2)) != world)


def earlier_rows(args, job, world: int) -> dict[str, dict]:
    """Rows already scored with this run's settings: ``--out``'s, then those of parts of runs with another
    number of processes (``--overwrite``: none). A file with other settings is refused, as a resume is."""
    if args.overwrite:
        return {}
    rows: dict[str, dict] = {}
    for path in [Path(args.out).expanduser(), *other_parts(args.out, world)]:
        if path.exists() and path.stat().st_size > 0:
            table = open_table(args, job, path)
            rows.update({f: r for f, r in table.rows.items() if f in table.done()})
    return rows


def run_distributed(args, rank: int, world: int, local_rank: int) -> int:
    """The ``score`` command as rank ``rank`` of ``world`` processes (see the module docstring)."""
    t_begin = time.perf_counter()
    args.device = rank_device(args.device, local_rank)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=WAIT)
    try:
        job = prepare(args)
        part = part_path(args.out, rank, world)
        with exclusive(part):
            table = open_table(args, job, part, overwrite=args.overwrite)
            same_job(world, job, table)
            earlier = earlier_rows(args, job, world)
            shard = job.names[rank::world]
            done, counts = score_into(args, job, table, shard, frozenset(earlier))
            rows = [table.rows[n] for n in shard if n in table.rows]
        gathered = [None] * world if rank == 0 else None
        dist.gather_object((rows, len(done), counts), gathered, dst=0)
        outcome = [None]
        if rank == 0:
            try:
                merge(args, job, table, earlier, gathered, t_begin)
                outcome = ["merged"]
            except BaseException as e:
                outcome = [f"{type(e).__name__}: {e}"]
                dist.broadcast_object_list(outcome, src=0)
                raise
        dist.broadcast_object_list(outcome, src=0)
        if outcome[0] != "merged":
            note(f"rank {rank}: rank 0 could not merge the parts into {args.out} ({outcome[0]}); this rank's rows are "
                 f"kept in {part}, and the same command merges them.")
            return EXIT_ERROR
        with contextlib.suppress(OSError):
            part.unlink()
        return EXIT_OK
    finally:
        dist.destroy_process_group()


def same_job(world: int, job, table: ScoreTable) -> None:
    """Every rank must list the same images and score with the same settings (weights included)."""
    names = hashlib.sha256("\n".join(job.names).encode()).hexdigest()[:16]
    mine = (len(job.names), names, sorted(table.settings.items()))
    every = [None] * world
    dist.all_gather_object(every, mine)
    for r, theirs in enumerate(every):
        if theirs != mine:
            what = "images" if theirs[:2] != mine[:2] else "settings or weights"
            raise UserError(f"rank {r} sees other {what} than this rank ({mine[0]} images here, {theirs[0]} there): "
                            "every process needs the same --images folder, model and options.")


def merge(args, job, part_table: ScoreTable, earlier: dict, gathered: list, t_begin: float) -> None:
    """Rank 0: ``--out`` := the earlier rows and every rank's, rewritten atomically, sorted; then the record
    and the parts of runs with another number of processes removed."""
    with exclusive(args.out):
        out = ScoreTable(args.out, part_table.columns, part_table.settings, overwrite=args.overwrite, fmt=args.format)
        out.rows.update(earlier)
        processes, done = [], 0
        for r, (rows, n_done, counts) in enumerate(gathered):
            out.rows.update({row["file"]: row for row in rows})
            processes.append({"rank": r, "already_scored": n_done, **counts})
            done += n_done
        out.finish()
        total = {k: sum(p[k] for p in processes) for k in ("scored", "unreadable", "non_finite")}
        total["scoring_seconds"] = max(p["scoring_seconds"] for p in processes)
        write_record(args, job, out, done, total, t_begin, processes=processes)
    for p in other_parts(args.out, len(gathered)):
        with contextlib.suppress(OSError):
            p.unlink()
