"""The GPU check: one script, one CUDA GPU, about 10 minutes, no internet (`make gpu-check`).

    python tools/gpu_check.py [--wheels DIR] [--stages install,tests,chapters,scale] [--chapters-profile tiny|quick]
                              [--reference DIR] [--out book/measurements] [--scale paper|tiny] [--device cuda]
                              [--budget 480] [--fresh]

Stages, in order (each is timed, and its time is in the record):
1. ``install`` -- installs the wheels of ``--wheels`` (the project and what the GPU machine lacks: diffusers,
   papermill, jupytext and their needs; see the README's "On a GPU machine") into a temporary target with
   ``pip install --no-index --no-deps``, and puts it first on the path of this process and of every child; an
   Inception weights file in the folder (``make gpu-wheels INCEPTION_WEIGHTS=...``) goes to torch's hub cache;
2. ``tests`` -- ``pytest -m gpu``: CUDA against CPU on the same inputs, weights and seeds (tests/test_gpu.py);
3. ``chapters`` -- every chapter under ``--chapters-profile`` (default ``tiny``; ``quick`` takes a second call)
   with ``device=cuda`` (papermill), its verdicts and headline numbers compared with the CPU run's summaries in
   ``--reference`` (default ``results/<profile>``) when present;
4. ``scale`` -- :func:`paper_scale`: FLIPD on SD v1.5's UNet, volume growth with 100 axes and
   1,000 steps on the DDPM CIFAR-10 UNet, W and C on 50,000 x 10,000 x 3,072, each beside a forward pass.
It writes one JSON record, ``<out>/gpu-<device>.json``, at the start and again after every stage (and every
chapter), so a run cut off keeps what it measured: the environment (device, driver, torch and CUDA versions),
``started``, ``budget_s``, ``complete`` (false until the last stage), per stage in ``stages`` its ``status``
("ok", "failed" with the error's last line, "skipped" with the reason), ``seconds``, ``expected_s`` and ``call``,
and the measurements under ``gpu_tests``, ``chapters`` (per profile, per chapter) and ``paper_scale`` (the
performance page shows these). A second call merges into the record of the same device (``--fresh`` starts a
new one): per stage and per chapter the newest wins, except that a skip never replaces a measurement; ``calls``
lists each call. ``--budget`` skips a stage whose expected time (:data:`EXPECTED_S`, announced at the start)
exceeds the time left, and a chapter whose expected time (:data:`EXPECTED_CHAPTER_S`) exceeds the time left
after the later stages' expected times; a failed stage does not stop the next ones, except ``install``; the exit
status is 1 when any stage of this call failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("install", "tests", "chapters", "scale")
# headline numbers of each chapter compared between the CUDA and the CPU run (other random streams: within
# the stated tolerance, never bit for bit)
HEADLINES = {"01_von_mises": ["flipd_isolated"], "02_cifar10_overfit": ["auroc_trained_vs_heldout"],
             "03_three_regimes": ["peak_memorization_sigma"], "04_laion_verbatims": ["auroc_flipd_cond"],
             "05_three_lenses": ["auroc_flipd", "auroc_volume"]}
TOLERANCE = 0.1          # AUROCs, FLIPD at the knee, the peak sigma (relative): within 0.1 of the CPU run
# expected seconds of each stage, by --scale ("tiny" is the CPU configuration of tests/test_gpu_check.py and of
# make gpu-rehearsal); a stage is skipped when its time exceeds what is left of --budget, so each value errs on the
# long side; the chapters stage's is the sum of EXPECTED_CHAPTER_S under --chapters-profile
EXPECTED_S = {
    "paper": {
        "install": 60,       # estimate: pip --no-index --no-deps of ~45 wheels (22 MiB), no compiling; never timed there
        "tests": 120,        # estimate: 9 tests on the book's small networks, plus torch, diffusers and CUDA start
        "scale": 300,        # estimate: SD v1.5's UNet (860M parameters) built on the CPU, then each figure timed
                             # 3 times in 2 precisions; never run on a GPU
    },
    "tiny": {
        "install": 60,       # as for paper: the same wheels
        "tests": 30,         # measured: 6 s on a busy 2-core CPU (every test skipped without CUDA), 2026-12-06
        "scale": 300,        # measured: 122 s on a busy 2-core CPU, 2026-12-06
    },
}
# expected seconds of each chapter, by --scale (the machine, as above) and --chapters-profile; a chapter is skipped
# when its time exceeds what is left of --budget after the expected times of the stages after it
EXPECTED_CHAPTER_S = {
    "paper": {   # estimates, never run on a GPU
        # the CPU tiny times below as measured (papermill, kernel and import start included), plus ~10 s of CUDA
        # start in each kernel
        "tiny": {"01_von_mises": 30, "02_cifar10_overfit": 55, "03_three_regimes": 80, "04_laion_verbatims": 45,
                 "05_three_lenses": 50, "06_performance": 45},
        # the quick chapters' CPU times at one thread (2-core Xeon, book-quick record at 57d9327: 130, 2,118, 2,822,
        # 782, 1,598 and 203 s) over 10 (small networks: a GPU step is launch-bound), plus ~15 s of papermill,
        # kernel and CUDA start
        "quick": {"01_von_mises": 30, "02_cifar10_overfit": 230, "03_three_regimes": 300, "04_laion_verbatims": 95,
                  "05_three_lenses": 175, "06_performance": 40},
    },
    "tiny": {
        # measured, times 1.5: 21, 43, 70, 36, 39 and 35 s on a busy 2-core CPU at one thread (make gpu-rehearsal,
        # torch 2.11), 2026-12-07
        "tiny": {"01_von_mises": 35, "02_cifar10_overfit": 65, "03_three_regimes": 105, "04_laion_verbatims": 55,
                 "05_three_lenses": 60, "06_performance": 55},
        # the book-quick record's times (above) times 1.5: 01 took 181 s on a busy 2-core CPU (make gpu-rehearsal,
        # 2026-12-07), 130 s in the record
        "quick": {"01_von_mises": 195, "02_cifar10_overfit": 3180, "03_three_regimes": 4235,
                  "04_laion_verbatims": 1175, "05_three_lenses": 2400, "06_performance": 305},
    },
}
MEASURED = ("ok", "failed")  # what a later call's skip never replaces in the record


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", type=Path, help="folder of wheels to install first (stage install)")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {', '.join(STAGES)}")
    ap.add_argument("--chapters-profile", choices=("tiny", "quick"), default="tiny",
                    help="the chapters stage's profile: tiny fits beside the other stages; quick takes a second call")
    ap.add_argument("--reference", type=Path,
                    help="the CPU run's results (its <chapter>/summary.json files) [results/<chapters profile>]")
    ap.add_argument("--out", type=Path, default=ROOT / "book" / "measurements", help="where the record is written")
    ap.add_argument("--scale", choices=("paper", "tiny"), default="paper", help="paper: the papers' sizes")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--budget", type=int, default=480,
                    help="seconds for all stages: a stage whose expected time exceeds what is left is skipped")
    ap.add_argument("--fresh", action="store_true", help="start a new record instead of merging into the device's")
    args = ap.parse_args(argv)
    args.reference = args.reference or ROOT / "results" / args.chapters_profile
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        ap.error(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    if "install" in stages and args.wheels is None:
        stages.remove("install")
    elif args.wheels is not None and not args.wheels.is_dir():
        ap.error(f"--wheels {args.wheels} is not a folder of wheels")
    args.stages = stages
    return args


def install_wheels(wheels: Path, target: Path | None = None) -> Path:
    """``pip install --no-index --no-deps`` every wheel of ``wheels`` into ``target`` (a new temporary folder by
    default), then put it first on ``sys.path`` and ``PYTHONPATH``; returns the target."""
    files = sorted(Path(wheels).glob("*.whl"))
    if not files:
        raise SystemExit(f"no wheel in {wheels}")
    target = Path(target or tempfile.mkdtemp(prefix="mempkg-gpu-site-"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--upgrade", "--target", str(target), *map(str, files)], check=True)
    sys.path.insert(0, str(target))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(target)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return target


def place_inception_weights(wheels: Path) -> list[str]:
    """Copy each ``weights-inception-*.pth`` of ``wheels`` (``make gpu-wheels INCEPTION_WEIGHTS=...``) into torch's
    hub cache, ``$TORCH_HOME/hub/checkpoints``, where torchmetrics' FID (torch-fidelity) looks before it downloads;
    a file already there is kept. Returns the paths in the cache."""
    home = os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))  # torch.hub's
    cache = Path(home).expanduser() / "hub" / "checkpoints"
    placed = []
    for f in sorted(Path(wheels).glob("weights-inception-*.pth")):
        cache.mkdir(parents=True, exist_ok=True)
        if not (cache / f.name).is_file():
            shutil.copyfile(f, cache / f"{f.name}.tmp")
            os.replace(cache / f"{f.name}.tmp", cache / f.name)
        placed.append(str(cache / f.name))
    return placed


def run_gpu_tests() -> dict:
    r = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider",
                        str(ROOT / "tests" / "test_gpu.py")], cwd=ROOT, capture_output=True, text=True)
    last = (r.stdout.strip().splitlines() or [""])[-1]
    return {"returncode": r.returncode, "summary": last, "passed": r.returncode == 0}


def compare_summaries(chapter: str, gpu: dict, cpu: dict | None) -> dict:
    """Verdicts equal, and each headline number within TOLERANCE (absolute for AUROCs and FLIPD, relative for
    sigma) of the CPU run's; None where the CPU reference is absent."""
    if cpu is None:
        return {"reference": None}
    out = {"verdicts_same": gpu.get("verdicts") == cpu.get("verdicts"), "headline": {}}
    for key in HEADLINES.get(chapter, []):
        a, b = gpu.get(key), cpu.get(key)
        if a is None or b is None:
            out["headline"][key] = {"gpu": a, "cpu": b, "within": None}
            continue
        diff = abs(a - b) / abs(b) if "sigma" in key else abs(a - b)
        out["headline"][key] = {"gpu": a, "cpu": b, "within": bool(diff <= TOLERANCE)}
    return out


def run_chapter(nb: Path, profile: str, device: str, results: Path, reference: Path) -> dict:
    """One chapter under ``profile`` on ``device`` (papermill, results under ``results``), compared with
    ``reference``: its row of the record."""
    t = time.perf_counter()
    env = dict(os.environ, MEMPKG_RESULTS=str(results))
    conv = subprocess.run([sys.executable, "-m", "jupytext", "--to", "ipynb", "--set-kernel", "python3", "-o", "-",
                           str(nb)], capture_output=True)
    r = conv if conv.returncode else subprocess.run(
        [sys.executable, "-m", "papermill", "-", str(results / f"{nb.stem}.ipynb"), "-p", "profile", profile,
         "-p", "device", device, "--cwd", str(ROOT)], input=conv.stdout, env=env, capture_output=True)
    row = {"status": "ok" if r.returncode == 0 else "failed", "seconds": round(time.perf_counter() - t, 1)}
    summary = results / profile / nb.stem / "summary.json"
    if r.returncode:
        row["error"] = r.stderr.decode(errors="replace")[-2000:]
    elif summary.is_file():
        ref = reference / nb.stem / "summary.json"
        row.update(compare_summaries(nb.stem, json.loads(summary.read_text()),
                                     json.loads(ref.read_text()) if ref.is_file() else None))
    return row


def run_chapters(device: str, profile: str, reference: Path, room, expected: dict, after_each=None) -> dict:
    """Every chapter under ``profile`` on ``device``, compared with ``reference``; a chapter whose ``expected``
    seconds exceed ``room()`` (the budget's seconds left for it) is skipped. ``after_each(rows)`` is called with
    the rows so far after each chapter (main writes the record then)."""
    results = Path(tempfile.mkdtemp(prefix="mempkg-gpu-results-"))
    out = {}
    for nb in sorted((ROOT / "notebooks").glob("0*.py")):
        need, left = expected.get(nb.stem, max(expected.values())), room()
        if need > left:
            out[nb.stem] = {"status": "skipped", "seconds": 0.0, "expected_s": need,
                            "reason": f"over budget: expected {need} s, {max(left, 0):.0f} s left"}
        else:
            print(f"  {nb.stem} under {profile} (expected {need} s, {left:.0f} s left)", flush=True)
            out[nb.stem] = dict(run_chapter(nb, profile, device, results, reference), expected_s=need)
        row = out[nb.stem]
        print(f"  {nb.stem}: {row['status']}, {row.get('reason') or str(row['seconds']) + ' s'}", flush=True)
        if after_each is not None:
            after_each(out)
    return out


# Stable Diffusion v1.5's UNet, from its published config (unet/config.json of the hub repository); random weights
SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
# what each figure is measured at: the papers' settings ("paper") or a shrunken copy for a CPU test ("tiny")
PAPER_SCALE = {
    "paper": dict(sd_unet=SD15_UNET, sd_batch=8, text_len=77, ddpm_preset="ddpm_cifar10", ddpm_shape=(3, 32, 32),
                  vg_images=2, vg_axes=100, vg_steps=1000, vg_steps_timed=3, wc_train=50_000, wc_queries=10_000,
                  wc_dim=3072, wc_sigmas=64),
    "tiny": dict(sd_unet=dict(SD15_UNET, sample_size=8, block_out_channels=(32, 64), cross_attention_dim=32,
                              down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                              up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1),
                 sd_batch=2, text_len=7, ddpm_preset="digits", ddpm_shape=(1, 8, 8), vg_images=2, vg_axes=4,
                 vg_steps=20, vg_steps_timed=2, wc_train=300, wc_queries=50, wc_dim=64, wc_sigmas=8),
}


def paper_scale(device: str = "cuda", scale: str = "paper", repeats: int = 3, seed: int = 0) -> dict:
    """The estimators at the papers' scale, random weights, each beside the same model's forward pass.

    FLIPD (1 probe) on SD v1.5's UNet; volume growth (N = 100, 1,000 steps, from ``vg_steps_timed``
    timed steps) on the DDPM CIFAR-10 UNet; W and C on 50,000 x 10,000 x 3,072 over 64 sigmas beside
    one distance matrix; each in float32 and TF32, with the largest relative difference of the values.
    ``scale="tiny"`` shrinks every size (:data:`PAPER_SCALE`) for a CPU.
    """
    import numpy as np  # after the install stage: the wheels it installs come first
    import torch
    from diffusers import UNet2DConditionModel

    from mempkg import VPSDE, EpsModel, flipd, volume_growth, weight_and_coverage
    from mempkg.estimators.regimes import squared_distances
    from mempkg.models.adapters import image_score_model
    from mempkg.models.networks import unet_eps
    from mempkg.studies.performance import machine, timed_together

    def tf32(enabled: bool) -> None:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled

    c = PAPER_SCALE[scale]
    g = torch.Generator().manual_seed(seed)
    out = {"scale": scale, "settings": {k: v for k, v in c.items() if k != "sd_unet"},
           "measured": {"machine": machine(device), "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %z")}}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**c["sd_unet"]).to(device).eval()
    sd = EpsModel(unet, VPSDE(), time_scale=999, cond_key="encoder_hidden_states")
    side = c["sd_unet"]["sample_size"]
    z = torch.randn(c["sd_batch"], 4, side, side, generator=g).to(device)
    cond = torch.randn(c["sd_batch"], c["text_len"], c["sd_unet"]["cross_attention_dim"], generator=g).to(device)
    out["sd_unet_parameters"] = sum(p.numel() for p in unet.parameters())
    ddpm = image_score_model(unet_eps(c["ddpm_shape"], c["ddpm_preset"], seed=seed), VPSDE()).to(device).eval()
    out["ddpm_unet_parameters"] = sum(p.numel() for p in ddpm.parameters())
    x = torch.rand(c["vg_images"], *c["ddpm_shape"], generator=g).mul(2).sub(1).to(device)
    rows = c["vg_images"] * (c["vg_axes"] + 1)
    xr = torch.rand(rows, *c["ddpm_shape"], generator=g).mul(2).sub(1).to(device)
    train = torch.randn(c["wc_train"], c["wc_dim"], generator=g).to(device)
    held = torch.randn(c["wc_queries"], c["wc_dim"], generator=g).to(device)
    sigmas = np.geomspace(0.01, 80.0, c["wc_sigmas"]).tolist()
    vg = dict(n_axes=c["vg_axes"], n_steps=c["vg_steps_timed"], t_start=1e-3,
              t_end=1e-3 + c["vg_steps_timed"] / c["vg_steps"], method="finite", seed=seed)
    values = {}
    for mode in ("float32", "tf32"):
        tf32(mode == "tf32")
        with torch.no_grad():
            fns = {"flipd": lambda: flipd(sd, z, 0.1, n_probes=1, cond=cond, seed=seed),
                   "sd_forward": lambda: sd.score(z, 0.1, cond),
                   "volume_steps": lambda: volume_growth(ddpm, x, **vg),
                   "ddpm_forward_rows": lambda: ddpm.score(xr, 0.5),
                   "wc": lambda: weight_and_coverage(held, train, sigmas, seed=seed),
                   "distances": lambda: squared_distances(held, train)}
            t = timed_together({k: v for k, v in fns.items() if k != "flipd"}, repeats=repeats, device=device)
        t.update(timed_together({"flipd": fns["flipd"]}, repeats=repeats, device=device))   # needs gradients
        per_step = t["volume_steps"] / c["vg_steps_timed"]
        out[mode] = {"flipd_images_per_s": c["sd_batch"] / t["flipd"], "flipd_forward_passes": t["flipd"] / t["sd_forward"],
                     "sd_forward_images_per_s": c["sd_batch"] / t["sd_forward"],
                     "volume_images_per_s": c["vg_images"] / (per_step * c["vg_steps"]),
                     "volume_step_per_forward": per_step / t["ddpm_forward_rows"],
                     "ddpm_forward_rows_per_s": rows / t["ddpm_forward_rows"],
                     "wc_seconds": t["wc"], "wc_per_distance_matrix": t["wc"] / t["distances"], "seconds": t}
        values[mode] = {"flipd": fns["flipd"]().cpu().double(), "volume": volume_growth(ddpm, x, **vg).cpu().double(),
                        "W": torch.as_tensor(weight_and_coverage(held, train, sigmas, seed=seed).W).cpu().double()}
    tf32(False)
    a, b = values["tf32"], values["float32"]
    out["tf32_rel_diff"] = {k: float((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-30)) for k in b}
    return out


def environment(device: str) -> dict:
    """Date, device, driver, Python, torch and CUDA versions, from a child process: this one imports torch only
    after the install stage, so that what the wheels install comes first."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); import gpu_check; "
            f"print(json.dumps(gpu_check.torch_environment({device!r})))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode != 0:
        return {"device": device, "device_name": device, "environment_error": last_line(r.stderr)}
    return json.loads(r.stdout.strip().splitlines()[-1])


def torch_environment(device: str) -> dict:
    import torch
    env = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
           "device": device, "device_name": "cpu"}
    if device.startswith("cuda") and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(torch.device(device))
        env.update(device_name=p.name, multiprocessors=p.multi_processor_count, memory_gib=round(p.total_memory / 2**30, 1))
        try:
            env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                           capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            env["driver"] = None
    return env


def last_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[-1]


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "device"


def record_path(out: Path, env: dict) -> Path:
    return out / f"gpu-{slug(env.get('device_name') or env.get('device', 'device'))}.json"


def write_record(record: dict, out: Path) -> Path:
    """``<out>/gpu-<device>.json``, written whole (temporary file, then rename)."""
    out.mkdir(parents=True, exist_ok=True)
    path = record_path(out, record)
    tmp = path.with_suffix(".json.tmp")                         # same folder: os.replace is atomic
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    return path


def previous_record(path: Path) -> dict:
    """The record an earlier call wrote to ``path`` ({} when none), its stages cut off by that call's end marked so:
    "running" becomes "failed", "pending" becomes "skipped"."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    for entry in record.get("stages", {}).values():
        if entry["status"] == "running":
            entry.update(status="failed", error="cut off: its call ended during this stage")
        elif entry["status"] == "pending":
            entry.update(status="skipped", reason="not reached: its call ended first")
    return record


def merge(old: dict, new: dict, what: str) -> dict:
    """``new`` entries over ``old`` ones (stages or chapter rows): the newest wins, except that a skip never replaces a
    measurement (an earlier call's "ok" or "failed"), which is kept and said so."""
    for key, entry in new.items():
        before = old.get(key)
        if entry["status"] == "skipped" and before is not None and before["status"] in MEASURED:
            print(f"  {what} {key}: call {before.get('call', 1)}'s {before['status']} kept", flush=True)
            continue
        old[key] = entry
    return old


def run_stage(stage: str, args: argparse.Namespace, record: dict, save, room, call: int) -> str | None:
    """Runs one stage, its measurement into ``record``; returns why it failed, or None. ``room()``: the seconds of
    the budget left for the chapters stage; ``call``: this call's number in the record."""
    if stage == "install":
        record["installed_into"] = str(install_wheels(args.wheels))
        record["inception_weights"] = place_inception_weights(args.wheels) or None
    elif stage == "tests":
        record["gpu_tests"] = run_gpu_tests()
        return None if record["gpu_tests"]["passed"] else f"pytest: {record['gpu_tests']['summary']}"
    elif stage == "chapters":
        profile = args.chapters_profile
        rows = record.setdefault("chapters", {}).setdefault(profile, {})

        def after_each(new: dict) -> None:
            name = next(reversed(new))
            merge(rows, {name: dict(new[name], call=call)}, f"chapter ({profile})")
            save()
        new = run_chapters(args.device, profile, args.reference, room, EXPECTED_CHAPTER_S[args.scale][profile],
                           after_each)
        failed = [name for name, row in new.items() if row["status"] == "failed"]
        return f"chapter(s) {', '.join(failed)} failed" if failed else None
    elif stage == "scale":
        record["paper_scale"] = paper_scale(args.device, args.scale)
    return None


def main(argv=None) -> int:
    args = parse(argv)
    t_all = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc)
    chapter_s = EXPECTED_CHAPTER_S[args.scale][args.chapters_profile]
    expected = {stage: sum(chapter_s.values()) if stage == "chapters" else EXPECTED_S[args.scale][stage]
                for stage in args.stages}
    print(f"budget {args.budget} s; expected: " + ", ".join(
        f"{k} {v} s" + (f" under {args.chapters_profile}" if k == "chapters" else "") for k, v in expected.items()),
        flush=True)
    env = environment(args.device)
    record = {} if args.fresh else previous_record(record_path(args.out, env))
    call = len(record.get("calls", [])) + 1
    if call > 1:
        print(f"merging into {record_path(args.out, env)} (call {call})", flush=True)
    this = {"call": call, "started": started.isoformat(timespec="seconds"), "stages": args.stages,
            "chapters_profile": args.chapters_profile, "budget_s": args.budget, "scale": args.scale, "complete": False}
    record.update(started=this["started"], date=started.date().isoformat(), budget_s=args.budget, scale=args.scale,
                  chapters_profile=args.chapters_profile, complete=False, **env)
    record.setdefault("calls", []).append(this)
    stages = record.setdefault("stages", {})
    for stage in args.stages:
        stages.setdefault(stage, {"status": "pending", "seconds": None, "expected_s": expected[stage], "call": call})

    def save() -> Path:
        record["total_seconds"] = this["total_seconds"] = round(time.perf_counter() - t_all, 1)
        return write_record(record, args.out)

    def left() -> float:
        return args.budget - (time.perf_counter() - t_all)

    path = save()
    print(f"record: {path}", flush=True)
    stopped, failed = None, []         # why the remaining stages do not run (a failed install); what failed
    for i, stage in enumerate(args.stages):
        # the chapters stage runs the chapters that fit in what the later stages leave of the budget
        later = sum(expected[s] for s in args.stages[i + 1:]) if stage == "chapters" else 0
        need = min(chapter_s.values()) if stage == "chapters" else expected[stage]
        if stopped or need > left() - later:
            reason = stopped or (f"over budget: expected {need} s, {max(left() - later, 0):.0f} s left"
                                 + (f" after {later} s for the later stages" if later else ""))
            print(f"== {stage}: skipped ({reason})", flush=True)
            merge(stages, {stage: {"status": "skipped", "seconds": 0.0, "expected_s": expected[stage], "call": call,
                                   "reason": reason}}, "stage")
            save()
            continue
        print(f"== {stage} (expected {expected[stage]} s, {left():.0f} s left)", flush=True)
        entry = stages[stage] = {"status": "running", "seconds": None, "expected_s": expected[stage], "call": call}
        if stage == "chapters":
            entry["chapters_profile"] = args.chapters_profile
        save()
        t = time.perf_counter()
        try:
            error = run_stage(stage, args, record, save, lambda later=later: left() - later, call)
        except (Exception, SystemExit) as e:               # install_wheels exits when the folder has no wheel
            traceback.print_exc()
            # the traceback's last line; a CUDA error's later lines are advice (CUDA_LAUNCH_BLOCKING=1, ...)
            error = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
        entry.update(status="failed" if error else "ok", seconds=round(time.perf_counter() - t, 1))
        if error:
            entry["error"] = error
            print(f"== {stage}: FAILED ({error})", flush=True)
            failed.append(stage)
            if stage == "install":
                stopped = "install failed"
        save()
    record["complete"] = this["complete"] = True
    path = save()
    print(f"record: {path} ({record['total_seconds']} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
