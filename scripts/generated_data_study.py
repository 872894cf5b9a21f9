"""Issue 13's study, run through the service: PGD-AT on 10,000 real Fashion-MNIST images with 0
generated images against the same with generated images mixed in (several amounts, the filter on
and off), several seeds, every model evaluated under its preset's protocol; then purification of a
standard-trained and a PGD-AT classifier at two values of t*, evaluated three ways.

    make up   # in another terminal: the stack
    .venv/bin/python scripts/generated_data_study.py [--amounts 10000,20000] [--seeds 3] [--out F]
    .venv/bin/python scripts/generated_data_study.py --preset smoke --amounts 100,200 --seeds 2  # minutes

Every job goes through the API (`ROBUSTLAB_API_URL`, `ROBUSTLAB_API_KEY` or var/api_key), so the
queue's resumption applies: the script may be stopped and started again; it reuses the jobs it
recorded in `--out` (a JSON file) and submits only what is missing. It prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.contract.client import Lab  # noqa: E402
from core.contract.presets import ddpm_preset, train_preset  # noqa: E402


class Ledger:
    """Jobs by name, kept in a JSON file so that a second run reuses the first's."""

    def __init__(self, lab: Lab, path: Path):
        self.lab, self.path = lab, path
        self.jobs = json.loads(path.read_text()) if path.is_file() else {}

    def run(self, name: str, kind: str, spec: dict) -> dict:
        """The finished job `name`'s result, submitting it first if it is new (or failed)."""
        job = self.lab.job(self.jobs[name]) if name in self.jobs else None
        if job is None or job.status in ("failed", "cancelled"):
            job = self.lab.submit(kind, spec)
            self.jobs[name] = job.id
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.jobs, indent=1))
        job.wait(progress=True)
        if job.status != "succeeded":
            raise SystemExit(f"{name} ({job.id}) {job.status}: {job.error}")
        return job.result


def pct(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):.1f} ± {100 * spread:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=["smoke", "cpu"], default="cpu", help="smoke: digits, to try the path")
    ap.add_argument("--amounts", default="10000,20000", help="generated images per arm (all classes)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--t-stars", default="100,200")
    ap.add_argument("--out", default="var/generated_data_study.json")
    args = ap.parse_args(argv)
    ledger = Ledger(Lab.from_env(), Path(args.out))
    ddpm = ddpm_preset(args.preset).model_copy(update={"class_conditional": True}).model_dump(mode="json")
    diffusion = ledger.run("ddpm", "ddpm_training", ddpm)["model_id"]
    standard = train_preset(args.preset).model_copy(update={"method": "standard"}).model_dump(mode="json")
    filter_id = ledger.run("standard", "adversarial_training", standard)["model_id"]
    arms: dict[str, dict | None] = {"real only": None}
    for amount in [int(a) for a in args.amounts.split(",")]:
        for filtered in (False, True):
            spec = {"model_id": diffusion, "per_class": amount // 10}
            if filtered:
                spec["filter"] = {"classifier_id": filter_id, "mode": "agree"}
            name = f"+{amount:,} generated" + (", filtered" if filtered else "")
            arms[name] = ledger.run(f"data {name}", "dataset_generation", spec)
    rows, pgd_at = [], None
    for name, dataset in arms.items():
        results = []
        for seed in range(args.seeds):
            spec = train_preset(args.preset, seed=seed).model_dump(mode="json")
            if dataset is not None:
                spec["generated"] = {"data": {"name": "uploaded", "dataset_id": dataset["dataset_id"]}}
            results.append(ledger.run(f"{name} seed{seed}", "adversarial_training", spec))
        pgd_at = pgd_at or results[0]["model_id"]
        rows.append(
            f"| {name} | {len(results)} | {pct([r['clean_acc'] for r in results])} | "
            f"{pct([r['robust_acc'] for r in results])} |"
        )
    print(f"\nRobust accuracy under: {results[0]['protocol_label']}\n")
    print("| arm | seeds | clean | robust |\n|---|---|---|---|\n" + "\n".join(rows))
    protocol = {"ensemble": "rand", "eps": 0.1, "images": 200, "steps": 20, "eot": 4}  # reduced: 2 cores
    if args.preset == "smoke":
        protocol.update(images=20, steps=5, eot=2)
    data_name = ddpm["data"]["name"]
    print(f"\nPurification, evaluated with {protocol}\n")
    print(
        "| classifier | t* | clean | non-adaptive | BPDA | adaptive | robust (lowest) |\n|---|---|---|---|---|---|---|"
    )
    for label, classifier in (("standard", filter_id), ("PGD-AT", pgd_at)):
        for t_star in [int(t) for t in args.t_stars.split(",")]:
            spec = {"classifier_id": classifier, "diffusion_id": diffusion, "purifier": {"t_star": t_star}}
            defended = ledger.run(f"defend {label} t{t_star}", "defended_model", spec)["model_id"]
            body = {"model_id": defended, "data": {"name": data_name}, "protocol": protocol}
            r = ledger.run(f"evaluate {label} t{t_star}", "attack_evaluation", body)
            ways = r["defense"]
            print(
                f"| {label} | {t_star} | {100 * r['clean_acc']:.1f} | "
                + " | ".join(f"{100 * ways[w]['robust_acc']:.1f}" for w in ("non_adaptive", "bpda", "adaptive"))
                + f" | {100 * r['robust_acc']:.1f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
