"""How much memory a job will need, estimated before it is accepted (torch-free: the API calls it).

Peak resident memory of a job's process ≈ the interpreter with torch and robustlab loaded, plus
the dataset as float32 tensors (the whole named dataset: subsets are drawn after loading), plus
the model's weights, gradients and optimizer state, plus the activations kept for the backward
pass of one batch. The constants were fitted to peak RSS measured on the presets
(`bench/memory_estimate.py`, docs/benchmarks.md): an estimate, reported with its error, that
errs high.
"""

from __future__ import annotations

from core.contract.diffusion_specs import DDPMTrainSpec
from core.contract.job_specs import EvalSpec
from core.contract.specs import DataSpec, ModelSpec, Spec, TrainSpec

MIB = 2**20
BASELINE_BYTES = 520 * MIB  # the interpreter, torch, robustlab, numpy, sklearn, in a job's process
SAVED_PER_ACTIVATION = 3  # tensors kept per small-CNN layer for backward (input, pre-activation, output)
SAVED_PER_UNET_LEVEL = 4  # a UNet level keeps more (normalisations, time embedding, skips, attention)
# images (train, test), channels, side of the datasets known by name; others are not estimated
DATASET_SHAPES = {
    "fashion-mnist": (60_000, 10_000, 1, 28),
    "mnist": (60_000, 10_000, 1, 28),
    "cifar10": (50_000, 10_000, 3, 32),
    "digits": (1_500, 297, 1, 8),
}


def dataset_bytes(data: DataSpec) -> int:
    """The dataset as float32 tensors, and the subsets drawn from it (0 when the size is unknown)."""
    if data.name not in DATASET_SHAPES:
        return 0
    n_train, n_test, c, side = DATASET_SHAPES[data.name]
    per_image = 4 * c * side * side
    subsets = min(data.train_subset or 0, n_train) + min(data.test_subset or 0, n_test)
    return per_image * (n_train + n_test + subsets) + n_train + n_test  # + the uint8 arrays read first


def classifier_numbers(model: ModelSpec) -> tuple[int, int]:
    """(parameters, activation elements kept for the backward pass per image) of a classifier."""
    c, side, w, k = model.in_channels, model.image_size, model.width, model.num_classes
    if model.arch == "small_cnn":
        q = side // 4
        params = (c * w * 9 + w) + (w * 2 * w * 9 + 2 * w) + (2 * w * q * q * 4 * w + 4 * w) + (4 * w * k + k)
        activations = w * side * side * 2 + 2 * w * (side // 2) ** 2 * 2 + 4 * w
        return params, activations * SAVED_PER_ACTIVATION
    widths, sides = [w, 2 * w, 4 * w, 8 * w], [side, (side + 1) // 2, (side + 3) // 4, (side + 7) // 8]
    params, c_in = c * w * 9, w
    activations = w * side * side
    for i, (c_out, s) in enumerate(zip(widths, sides, strict=True)):
        for block in range(2):
            params += c_in * c_out * 9 + c_out * c_out * 9 + 4 * (c_in + c_out)
            if block == 0 and (i > 0 or c_in != c_out):
                params += c_in * c_out
            activations += 6 * c_out * s * s  # two (batch norm, activation, convolution) triples, each kept
            c_in = c_out
    return params + 8 * w * k + k, activations


def unet_params(spec: DDPMTrainSpec) -> int:
    """A diffusers UNet2DModel's parameters, roughly: two 3×3 convolutions per block and level."""
    channels = spec.unet.block_out_channels
    per_level = [2 * spec.unet.layers_per_block * 9 * ch * ch for ch in channels]
    return int(2.2 * sum(per_level))  # down and up paths, time embeddings, skips


def estimate_bytes(spec: Spec, model: ModelSpec | None = None) -> int | None:
    """The estimated peak resident memory of a job's processes (all `gpus` of them: the worker
    counts them together), or None for kinds not estimated; `model` is the registered model an
    evaluation acts on."""
    if isinstance(spec, TrainSpec):  # `gpus` processes, each with the data, the model and its share of the batch
        params, activations = classifier_numbers(spec.model)
        states = 4 if spec.optim.name == "adam" else 3  # weights, grads, momentum (+ Adam's second moment)
        states += (spec.recipe.ema_decay is not None) + (spec.recipe.select == "best")  # the average, the best epoch's
        batch = spec.batch_size // spec.gpus * activations * (2 if spec.amp else 4)  # bf16 under amp
        return (BASELINE_BYTES + dataset_bytes(spec.data) + params * 4 * states + batch) * spec.gpus
    if isinstance(spec, EvalSpec) and model is not None:
        params, activations = classifier_numbers(model)
        batch = spec.batch_size * activations * 4  # an attack's backward, no optimizer
        return BASELINE_BYTES + dataset_bytes(spec.data) + params * 4 * 2 + batch
    if isinstance(spec, DDPMTrainSpec):
        side, c = spec.image_size, 1 if spec.data.name not in DATASET_SHAPES else DATASET_SHAPES[spec.data.name][2]
        activations = sum(4 * ch * (side >> i) ** 2 for i, ch in enumerate(spec.unet.block_out_channels)) * 2
        share = spec.batch_size // spec.gpus
        batch = share * activations * 4 * SAVED_PER_UNET_LEVEL + share * c * side * side * 4
        return (BASELINE_BYTES + 300 * MIB + dataset_bytes(spec.data) + unet_params(spec) * 4 * 5 + batch) * spec.gpus
    return None


def fields_to_change(spec: Spec) -> str:
    """The fields that lower a spec's memory, for the 422's message."""
    if isinstance(spec, TrainSpec):
        return "batch_size, model.width or model.arch"
    if isinstance(spec, DDPMTrainSpec):
        return "batch_size, image_size or unet.block_out_channels"
    return "batch_size"
