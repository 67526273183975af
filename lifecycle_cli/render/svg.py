"""Charts as inline SVG text: bars, a Sankey diagram of flows, a funnel, survival curves.

Hand-written, so a report needs no chart library, no script and no network. Every
piece of text from the data goes through :func:`esc`; numbers are formatted here.
Each function returns one ``<svg>`` element as a string, sized by its ``viewBox`` so
that it scales with the page.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from .cells import EMPTY, number, percent

# Okabe-Ito: told apart by colour-blind readers too; yellow left out (poor on white)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#56B4E9", "#D55E00", "#CC79A7", "#332288",
           "#882255", "#44AA99", "#999933")
NEUTRAL = "#8C8C8C"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif"


def esc(value: object) -> str:
    """Text from the data, made inert in HTML and SVG (quotes included)."""
    return html.escape(str(value), quote=True)


def stage_colors(stages: Sequence[str]) -> dict[str, str]:
    """One colour per stage, in the lifecycle's order, the same in every chart."""
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(stages)}


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width:g} {height:g}" role="img" '
        f'aria-label="{esc(label)}" style="{FONT};max-width:{width:g}px">'
        f"<title>{esc(label)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 12,
          weight: str = "normal", fill: str = "#222") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'font-weight="{weight}" fill="{fill}">{esc(text)}</text>')


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    part: float = 0.0  # drawn darker at the start of the bar (e.g. overdue)
    note: str = ""  # after the bar
    color: str = PALETTE[0]
    tip: str = ""


def bars(rows: Sequence[Bar], label: str, *, width: int = 720, part_name: str = "",
         uid: str = "bars") -> str:
    """Horizontal bars, one per row, scaled to the largest; ``part`` hatched inside.
    ``uid`` names the hatch pattern: unique per chart on a page."""
    row_h, left, right = 30, 140, 230
    height = row_h * max(len(rows), 1) + 10
    top = max((r.value for r in rows), default=0) or 1
    span = width - left - right
    body = [
        f'<defs><pattern id="{uid}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#000" '
        'fill-opacity="0.35"/><line x1="0" y1="0" x2="0" y2="6" stroke="#fff" '
        'stroke-width="2.5"/></pattern></defs>'
    ]
    for i, r in enumerate(rows):
        y = 6 + i * row_h
        w = span * r.value / top
        tip = r.tip or f"{r.label}: {number(r.value)}"
        body.append(f"<g><title>{esc(tip)}</title>")
        body.append(_text(left - 8, y + 17, r.label, anchor="end"))
        body.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
                    f'rx="2" fill="{r.color}"/>')
        if r.part:
            pw = span * r.part / top
            body.append(f'<rect x="{left}" y="{y + 3}" width="{pw:.1f}" height="{row_h - 8}" '
                        f'rx="2" fill="url(#{uid}-hatch)"/>')
        body.append(_text(left + w + 6, y + 17, r.note or number(r.value), fill="#444"))
        body.append("</g>")
    if part_name and any(r.part for r in rows):
        body.append(f'<rect x="{width - 120}" y="{height - 16}" width="12" height="12" '
                    'fill="#777"/>')
        body.append(f'<rect x="{width - 120}" y="{height - 16}" width="12" height="12" '
                    f'fill="url(#{uid}-hatch)"/>')
        body.append(_text(width - 102, height - 6, part_name, size=11, fill="#444"))
        height += 4
    return _svg(width, height, body, label)


@dataclass(frozen=True)
class Flow:
    source: str
    target: str
    value: int


def sankey(flows: Sequence[Flow], sources: Sequence[str], targets: Sequence[str],
           colors: dict[str, str], label: str, *, width: int = 760, height: int = 380) -> str:
    """Flows from the stages on the left to those on the right, bands as wide as the moves.

    ``sources`` and ``targets`` give the order of the nodes (top to bottom); nodes
    without flows are left out.
    """
    flows = [f for f in flows if f.value > 0]
    out_total = {s: sum(f.value for f in flows if f.source == s) for s in sources}
    in_total = {t: sum(f.value for f in flows if f.target == t) for t in targets}
    left = [s for s in sources if out_total[s]]
    right = [t for t in targets if in_total[t]]
    if not flows:
        return _svg(width, 40, [_text(10, 25, "No moves in this period.", fill="#666")], label)
    gap, node_w, x0, x1 = 10, 14, 170, width - 184
    top_pad = 8
    scale = (height - 2 * top_pad - gap * (max(len(left), len(right)) - 1)) / max(
        sum(out_total.values()), sum(in_total.values()))

    def place(nodes: list[str], totals: dict[str, int]) -> dict[str, float]:
        used = sum(totals[n] for n in nodes) * scale + gap * (len(nodes) - 1)
        y, out = top_pad + (height - 2 * top_pad - used) / 2, {}
        for n in nodes:
            out[n] = y
            y += totals[n] * scale + gap
        return out

    ys, yt = place(left, out_total), place(right, in_total)
    next_s, next_t = dict(ys), dict(yt)
    body = []
    order = {n: i for i, n in enumerate(targets)}
    for f in sorted(flows, key=lambda f: (left.index(f.source), order[f.target])):
        h = f.value * scale
        a, b = next_s[f.source], next_t[f.target]
        next_s[f.source] += h
        next_t[f.target] += h
        xa, xb = x0 + node_w, x1
        xm = (xa + xb) / 2
        path = (f"M{xa:.1f},{a:.1f} C{xm:.1f},{a:.1f} {xm:.1f},{b:.1f} {xb:.1f},{b:.1f} "
                f"L{xb:.1f},{b + h:.1f} C{xm:.1f},{b + h:.1f} {xm:.1f},{a + h:.1f} "
                f"{xa:.1f},{a + h:.1f} Z")
        color = colors.get(f.source, NEUTRAL)
        body.append(f'<path d="{path}" fill="{color}" fill-opacity="0.38">'
                    f"<title>{esc(f.source)} → {esc(f.target)}: {number(f.value)}</title></path>")
    for nodes, totals, pos, x, side in ((left, out_total, ys, x0, "end"),
                                        (right, in_total, yt, x1, "start")):
        for n in nodes:
            h = max(totals[n] * scale, 1.0)
            y = pos[n]
            body.append(f'<rect x="{x}" y="{y:.1f}" width="{node_w}" height="{h:.1f}" '
                        f'fill="{colors.get(n, NEUTRAL)}"><title>{esc(n)}: '
                        f"{number(totals[n])}</title></rect>")
            tx = x - 6 if side == "end" else x + node_w + 6
            body.append(_text(tx, y + h / 2 + 4, f"{n} ({number(totals[n])})", anchor=side))
    body.append(_text(x0 + node_w / 2, height + 14, "from", anchor="middle", size=11,
                      fill="#666"))
    body.append(_text(x1 + node_w / 2, height + 14, "to", anchor="middle", size=11, fill="#666"))
    return _svg(width, height + 20, body, label)


@dataclass(frozen=True)
class Step:
    stage: str
    customers: int
    next_stage: str | None  # None: the end of the path
    onward: int | None
    conversion: float | None
    outflows: Sequence[tuple[str, int]] = ()  # customers who left the path, by stage


def funnel(steps: Sequence[Step], colors: dict[str, str], label: str, *,
           width: int = 720) -> str:
    """The stages of a path as centred bars as wide as their customers, with the share that
    went on to the next stage written between them, and the outflows off the path."""
    if not steps:
        return _svg(width, 40, [_text(10, 25, "No stages to convert between.", fill="#666")],
                    label)
    bar_h, step_h, label_w = 26, 52, 150
    top = max(s.customers for s in steps) or 1
    span = width - label_w - 20
    body = []
    for i, s in enumerate(steps):
        y = 4 + i * step_h
        w = max(span * s.customers / top, 2.0)
        x = label_w + (span - w) / 2
        body.append(f"<g><title>{esc(s.stage)}: {number(s.customers)} customers in the "
                    f"period</title>")
        body.append(_text(label_w - 8, y + 18, s.stage, anchor="end"))
        body.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="3" '
                    f'fill="{colors.get(s.stage, NEUTRAL)}"/>')
        body.append(_text(label_w + span / 2, y + 18, number(s.customers), anchor="middle",
                          weight="bold", fill="#fff" if w > 60 else "#222"))
        body.append("</g>")
        parts = []
        if s.next_stage is not None:
            parts.append(f"↓ {percent(s.conversion)} to {s.next_stage} ({number(s.onward)})")
        if s.outflows:
            parts.append("outflow: " + ", ".join(f"{stage} {number(n)}"
                                                 for stage, n in s.outflows))
        if parts:
            body.append(_text(label_w + span / 2, y + bar_h + 17, " · ".join(parts),
                              anchor="middle", size=11, fill="#444"))
    last = steps[-1]
    tail = step_h if last.next_stage is not None or last.outflows else bar_h + 8
    return _svg(width, (len(steps) - 1) * step_h + tail + 4, body, label)


@dataclass(frozen=True)
class Curve:
    stage: str
    points: Sequence[tuple[int, float]]  # (day, survival) where visits left or were censored
    expected: int | None
    median: int | None
    p90: int | None
    visits: int
    left: int = 0  # visits that ended: the exits the estimate rests on
    thin: str = ""  # why there is no estimate (too few exits), or "": drawn light


def survival_grid(curves: Sequence[Curve], colors: dict[str, str], label: str, *,
                  columns: int = 3, cell_w: int = 360, cell_h: int = 190) -> str:
    """One small Kaplan-Meier chart per stage: the share of visits still in the stage
    after each day, with the expected days (dashed) and the median (dot)."""
    if not curves:
        return _svg(cell_w, 40, [_text(10, 25, "No visits in this period.", fill="#666")], label)
    rows = (len(curves) + columns - 1) // columns
    body = []
    pad_l, pad_r, pad_t, pad_b = 38, 12, 40, 26
    for i, c in enumerate(curves):
        ox, oy = (i % columns) * cell_w, (i // columns) * cell_h
        pw, ph = cell_w - pad_l - pad_r, cell_h - pad_t - pad_b
        last = c.points[-1][0] if c.points else 0
        xmax = max(last, int((c.expected or 0) * 1.25), 1)

        def px(day: float, ox: float = ox, pw: float = pw, xmax: float = xmax) -> float:
            return ox + pad_l + pw * day / xmax

        def py(share: float, oy: float = oy, ph: float = ph) -> float:
            return oy + pad_t + ph * (1 - share)

        color = colors.get(c.stage, NEUTRAL)
        body.append("<g>")
        body.append(_text(ox + pad_l, oy + 16, c.stage, weight="bold", size=13))
        counts = f"{number(c.visits)} visits, {number(c.left)} left"
        facts = (f"{c.thin} · {counts}" if c.thin else
                 f"median {_days(c.median)} · p90 {_days(c.p90)} · expected "
                 f"{_days(c.expected)} · {counts}")
        body.append(_text(ox + pad_l, oy + 31, facts, size=10, fill="#555"))
        # frame and gridlines
        body.append(f'<rect x="{px(0):.1f}" y="{py(1):.1f}" width="{pw}" height="{ph}" '
                    'fill="#fafafa" stroke="#ddd"/>')
        for share in (0.5,):
            body.append(f'<line x1="{px(0):.1f}" y1="{py(share):.1f}" x2="{px(xmax):.1f}" '
                        f'y2="{py(share):.1f}" stroke="#bbb" stroke-dasharray="2,3"/>')
        for share, text in ((1.0, "100%"), (0.5, "50%"), (0.0, "0%")):
            body.append(_text(px(0) - 4, py(share) + 4, text, anchor="end", size=9,
                              fill="#666"))
        body.append(_text(px(0), oy + cell_h - 8, "0", anchor="middle", size=9, fill="#666"))
        body.append(_text(px(xmax), oy + cell_h - 8, f"{xmax} d", anchor="middle", size=9,
                          fill="#666"))
        if c.expected is not None:
            body.append(f'<line x1="{px(c.expected):.1f}" y1="{py(1):.1f}" '
                        f'x2="{px(c.expected):.1f}" y2="{py(0):.1f}" stroke="#D55E00" '
                        f'stroke-dasharray="5,3"><title>expected {c.expected} days</title>'
                        "</line>")
        # the step curve: flat until each day where visits left, then down
        d, share = [f"M{px(0):.1f},{py(1):.1f}"], 1.0
        for day, s in c.points:
            d.append(f"H{px(day):.1f}")
            if s != share:
                d.append(f"V{py(s):.1f}")
                share = s
        light = ' stroke-opacity="0.35" stroke-dasharray="4,3"' if c.thin else ""
        body.append(f'<path d="{" ".join(d)}" fill="none" stroke="{color}" '
                    f'stroke-width="2"{light}><title>{esc(c.stage)}: share of visits still in the '
                    "stage after each day</title></path>")
        if c.median is not None:
            body.append(f'<circle cx="{px(c.median):.1f}" cy="{py(0.5):.1f}" r="3.5" '
                        f'fill="{color}"><title>median {c.median} days</title></circle>')
        body.append("</g>")
    width, height = min(len(curves), columns) * cell_w, rows * cell_h
    return _svg(width, height, body, label)


def _days(value: int | None) -> str:
    return EMPTY if value is None else f"{value} d"
