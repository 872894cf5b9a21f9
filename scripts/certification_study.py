"""Issue 25's results: certified L2 robustness by randomized smoothing of Fashion-MNIST small CNNs
trained for it — σ ∈ {0.12, 0.25, 0.5} with Gaussian augmentation, SmoothAdv against it at σ = 0.25,
ReLU against SiLU — certified at radii 0.25, 0.5, 1.0 with n = 10,000 samples (α = 0.001).

    .venv/bin/python scripts/certification_study.py [--images 500] [--side-images 200] [--seeds 3]
    .venv/bin/python scripts/certification_study.py --smoke   # digits, seconds: checks the script

Every run trains `robustlab train`'s cpu recipe (small CNN width 16, Adam, 5 epochs) on all training
images with the run's method and σ, certifies the first test images with the σ it was trained at,
and writes `<out>/<arm>-seed<k>.json` (the certificate, per image too, and the training's seconds). A run
whose file exists is not repeated, so the study may be stopped and started again. The headline arm
(Gaussian, σ = 0.25, ReLU) runs `--seeds` seeds, the first on `--images` images and the others on
`--spread-images`; the side arms one seed on `--side-images` (what two cores allow: a certificate
of one image costs n + n0 forward passes). Images are the first of the test set, so a smaller
count is a prefix of a larger one.
Prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HEADLINE = ("gaussian", 0.25, "relu")
SIDE_ARMS = [
    ("gaussian", 0.12, "relu"),
    ("gaussian", 0.5, "relu"),
    ("smoothadv", 0.25, "relu"),
    ("gaussian", 0.25, "silu"),
]
RADII = [0.25, 0.5, 1.0]


def arm_label(method: str, sigma: float, activation: str) -> str:
    return f"{method}-s{sigma:g}-{activation}"


def run_arm(method, sigma, activation, seed, images, args) -> dict:
    """Train (or resume) and certify one arm at one seed; the result file is the cache."""
    from core.contract.certify_specs import CertifySpec
    from core.contract.presets import certification_preset, smoothing_training, train_preset
    from core.data import load_dataset
    from core.device import resolve_device
    from core.evaluation.certification import certified_robustness
    from core.models import load_model
    from core.training import train

    path = args.out / f"{arm_label(method, sigma, activation)}-seed{seed}.json"
    if path.is_file():
        return json.loads(path.read_text())
    size = "smoke" if args.smoke else "cpu"
    base = train_preset(size)
    spec = smoothing_training(base, method, sigma).model_copy(update={"seed": seed})
    spec = spec.model_copy(
        update={
            "data": spec.data.model_copy(update={"seed": seed, "train_subset": None if not args.smoke else 300}),
            "model": spec.model.model_copy(update={"activation": {"name": activation}}),
        }
    )
    spec = type(spec).model_validate(spec.model_dump())
    folder = args.runs / arm_label(method, sigma, activation) / f"seed{seed}"
    result = train(spec, folder, dataset=load_dataset(spec.data))
    model = load_model(folder, device=resolve_device("auto"), channels_last=True)  # as the job loads it
    cert_spec = certification_preset(size).model_dump()
    cert_spec["smoothing"]["sigma"] = sigma
    cert_spec.update({"images": images, "radii": RADII, "empirical": None})
    cert_spec["data"] = {**spec.data.model_dump(), "test_subset": None}  # the same first test images for every run
    if args.smoke:
        cert_spec["smoothing"].update({"n0": 20, "n": 200})
    cert = CertifySpec.model_validate(cert_spec)
    test = load_dataset(cert.data)
    got = certified_robustness(model, test.x_test, test.y_test, cert, num_classes=test.num_classes)
    row = {
        "arm": arm_label(method, sigma, activation),
        "method": method,
        "sigma": sigma,
        "activation": activation,
        "seed": seed,
        "train_seconds": sum(r["epoch_seconds"] for r in result.history),
        **got.model_dump(),  # per image too: arms on different image counts compare on the common prefix
    }
    path.write_text(json.dumps(row, indent=1))
    return row


def table(rows: list[dict]) -> str:
    """One line per arm: clean accuracy of the smoothed classifier, abstentions and certified
    accuracy at each radius, as mean ± sample std over its seeds."""

    def cell(values: list[float]) -> str:
        if len(values) == 1:
            return f"{100 * values[0]:.1f}"
        return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"

    head = "| training | σ | activation | seeds | images | clean (smoothed) | abstain | " + " | ".join(
        f"certified r={r:g}" for r in RADII
    )
    lines = [head + " |", "|" + "---|" * (7 + len(RADII))]
    arms: dict[str, list[dict]] = {}
    for row in rows:
        arms.setdefault(row["arm"], []).append(row)
    for mine in arms.values():
        first = mine[0]
        at = [[next(p["certified_acc"] for p in r["curve"] if p["radius"] == radius) for r in mine] for radius in RADII]
        images = " / ".join(str(r["images"]) for r in mine)
        lines.append(
            f"| {first['method']} | {first['sigma']:g} | {first['activation']} | {len(mine)} | {images} | "
            f"{cell([r['clean_acc'] for r in mine])} | {cell([r['abstain_rate'] for r in mine])} | "
            + " | ".join(cell(a) for a in at)
            + " |"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=500, help="headline arm's test images")
    p.add_argument("--side-images", type=int, default=200, help="the other arms' test images")
    p.add_argument("--seeds", type=int, default=3, help="headline arm's seeds")
    p.add_argument(
        "--spread-images", type=int, help="test images of the headline's seeds after the first (default --images)"
    )
    p.add_argument("--out", type=Path, default=Path("docs/data/certification-cpu"))
    p.add_argument("--runs", type=Path, default=Path("runs/certification"), help="checkpoints")
    p.add_argument("--smoke", action="store_true", help="digits, a few hundred samples: checks the script")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [(HEADLINE, 0, args.images)] + [(arm, 0, args.side_images) for arm in SIDE_ARMS]
    spread = args.spread_images or args.images
    runs += [(HEADLINE, seed, spread) for seed in range(1, args.seeds)]  # the spread last
    rows = []
    for arm, seed, images in runs:
        rows.append(run_arm(*arm, seed, images, args))
        print(table(rows), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
