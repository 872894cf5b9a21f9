"""How much memory a job will need, estimated before it is accepted (torch-free: the API calls it).

Peak resident memory of a job's process ≈ the interpreter with torch and robustlab loaded, plus
the dataset as float32 tensors (the whole named dataset: subsets are drawn after loading), plus
the model's weights, gradients and optimizer state, plus the activations kept for the backward
pass of one batch. The constants were fitted to peak RSS measured on the presets
(`bench/memory_estimate.py`, docs/benchmarks.md): an estimate, reported with its error, that
errs high.
"""

from __future__ import annotations

from core.contract.architectures import ARCHS, RESNET_STAGES, depth_of, widen_factor_of, wrn_blocks_per_stage
from core.contract.certify_specs import CertifySpec
from core.contract.datasets import DATASET_INFO
from core.contract.diffusion_specs import DatasetGenerationSpec, DDPMTrainSpec
from core.contract.job_specs import DatasetUploadSpec, EvalSpec, ModelUploadSpec
from core.contract.specs import DataSpec, ModelSpec, Spec, TrainSpec

MIB = 2**20
BASELINE_BYTES = 520 * MIB  # the interpreter, torch, robustlab, numpy, sklearn, in a job's process
SAVED_PER_ACTIVATION = 3  # tensors kept per small-CNN layer for backward (input, pre-activation, output)
# A ResNet's or WRN's peak resident memory grows faster than the tensors it keeps for backward (the
# backward's gradients, oneDNN's workspaces): per image, 1.0–2.2× their bytes on the ResNets
# (mostly 1.3–1.6×), 1.0–1.4× on WRN-28-10, 1.6–2.3× on a narrow WRN-16-4, varying between runs
# (bench/memory_estimate.py --saved and --networks, docs/benchmarks.md).
RSS_PER_SAVED = 1.8
SAVED_PER_UNET_LEVEL = 4  # a UNet level keeps more (normalisations, time embedding, skips, attention)
ARCHIVE_BYTES = 1 << 30  # the uncompressed members an uploaded archive may hold (core.data.archive)
INTERACTIVE_MODEL_BYTES = 512 * MIB  # a registered model and one small batch's tensors


def dataset_bytes(data: DataSpec) -> int:
    """The dataset as float32 tensors, and the subsets drawn from it (0 when the size is unknown)."""
    info = DATASET_INFO[data.name]
    if info.train is None:  # a folder or an upload: not estimated
        return 0
    n_train, n_test, c, side = info.train, info.test, info.channels, info.side
    per_image = 4 * c * side * side
    subsets = min(data.train_subset or 0, n_train) + min(data.test_subset or 0, n_test)
    return per_image * (n_train + n_test + subsets) + n_train + n_test  # + the uint8 arrays read first


def classifier_numbers(model: ModelSpec) -> tuple[int, int]:
    """(parameters, activation elements kept for the backward pass per image) of a classifier."""
    family = ARCHS[model.arch].family
    if family == "resnet":
        return _resnet_numbers(model)
    if family == "wide_resnet":
        return _wide_resnet_numbers(model)
    c, side, w, k = model.in_channels, model.image_size, model.width, model.num_classes
    if model.arch == "small_cnn":
        q, h = side // 4, model.hidden or 4 * w
        params = (c * w * 9 + w) + (w * 2 * w * 9 + 2 * w) + (2 * w * q * q * h + h) + (h * k + k)
        activations = w * side * side * 2 + 2 * w * (side // 2) ** 2 * 2 + h
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


def _smooth(model: ModelSpec) -> bool:
    """A smooth activation, or the probe: it keeps its input for the backward pass (ReLU its output)."""
    return model.activation.name != "relu" or model.activation.probe != "none"


def _halved(side: int) -> int:
    """The side after a stride-2 convolution or pool with "same" padding."""
    return (side + 1) // 2


def _resnet_numbers(model: ModelSpec) -> tuple[int, int]:
    """torchvision's ResNet: every convolution is followed by batch norm (2 parameters a channel)
    and, but for a shortcut's, an activation. Kept per such triple: the convolution's output and
    the activation's (and its input, smooth); per shortcut, its convolution's output."""
    block, layers = RESNET_STAGES[depth_of(model)]
    c, w, side = model.in_channels, model.width, model.image_size
    per_conv, image = 3 if _smooth(model) else 2, c * side * side  # the first convolution keeps the image
    if model.stem == "cifar":
        params, kept = c * w * 9 + 2 * w, image + per_conv * w * side * side
    else:
        side = _halved(side)
        params, kept = c * w * 49 + 2 * w, image + per_conv * w * side * side
        side = _halved(side)
        kept += 3 * w * side * side  # the max-pool's output and its int64 indices
    c_in, expansion = w, 4 if block == "bottleneck" else 1
    for i, blocks in enumerate(layers):
        planes = w * 2**i
        for j in range(blocks):
            stride_here = i > 0 and j == 0
            out_side = _halved(side) if stride_here else side
            if block == "bottleneck":
                convs = [(c_in, planes, 1, side), (planes, planes, 9, out_side), (planes, 4 * planes, 1, out_side)]
            else:
                convs = [(c_in, planes, 9, out_side), (planes, planes, 9, out_side)]
            for ci, co, kk, s in convs:
                params += ci * co * kk + 2 * co
                kept += per_conv * co * s * s
            if stride_here or c_in != planes * expansion:  # the 1×1 shortcut and its batch norm
                params += c_in * planes * expansion + 2 * planes * expansion
                kept += planes * expansion * out_side * out_side
            c_in, side = planes * expansion, out_side
    return params + c_in * model.num_classes + model.num_classes, int(kept * RSS_PER_SAVED)


def _wide_resnet_numbers(model: ModelSpec) -> tuple[int, int]:
    """A WRN: three stages of pre-activation blocks (batch norm, activation, convolution, twice).
    Kept per block: its first activation's output at the block's input size, the first
    convolution's output, the second activation's output, the block's output (and each
    activation's input, smooth)."""
    n, k = wrn_blocks_per_stage(depth_of(model)), widen_factor_of(model)
    c, w, side = model.in_channels, model.width, model.image_size
    act = 2 if _smooth(model) else 1
    params, kept = c * w * 9, (c + w) * side * side  # the image, and the stem's output (the first block's input)
    c_in = w
    for stage, c_out in enumerate((w * k, 2 * w * k, 4 * w * k)):
        out_side = _halved(side) if stage > 0 else side  # the stage's first block strides
        for i in range(n * (2 if stage == 0 and model.sub_block1 else 1)):
            first = i % n == 0
            ci, si = (c_in, side) if first else (c_out, out_side)
            params += 2 * ci + ci * c_out * 9 + 2 * c_out + c_out * c_out * 9
            if first and ci != c_out:
                params += ci * c_out
            if not (stage == 0 and i >= n):  # the unused sub_block1 holds weights and keeps nothing
                kept += act * ci * si * si + (act + 2) * c_out * out_side * out_side
        c_in, side = c_out, out_side
    kept += act * c_in * side * side  # the last batch norm's activation
    params += 2 * c_in + c_in * model.num_classes + model.num_classes
    return params, int(kept * RSS_PER_SAVED)


def unet_params(spec: DDPMTrainSpec) -> int:
    """A diffusers UNet2DModel's parameters, roughly: two 3×3 convolutions per block and level."""
    channels = spec.unet.block_out_channels
    per_level = [2 * spec.unet.layers_per_block * 9 * ch * ch for ch in channels]
    return int(2.2 * sum(per_level))  # down and up paths, time embeddings, skips


def train_bytes(spec: TrainSpec, model: ModelSpec | None = None) -> int:
    """Adversarial training: `gpus` processes, each with the data, the model and its share of the batch."""
    params, activations = classifier_numbers(spec.model)
    states = 4 if spec.optim.name == "adam" else 3  # weights, grads, momentum (+ Adam's second moment)
    states += 1  # the checkpoint's digest reads the weights file whole (+100 MiB measured on WRN-28-10)
    states += (spec.recipe.ema_decay is not None) + (spec.recipe.select == "best")  # the average, the best epoch's
    copies = spec.noise.samples if spec.method == "smoothadv" else 1  # SmoothAdv's m noisy copies per image
    batch = spec.batch_size // spec.gpus * copies * activations * (2 if spec.amp else 4)  # bf16 under amp
    return (BASELINE_BYTES + dataset_bytes(spec.data) + params * 4 * states + batch) * spec.gpus


def evaluation_bytes(spec: EvalSpec, model: ModelSpec | None = None) -> int:
    """An evaluation: the data, the model and an attack's backward pass over one batch (no
    optimizer); the baseline and the data alone when the model's architecture is not known."""
    if model is None:
        return BASELINE_BYTES + dataset_bytes(spec.data)
    params, activations = classifier_numbers(model)
    return BASELINE_BYTES + dataset_bytes(spec.data) + params * 4 * 2 + spec.batch_size * activations * 4


def certification_bytes(spec: CertifySpec, model: ModelSpec | None = None) -> int:
    """A certification: the data, the model, a batch of noisy copies forward, and with the
    empirical attack a backward pass over them."""
    if model is None:
        return BASELINE_BYTES + dataset_bytes(spec.data)
    params, activations = classifier_numbers(model)
    return BASELINE_BYTES + dataset_bytes(spec.data) + params * 4 * 2 + spec.smoothing.batch * activations * 4


def ddpm_train_bytes(spec: DDPMTrainSpec, model: ModelSpec | None = None) -> int:
    side, c = spec.image_size, DATASET_INFO[spec.data.name].channels or 1
    activations = sum(4 * ch * (side >> i) ** 2 for i, ch in enumerate(spec.unet.block_out_channels)) * 2
    share = spec.batch_size // spec.gpus
    batch = share * activations * 4 * SAVED_PER_UNET_LEVEL + share * c * side * side * 4
    return (BASELINE_BYTES + 300 * MIB + dataset_bytes(spec.data) + unet_params(spec) * 4 * 5 + batch) * spec.gpus


def model_upload_bytes(spec: ModelUploadSpec, model: ModelSpec | None = None) -> int:
    """The weights (the upload's bytes and the loaded model) and the dataset their clean accuracy is
    measured on."""
    params, _ = classifier_numbers(spec.model)
    return BASELINE_BYTES + dataset_bytes(spec.data) + params * 4 * 2


def dataset_upload_bytes(spec: DatasetUploadSpec, model: ModelSpec | None = None) -> int:
    """The archive and its decoded arrays: a bound, not a fit (the archive's size is not in the
    spec): the uncompressed members the archive check admits, held once as bytes and once decoded."""
    return BASELINE_BYTES + 2 * ARCHIVE_BYTES


def interactive_bytes(spec: Spec, model: ModelSpec | None = None) -> int:
    """Sampling, the forward explorer, an image attack, registering a defense: one model and a small
    batch on the interactive queue, dominated by the process's baseline (a bound, not a fit)."""
    return BASELINE_BYTES + INTERACTIVE_MODEL_BYTES


def generation_bytes(spec: DatasetGenerationSpec, model: ModelSpec | None = None) -> int:
    """Dataset generation: the diffusion model, one shard being sampled, and the real test split
    (a bound, not a fit: the dataset is not known before the model is loaded)."""
    return BASELINE_BYTES + INTERACTIVE_MODEL_BYTES + spec.shard_size * 4 * 3 * 64 * 64 * 2
