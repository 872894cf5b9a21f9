"""The recipe on the command line, in the fmnist-strong preset and in the ablation study."""

import json

import pytest

from core.cli.local import _train_spec
from core.cli.main import build_parser
from core.contract.presets import eval_preset, train_preset, training_presets
from core.contract.recipe_specs import RecipeSpec
from core.study import ablation_variants, with_changes


def parsed_spec(*flags: str):
    return _train_spec(build_parser().parse_args(["train", "--preset", "fmnist-strong", *flags]))


def test_the_strong_preset_holds_out_training_images_and_reports_on_the_first_test_images():
    spec = train_preset("fmnist-strong", seed=2)
    assert spec.recipe == RecipeSpec(ema_decay=0.999, holdout=1000, select="best")
    assert spec.model.hidden == 1024 and spec.attack.steps == 3 and spec.epochs == 30
    assert spec.data.train_subset is None and spec.data.seed == 2 == spec.seed
    evaluation = eval_preset("fmnist-strong")
    assert evaluation.data.test_subset is None and evaluation.protocol.images == 1000
    assert evaluation.protocol.ensemble == "standard" and evaluation.protocol.eps == 0.1
    assert "fmnist-strong" in training_presets()


def test_recipe_flags_change_only_what_they_name():
    assert parsed_spec() == train_preset("fmnist-strong")
    spec = parsed_spec("--crop-pad", "2", "--no-ema", "--select", "last", "--label-smoothing", "0.1")
    assert spec.recipe == RecipeSpec(crop_pad=2, holdout=1000, label_smoothing=0.1)
    flags = ("--flip", "--resized-crop", "0.25", "--ema-decay", "0.99", "--no-use-ema", "--eps-warmup-epochs", "3")
    spec = parsed_spec(*flags, "--holdout", "500")
    assert spec.recipe == RecipeSpec(
        flip=True, resized_crop=0.25, ema_decay=0.99, use_ema=False, holdout=500, select="best", eps_warmup_epochs=3
    )


def test_a_bad_recipe_flag_is_refused():
    with pytest.raises(ValueError, match="holdout"):
        parsed_spec("--holdout", "0")  # the preset selects the best epoch: it needs held-out images


def test_each_ablation_changes_only_its_ingredient_of_the_recipe():
    base = train_preset("fmnist-strong").model_copy(
        update={
            "recipe": RecipeSpec(crop_pad=2, flip=True, resized_crop=0.5, ema_decay=0.99, holdout=100, select="best")
        }
    )
    arms = {v.label: with_changes(base, v.changes) for v in ablation_variants(base=base)}
    assert list(arms) == ["relu", "no-augmentation", "none", "hidden-default", "no-weight-decay", "pgd-7"]
    assert arms["relu"] == base  # crop-pad-2 is the recipe's own crop here: left out
    recipe = base.recipe.model_copy(update={"crop_pad": 0, "flip": False, "resized_crop": None})
    assert arms["no-augmentation"] == base.model_copy(update={"recipe": recipe})
    assert arms["none"] == base.model_copy(update={"recipe": RecipeSpec()})
    assert arms["hidden-default"].model == base.model.model_copy(update={"hidden": None})
    assert arms["no-weight-decay"].optim == base.optim.model_copy(update={"weight_decay": 0.0})
    assert arms["pgd-7"].attack == base.attack.model_copy(update={"steps": 7})
    assert all(
        arm.model_copy(update={k: getattr(base, k) for k in ("recipe", "model", "optim", "attack")}) == base
        for arm in arms.values()
    )  # nothing else moved


def test_an_ablation_that_changes_nothing_or_does_not_exist_is_refused():
    base = train_preset("fmnist-strong")  # no augmentation to take away
    assert "no-augmentation" not in [v.label for v in ablation_variants(base=base)]
    with pytest.raises(ValueError, match="no-augmentation change nothing"):
        ablation_variants(["no-augmentation", "pgd-7"], base)
    with pytest.raises(ValueError, match="unknown ablations"):
        ablation_variants(["no-mixup"])
    with pytest.raises(ValueError, match="no field 'mixup'"):
        with_changes(base, {"mixup": {"alpha": 1.0}})


def test_a_runs_other_weights_are_evaluated_on_the_command_line_and_in_the_ablation(tmp_path, capsys):
    from core.cli.main import main
    from core.contract.attack_specs import ProtocolSpec
    from core.data import load_dataset
    from core.evaluation import predict
    from core.models import load_model
    from core.study import Variant, evaluate_weight_sets, run_folder
    from core.training import train
    from core.training.checkpoint import read_weight_set
    from tests.conftest import tiny_spec

    protocol = ProtocolSpec(images=32, steps=2, queries=10)
    spec = tiny_spec(epochs=3, protocol=protocol, recipe=RecipeSpec(ema_decay=0.5, holdout=64, select="best"))
    arm = Variant("relu", spec.model.activation)
    folder = run_folder(tmp_path, arm, 0)
    train(spec, folder)
    ds = load_dataset(spec.data)
    model = load_model(folder)
    model.load_state_dict(read_weight_set(folder, "last"))
    clean_last = float((predict(model, ds.x_test[:32]) == ds.y_test[:32]).float().mean())

    args = ["evaluate", str(folder), "--preset", "smoke", "--weights", "last", "--steps", "2", "--queries", "10"]
    assert main([*args, "--images", "32", "--dataset", "digits", "--test-subset", "128", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["weights"] == "last" and printed["clean_acc"] == pytest.approx(clean_last)

    rows = evaluate_weight_sets(spec, [0], tmp_path, arm)
    assert [(r["variant"], r["weights"]) for r in rows] == [("last-epoch", "ema"), ("last-epoch-no-ema", "last")]
    assert rows[1]["clean_acc"] == pytest.approx(clean_last)
    assert (folder / "eval-ema.json").is_file() and evaluate_weight_sets(spec, [0], tmp_path, arm) == rows  # once
    kept_alone = run_folder(tmp_path, arm, 1)  # an evaluation copied back without its run: no rows, no crash
    kept_alone.mkdir(parents=True)
    (kept_alone / "eval.json").write_text(json.dumps(rows[0]))
    assert evaluate_weight_sets(spec, [0, 1], tmp_path, arm) == rows
    with pytest.raises(ValueError, match="keeps no 'nope' weights"):
        read_weight_set(folder, "nope")
