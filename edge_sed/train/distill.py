"""Knowledge distillation from cached teacher logits (the EfficientAT design).

The teacher runs once over the training clips; its logits go to disk
(``logits.npy``, shape (crops, classes), plus ``index.json`` mapping each clip
key to its rows) and are looked up per clip while the student trains.

Which crops? With ``crop_hop_s > 0`` the teacher scores every crop of a fixed
grid (``crop_s`` long, every ``crop_hop_s``) and the student's random crops
start only on that grid, so each crop gets the teacher's view of *that* crop:
a 2 s crop of a 5 s clip that misses the dog bark gets a soft target that says
so. With ``crop_hop_s = 0`` the teacher scores each whole clip once
(EfficientAT's clip-level predictions) and every crop of it shares that target.

The loss is ``kd_lambda * BCE(logits, labels) + (1 - kd_lambda) *
BCE(logits / T, sigmoid(teacher_logits / T))``. Clips without a cached
teacher entry get a zero weight in the second term. As in EfficientAT there is
no ``T**2`` factor.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sed.bundle import file_sha256
from edge_sed.errors import ConfigError, ModelError
from edge_sed.train.data import ClipTable, crop_offsets

if TYPE_CHECKING:
    import torch

__all__ = ["DistillConfig", "TeacherLogits", "compute_teacher_logits", "cached_teacher_logits", "distillation_loss"]

log = logging.getLogger(__name__)

LOGITS_FILE = "logits.npy"
INDEX_FILE = "index.json"


@dataclass(frozen=True, slots=True)
class DistillConfig:
    """Distillation settings: the teacher checkpoint, the loss mix and the crop grid.

    ``kd_lambda`` weighs the label loss (EfficientAT: 0.1), ``temperature``
    softens both logits (EfficientAT: 1). ``logits_cache`` is the cache folder
    (default: ``<out_dir>/teacher_logits``).
    """

    teacher: str = ""
    kd_lambda: float = 0.1
    temperature: float = 1.0
    crop_hop_s: float = 0.5
    logits_cache: str = ""
    batch_size: int = 16

    def __post_init__(self) -> None:
        if not self.teacher:
            raise ConfigError("needs teacher (the path of a teacher checkpoint)")
        if not 0.0 <= self.kd_lambda <= 1.0:
            raise ConfigError(f"kd_lambda must be in [0, 1], got {self.kd_lambda!r}")
        if self.temperature <= 0 or self.crop_hop_s < 0 or self.batch_size <= 0:
            raise ConfigError("temperature and batch_size must be > 0 and crop_hop_s >= 0")


@dataclass(frozen=True, slots=True)
class TeacherLogits:
    """Cached teacher logits: rows ``offsets[i] : offsets[i] + counts[i]`` belong to clip ``keys[i]``.

    Attributes
    ----------
    logits : ndarray, shape (crops, classes), float32
    keys : tuple of str
    offsets, counts : ndarray, shape (clips,), int
    meta : dict (teacher path and sha256, labels, crop_s, crop_hop_s)
    """

    logits: np.ndarray
    keys: tuple[str, ...]
    offsets: np.ndarray
    counts: np.ndarray
    meta: dict[str, Any]

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / LOGITS_FILE, self.logits)
        index = {**self.meta, "keys": list(self.keys), "offsets": self.offsets.tolist(), "counts": self.counts.tolist()}
        (folder / INDEX_FILE).write_text(json.dumps(index), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> TeacherLogits:
        folder = Path(folder)
        index = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))
        keys, offsets, counts = index.pop("keys"), index.pop("offsets"), index.pop("counts")
        return cls(np.load(folder / LOGITS_FILE), tuple(keys), np.array(offsets), np.array(counts), index)

    def rows_for(self, keys: tuple[str, ...] | list[str]) -> np.ndarray:
        """Each key's clip number in this cache, shape (len(keys),), int; -1 where the teacher has no entry."""
        row_of = {key: i for i, key in enumerate(self.keys)}
        return np.array([row_of.get(key, -1) for key in keys], dtype=np.int64)

    def lookup(self, clips: np.ndarray, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Teacher logits of (clip, crop) pairs.

        Parameters
        ----------
        clips : ndarray, shape (batch,), from :meth:`rows_for` (-1: no entry)
        crops : ndarray, shape (batch,), the crop's position on the grid (0 for clip-level logits)

        Returns
        -------
        logits : ndarray, shape (batch, classes), float32 (zeros where there is no entry)
        weight : ndarray, shape (batch,), float32, 1 where there is an entry, else 0
        """
        clips, crops = np.asarray(clips), np.asarray(crops)
        known = clips >= 0
        safe = np.where(known, clips, 0)
        rows = self.offsets[safe] + np.minimum(crops, self.counts[safe] - 1)
        logits = np.where(known[:, None], self.logits[rows], 0.0).astype(np.float32)
        return logits, known.astype(np.float32)


def compute_teacher_logits(
    teacher_path: str | Path, table: ClipTable, *, crop_s: float, crop_hop_s: float, batch_size: int, device: str
) -> TeacherLogits:
    """Run the teacher once over every clip of *table* (every grid crop, or whole clips when ``crop_hop_s`` is 0)."""
    import torch

    from edge_sed.models.checkpoint import load_checkpoint

    teacher_path = Path(teacher_path)
    loaded = load_checkpoint(teacher_path)
    if tuple(loaded.labels) != tuple(table.labels):
        raise ModelError(
            f"teacher {str(teacher_path)!r} has labels {tuple(loaded.labels)[:5]!r}..., the data has "
            f"{table.labels[:5]!r}...; distil from a teacher trained on the same labels"
        )
    model = loaded.model.to(device).eval()
    rate = loaded.frontend.sample_rate
    crop_samples, hop_samples = round(crop_s * rate), round(crop_hop_s * rate)
    pieces: list[np.ndarray] = []
    counts = np.zeros(len(table), dtype=np.int64)
    batch: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            with torch.inference_mode():
                out = model(torch.from_numpy(np.stack(batch)).to(device))
            pieces.append(out["logits"].float().cpu().numpy())
            batch.clear()

    for i in range(len(table)):
        samples = table.load(i, rate)
        if crop_hop_s:
            crops = [samples[start : start + crop_samples] for start in crop_offsets(len(samples), crop_samples, hop_samples)]
            crops = [np.pad(crop, (0, crop_samples - len(crop))) for crop in crops]
        else:
            flush()  # whole clips may differ in length: one clip per forward pass
            crops = [samples]
        counts[i] = len(crops)
        for crop in crops:
            batch.append(crop)
            if len(batch) == batch_size or not crop_hop_s:
                flush()
    flush()
    log.info("teacher %s: %d logits over %d clips", teacher_path, int(counts.sum()), len(table))
    return TeacherLogits(
        logits=np.concatenate(pieces).astype(np.float32),
        keys=table.keys,
        offsets=np.r_[0, np.cumsum(counts)[:-1]],
        counts=counts,
        meta={
            "teacher": str(teacher_path),
            "teacher_sha256": file_sha256(teacher_path),
            "labels": list(table.labels),
            "crop_s": crop_s,
            "crop_hop_s": crop_hop_s,
        },
    )


def cached_teacher_logits(config: DistillConfig, table: ClipTable, *, crop_s: float, folder: Path, device: str) -> TeacherLogits:
    """The cached logits in *folder* if they were made by this teacher, grid and clips; else compute and save them."""
    teacher = Path(config.teacher)
    if not teacher.is_file():
        raise ModelError(f"teacher checkpoint {str(teacher)!r} does not exist; train one with 'edge-sed train teacher'")
    if (folder / INDEX_FILE).is_file():
        cached = TeacherLogits.load(folder)
        same = (
            cached.meta.get("teacher_sha256") == file_sha256(teacher)
            and cached.meta.get("crop_s") == crop_s
            and cached.meta.get("crop_hop_s") == config.crop_hop_s
            and set(table.keys) <= set(cached.keys)
        )
        if same:
            log.info("teacher logits from cache %s", folder)
            return cached
        log.info("teacher logits in %s are stale (other teacher, grid or clips): computing again", folder)
    logits = compute_teacher_logits(
        teacher, table, crop_s=crop_s, crop_hop_s=config.crop_hop_s, batch_size=config.batch_size, device=device
    )
    logits.save(folder)
    return logits


def distillation_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    soft_target: torch.Tensor | None,
    weight: torch.Tensor | None,
    *,
    kd_lambda: float,
    temperature: float,
) -> torch.Tensor:
    """``kd_lambda * BCE(logits, target) + (1 - kd_lambda) * BCE(logits / T, soft_target)``.

    Parameters
    ----------
    logits : tensor, shape (batch, classes), the student's pre-sigmoid outputs
    target : tensor, shape (batch, classes), labels in [0, 1] (mixed by mixup)
    soft_target : tensor, shape (batch, classes), ``sigmoid(teacher_logits / T)``
        (mixed by mixup), or None for plain label training
    weight : tensor, shape (batch,), 1 where the teacher has the clip, else 0
    """
    import torch.nn.functional as F

    label_loss = F.binary_cross_entropy_with_logits(logits, target)
    if soft_target is None:
        return label_loss
    per_clip = F.binary_cross_entropy_with_logits(logits / temperature, soft_target, reduction="none").mean(dim=1)
    soft_loss = (per_clip * weight).mean() if weight is not None else per_clip.mean()
    return kd_lambda * label_loss + (1.0 - kd_lambda) * soft_loss
