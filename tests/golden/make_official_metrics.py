"""Record the official BraTS metrics of the synthetic pairs of ``official_pairs.py`` in ``official_metrics.json``.

Run with the interpreter of an environment holding the official package (it must not import nnunet_msfen)::

    /tmp/bratseval/bin/python tests/golden/make_official_metrics.py

Each pair is written as two NIfTI files and scored exactly as the challenge does:
``brats_evaluation.evaluate_single_exam(pred, ref, name, Panoptica_Evaluator.load_from_config(config_path(cfg)))``.
panoptica reads the files with SimpleITK and pairs ``GetSpacing()`` (x, y, z order) with the axes of
``GetArrayFromImage`` (z, y, x order) one by one. ``SetSpacing`` is therefore given the spec's spacing in array-axis
order, so that panoptica applies ``spacing[i]`` to array axis ``i``, as our code does. (For real anisotropic files
the official scores apply the spacing to the wrong axes; BraTS images are 1 mm isotropic, where it cannot matter.)

The JSON keeps, per config, the groups of its YAML and, per pair, the spec, a sha256 of both arrays and the official
fields of every group; NaN is written as null and infinity as the string "inf".
"""
import json
import math
import re
import sys
import tempfile
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_pairs import LAYOUTS, digest, make_pair, pair_specs  # noqa: E402

from brats_evaluation import config_path, evaluate_single_exam  # noqa: E402
from panoptica import Panoptica_Evaluator  # noqa: E402
from panoptica.utils.citation_reminder import disable_citation_reminder  # noqa: E402

FIELDS = ("global_bin_dsc", "global_bin_nsd", "global_bin_hd95", "n_ref_instances", "n_pred_instances", "tp", "fp",
          "fn", "rq", "sq_dsc", "pq_dsc", "sq_nsd", "sq_hd95")
OUT = Path(__file__).resolve().parent / "official_metrics.json"


def _plain(value):
    """A JSON value: NaN -> None, +-inf -> "inf"/"-inf", numpy scalars -> Python numbers."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return int(value) if value.is_integer() and abs(value) < 2 ** 53 else value


def _write(path: Path, arr: np.ndarray, spacing) -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(tuple(float(s) for s in spacing))  # per array axis, as panoptica applies it (module docstring)
    sitk.WriteImage(img, str(path))


def main() -> None:
    warnings.simplefilter("ignore")  # panoptica's "NSD threshold is 0.5" warning on every global NSD
    disable_citation_reminder()
    out = {"versions": {p: version(p) for p in ("brats-evaluation", "panoptica", "numpy", "scipy",
                                                 "connected-components-3d", "SimpleITK")},
           "generated_by": "tests/golden/make_official_metrics.py (official_pairs.py builds the arrays)",
           "fields": list(FIELDS), "configs": {}}
    tmp = Path(tempfile.mkdtemp())
    for cfg in LAYOUTS:
        evaluator = Panoptica_Evaluator.load_from_config(str(config_path(cfg)))
        groups = evaluator._Panoptica_Evaluator__segmentation_class_groups  # no public accessor
        entry = {"groups": {g: [int(v) for v in lg.value_labels] for g, lg in groups.items()}, "pairs": []}
        for spec in pair_specs(cfg):
            pred, ref = make_pair(spec)
            _write(tmp / "pred.nii.gz", pred, spec["spacing"])
            _write(tmp / "ref.nii.gz", ref, spec["spacing"])
            result = evaluate_single_exam(str(tmp / "pred.nii.gz"), str(tmp / "ref.nii.gz"), spec["name"], evaluator)
            if "error" in result:
                raise RuntimeError(f"{cfg}/{spec['name']}: {result['error']}")
            official = {g: {f: _plain(result[g].get(f)) for f in FIELDS} for g in entry["groups"]}
            entry["pairs"].append({"spec": spec, "sha256": digest(pred, ref), "official": official})
            print(f"{cfg:7s} {spec['name']:22s} " + " ".join(
                f"{g}:{o['tp']}/{o['fp']}/{o['fn']}" for g, o in official.items()))
        out["configs"][cfg] = entry
    # one line per list of numbers and per innermost object (a blob, a group's fields): readable and small
    text = re.sub(r"\[\s+([-0-9.e,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]",
                  json.dumps(out, indent=1))
    text = re.sub(r"\{[^{}]*\}", lambda m: " ".join(m.group(0).split()), text)
    OUT.write_text(text + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
