"""Run under torchrun by tests/core/test_distributed.py: `train` (or `train_ddpm`) of the spec in
argv[1] into argv[2], each rank recording the clean images its attack was given in
argv[2]/attacked-<rank>.json (one checksum per image)."""

import faulthandler
import json
import sys
from pathlib import Path

import core.training.objectives as objectives
from core.contract.diffusion_specs import DDPMTrainSpec
from core.contract.specs import TrainSpec
from core.diffusion.ddpm import train_ddpm
from core.training import distributed as ddp
from core.training import train


def main() -> None:
    faulthandler.dump_traceback_later(150, exit=True)  # a rank stuck this long shows where, and ends
    raw, out = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2])
    ddp.start_from_env()
    rank, _ = ddp.world()
    attacked: list[float] = []
    build = objectives.build_attack

    def recording_build(spec):
        attack = build(spec)

        def recorded(model, x, y):
            attacked.extend(x.flatten(1).sum(1).tolist())
            return attack(model, x, y)

        return recorded

    objectives.build_attack = recording_build
    try:
        if raw.pop("kind", "classifier") == "diffusion":
            train_ddpm(DDPMTrainSpec.model_validate(raw), out)
        else:
            train(TrainSpec.model_validate(raw), out)
    except ddp.FollowerDone:
        pass
    (out / f"attacked-{rank}.json").write_text(json.dumps(attacked))
    ddp.exit_now(0)


if __name__ == "__main__":
    main()
