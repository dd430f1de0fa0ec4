"""Postprocessing for the lesion-wise scores: remove small connected components, per region, chosen on
cross-validation predictions.

BraTS ranks by lesion-wise metrics since 2023, where every predicted component that matches no reference lesion
is a false positive scoring Dice 0 (``lesion_wise``): a handful of specks far from the tumour can take a case's
lesion-wise Dice from 0.9 to 0.1 while its global Dice hardly moves. The candidates, per scored region:

- a minimum component size in voxels (``MIN_SIZES``; 0 keeps everything): components of the region (26-connected,
  as the lesion-wise rule counts them) with fewer voxels are removed;
- ``"largest"``: nnU-Net's own candidate (``nnunetv2.postprocessing.remove_connected_components``), every
  component but the largest is removed.

A removed component takes a label from its one-voxel shell (the shell holds no voxel of the region, by connectivity),
preferring labels that keep it in the regions containing its own (``replacement_tiers``): the most frequent shell
label that keeps it in all of them, else in all but the smallest, ..., else the shell's most frequent label. A
speck in the background becomes background, an enhancing speck on necrosis necrosis, one inside oedema oedema, and
a tumour-core component at the tumour's edge oedema where oedema touches it, not the background that surrounds more
of it: that cut the whole tumour into pieces, which the lesion-wise rule then counted as false positives (before
2026-12-02).

The choice (``choose_rules``) goes region by region, largest label set first, as nnU-Net's own does: for each
region the candidate with the best mean lesion-wise Dice over all regions is kept, but only if no region's mean
global Dice falls below its value without postprocessing; ties go to the smaller change.
"""
from collections import Counter
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage

from nnunet_msfen.evaluation.scoring import Scoring

MIN_SIZES = (10, 20, 50, 100, 200, 500, 1000)
LARGEST = "largest"
Rule = Union[int, str]  # a minimum size in voxels (0: none) or LARGEST
Case = Tuple[np.ndarray, np.ndarray, Sequence[float]]  # (prediction, reference, spacing in array axis order)

_CC_STRUCTURE = ndimage.generate_binary_structure(3, 3)  # 26-connectivity, as the lesion-wise rule
_SHELL_STRUCTURE = ndimage.generate_binary_structure(3, 3)


def check_rule(rule: Rule) -> Rule:
    """``rule`` when it is a minimum size >= 0 or ``"largest"``; ``ValueError`` naming it otherwise."""
    if rule == LARGEST or (isinstance(rule, int) and not isinstance(rule, bool) and rule >= 0):
        return rule
    raise ValueError(f"a component rule is a minimum size in voxels (>= 0) or {LARGEST!r}, got {rule!r}")


def replacement_tiers(scoring: Scoring, region: str) -> List[Tuple[int, ...]]:
    """The labels a removed component of ``region`` may take, in order of preference: those that keep it in every
    region containing ``region``, then in every such region but the smallest, ..., then any label outside it."""
    labels = set(scoring.regions[region])
    containing = sorted((set(other) for other in scoring.regions.values() if labels < set(other)), key=len)
    outside = ({0} | set(scoring.allowed) | set().union(*scoring.regions.values())) - labels
    tiers = [tuple(sorted(set.intersection(*containing[i:]) - labels)) for i in range(len(containing))]
    return [tier for tier in tiers if tier] + [tuple(sorted(outside))]


def filter_region(seg: np.ndarray, labels: Tuple[int, ...], rule: Rule,
                  tiers: Optional[Sequence[Tuple[int, ...]]] = None) -> np.ndarray:
    """A copy of ``seg`` with the components of the region ``labels`` removed by ``rule``. A removed component takes
    the most frequent label on its shell from the first of ``tiers`` that has one there (``replacement_tiers``;
    ``None``: any label), background if its shell is empty."""
    rule = check_rule(rule)
    if tiers is not None and any(set(tier) & set(labels) for tier in tiers):
        raise ValueError(f"replacement labels must lie outside the region {labels}, got tiers={list(tiers)}")
    out = seg.copy()
    if rule == 0:
        return out
    components, n = ndimage.label(np.isin(seg, labels), structure=_CC_STRUCTURE)
    if n == 0:
        return out
    sizes = np.bincount(components.ravel(), minlength=n + 1)
    sizes[0] = 0
    remove = [c for c in range(1, n + 1) if (c != int(np.argmax(sizes)) if rule == LARGEST else sizes[c] < rule)]
    boxes = ndimage.find_objects(components)
    for c in remove:
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in boxes[c - 1])
        mask = components[box] == c
        shell = ndimage.binary_dilation(mask, structure=_SHELL_STRUCTURE) & ~mask
        out[box][mask] = _shell_label(Counter(seg[box][shell].tolist()), tiers)
    return out


def _shell_label(around: Counter, tiers: Optional[Sequence[Tuple[int, ...]]]) -> int:
    for tier in (tiers or [None]):
        present = Counter({v: n for v, n in around.items() if tier is None or v in tier})
        if present:
            return present.most_common(1)[0][0]
    return 0


def apply_rules(seg: np.ndarray, scoring: Scoring, rules: Mapping[str, Rule]) -> np.ndarray:
    """``seg`` with every region's rule applied, in the order of ``rules``.

    Raises:
        ValueError: for a region the scoring does not have, or an invalid rule.
    """
    for region, rule in rules.items():
        if region not in scoring.regions:
            raise ValueError(f"unknown region {region!r} for the {scoring.name!r} labels "
                             f"(regions: {list(scoring.regions)})")
        seg = filter_region(seg, scoring.regions[region], rule, replacement_tiers(scoring, region))
    return seg


CaseScores = Dict[str, Dict[str, float]]  # region -> {"dice", "lesion_dice"}


def _case_scores(pred: np.ndarray, case: Case, scoring: Scoring, previous: Tuple[np.ndarray, CaseScores] = None
                 ) -> CaseScores:
    """Global and lesion-wise Dice per region of ``pred``; regions whose mask equals the one in ``previous``
    (a prediction and its scores) keep their previous scores: the lesion-wise rule is the slow part."""
    from nnunet_msfen.evaluation.lesion_wise import lesion_wise
    from nnunet_msfen.evaluation.metrics import dice

    _, ref, spacing = case
    rule, out = scoring.lesion_wise, {}
    p, r = scoring.region_masks(pred), scoring.region_masks(ref)
    old = scoring.region_masks(previous[0]) if previous is not None else {}
    for region in scoring.regions:
        if region in old and np.array_equal(old[region], p[region]):
            out[region] = previous[1][region]
            continue
        out[region] = {"dice": dice(p[region], r[region]),
                       "lesion_dice": lesion_wise(p[region], r[region], spacing, rule.dilation, rule.threshold(region),
                                                  rule.min_predicted_voxels, rule.count_false_positives)["lesion_dice"]}
    return out


def _mean(per_case: List[CaseScores]) -> CaseScores:
    return {region: {k: float(np.mean([c[region][k] for c in per_case])) for k in ("dice", "lesion_dice")}
            for region in per_case[0]}


def _objective(scores: CaseScores) -> float:
    return float(np.mean([s["lesion_dice"] for s in scores.values()]))


def choose_rules(cases: List[Case], scoring: Scoring, candidates: Sequence[Rule] = MIN_SIZES + (LARGEST,)) -> Dict:
    """Choose each region's rule on ``cases`` (module docstring). Returns the rules, the mean scores before and
    after and the table of every candidate tried (region, rule, mean lesion-wise Dice, allowed)."""
    if not cases:
        raise ValueError("no cases to choose the component rules on")
    preds = [c[0] for c in cases]
    scores = [_case_scores(p, c, scoring) for p, c in zip(preds, cases)]
    before = _mean(scores)
    best, rules, table = before, {}, []
    for region in sorted(scoring.regions, key=lambda r: -len(scoring.regions[r])):
        chosen, tiers = (0, preds, scores), replacement_tiers(scoring, region)
        for rule in candidates:
            new = [filter_region(p, scoring.regions[region], rule, tiers) for p in preds]
            new_scores = [_case_scores(n, c, scoring, (p, s)) for n, c, p, s in zip(new, cases, preds, scores)]
            mean = _mean(new_scores)
            allowed = all(mean[g]["dice"] >= before[g]["dice"] - 1e-12 for g in mean)
            table.append({"region": region, "rule": rule, "lesion_dice": _objective(mean), "allowed": allowed})
            if allowed and _objective(mean) > _objective(best) + 1e-12:
                chosen, best = (rule, new, new_scores), mean
        rules[region], preds, scores = chosen
    return {"kind": "components", "labels": scoring.name, "rules": rules, "before": before, "after": best,
            "lesion_dice_before": _objective(before), "lesion_dice_after": _objective(best),
            "n_cases": len(cases), "table": table}


def _tumour_crop(pred: np.ndarray, ref: np.ndarray, margin: int) -> Tuple[np.ndarray, np.ndarray]:
    """``pred`` and ``ref`` cut to the box of their foreground grown by ``margin`` voxels, as uint8 copies.

    The study holds every case of a model in memory (a whole BraTS training set as int64 label maps would need
    well over 100 GB). A margin above the lesion-wise dilation keeps every score and every component rule exact:
    nothing within reach of the dilation or of a component's one-voxel shell is cut away.
    """
    foreground = np.argwhere((pred > 0) | (ref > 0))
    if foreground.size == 0:  # nothing to score or remove: one voxel keeps the shapes 3-D
        box = tuple(slice(0, 1) for _ in ref.shape)
    else:
        low, high = foreground.min(axis=0), foreground.max(axis=0) + 1
        box = tuple(slice(max(int(lo) - margin, 0), min(int(hi) + margin, n))
                    for lo, hi, n in zip(low, high, ref.shape))
    return pred[box].astype(np.uint8), ref[box].astype(np.uint8)


def choose_rules_on_pairs(pairs: Mapping[str, Tuple[Optional[str], str]], scoring: Scoring) -> Dict:
    """The lesion-wise component rules (``component_postprocessing.choose_rules``) chosen on one model's
    ``{case: (prediction or None, reference)}``; a missing prediction counts as empty, as in the evaluation."""
    from nnunet_msfen.evaluation.evaluate import read_case
    from nnunet_msfen.io.images import spacing_zyx

    margin = scoring.lesion_wise.dilation + 2
    cases = []
    for case in sorted(pairs):
        pred, ref, geometry = read_case(*pairs[case], scoring)
        cases.append((*_tumour_crop(pred, ref, margin), spacing_zyx(geometry)))
    return choose_rules(cases, scoring)
