"""Volume growth against the authors' loop and against its physical limit, in one run.

    python benchmarks/volume_speed.py [--images 8] [--axes 50] [--steps 10] [--repeats 3]
        [--models mlp_64 unet_1x8x8] [--paper-model unet_3x32x32] [--paper-images 2] [--paper-steps 1]
        [--device auto]

Times, on the same model and images: the authors' loop (`volume_growth_reference`: one image at a
time, the centre and all axes of an Euler step in one network call, Python Gram-Schmidt longest
first, as Hasegawa & Yasuda's `growth_rate_calculator.py` does), the batched `volume_growth` with
method="finite" (the default) and "jvp", and the physical limit of finite differences, N + 1
forward passes per image and step and nothing else. Reports the speed-ups of `volume_growth` over
the authors' loop, every time as a multiple of the limit, and the largest relative difference of
L between the authors' loop and finite differences (the two compute the same numbers). The
--models are timed with --images and --steps; the --paper-model (the paper's dimension, 3x32x32;
"none" skips it) with --paper-images and --paper-steps, fewer, because a jvp step at 3x32x32 costs
seconds per image on a CPU (a cost per step does not depend on the number of steps).
The measuring is mempkg.studies.performance.volume_speedup. Writes results/benchmarks/volume_speed.json.
"""

from __future__ import annotations

import argparse

from mempkg.book.paths import results_root
from mempkg.core.devices import resolve_device
from mempkg.core.files import write_json_atomic
from mempkg.studies import performance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--axes", type=int, default=50)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=["mlp_64", "unet_1x8x8"], choices=list(performance.MODELS))
    ap.add_argument("--paper-model", default="unet_3x32x32", choices=[*performance.MODELS, "none"])
    ap.add_argument("--paper-images", type=int, default=2)
    ap.add_argument("--paper-steps", type=int, default=1)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    out = performance.volume_speedup(args.models, args.images, args.axes, args.steps, args.repeats, device=device)
    if args.paper_model != "none":
        paper = performance.volume_speedup([args.paper_model], args.paper_images, args.axes, args.paper_steps, args.repeats,
                                    device=device)
        out = dict(out, rows=out["rows"] + paper["rows"], paper_settings=paper["settings"])

    print(f"Volume growth, n_axes={args.axes}: {args.images} images and n_steps={args.steps} on {', '.join(args.models)}"
          + (f"; {args.paper_images} images and n_steps={args.paper_steps} on {args.paper_model}"
             if args.paper_model != "none" else "") + f" ({out['machine']})\n")
    print("| model | authors' loop / finite | authors' loop / jvp | authors' loop / limit | finite / limit "
          "| jvp / limit | max rel. diff. of L |")
    print("|---|---|---|---|---|---|---|")
    for r in out["rows"]:
        print(f"| {r['model']} | {r['speedup_finite']:.2f}x | {r['speedup_jvp']:.2f}x | {r['authors_per_limit']:.2f} "
              f"| {r['finite_per_limit']:.2f} | {r['jvp_per_limit']:.2f} | {r['max_rel_diff_L']:.1e} |")
    print("\nlimit: N + 1 forward passes per image and Euler step, batched per image or all at once, "
          "whichever is faster (1 = the physical limit).")
    path = write_json_atomic(results_root() / "benchmarks" / "volume_speed.json", out)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
