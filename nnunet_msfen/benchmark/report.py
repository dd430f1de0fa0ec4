"""Ratios to PlainConvUNet and the printed tables of ``nnunet-msfen benchmark``."""
from typing import List, Optional

# measured field -> ratio field; every ratio is value / PlainConvUNet's value in the same run
RATIO_FIELDS = {
    "parameters": "parameters_ratio",
    "gflops_forward": "gflops_forward_ratio",
    "gflops_forward_backward": "gflops_forward_backward_ratio",
    "train_step_s": "train_step_ratio",
    "train_step_contended_s": "train_step_contended_ratio",
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


# (field, format, header) of the main table; each but GFLOP/s with its ratio to PlainConvUNet
_COLUMNS = [("parameters", ".2f", "params (M)"), ("gflops_forward_backward", ".1f", "GFLOPs fwd+bwd"),
            ("gflop_per_s", ".1f", "GFLOP/s"), ("train_step_s", ".2f", "step (s)"),
            ("train_step_contended_s", ".2f", "step, busy CPU (s)"), ("inference_s", ".1f", "predict (s)"),
            ("peak_memory_mib", ".0f", "peak MiB")]


def format_table(rows: List[dict]) -> str:
    """A Markdown table: one row per network, each measured figure with its ratio to PlainConvUNet; columns that
    no row has are left out."""
    columns = [c for c in _COLUMNS if any(c[0] in r for r in rows)]
    head = ["network"]
    for field, _, title in columns:
        head += [title] if field == "gflop_per_s" else [title, "x"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        cells = [r["name"]]
        for field, spec, _ in columns:
            value = r.get(field)
            if field == "parameters" and value is not None:
                value = value / 1e6
            cells.append(_fmt(value, spec) if field in r else "-")
            if field != "gflop_per_s":
                cells.append(_fmt(r.get(RATIO_FIELDS[field]), ".2f") if field in r else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_breakdown(rows: List[dict]) -> str:
    """A Markdown table of ``breakdown.breakdown``'s rows."""
    lines = ["| block type | n | fwd+bwd (s) | share | GFLOP | GFLOP/s |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['type']} | {r['count']} | {r['seconds']:.2f} | {100 * r['share']:.0f}% | "
                     f"{r['gflop']:.1f} | {_fmt(r['gflop_per_s'], '.1f')} |")
    return "\n".join(lines)
