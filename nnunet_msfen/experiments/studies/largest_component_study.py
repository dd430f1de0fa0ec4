"""How nnU-Net's connected-component postprocessing changes the equal-budget comparison of docs/history_0.1.0.md section 7
(a study; no command of the package uses it).

After 30 minutes of 2-core training both 2d models leave hundreds of small false-positive whole-tumour components
per case. nnU-Net's ``nnUNetv2_find_best_configuration`` may then choose to keep only the largest foreground
component (``remove_all_but_largest_component_from_segmentation`` over all tumour labels). Here that rule is
applied to every test prediction of both trainers, unconditionally, and the paired comparison is run again on the
postprocessed predictions. It is a sensitivity check, not a tuned postprocessing: applying a rule chosen on the
test cases would flatter both models alike.

    python -m nnunet_msfen.experiments.studies.largest_component_study WORKDIR_OR_PRED_DIR... -o OUT.json

Each argument is a ``benchmark-accuracy`` workdir (all its trainers) or one ``predictions/TRAINER__PLANS__CONFIG``
folder of a workdir (that trainer only); references are the workdir's ``nnUNet_raw/DatasetNNN_AccuracyTest/labelsTr``.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from nnunetv2.postprocessing.remove_connected_components import remove_all_but_largest_component_from_segmentation
from scipy import ndimage

from nnunet_msfen.evaluation.comparison import stats_table
from nnunet_msfen.evaluation.evaluate import evaluate_arrays
from nnunet_msfen.evaluation.io import SEG_SUFFIX, list_cases
from nnunet_msfen.io.images import read_image, spacing_zyx
from nnunet_msfen.labels import CONVENTIONS, REGIONS
from nnunet_msfen.experiments.accuracy_settings import DEFAULT_TRAINERS as TRAINERS, TEST_NAME, TRAINER_ALIASES
from nnunet_msfen.io.atomic import write_text

TUMOUR_LABELS = list(CONVENTIONS["nnunet"]["WT"])  # the whole tumour: every tumour label together
BASE_TRAINER = {variant: base for base, variant in TRAINER_ALIASES.items()}  # nnUNetTrainer_TimeBudget -> nnUNetTrainer


def prediction_folders(source: Path) -> List[Tuple[str, Path, Path]]:
    """(trainer, prediction folder, reference folder) for a workdir or one of its prediction folders."""
    if (source / "predictions").is_dir():
        folders = sorted(p for p in (source / "predictions").iterdir() if p.is_dir())
        workdir = source
    elif source.parent.name == "predictions":
        folders, workdir = [source], source.parent.parent
    else:
        raise ValueError(f"{source} is neither a benchmark-accuracy workdir nor one of its prediction folders")
    test_sets = sorted((workdir / "nnUNet_raw").glob(f"Dataset*_{TEST_NAME}"))
    if len(test_sets) != 1:
        raise ValueError(f"{workdir}: expected one nnUNet_raw/Dataset*_{TEST_NAME} folder, found {len(test_sets)}")
    names = [f.name.split("__")[0] for f in folders]  # TRAINER__PLANS__CONFIG
    return [(BASE_TRAINER.get(n, n), f, test_sets[0] / "labelsTr") for n, f in zip(names, folders)]


def wt_components(seg: np.ndarray) -> int:
    """Connected whole-tumour components (26-connectivity, as the lesion-wise metrics count them)."""
    return int(ndimage.label(seg > 0, structure=np.ones((3, 3, 3)))[1])


def study(sources: List[Path]) -> Dict:
    """Per case and trainer the metrics of the raw and the largest-component predictions, the whole-tumour
    component counts, and the paired statistics of both variants; ``ValueError`` for a case seen twice."""
    per_case: Dict[str, Dict[str, Dict]] = {f"{t} {v}": {} for t in TRAINERS for v in ("raw", "largest")}
    components: Dict[str, Dict[str, int]] = {t: {} for t in TRAINERS}
    for source in sources:
        for trainer, pred_dir, ref_dir in prediction_folders(source):
            for case in list_cases(pred_dir):
                pred, geometry = read_image(pred_dir / (case + SEG_SUFFIX), label=True)
                ref, _ = read_image(ref_dir / (case + SEG_SUFFIX), label=True)
                if case in per_case[f"{trainer} raw"]:
                    raise ValueError(f"{case} appears twice for {trainer} (second time in {pred_dir})")
                largest = remove_all_but_largest_component_from_segmentation(pred, TUMOUR_LABELS)
                spacing = spacing_zyx(geometry)
                per_case[f"{trainer} raw"][case] = evaluate_arrays(pred, ref, spacing)
                per_case[f"{trainer} largest"][case] = evaluate_arrays(largest, ref, spacing)
                components[trainer][case] = wt_components(pred)
                dice = {v: "/".join(f"{per_case[f'{trainer} {v}'][case][r]['dice']:.3f}" for r in REGIONS)
                        for v in ("raw", "largest")}
                print(f"{trainer:20s} {case}: {components[trainer][case]} WT components; Dice WT/TC/ET raw "
                      f"{dice['raw']}, largest only {dice['largest']}", flush=True)
    base, msfen = TRAINERS
    tables = {v: stats_table(per_case[f"{base} {v}"], per_case[f"{msfen} {v}"], TRAINERS)
              for v in ("raw", "largest")}
    return {"per_case": per_case, "wt_components": components, "tables": tables}


def print_summary(result: Dict) -> None:
    """The paired Dice and HD95 rows of both variants, one line each."""
    for variant, rows in result["tables"].items():
        print(f"\n{variant}: mean A (nnUNetTrainer) / B (MSFEN), B - A [95% CI], Wilcoxon p, Holm p")
        for r in rows:
            if r["metric"] in ("dice", "hd95"):
                print(f"  {r['region']} {r['metric']:5s} {r['A']['mean']:8.3f} {r['B']['mean']:8.3f} "
                      f"{r['diff']:+8.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] p {r['p']:.3f} "
                      f"Holm {r['p_holm']:.2f}")


def main(argv: List[str]) -> int:
    """Run the study on the sources in ``argv`` and write ``-o``; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    result = study(args.sources)
    print_summary(result)
    write_text(args.output, json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
