"""Class-balanced sampling as in PANNs, for one process or shared across DDP ranks.

PANNs' ``BalancedTrainSampler`` keeps one shuffled queue of clip indices per
class and takes one clip from each class in turn, so rare classes are seen as
often as common ones. :class:`BalancedSampler` does the same; with
``num_replicas`` > 1 every rank draws the same global sequence (same seed and
epoch) and keeps every ``num_replicas``-th index from its ``rank`` on, so the
ranks see different clips.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from edge_sed.errors import ConfigError

__all__ = ["BalancedSampler", "balanced_indices"]


def balanced_indices(targets: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """*n_samples* clip indices drawn one class at a time.

    Parameters
    ----------
    targets : ndarray, shape (clips, classes), 0/1
    n_samples : how many indices to draw
    rng : the random stream

    Classes without clips are skipped. The class order is a fresh permutation
    on each round; each class's queue is reshuffled when it runs out.
    """
    queues = [np.flatnonzero(targets[:, k] > 0.5) for k in range(targets.shape[1])]
    classes = [k for k, queue in enumerate(queues) if len(queue)]
    if not classes:
        raise ConfigError("balanced sampling needs at least one clip with a positive label")
    order = {k: rng.permutation(queues[k]) for k in classes}
    pointer = dict.fromkeys(classes, 0)
    picked = np.empty(n_samples, dtype=np.int64)
    filled = 0
    while filled < n_samples:
        for k in rng.permutation(classes):
            if filled == n_samples:
                break
            if pointer[k] == len(order[k]):
                order[k], pointer[k] = rng.permutation(queues[k]), 0
            picked[filled] = order[k][pointer[k]]
            pointer[k] += 1
            filled += 1
    return picked


class BalancedSampler:
    """A torch ``Sampler`` of class-balanced indices; one rank's share under DDP.

    Parameters
    ----------
    targets : ndarray, shape (clips, classes)
    n_samples : indices per epoch over all ranks (default: the number of clips)
    seed : the same on every rank
    num_replicas, rank : the DDP world size and this process's rank

    Call :meth:`set_epoch` before each epoch, as with ``DistributedSampler``.
    """

    def __init__(
        self,
        targets: np.ndarray,
        *,
        n_samples: int | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if not 0 <= rank < num_replicas:
            raise ConfigError(f"rank must be in 0..{num_replicas - 1}, got {rank!r}")
        self.targets = targets
        total = n_samples or len(targets)
        self.n_per_rank = -(-total // num_replicas)
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_per_rank

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng((self.seed, self.epoch))
        everyone = balanced_indices(self.targets, self.n_per_rank * self.num_replicas, rng)
        return iter(everyone[self.rank :: self.num_replicas].tolist())
