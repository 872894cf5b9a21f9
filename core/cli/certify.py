"""`robustlab certify`: certified L2 robustness of a checkpoint by randomized smoothing (Cohen et
al. 2019), with the empirical attack on the smoothed classifier beside it unless `--no-attack`."""

from __future__ import annotations

import json
from pathlib import Path

from core.cli.local import floats
from core.cli.result_table import add_json_flag, print_result
from core.contract.certify_specs import CertifySpec
from core.contract.names import PRESET_NAMES
from core.contract.presets import certification_preset
from core.contract.progress import progress_bar


def certification_spec(args) -> CertifySpec:
    """The preset's certification with the flags applied."""
    spec = certification_preset(args.preset).model_dump()
    smoothing = {"sigma": args.sigma, "n0": args.n0, "n": args.n, "alpha": args.alpha, "batch": args.batch}
    spec["smoothing"].update({k: v for k, v in smoothing.items() if v is not None})
    spec.update(
        {k: v for k, v in (("images", args.images), ("seed", args.seed), ("radii", args.radii)) if v is not None}
    )
    if args.dataset or args.data_root:
        spec["data"].update({k: v for k, v in (("name", args.dataset), ("root", args.data_root)) if v})
    if args.no_attack:
        spec["empirical"] = None
    elif args.attack_steps or args.eot:
        spec["empirical"] = {
            **(spec["empirical"] or {}),
            **{k: v for k, v in (("steps", args.attack_steps), ("eot", args.eot)) if v},
        }
    return CertifySpec.model_validate(spec)


def cmd_certify(args) -> int:
    from core.data import load_dataset
    from core.device import resolve_device
    from core.evaluation.certification import certified_robustness
    from core.models import load_model

    spec = certification_spec(args)
    model = load_model(args.checkpoint, device=resolve_device(spec.device))
    ds = load_dataset(spec.data, download=args.download)
    result = certified_robustness(
        model, ds.x_test, ds.y_test, spec, num_classes=ds.num_classes, progress=progress_bar("certify")
    ).model_dump()
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    per_point = ("predictions", "radii", "labels")  # in --out
    print_result({k: v for k, v in result.items() if k not in per_point}, args)
    return 0


def add_commands(sub) -> None:
    c = sub.add_parser("certify", help="certified L2 robustness of a checkpoint by randomized smoothing")
    c.add_argument("checkpoint", help="a checkpoint folder")
    c.add_argument("--preset", choices=PRESET_NAMES, default="cpu")
    c.add_argument("--sigma", type=float, help="the noise's standard deviation σ (default 0.25)")
    c.add_argument("--n0", type=int, help="selection samples (default 100)")
    c.add_argument("--n", type=int, help="estimation samples (default 10,000; the paper's 100,000)")
    c.add_argument("--alpha", type=float, help="failure probability of a certificate (default 0.001)")
    c.add_argument("--batch", type=int, help="noisy copies per forward pass")
    c.add_argument("--radii", type=floats, help="L2 radii, e.g. 0.25,0.5,1.0")
    c.add_argument("--images", type=int)
    c.add_argument("--seed", type=int)
    c.add_argument("--no-attack", action="store_true", help="the certificate alone, no empirical attack")
    c.add_argument("--attack-steps", type=int, help="APGD's iterations on the smoothed classifier")
    c.add_argument("--eot", type=int, help="noise draws per gradient of that attack")
    c.add_argument("--dataset")
    c.add_argument("--data-root")
    c.add_argument("--download", action="store_true")
    c.add_argument("--out", help="write the whole result (per image too) as JSON here")
    add_json_flag(c)
    c.set_defaults(func=cmd_certify)
