"""The comparison report: Markdown (figures as PNG files beside it) and a self-contained HTML page (figures
embedded as base64 PNG), both written from the same tables."""
import base64
import html
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple

from nnunet_msfen.io.atomic import atomic_path, write_text
from nnunet_msfen.labels import CONVENTIONS

Table = Tuple[List[str], List[List[str]]]
EXTRA_METRICS = ("iou", "specificity", "small_lesion_dice", "lesion_tp", "lesion_fp", "lesion_fn")


def _num(v: Optional[float], digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _p(v: float) -> str:
    return f"{v:.2e}" if v < 1e-3 else f"{v:.4f}"


def stats_rows(c: Mapping) -> Table:
    """The significance table."""
    a, b = c["names"]
    header = ["region", "metric", f"{a} mean ± std (median)", f"{b} mean ± std (median)",
              f"{b} − {a} [95% CI]", "Wilcoxon p", "Holm p", "verdict"]
    rows = [[r["region"], r["metric"],
             f"{_num(r['A']['mean'])} ± {_num(r['A']['std'])} ({_num(r['A']['median'])})",
             f"{_num(r['B']['mean'])} ± {_num(r['B']['std'])} ({_num(r['B']['median'])})",
             f"{r['diff']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]", _p(r["p"]), _p(r["p_holm"]), r["verdict"]]
            for r in c["table"]]
    return header, rows


def extra_rows(c: Mapping) -> Table:
    """Means of the metrics that are reported but not tested."""
    header = ["model", "region"] + list(EXTRA_METRICS)
    rows = [[name, region] + [_num(means.get(m)) for m in EXTRA_METRICS]
            for name, per_region in c["descriptive"].items() for region, means in per_region.items()]
    return header, rows


def cost_rows(c: Mapping) -> Table:
    """Parameters, epoch time and inference time; what the files do not hold is said, not invented."""
    header = ["model", "parameters", "training time per epoch (s)", "inference time"]
    return header, [[name] + _cost_cells(name, cost, c) for name, cost in c["cost"].items()]


def _cost_cells(name: str, cost: Optional[Mapping], c: Mapping) -> List[str]:
    if cost is None:
        return ["not available (plain folder)", "not available (plain folder)", "not measured"]
    epoch = ("not available (no training log)" if cost["epoch_time_mean_s"] is None else
             f"{cost['epoch_time_mean_s']:.2f} ± {cost['epoch_time_std_s']:.2f} ({cost['epochs_logged']} epochs)")
    params = "not available (no checkpoint_final.pth)" if cost["parameters"] is None else f"{cost['parameters']:,}"
    timing = (c.get("inference") or {}).get(name) or {"seconds": None, "why": "not measured"}
    inference = timing["why"] if timing["seconds"] is None else (
        f"{timing['seconds']:.2f} s (case {timing['case']}, {timing['fold']}, mirroring, {timing['device']})")
    return [params, epoch, inference]


ET_RULE_NOT_APPLICABLE = "not applicable (the ET rule is defined for the WT/TC/ET conventions)"


def postprocessing_rows(c: Mapping) -> Optional[Table]:
    """The ET threshold chosen on each model's predictions and what it does; None where no study was run (a
    BraTS task: the rule needs a WT/TC/ET convention)."""
    if c["postprocessing"] is None:
        return None
    header = ["model", "ET threshold (voxels)", "mean ET Dice before", "after", "cases changed"]
    rows = [[name, str(s["threshold"]), _num(s["et_dice_before"]), _num(s["et_dice_after"]),
             f"{s['cases_changed']} of {s['n_cases']}"] for name, s in c["postprocessing"].items()]
    return header, rows


def _rule(rule: object) -> str:
    return "keep all" if rule == 0 else str(rule)


def lesion_wise_rows(c: Mapping) -> Table:
    """The component rule per region chosen on each model's predictions, the mean lesion-wise Dice over the
    regions and each region's global Dice, before -> after."""
    regions = c["regions"]
    header = (["model", "rule per region (minimum component voxels)", "mean lesion-wise Dice before → after"]
              + [f"{r} Dice before → after" for r in regions])
    rows = [[name, ", ".join(f"{r} {_rule(s['rules'][r])}" for r in regions if r in s["rules"]),
             f"{_num(s['lesion_dice_before'])} → {_num(s['lesion_dice_after'])}"]
            + [f"{_num(s['before'][r]['dice'])} → {_num(s['after'][r]['dice'])}" for r in regions]
            for name, s in c["lesion_wise_postprocessing"].items()]
    return header, rows


def auc_rows(c: Mapping) -> Table:
    """ROC AUC per region, or why there is none."""
    regions = c["regions"]
    header = ["model"] + [f"{r} AUC" for r in regions]
    return header, [[name] + ([c["curves_note"][name]] * len(regions) if auc is None
                              else [_num(auc.get(r)) for r in regions])
                    for name, auc in c["auc"].items()]


def lesion_rule(lw: Mapping) -> str:
    """The lesion-wise parameters (``LesionWise`` as a dict) in words, as the Methods section states them."""
    overrides: dict = {}
    for region, threshold in lw["region_thresholds"].items():
        overrides.setdefault(threshold, []).append(region)
    per_region = "".join(f"; {', '.join(r)}: {t:g} mm³" for t, r in overrides.items())
    times = "once" if lw["dilation"] == 1 else f"{lw['dilation']} times"
    parts = [f"reference dilated {times}",
             f"lesions of {lw['volume_threshold']:g} mm³{f' ({per_region[2:]})' if per_region else ''} "
             f"or less not scored"]
    if lw["min_predicted_voxels"]:
        parts.append(f"predicted lesions of {lw['min_predicted_voxels']} voxels or fewer removed")
    parts.append("false-positive lesions scored 0 / 374 mm" if lw["count_false_positives"]
                 else "false-positive lesions not scored")
    return ", ".join(parts)


# {regions} and {lesion_rule} are filled in by ``methods``
METHODS = ("Metrics per case and region ({regions}): Dice, HD95 in mm (95th percentile of the pooled surface "
           "distances, voxel spacing of the reference), BraTS 2023 lesion-wise Dice and HD95 (26-connected lesions, "
           "{lesion_rule}). Empty masks: both empty give Dice 1 and HD95 0, one empty gives Dice 0 and HD95 "
           "373.13 mm. A missing prediction is scored as empty. Differences are paired per case; the 95% CI is a "
           "percentile bootstrap of the mean difference (10,000 resamples of cases, seed 0); p-values are two-sided "
           "Wilcoxon signed-rank tests (SciPy), Holm-corrected over all rows of the table.")
ET_RULE_METHODS = ("Postprocessing: a case's predicted ET with fewer voxels than the threshold becomes necrosis; the "
                   "threshold maximises the mean ET Dice of the model's own predictions.")
LESION_WISE_METHODS = ("Lesion-wise postprocessing: per region, the connected components (26-connected) below a "
                       "minimum size ({sizes} voxels), or all but the largest, are removed and take the label around "
                       "them; each model's rule per region maximises its own mean lesion-wise Dice over the regions "
                       "without lowering any region's mean Dice.")


def methods(c: Mapping) -> str:
    """The Methods text for the comparison's regions, lesion-wise parameters and postprocessing studies."""
    from nnunet_msfen.evaluation.component_postprocessing import MIN_SIZES

    parts = [METHODS.format(regions=", ".join(c["regions"]), lesion_rule=lesion_rule(c["lesion_wise"]))]
    if c["postprocessing"] is not None:  # the ET rule is only studied for the WT/TC/ET conventions
        parts.append(ET_RULE_METHODS)
    parts.append(LESION_WISE_METHODS.format(sizes=f"{min(MIN_SIZES)} to {max(MIN_SIZES)}"))
    return " ".join(parts)


def _sections(c: Mapping) -> List[Tuple[str, Optional[str], Optional[Table]]]:
    missing = "; ".join(f"{n}: {', '.join(m) if m else 'none'}" for n, m in c["missing"].items())
    folds = "; ".join(f"{n}: {', '.join(f) if f else 'n/a'}" for n, f in c["folds"].items())
    labels = "label convention" if c["labels"] in CONVENTIONS else "labels"  # a task's scoring is no convention
    return [
        ("Verdict", c["verdict"], None),
        ("Data", f"{c['source']}; {labels} {c['labels']}. Folds found: {folds}. "
                 f"Missing predictions (scored as empty): {missing}.", None),
        ("Significance", None, stats_rows(c)),
        ("Other metrics (means)", None, extra_rows(c)),
        ("Cost", None, cost_rows(c)),
        ("Postprocessing study (BraTS ET rule)", None if c["postprocessing"] else ET_RULE_NOT_APPLICABLE,
         postprocessing_rows(c)),
        ("Lesion-wise postprocessing (component rules chosen on each model's predictions)", None,
         lesion_wise_rows(c)),
        ("Probabilities", None, auc_rows(c)),
        ("Methods", methods(c), None),
    ]


Section = Tuple[str, Optional[str], Optional[Table]]  # (title, text, table)


def render_markdown(title: str, sections: Sequence[Section], figures: Sequence[Tuple[str, str, bytes]]) -> str:
    """A Markdown report: a title, sections of text and tables, figures linked as ``figures/<stem>.png``."""
    lines = [f"# {title}", ""]
    for heading, text, table in sections:
        lines += [f"## {heading}", ""]
        if text:
            lines += [text, ""]
        if table:
            header, rows = table
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(row) + " |" for row in rows] + [""]
    if figures:
        lines += ["## Figures", ""]
    for stem, caption, _ in figures:
        lines += [f"![{caption}](figures/{stem}.png)", "", f"*{caption}*", ""]
    return "\n".join(lines)


def render_html(title: str, sections: Sequence[Section], figures: Sequence[Tuple[str, str, bytes]]) -> str:
    """The same report as one self-contained HTML page: no external resource, figures as data URIs."""
    e = html.escape
    body = [f"<h1>{e(title)}</h1>"]
    for heading, text, table in sections:
        body.append(f"<h2>{e(heading)}</h2>")
        if text:
            body.append(f"<p>{e(text)}</p>")
        if table:
            header, rows = table
            body.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
            body += ["<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in rows]
            body.append("</table>")
    if figures:
        body.append("<h2>Figures</h2>")
    for stem, caption, png in figures:
        data = base64.b64encode(png).decode("ascii")
        body.append(f'<figure><img id="{e(stem)}" alt="{e(caption)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{e(caption)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
             "table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ccc;padding:3px 6px}"
             "img{max-width:100%}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report_files(out: Path, title: str, sections: Sequence[Section],
                       figures: Sequence[Tuple[str, str, bytes]]) -> Tuple[Path, Path]:
    """Write figures/*.png, report.md and report.html under ``out`` (each file atomically)."""
    for stem, _, png in figures:
        with atomic_path(out / "figures" / f"{stem}.png") as tmp:
            tmp.write_bytes(png)
    md, page = out / "report.md", out / "report.html"
    write_text(md, render_markdown(title, sections, figures))
    write_text(page, render_html(title, sections, figures))
    return md, page


def markdown(c: Mapping, figures: Sequence[Tuple[str, str, bytes]]) -> str:
    """The comparison's Markdown report."""
    return render_markdown(f"{c['names'][1]} vs {c['names'][0]}", _sections(c), figures)


def html_page(c: Mapping, figures: Sequence[Tuple[str, str, bytes]]) -> str:
    """The comparison's self-contained HTML report."""
    return render_html(f"{c['names'][1]} vs {c['names'][0]}", _sections(c), figures)


def write_report(out: Path, comparison: Mapping, figures: Sequence[Tuple[str, str, bytes]]) -> Tuple[Path, Path]:
    """Write the comparison's figures/*.png, report.md and report.html under ``out`` (each file atomically)."""
    return write_report_files(out, f"{comparison['names'][1]} vs {comparison['names'][0]}", _sections(comparison),
                              figures)
