"""The bench's markdown table: one line per engine per (shape, weights) row, then our ratios to each peer
and to the best peer, with tg as a share of the bandwidth roofline and pp as a share of the measured peak
of the engine's matrix instruction (bench/roofline.py)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import roofline
from checkpoint import Shape

OURS = "neox_cpp"
# Peers that are not candidates for "best peer" (variants shown for comparison only).
NOT_BEST = ("CTranslate2 AVX2",)


@dataclass
class EngineRun:
    name: str
    fmt: str  # what it reads, e.g. "q8_0 GGUF", "int8 CT2", "bf16 torch"
    file_bytes: int
    bytes_per_token: int
    all_logits: bool = False  # its pp also projects every position to the vocabulary
    tok_s: Dict[str, List[float]] = field(default_factory=dict)
    info: str = ""
    peak_rss: int = 0
    skipped: str = ""  # why it did not run


@dataclass
class Row:
    shape: Shape
    wtype: str
    engines: List[EngineRun]
    # read bandwidth (GB/s) measured right after each repetition's tg round: that repetition's roofline
    bw_reps: List[float] = field(default_factory=list)


def num(v: float) -> str:
    """Three significant digits, but never an exponent: 1390, not 1.39e+03."""
    return f"{v:.0f}" if abs(v) >= 999.5 else f"{v:.3g}"


def fmt(vals: List[float]) -> str:
    if not vals:
        return "–"
    m = statistics.median(vals)
    if len(vals) == 1:
        return num(m)
    return f"{num(m)} ({num(min(vals))}–{num(max(vals))})"


def pp_fraction(e: EngineRun, shape: Shape, wtype: str, peaks: Dict[str, float]) -> str:
    """'NN% <isa>' of the longest pp test, or ''."""
    pps = sorted((int(t[2:]), t) for t in e.tok_s if t.startswith("pp") and e.tok_s[t])
    isa = roofline.engine_isa(e.name, wtype, peaks)
    if not pps or isa is None:
        return ""
    n, t = pps[-1]
    macs_s = roofline.pp_macs(shape, n, e.all_logits) * statistics.median(e.tok_s[t]) / n
    return f"{100 * macs_s / (roofline.family_peak(isa, peaks) * 1e9):.0f}% {isa} ({t})"


def tg_fraction(e: EngineRun, bw: float, bw_reps: Optional[List[float]] = None) -> str:
    """Median tg32 tokens/s as a share of the roofline. With one bandwidth per repetition (bw_reps), each
    run is set against the bandwidth measured beside it and the median of those shares is given: the
    machine's bandwidth can move by half within minutes, more than the engines differ."""
    runs = e.tok_s.get("tg32", [])
    roof = roofline.roofline_tg(bw, e.bytes_per_token)
    if not runs or not roof:
        return ""
    if bw_reps and len(bw_reps) == len(runs):
        shares = [v / roofline.roofline_tg(b, e.bytes_per_token) for v, b in zip(runs, bw_reps)]
        return f"{100 * statistics.median(shares):.0f}%"
    return f"{100 * statistics.median(runs) / roof:.0f}%"


def _ratio_line(label: str, ours: EngineRun, peer_of: Dict[str, List[float]], tests: List[str],
                shape: str, wtype: str) -> str:
    cells = []
    for t in tests:
        a, b = ours.tok_s.get(t, []), peer_of.get(t, [])
        if a and b:
            cells.append(f"{statistics.median(a) / statistics.median(b):.2f}× (best {max(a) / max(b):.2f}×)")
        else:
            cells.append("–")
    return f"| {shape} | {wtype} | **ours / {label}** | | {' | '.join(cells)} | | |"


def render(rows: List[Row], bw: float, peaks: Dict[str, float], tests: List[str]) -> str:
    head = ("| model | weights | engine | file GB | " + " | ".join(tests)
            + " | tg % of roofline | pp % of peak |")
    out = [head, "|" + "---|" * (6 + len(tests))]
    ratios: List[str] = []
    for row in rows:
        sn = row.shape.name
        for e in row.engines:
            if e.skipped:
                cells = " | ".join("–" for _ in tests)
                out.append(f"| {sn} | {e.fmt} | {e.name}: {e.skipped} | | {cells} | | |")
                continue
            cells = " | ".join(fmt(e.tok_s.get(t, [])) for t in tests)
            out.append(f"| {sn} | {e.fmt} | {e.name} | {e.file_bytes / 1e9:.2f} | {cells} | "
                       f"{tg_fraction(e, bw, row.bw_reps)} | {pp_fraction(e, row.shape, row.wtype, peaks)} |")
        ours = next((e for e in row.engines if e.name == OURS and not e.skipped), None)
        peers = [e for e in row.engines if not e.name.startswith(OURS) and not e.skipped and e.tok_s]
        if ours is None or not peers:
            continue
        for p in peers:
            ratios.append(_ratio_line(p.name, ours, p.tok_s, tests, sn, row.wtype))
        cands = [p for p in peers if p.name not in NOT_BEST]
        if len(cands) > 1:
            # best peer per test: the peer with the highest median (its runs are the ones compared)
            best: Dict[str, List[float]] = {}
            names = []
            for t in tests:
                have = [p for p in cands if p.tok_s.get(t)]
                if have:
                    top = max(have, key=lambda p: statistics.median(p.tok_s[t]))
                    best[t] = top.tok_s[t]
                    names.append(f"{t}: {top.name}")
            ratios.append(_ratio_line(f"best peer ({', '.join(names)})", ours, best, tests, sn, row.wtype))
    return "\n".join(out + ratios)


def peaks_line(peaks: Dict[str, float]) -> str:
    if not peaks:
        return "Peak MAC rates: not measured (bench/peak.c could not be built or run)."
    order = ["amx_int8", "amx_bf16", "avx512_vnni", "avx512_vnni256", "avx_vnni", "avx2_int8",
             "avx512bw_int8", "avx512_bf16", "fma512_f32", "fma256_f32"]
    parts = [f"{k} {peaks[k]:.0f}" for k in order if k in peaks]
    return ("Peak multiply-adds (bench/peak.c, GMAC/s, same threads, best of before/after): "
            + ", ".join(parts) + ".")
