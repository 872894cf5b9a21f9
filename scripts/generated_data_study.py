"""Issue 13's study, run through the service: PGD-AT on 10,000 real Fashion-MNIST images with 0
generated images against the same with generated images mixed in (several amounts, the filter on
and off), several seeds, every model evaluated under its preset's protocol; then purification of a
standard-trained and a PGD-AT classifier at two values of t*, evaluated three ways.

    make up   # in another terminal: the stack
    .venv/bin/python scripts/generated_data_study.py [--amounts 10000,20000] [--seeds 3] [--out F]
    .venv/bin/python scripts/generated_data_study.py --preset smoke --amounts 100,200 --seeds 2  # minutes
    .venv/bin/python scripts/generated_data_study.py --amounts '' --seeds 1  # purification alone

Every job goes through the API (`ROBUSTLAB_API_URL`, `ROBUSTLAB_API_KEY` or var/api_key), so the
queue's resumption applies: the script may be stopped and started again; it reuses the jobs it
recorded in `--out` (a JSON file) and submits only what is missing. It prints Markdown tables
(the arms, purification, every job's minutes) and writes every result, each job's wall-clock seconds
and each generated dataset's class-conditional sample grid beside `--report` (the report after every
evaluation, so a stopped run keeps the rows it finished).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.contract.client import Lab  # noqa: E402
from core.contract.presets import ddpm_preset, train_preset  # noqa: E402

PURIFY_DEFAULTS = {"cpu": "200,20,4", "smoke": "20,5,2"}  # images, iterations, EOT: what 2 cores allow


class Ledger:
    """Jobs by name, kept in a JSON file so that a second run reuses the first's."""

    def __init__(self, lab: Lab, path: Path):
        self.lab, self.path = lab, path
        self.jobs = json.loads(path.read_text()) if path.is_file() else {}
        self.seconds: dict[str, float] = {}  # wall-clock seconds of each finished job, by name

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
        self.seconds[name] = _seconds(job.data["started_at"], job.data["finished_at"])
        return job.result


def _seconds(started: str, finished: str) -> float:
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()


def pct(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):.1f} ± {100 * spread:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=["smoke", "cpu"], default="cpu", help="smoke: digits, to try the path")
    ap.add_argument("--amounts", default="10000,20000", help="generated images per arm (all classes); '' for none")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--t-stars", default="100,200")
    ap.add_argument("--purify", help="purification's attack: images,iterations,EOT (cpu 200,20,4; smoke 20,5,2)")
    ap.add_argument("--out", default="var/generated_data_study.json", help="the ledger of jobs")
    ap.add_argument(
        "--report",
        default="var/generated_data_study/report.json",
        help="every result and timing; each generated dataset's sample grid is written beside it",
    )
    args = ap.parse_args(argv)
    ledger = Ledger(Lab.from_env(), Path(args.out))
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    # The classifier first: the DDPM's training job measures its samples' Fréchet distance in the
    # features of the best registered classifier of its dataset, and it is the filter's classifier.
    standard = train_preset(args.preset).model_copy(update={"method": "standard"}).model_dump(mode="json")
    filter_id = ledger.run("standard", "adversarial_training", standard)["model_id"]
    ddpm = ddpm_preset(args.preset).model_copy(update={"class_conditional": True}).model_dump(mode="json")
    ddpm_result = ledger.run("ddpm", "ddpm_training", ddpm)
    diffusion = ddpm_result["model_id"]
    arms: dict[str, dict | None] = {"real only": None}
    for amount in [int(a) for a in args.amounts.split(",") if a]:  # none: the real-only arm, for purification
        for filtered in (False, True):
            spec = {"model_id": diffusion, "per_class": amount // 10}
            if filtered:
                spec["filter"] = {"classifier_id": filter_id, "mode": "agree"}
            name = f"+{amount:,} generated" + (", filtered" if filtered else "")
            arms[name] = ledger.run(f"data {name}", "dataset_generation", spec)
            grid = ledger.lab.image(f"/v1/artifacts/{arms[name]['provenance']['grid_artifact_id']}")
            Path(args.report).with_name(f"grid-{amount}{'-filtered' if filtered else ''}.png").write_bytes(grid)
    rows, pgd_at, training = [], None, {}
    for name, dataset in arms.items():
        results = []
        for seed in range(args.seeds):
            spec = train_preset(args.preset, seed=seed).model_dump(mode="json")
            if dataset is not None:
                spec["generated"] = {"data": {"name": "uploaded", "dataset_id": dataset["dataset_id"]}}
            results.append(ledger.run(f"{name} seed{seed}", "adversarial_training", spec))
        pgd_at = pgd_at or results[0]["model_id"]
        training[name] = results
        rows.append(
            f"| {name} | {len(results)} | {pct([r['clean_acc'] for r in results])} | "
            f"{pct([r['robust_acc'] for r in results])} |"
        )
    print(f"\nRobust accuracy under: {results[0]['protocol_label']}\n")
    print("| arm | seeds | clean | robust |\n|---|---|---|---|\n" + "\n".join(rows))
    images, steps, eot = (int(v) for v in (args.purify or PURIFY_DEFAULTS[args.preset]).split(","))
    protocol = {"ensemble": "rand", "eps": 0.1, "images": images, "steps": steps, "eot": eot}
    report = {"ddpm": ddpm_result, "generated": arms, "training": training, "protocol": protocol}

    def save() -> None:  # after every evaluation: a stopped run leaves the rows it finished
        Path(args.report).write_text(json.dumps({**report, "seconds": ledger.seconds}, indent=1))

    save()
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
            name = f"evaluate {label} t{t_star} ({images} images, {steps} iterations, EOT {eot})"
            report[name] = r = ledger.run(name, "attack_evaluation", body)  # a new attack size, a new job
            save()
            ways = r["defense"]
            print(
                f"| {label} | {t_star} | {100 * r['clean_acc']:.1f} | "
                + " | ".join(f"{100 * ways[w]['robust_acc']:.1f}" for w in ("non_adaptive", "bpda", "adaptive"))
                + f" | {100 * r['robust_acc']:.1f} |"
            )
    print("\n| job | minutes |\n|---|---|\n" + "\n".join(f"| {n} | {t / 60:.1f} |" for n, t in ledger.seconds.items()))
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
