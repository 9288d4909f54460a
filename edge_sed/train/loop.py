"""The one training loop: teachers and students, every dataset, one or many GPUs.

A recipe file (TOML) has the sections ``[model]``, ``[frontend]``, ``[data]``,
``[augment]``, ``[train]`` and, for a student, ``[distill]``; each maps onto a
frozen dataclass and a key with no field is refused. :func:`load_recipe` reads
it and applies ``section.key=value`` overrides from the command line.

:func:`train` runs it: data -> balanced sampler -> waveform augmentation ->
log-mel (the model's own front end) -> SpecAugment and mixup -> model ->
label BCE (plus the teacher's soft targets when distilling) -> AdamW with
linear warm-up and cosine decay. After every epoch it validates (mAP, AUC, d';
accuracy for single-label data), logs a CSV row and TensorBoard scalars, keeps
``best.pt`` and writes ``last.pt`` (with the optimizer state, for resuming).

Under ``torchrun`` (``WORLD_SIZE`` > 1) it runs DDP (NCCL on GPUs, gloo on
CPUs): each rank draws its share of the same balanced sequence; rank 0
validates and writes every file.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
import re
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

import numpy as np

from edge_sed.audio import read_warning_summary
from edge_sed.config import FrontendConfig, from_mapping, load_toml, table
from edge_sed.errors import ConfigError, ModelError
from edge_sed.train.augment import AugmentConfig, WaveformAugment, mixup, spec_augment
from edge_sed.train.data import ClipDataset, ClipTable, DataConfig, collate_clips, read_dataset
from edge_sed.train.distill import DistillConfig, TeacherLogits, cached_teacher_logits, distillation_loss
from edge_sed.train.metrics import tagging_metrics
from edge_sed.train.sampler import BalancedSampler

if TYPE_CHECKING:
    import torch

__all__ = [
    "ModelConfig",
    "TrainConfig",
    "Recipe",
    "load_recipe",
    "ProgressHook",
    "TrainResult",
    "train",
    "training_loader",
    "evaluate_model",
    "evaluate_checkpoint",
]

log = logging.getLogger(__name__)


def _check_device(device: str, *, where: str = "device") -> None:
    """:class:`ConfigError` unless *device* is 'auto', 'cpu', 'cuda' or 'cuda:N'."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise ConfigError(f"{where} must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")


CSV_LOG = "metrics.csv"
BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
HEAD_PREFIX = "fc_audioset."
FRONTEND_PREFIXES = ("spectrogram_extractor.", "logmel_extractor.", "logmel.", "frontend.")


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """The architecture (a registry name) and, for fine-tuning, a checkpoint to start from.

    ``init_checkpoint`` (an edge-sed or official PANNs checkpoint) gives every
    weight except the classifier head ``fc_audioset``, which is new and sized
    for the data's labels.
    """

    architecture: str = "cnn6"
    init_checkpoint: str = ""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Optimisation and run settings.

    ``steps_per_epoch`` 0 means one pass over the training clips.
    ``device`` "auto" picks CUDA when present. ``bf16`` autocasts on CUDA
    (ignored on CPU). ``threads`` > 0 calls ``torch.set_num_threads``.
    ``resume`` is a ``last.pt`` to continue from. ``bn_recalibration_batches``
    > 0 recomputes the BatchNorm statistics on that many batches of clean
    (unaugmented) training crops before each validation ("precise BN"): with
    few steps and strong augmentation the running statistics of a deep net
    (MobileNet's 27 BatchNorms) drift from clean data, and validation scores
    collapse to a constant.
    """

    out_dir: str = "runs/train"
    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int = 32
    steps_per_epoch: int = 0
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01
    seed: int = 0
    num_workers: int = 0
    threads: int = 0
    device: str = "auto"
    bf16: bool = True
    resume: str = ""
    tensorboard: bool = True
    bn_recalibration_batches: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("steps_per_epoch", "warmup_steps", "num_workers", "threads", "weight_decay", "bn_recalibration_batches"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"need lr > 0 and 0 <= min_lr_ratio <= 1, got {self.lr!r}, {self.min_lr_ratio!r}")
        _check_device(self.device)


@dataclass(frozen=True, slots=True)
class Recipe:
    """One training recipe: everything a run needs, as read from its TOML file."""

    model: ModelConfig
    data: DataConfig
    frontend: FrontendConfig | None = None
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()
    distill: DistillConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            section.name: dataclasses.asdict(value)
            for section in dataclasses.fields(self)
            if (value := getattr(self, section.name)) is not None
        }


_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "frontend": FrontendConfig,
    "augment": AugmentConfig,
    "train": TrainConfig,
    "distill": DistillConfig,
}


def _parse_value(text: str, field_type: str) -> Any:
    """A TOML value (``3``, ``1e-3``, ``true``, ``"x"``, ``[1, 2]``); bare text for string fields."""
    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text
    return text if field_type == "str" and not isinstance(value, str) else value


def load_recipe(path: str | Path | Mapping[str, Any], overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe (a TOML path or an already parsed mapping) and apply ``section.key=value`` overrides.

    Precedence: dataclass defaults < config file < overrides.
    """
    raw = load_toml(path) if isinstance(path, (str, Path)) else dict(path)
    sections = {name: dict(table(values, name)) for name, values in raw.items()}
    for override in overrides:
        key, sep, text = override.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"override {override!r} is not section.key=value (e.g. train.epochs=3)")
        types = {f.name: str(f.type) for f in dataclasses.fields(_SECTIONS[section])} if section in _SECTIONS else {}
        sections.setdefault(section, {})[name] = _parse_value(text.strip(), types.get(name, ""))
    unknown = [name for name in sections if name not in _SECTIONS]
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}]; valid sections: {', '.join(_SECTIONS)}")
    if "data" not in sections:
        raise ConfigError("the recipe has no [data] section (kind, root, val_fold, ...)")
    built = {name: from_mapping(cls, sections[name], where=name) for name, cls in _SECTIONS.items() if name in sections}
    built.setdefault("model", ModelConfig())
    return Recipe(**built)


class ProgressHook(Protocol):
    """Progress reports from :func:`train` (the CLI draws them with rich)."""

    def begin(self, description: str, total: int) -> None: ...

    def advance(self, n_clips: int, loss: float | None = None) -> None: ...

    def end(self, summary: str) -> None: ...


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What a run produced: its best checkpoint and the validation metrics of every epoch."""

    best_checkpoint: Path
    best_metrics: dict[str, float]
    history: list[dict[str, float]]


@dataclass(frozen=True, slots=True)
class _Distributed:
    rank: int
    world_size: int
    device: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _torch_device(device: str, *, where: str = "device") -> str:
    """The torch device *device* names in one process ('auto': CUDA when present);
    :class:`ConfigError` if it asks for CUDA that torch does not see."""
    import torch

    _check_device(device, where=where)
    cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise ConfigError(f"{where} {device!r} asks for CUDA, but torch sees no GPU; use 'cpu'")
    return ("cuda" if device == "auto" else device) if cuda else "cpu"


def _start_distributed(device: str) -> _Distributed:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1 and pick this rank's device."""
    import torch
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    single = _torch_device(device, where="[train] device")
    if world_size == 1:
        return _Distributed(0, 1, single)
    cuda = single != "cpu"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local_rank)
    return _Distributed(dist.get_rank(), world_size, f"cuda:{local_rank}" if cuda else "cpu")


def _barrier(where: _Distributed) -> None:
    if where.world_size > 1:
        import torch.distributed as dist

        dist.barrier()


def _lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to *min_ratio* at *total_steps*."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _init_from_checkpoint(model: torch.nn.Module, path: str) -> None:
    """Copy every weight but the head from checkpoint *path*; refuse any other mismatch."""
    from edge_sed.models.checkpoint import load_checkpoint

    source = load_checkpoint(path).model.state_dict()
    target = model.state_dict()
    taken = {
        key: value
        for key, value in source.items()
        if key in target and not key.startswith(HEAD_PREFIX) and value.shape == target[key].shape
    }
    frontend = {key for key in target if key.startswith(FRONTEND_PREFIXES)}
    unfilled = [key for key in target if key not in taken and not key.startswith(HEAD_PREFIX) and key not in frontend]
    if unfilled:
        raise ModelError(
            f"checkpoint {path!r} does not fit this architecture: no weight (or another shape) for "
            f"{', '.join(unfilled[:3])}{' ...' if len(unfilled) > 3 else ''}; pick the architecture it was trained as"
        )
    model.load_state_dict({**target, **taken})
    log.info("initialised %d tensors from %s; new head %s*", len(taken), path, HEAD_PREFIX)


def _build_model(recipe: Recipe, n_classes: int) -> torch.nn.Module:
    from edge_sed.models.registry import build_model

    model = build_model(recipe.model.architecture, num_classes=n_classes, frontend=recipe.frontend)
    if recipe.model.init_checkpoint:
        _init_from_checkpoint(model, recipe.model.init_checkpoint)
    return model


def _logmel_forward(model: torch.nn.Module) -> torch.nn.Module:
    """A module whose ``forward`` is the model's ``forward_logmel``, so DDP can wrap it."""
    import torch

    class LogmelForward(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, logmel: torch.Tensor) -> dict[str, torch.Tensor]:
            return self.inner.forward_logmel(logmel)

    return LogmelForward(model)


def _recalibrate_batchnorm(model: torch.nn.Module, loader: torch.utils.data.DataLoader, n_batches: int, device: str) -> None:
    """Replace every BatchNorm's running statistics by their plain average over *n_batches* of *loader*."""
    import torch

    norms = [module for module in model.modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _, batch in zip(range(n_batches), loader):
            model(batch["waveform"].to(device))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum


def _uses_waveform_augment(config: AugmentConfig) -> bool:
    return bool(config.gain_db or config.shift_s or config.background_prob or config.reverb_prob)


def training_loader(
    recipe: Recipe,
    table: ClipTable,
    sample_rate: int,
    *,
    crop_s: float,
    crop_grid_s: float | None = None,
    num_replicas: int = 1,
    rank: int = 0,
) -> tuple[ClipDataset, BalancedSampler, torch.utils.data.DataLoader]:
    """Augmented random crops of *table*'s clips, class-balanced, in batches: what a training epoch reads.

    Call ``set_epoch`` on the dataset and the sampler before each epoch (new
    crops, new order). One epoch is one pass over the clips unless
    ``[train] steps_per_epoch`` says otherwise.
    """
    import torch

    config = recipe.train
    augment = WaveformAugment(recipe.augment, sample_rate) if _uses_waveform_augment(recipe.augment) else None
    dataset = ClipDataset(table, sample_rate, crop_s=crop_s, crop_grid_s=crop_grid_s, augment=augment, seed=config.seed)
    n_per_epoch = config.steps_per_epoch * config.batch_size * num_replicas or len(table)
    sampler = BalancedSampler(table.targets, n_samples=n_per_epoch, seed=config.seed, num_replicas=num_replicas, rank=rank)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        collate_fn=collate_clips,
        # no persistent workers: each epoch's workers get the dataset with its new epoch (new crops)
        drop_last=len(sampler) >= config.batch_size,
    )
    return dataset, sampler, loader


def evaluate_model(
    model: torch.nn.Module, table: ClipTable, *, sample_rate: int, batch_size: int, device: str
) -> tuple[dict[str, float], np.ndarray]:
    """Metrics of *model* on whole clips of *table*.

    Returns
    -------
    metrics : dict (``mAP``, ``AUC``, ``d_prime``, ``loss`` and, single-label, ``accuracy``)
    scores : ndarray, shape (clips, classes), float32 probabilities
    """
    import torch
    import torch.nn.functional as F

    dataset = ClipDataset(table, sample_rate)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate_clips)
    was_training = model.training
    model.eval()
    logits = []
    with torch.inference_mode():
        for batch in loader:
            logits.append(model(batch["waveform"].to(device))["logits"].float().cpu())
    model.train(was_training)
    all_logits = torch.cat(logits)
    targets = torch.from_numpy(table.targets)
    metrics = tagging_metrics(table.targets, torch.sigmoid(all_logits).numpy(), multi_label=table.multi_label)
    metrics["loss"] = float(F.binary_cross_entropy_with_logits(all_logits, targets))
    return metrics, torch.sigmoid(all_logits).numpy()


@read_warning_summary("evaluation clips")
def evaluate_checkpoint(
    checkpoint: str | Path, data: DataConfig, *, fold: int | None = None, batch_size: int = 16, device: str = "cpu"
) -> dict[str, Any]:
    """Metrics of a checkpoint on a dataset (one fold of it, or all clips when *fold* is None).

    Clips of labels the checkpoint does not know are left out (a model trained
    on ESC-10 is evaluated on those 10 classes of ESC-50); targets are laid out
    in the checkpoint's label order.
    """
    from edge_sed.models.checkpoint import load_checkpoint

    device = _torch_device(device, where="--device")
    loaded = load_checkpoint(checkpoint)
    table = read_dataset(data)
    shared = tuple(label for label in table.labels if label in loaded.labels)
    if shared and len(shared) < len(table.labels):
        log.info("evaluating on the %d of %d data labels the checkpoint knows", len(shared), len(table.labels))
        table = read_dataset(dataclasses.replace(data, classes=shared))
    if fold is not None:
        table = table.split(fold)[1]
    table = table.with_labels(tuple(loaded.labels))
    metrics, _ = evaluate_model(
        loaded.model.to(device), table, sample_rate=loaded.frontend.sample_rate, batch_size=batch_size, device=device
    )
    return {"checkpoint": str(checkpoint), "data": data.root, "fold": fold, "clips": len(table), **metrics}


class _RunLog:
    """One CSV row and TensorBoard scalars per epoch (rank 0 only)."""

    def __init__(self, out_dir: Path, tensorboard: bool) -> None:
        self.csv_path = out_dir / CSV_LOG
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out_dir / "tensorboard"))

    def write(self, row: dict[str, float], step: int) -> None:
        new = not self.csv_path.exists()
        with self.csv_path.open("a", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self.writer is not None:
            for name, value in row.items():
                if name != "epoch":
                    self.writer.add_scalar(name, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _save(path: Path, model: torch.nn.Module, table: ClipTable, recipe: Recipe, rank: int, **info: Any) -> None:
    from edge_sed.models.checkpoint import save_checkpoint

    log.info("rank %d writes %s", rank, path)
    save_checkpoint(
        path,
        model,
        labels=list(table.labels),
        provenance=table.provenance,
        train_config=recipe.to_dict(),
        **info,
    )


def _batch_loss(
    batch: dict[str, Any],
    model: torch.nn.Module,
    forward: torch.nn.Module,
    recipe: Recipe,
    teacher: TeacherLogits | None,
    teacher_rows: np.ndarray,
    rng: np.random.Generator,
    device: str,
    use_bf16: bool,
) -> torch.Tensor:
    """Front end, SpecAugment and mixup (labels and teacher soft targets alike), forward, loss."""
    import torch

    targets = [batch["target"].to(device)]
    weight = None
    kd_lambda, temperature = (recipe.distill.kd_lambda, recipe.distill.temperature) if recipe.distill else (1.0, 1.0)
    if teacher is not None:
        teacher_logits, teacher_weight = teacher.lookup(teacher_rows[batch["index"].numpy()], batch["crop"].numpy())
        targets.append(torch.sigmoid(torch.from_numpy(teacher_logits).to(device) / temperature))
        weight = torch.from_numpy(teacher_weight).to(device)
    with torch.no_grad():
        logmel = spec_augment(model.logmel(batch["waveform"].to(device, non_blocking=True)), recipe.augment, rng)
        if recipe.augment.mixup_alpha:
            logmel, targets = mixup(logmel, targets, recipe.augment.mixup_alpha, rng)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_bf16):
        logits = forward(logmel)["logits"].float()
    soft_target = targets[1] if teacher is not None else None
    return distillation_loss(logits, targets[0], soft_target, weight, kd_lambda=kd_lambda, temperature=temperature)


@read_warning_summary("training clips")
def train(recipe: Recipe, *, progress: ProgressHook | None = None) -> TrainResult:
    """Train the recipe's model (a teacher, or a student when ``recipe.distill`` is set).

    Returns the best checkpoint (by accuracy for single-label data, mAP for
    multi-label) and the per-epoch validation metrics. Under torchrun only
    rank 0 writes files; every rank returns the same result paths.
    """
    import torch

    config = recipe.train
    where = _start_distributed(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed + where.rank)
    out_dir = Path(config.out_dir)
    if where.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)

    table = read_dataset(recipe.data)
    train_table, val_table = table.split(recipe.data.val_fold)
    model = _build_model(recipe, len(table.labels)).to(where.device)
    sample_rate = model.frontend_config.sample_rate
    monitor = "mAP" if table.multi_label else "accuracy"

    teacher: TeacherLogits | None = None
    if recipe.distill is not None:
        cache = Path(recipe.distill.logits_cache or out_dir / "teacher_logits")
        if where.is_main:
            cached_teacher_logits(recipe.distill, train_table, crop_s=recipe.data.crop_s, folder=cache, device=where.device)
        _barrier(where)
        teacher = TeacherLogits.load(cache)
    teacher_rows = teacher.rows_for(train_table.keys) if teacher is not None else np.zeros(0, dtype=np.int64)

    dataset, sampler, loader = training_loader(
        recipe,
        train_table,
        sample_rate,
        crop_s=recipe.data.crop_s,
        crop_grid_s=recipe.distill.crop_hop_s if recipe.distill and recipe.distill.crop_hop_s else None,
        num_replicas=where.world_size,
        rank=where.rank,
    )
    clean_crops = ClipDataset(train_table, sample_rate, crop_s=recipe.data.crop_s, seed=config.seed + 1)
    recalibration_loader = torch.utils.data.DataLoader(
        clean_crops,
        batch_size=config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(config.seed),
        collate_fn=collate_clips,
    )
    total_steps = config.epochs * len(loader)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, config.warmup_steps, total_steps, config.min_lr_ratio)
    )

    start_epoch, best, history = 0, -math.inf, []
    if config.resume:
        from edge_sed.models.checkpoint import load_checkpoint

        resumed = load_checkpoint(config.resume, architecture=recipe.model.architecture)
        model.load_state_dict(resumed.model.state_dict())
        optimizer.load_state_dict(resumed.info["optimizer"])
        scheduler.load_state_dict(resumed.info["scheduler"])
        start_epoch, best = int(resumed.info["epoch"]) + 1, float(resumed.info["best"])
        history = list(resumed.info.get("history", []))
        if start_epoch >= config.epochs:
            raise ConfigError(f"{config.resume!r} has already run {start_epoch} of {config.epochs} epochs; "
                              "ask for more epochs (--epochs N) to continue it")
        earlier_best = Path(config.resume).with_name(BEST_CHECKPOINT)
        if where.is_main and earlier_best.is_file() and not (out_dir / BEST_CHECKPOINT).exists():
            shutil.copy2(earlier_best, out_dir / BEST_CHECKPOINT)  # into a new --out: the best so far, until beaten
        log.info("resumed from %s at epoch %d", config.resume, start_epoch)

    forward = _logmel_forward(model)
    if where.world_size > 1:
        forward = torch.nn.parallel.DistributedDataParallel(forward)
    use_bf16 = config.bf16 and where.device.startswith("cuda")
    torch.backends.cudnn.benchmark = where.device.startswith("cuda")  # fixed crop length: pick the fastest kernels
    rng = np.random.default_rng((config.seed, where.rank))
    run_log = _RunLog(out_dir, config.tensorboard) if where.is_main else None

    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        model.train()
        started, seen, loss_sum = time.perf_counter(), 0, 0.0
        if progress and where.is_main:
            progress.begin(f"epoch {epoch + 1}/{config.epochs}", len(loader) * config.batch_size)
        for batch in loader:
            log.debug("rank %d epoch %d clips %s", where.rank, epoch, batch["index"].tolist())
            loss = _batch_loss(batch, model, forward, recipe, teacher, teacher_rows, rng, where.device, use_bf16)
            if not torch.isfinite(loss):
                raise ModelError(f"training diverged at epoch {epoch + 1}: loss is {loss.item()}; lower [train] lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += len(batch["index"])
            loss_sum += loss.item() * len(batch["index"])
            if progress and where.is_main:
                progress.advance(len(batch["index"]), loss.item())
        elapsed = time.perf_counter() - started
        if where.is_main:
            if config.bn_recalibration_batches:
                clean_crops.set_epoch(epoch)
                _recalibrate_batchnorm(model, recalibration_loader, config.bn_recalibration_batches, where.device)
            metrics, _ = evaluate_model(
                model, val_table, sample_rate=sample_rate, batch_size=config.eval_batch_size, device=where.device
            )
            row = {
                "epoch": epoch + 1,
                "train_loss": loss_sum / max(seen, 1),
                "lr": scheduler.get_last_lr()[0],
                "clips_per_s": seen * where.world_size / elapsed,
                **{f"val_{name}": value for name, value in metrics.items()},
            }
            history.append(row)
            run_log.write(row, (epoch + 1) * len(loader))  # type: ignore[union-attr]
            info = {"metrics": metrics, "epoch": epoch, "history": history}
            if metrics[monitor] > best:
                best = metrics[monitor]
                _save(out_dir / BEST_CHECKPOINT, model, table, recipe, where.rank, **info)
            _save(
                out_dir / LAST_CHECKPOINT,
                model,
                table,
                recipe,
                where.rank,
                **info,
                best=best,
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(),
            )
            if progress:
                progress.end(f"epoch {epoch + 1}: loss {row['train_loss']:.4f}, val {monitor} {metrics[monitor]:.4f}")
            log.info("epoch %d: %s", epoch + 1, row)
        _barrier(where)
    if run_log is not None:
        run_log.close()
    best_row = max(history, key=lambda row: row[f"val_{monitor}"]) if history else {}
    return TrainResult(out_dir / BEST_CHECKPOINT, best_row, history)
