"""The recipe on the command line, in the fmnist-strong preset and in the ablation study."""

import pytest

from core.cli.local import _train_spec
from core.cli.main import build_parser
from core.contract.presets import eval_preset, train_preset, training_presets
from core.contract.recipe_specs import RecipeSpec
from core.study import ABLATIONS, ablation_variants


def parsed_spec(*flags: str):
    return _train_spec(build_parser().parse_args(["train", "--preset", "fmnist-strong", *flags]))


def test_the_strong_preset_holds_out_training_images_and_reports_on_the_first_test_images():
    spec = train_preset("fmnist-strong", seed=2)
    assert spec.recipe == RecipeSpec(crop_pad=2, ema_decay=0.999, holdout=1000, select="best")
    assert spec.data.train_subset is None and spec.data.seed == 2 == spec.seed
    evaluation = eval_preset("fmnist-strong")
    assert evaluation.data.test_subset is None and evaluation.protocol.images == 1000
    assert evaluation.protocol.ensemble == "standard" and evaluation.protocol.eps == 0.1
    assert "fmnist-strong" in training_presets()


def test_recipe_flags_change_only_what_they_name():
    assert parsed_spec() == train_preset("fmnist-strong")
    spec = parsed_spec("--crop-pad", "0", "--no-ema", "--select", "last", "--label-smoothing", "0.1")
    assert spec.recipe == RecipeSpec(holdout=1000, label_smoothing=0.1)
    flags = ("--flip", "--resized-crop", "0.25", "--ema-decay", "0.99", "--no-use-ema", "--eps-warmup-epochs", "3")
    spec = parsed_spec(*flags, "--holdout", "500")
    assert spec.recipe == RecipeSpec(
        crop_pad=2,
        flip=True,
        resized_crop=0.25,
        ema_decay=0.99,
        use_ema=False,
        holdout=500,
        select="best",
        eps_warmup_epochs=3,
    )


def test_a_bad_recipe_flag_is_refused():
    with pytest.raises(ValueError, match="holdout"):
        parsed_spec("--holdout", "0")  # the preset selects the best epoch: it needs held-out images


def test_each_ablation_takes_its_ingredient_out_of_the_recipe():
    base = train_preset("fmnist-strong").recipe
    arms = {v.label: base.model_validate({**base.model_dump(), **v.recipe}) for v in ablation_variants()}
    assert list(arms) == ["relu", *ABLATIONS] and arms["relu"] == base
    assert not arms["no-augmentation"].augments and arms["no-augmentation"].averaged
    assert arms["no-ema"].ema_decay is None and arms["no-ema"].select == "best"
    assert arms["last-epoch"].select == "last" and arms["last-epoch"].holdout == base.holdout
    assert arms["none"] == RecipeSpec()
    with pytest.raises(ValueError, match="unknown ablations"):
        ablation_variants(["no-mixup"])
