"""Voxel-wise ROC and precision-recall curves per region from nnU-Net's saved probabilities (``--npz``).

nnU-Net writes ``probabilities`` of shape (C, z, y, x), in the array order of the segmentation file
(``export_prediction.convert_predicted_logits_to_segmentation_with_correct_shape``). For a region-based dataset
channel i is the sigmoid of the i-th non-background entry of dataset.json's ``labels``; for a label-based one
the channels are the softmax over all labels, so a region's probability is the sum over its labels.
Curves are built from fixed-bin histograms, which keeps memory flat for full-size volumes.
"""
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:  # imported when called: nnU-Net's label handling imports torch
    from nnunetv2.utilities.label_handling.label_handling import LabelManager

N_BINS = 200


def label_manager(dataset_json: Mapping) -> "LabelManager":
    """nnU-Net's ``LabelManager`` of a dataset.json: it decides whether the dataset is region-based and the order
    of the output channels (``all_regions`` or ``all_labels``)."""
    from nnunetv2.utilities.label_handling.label_handling import LabelManager

    labels = dataset_json["labels"]
    order = dataset_json.get("regions_class_order")
    if order is None:
        # nnU-Net 2.8.1 asserts one regions_class_order entry per region although the channel order does not
        # depend on it; a hand-written dataset.json may lack it, so a placeholder of that length stands in
        order = [0] * sum(1 for k in labels if k not in ("background", "ignore"))
    return LabelManager(labels, order)


def region_channels(dataset_json: Mapping, regions: Mapping[str, Sequence[int]]) -> Tuple[bool, Dict[str, List[int]]]:
    """``(region_based, {region: channel indices to sum})`` from dataset.json ``labels``.

    ``ValueError`` when a region-based dataset has no channel for one of ``regions``.
    """
    manager = label_manager(dataset_json)
    if manager.has_regions:
        fg = [tuple(sorted(r)) if isinstance(r, tuple) else (int(r),) for r in manager.all_regions]
        out = {}
        for region, members in regions.items():
            key = tuple(sorted(members))
            if key not in fg:
                raise ValueError(f"dataset.json has no region {list(key)} for {region}; regions: {fg}")
            out[region] = [fg.index(key)]
        return True, out
    all_labels = [int(v) for v in manager.all_labels]
    return False, {region: [all_labels.index(m) for m in members if m in all_labels]
                   for region, members in regions.items()}


def accumulate(hist: Dict[str, np.ndarray], probs: np.ndarray, ref_masks: Mapping[str, np.ndarray],
               channels: Mapping[str, List[int]]) -> None:
    """Add one case to ``hist[region]`` (shape (2, N_BINS): negatives, positives)."""
    for region, chans in channels.items():
        p = np.clip(probs[chans].sum(axis=0), 0.0, 1.0)
        if p.shape != ref_masks[region].shape:
            raise ValueError(f"probabilities of shape {p.shape} do not match the reference {ref_masks[region].shape}")
        h = hist.setdefault(region, np.zeros((2, N_BINS), dtype=np.int64))
        bins = np.minimum((p * N_BINS).astype(np.int64), N_BINS - 1)
        h[0] += np.bincount(bins[~ref_masks[region]], minlength=N_BINS)
        h[1] += np.bincount(bins[ref_masks[region]], minlength=N_BINS)


def curves(hist: np.ndarray) -> Optional[Dict[str, object]]:
    """ROC (fpr, tpr, auc) and PR (recall, precision, average precision) from a (2, N_BINS) histogram;
    None when the reference has no positive or no negative voxel (the curve is undefined)."""
    neg, pos = hist[0][::-1].cumsum(), hist[1][::-1].cumsum()  # voxels at or above each threshold, high first
    if pos[-1] == 0 or neg[-1] == 0:
        return None
    tpr, fpr = np.concatenate(([0.0], pos / pos[-1])), np.concatenate(([0.0], neg / neg[-1]))
    predicted = pos + neg
    precision = np.where(predicted > 0, pos / np.maximum(predicted, 1), 1.0)
    recall = pos / pos[-1]
    ap = float(np.sum(np.diff(np.concatenate(([0.0], recall))) * precision))
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(np.trapezoid(tpr, fpr)),
            "recall": recall.tolist(), "precision": precision.tolist(), "ap": ap}
