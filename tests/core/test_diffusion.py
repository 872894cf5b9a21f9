import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from core.contract.diffusion_specs import DDPMSampleSpec, UNetSpec
from core.contract.presets import ddpm_preset
from core.contract.progress import Stopped
from core.contract.specs import DataSpec
from core.diffusion.ddpm import (
    load_diffusion,
    make_scheduler,
    predict_x0,
    q_sample,
    to_image_space,
    to_model_space,
    train_ddpm,
)
from core.diffusion.quality import frechet_distance, sample_quality
from core.diffusion.sampling import forward_explorer, sample


def tiny(**update):
    spec = ddpm_preset("smoke").model_copy(
        update={
            "data": DataSpec(name="digits", train_subset=128),
            "epochs": 2,
            "batch_size": 32,
            "unet": UNetSpec(block_out_channels=[8, 16]),
        }
    )
    return spec.model_copy(update=update)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddpm")
    result = train_ddpm(tiny(), folder)
    return load_diffusion(folder), folder, result


def test_linear_schedule_is_the_papers():
    sched = make_scheduler(ddpm_preset("cpu"))
    betas = sched.betas
    assert len(betas) == 1000 and betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)
    assert sched.alphas_cumprod[-1] < 1e-4  # x_T is (almost) pure noise


def test_q_sample_and_predict_x0_invert_each_other():
    ac = make_scheduler(ddpm_preset("cpu")).alphas_cumprod
    x0, noise, t = (torch.rand(4, 1, 8, 8) * 2 - 1, torch.randn(4, 1, 8, 8), torch.tensor([0, 10, 500, 999]))
    torch.testing.assert_close(predict_x0(q_sample(x0, t, noise, ac), t, noise, ac), x0, atol=1e-3, rtol=1e-3)


def test_padding_round_trip():
    x = torch.rand(2, 1, 28, 28)
    m = to_model_space(x, 32)
    assert m.shape == (2, 1, 32, 32) and m.min() >= -1 and (m[..., 0, :] == -1).all()
    torch.testing.assert_close(to_image_space(m, 28), x)


def test_training_loss_is_finite_and_falls(trained):
    _, _, result = trained
    losses = [h["train_loss"] for h in result.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_resume_gives_the_same_weights(tmp_path):
    spec = tiny(epochs=3)
    train_ddpm(spec, tmp_path / "full")
    calls = {"n": 0}

    def stop_in_epoch_two():  # 128 images / 32 = 4 batches per epoch
        calls["n"] += 1
        return calls["n"] == 6

    with pytest.raises(Stopped):
        train_ddpm(spec, tmp_path / "resumed", should_stop=stop_in_epoch_two)
    assert train_ddpm(spec, tmp_path / "resumed").epochs_done == 3
    a, b = (load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("ema.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("sampler,steps", [("ddpm", 50), ("ddim", 10), ("dpm_solver", 10)])
def test_samplers_give_images_in_range_and_the_same_seed_the_same_images(trained, sampler, steps):
    model = trained[0]
    spec = DDPMSampleSpec(n=3, sampler=sampler, steps=steps, seed=7, trajectory=True, trajectory_frames=4)
    a, b = sample(model, spec), sample(model, spec)
    assert a["images"].shape == (3, 1, 8, 8) and a["images"].min() >= 0 and a["images"].max() <= 1
    assert torch.equal(a["images"], b["images"])
    assert len(a["trajectory"]) == 4 and torch.equal(a["trajectory"][-1], a["images"])
    c = sample(model, spec.model_copy(update={"seed": 8}))
    assert not torch.equal(a["images"], c["images"])


def test_forward_explorer(trained):
    model = trained[0]
    out = forward_explorer(model, torch.rand(2, 1, 8, 8), t=999)
    assert out["x_t"].shape == out["x0_pred"].shape == (2, 1, 8, 8) and out["alpha_bar"] < 1e-3
    with pytest.raises(ValueError, match="t must be"):
        forward_explorer(model, torch.rand(1, 1, 8, 8), t=1000)


def test_guidance_needs_a_conditional_model(trained):
    with pytest.raises(ValueError, match="not class-conditional"):
        sample(trained[0], DDPMSampleSpec(n=2, steps=2, class_labels=[1]))


def test_class_conditional_with_guidance(tmp_path):
    train_ddpm(tiny(epochs=1, class_conditional=True), tmp_path)
    model = load_diffusion(tmp_path)
    out = sample(model, DDPMSampleSpec(n=4, steps=3, class_labels=[2], guidance_scale=3.0))
    assert out["images"].shape == (4, 1, 8, 8)


def test_frechet_distance_properties():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(500, 4)), rng.normal(size=(500, 4))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    near, far = frechet_distance(a, b), frechet_distance(a, b + 3)
    assert 0 <= near < 0.2 and far == pytest.approx(near + 4 * 9, rel=0.05)


def test_sample_quality_in_a_classifiers_feature_space(trained_digits):
    model, _, ds = trained_digits
    same = sample_quality(model, ds.x_test[:100], ds.x_test[100:200])
    noise = sample_quality(model, torch.rand(100, 1, 8, 8), ds.x_test[100:200])
    assert same["frechet_distance"] < noise["frechet_distance"]
    assert sum(same["class_histogram"].values()) == 100 and 0 < same["mean_confidence"] <= 1
