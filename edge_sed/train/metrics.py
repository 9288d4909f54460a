"""Clip-level tagging metrics in numpy/scipy: mAP, ROC AUC, d' and accuracy.

``average_precision`` and ``roc_auc`` follow scikit-learn's definitions
(``average_precision_score``: the step-wise sum over distinct thresholds;
``roc_auc_score``: the Mann-Whitney statistic with ties counted half), so the
numbers compare with PANNs' and EfficientAT's reports.
"""

from __future__ import annotations

import numpy as np
import scipy.stats

__all__ = ["average_precision", "roc_auc", "d_prime", "tagging_metrics"]


def average_precision(target: np.ndarray, score: np.ndarray) -> float:
    """Average precision of one class: ``sum_n (R_n - R_{n-1}) * P_n`` over distinct thresholds.

    Parameters
    ----------
    target : ndarray, shape (n,), 0/1
    score : ndarray, shape (n,)

    Returns NaN when the class has no positive.
    """
    target = np.asarray(target) > 0.5
    n_positive = int(target.sum())
    if n_positive == 0:
        return float("nan")
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="mergesort")
    sorted_score = np.asarray(score, dtype=np.float64)[order]
    hits = np.cumsum(target[order])
    # the last index of each run of equal scores is one threshold
    last = np.r_[np.flatnonzero(np.diff(sorted_score)), len(sorted_score) - 1]
    true_pos = hits[last]
    precision = true_pos / (last + 1)
    recall_step = np.diff(np.r_[0, true_pos]) / n_positive
    return float(np.sum(recall_step * precision))


def roc_auc(target: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of one class (ties count half); NaN without both classes."""
    target = np.asarray(target) > 0.5
    n_positive = int(target.sum())
    n_negative = len(target) - n_positive
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    ranks = scipy.stats.rankdata(np.asarray(score, dtype=np.float64))
    return float((ranks[target].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))


def d_prime(auc: float) -> float:
    """Sensitivity index from an AUC, ``sqrt(2) * Phi^-1(auc)`` (as in AudioSet papers)."""
    return float(np.sqrt(2.0) * scipy.stats.norm.ppf(auc))


def tagging_metrics(targets: np.ndarray, scores: np.ndarray, *, multi_label: bool) -> dict[str, float]:
    """Metrics of clip-level scores against targets.

    Parameters
    ----------
    targets : ndarray, shape (clips, classes), 0/1
    scores : ndarray, shape (clips, classes)
        Probabilities (or any monotonic score per class).
    multi_label : bool
        Single-label data also gets ``accuracy`` (arg-max against the one true class).

    Returns
    -------
    dict with ``mAP``, ``AUC``, ``d_prime`` (macro means over the classes that
    have positives) and, for single-label data, ``accuracy``.
    """
    targets = np.asarray(targets)
    scores = np.asarray(scores, dtype=np.float64)
    ap = np.array([average_precision(targets[:, k], scores[:, k]) for k in range(targets.shape[1])])
    auc = np.array([roc_auc(targets[:, k], scores[:, k]) for k in range(targets.shape[1])])
    mean_auc = float(np.nanmean(auc)) if np.isfinite(auc).any() else float("nan")
    result = {
        "mAP": float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan"),
        "AUC": mean_auc,
        "d_prime": d_prime(mean_auc) if np.isfinite(mean_auc) else float("nan"),
    }
    if not multi_label:
        result["accuracy"] = float(np.mean(scores.argmax(axis=1) == targets.argmax(axis=1)))
    return result
