"""Lesion-wise postprocessing for ``pool-accuracy``, chosen leave-one-source-out.

BraTS ranks by lesion-wise scores since 2023, and every user ranked on them removes small components first
(``nnunet-msfen postprocess --lesion-wise``). Comparing two trainers on lesion-wise scores without it compares
their false-positive specks; comparing them after rules chosen on the very cases being scored flatters both. Here
each source's predictions get the component rules (``component_postprocessing.choose_rules``) chosen on the same
trainer's predictions of the *other* sources, against their references: with the splits of a k-fold partition the
rules for a split never see its cases, as nnU-Net chooses postprocessing on cross-validation predictions before it
applies it to a test set. Each trainer gets its own rules, chosen the same way (docs/ablation.md section 21).
"""
import tempfile
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

from nnunet_msfen.experiments.accuracy_pool import TrainerRun
from nnunet_msfen.evaluation.io import SEG_SUFFIX


def _folders(run: TrainerRun) -> Tuple[Path, Path, str]:
    """The prediction and reference folders a run was scored on, and its label convention (from its evaluation
    file); ``ValueError`` naming the source when the file does not say or a folder is gone."""
    from nnunet_msfen.experiments.accuracy_pool import _read_json

    evaluation = _read_json(run.source)
    pred, ref, labels = evaluation.get("pred"), evaluation.get("ref"), evaluation.get("labels", "nnunet")
    if not pred or not ref:
        raise ValueError(f"{run.source}: its evaluation file names no prediction and reference folders")
    for folder in (pred, ref):
        if not Path(folder).is_dir():
            raise ValueError(f"{run.source}: the folder it was scored on, {folder}, is missing")
    return Path(pred), Path(ref), labels


def _pairs(run: TrainerRun, pred: Path, ref: Path) -> Dict[str, Tuple[Optional[str], str]]:
    pairs = {}
    for case in run.per_case:
        prediction = pred / (case + SEG_SUFFIX)
        pairs[case] = (str(prediction) if prediction.is_file() else None, str(ref / (case + SEG_SUFFIX)))
    return pairs


def postprocess_runs(runs: Sequence[TrainerRun], trainers: Sequence[str]) -> Dict[str, Dict[str, Mapping]]:
    """Replace the per-case metrics of every run of ``trainers`` (run names) by those of its predictions after the
    lesion-wise component rules chosen on that trainer's other runs. Returns ``{trainer: {source: rules}}``.

    Raises:
        ValueError: when a trainer has fewer than two runs, or a run's folders or label convention are unknown.
    """
    from nnunet_msfen.evaluation.component_postprocessing import apply_rules, choose_rules_on_pairs
    from nnunet_msfen.evaluation.evaluate import evaluate_folders
    from nnunet_msfen.evaluation.postprocess_command import postprocess_folder
    from nnunet_msfen.evaluation.scoring import scoring_for

    chosen: Dict[str, Dict[str, Mapping]] = {}
    for trainer in trainers:
        own = [run for run in runs if run.trainer == trainer]
        if len(own) < 2:
            raise ValueError(f"lesion-wise postprocessing is chosen on the other sources: {trainer} needs runs in at "
                             f"least two sources, got {len(own)}")
        folders = [_folders(run) for run in own]
        chosen[trainer] = {}
        for i, (run, (pred, ref, labels)) in enumerate(zip(own, folders)):
            scoring = scoring_for(labels)
            others = {}
            for j, other in enumerate(own):
                if j != i:
                    others.update(_pairs(other, *folders[j][:2]))
            rules = choose_rules_on_pairs(others, scoring)["rules"]
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "postprocessed"
                postprocess_folder(str(pred), str(out), lambda seg: apply_rules(seg, scoring, rules), scoring)
                results = evaluate_folders(str(out), str(ref), labels)
            run.per_case = {case: results["per_case"][case] for case in run.per_case}
            chosen[trainer][str(run.source)] = rules
    return chosen
