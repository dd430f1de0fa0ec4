"""Ratios to PlainConvUNet and the printed table of ``nnunet-msfen benchmark``."""
from typing import List, Optional

# measured field -> ratio field; every ratio is value / PlainConvUNet's value in the same run
RATIO_FIELDS = {
    "parameters": "parameters_ratio",
    "gflops_forward": "gflops_forward_ratio",
    "gflops_forward_backward": "gflops_forward_backward_ratio",
    "train_step_s": "train_step_ratio",
    "inference_s": "inference_ratio",
    "peak_memory_mib": "peak_memory_ratio",
}


def ratios(rows: List[dict], reference: str = "plain") -> List[dict]:
    """``rows`` with a ``*_ratio`` field beside every measured field: value / the ``reference`` row's value (None
    when either is missing or the reference is 0).

    Raises:
        ValueError: when no row is named ``reference``.
    """
    ref = next((r for r in rows if r["name"] == reference), None)
    if ref is None:
        raise ValueError(f"no {reference!r} row to take ratios to among {[r['name'] for r in rows]}")
    out = []
    for row in rows:
        row = dict(row)
        for field, ratio in RATIO_FIELDS.items():
            if field in row:
                value, base = row[field], ref.get(field)
                row[ratio] = value / base if value is not None and base else None
        out.append(row)
    return out


def _fmt(value: Optional[float], spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def format_table(rows: List[dict]) -> str:
    """A Markdown table: one row per network, each measured figure with its ratio to PlainConvUNet."""
    head = ["network", "params (M)", "x", "GFLOPs fwd", "x", "GFLOPs fwd+bwd", "x", "step (s)", "x",
            "predict (s)", "x", "peak MiB", "x"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        cells = [r["name"], _fmt(r["parameters"] / 1e6, ".2f"), _fmt(r.get("parameters_ratio"), ".2f")]
        for field, spec in (("gflops_forward", ".1f"), ("gflops_forward_backward", ".1f"), ("train_step_s", ".2f"),
                            ("inference_s", ".1f"), ("peak_memory_mib", ".0f")):
            if field in r:
                cells += [_fmt(r[field], spec), _fmt(r[RATIO_FIELDS[field]], ".2f")]
            else:
                cells += ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
