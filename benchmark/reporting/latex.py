"""LaTeX tables for papers: numbers in math mode as m x 10^k, digits set by the interval, bounds and unidentified parameters named.

Rounding follows the usual rule for a value with an uncertainty: the distance to the interval's
nearer end is kept to two significant digits and the estimate and both ends are rounded at that decimal place (so
1.8166 [1.769, 1.871] prints as 1.817 [1.769, 1.871] and 477.8 [285, 744] as 480 [290, 740]).
A parameter whose estimate sits at the bound of its domain (E -> 0: the Huber fit put the
irreducible loss at zero) prints as 0 with its upper end; one whose interval spans more than
UNIDENTIFIED_DECADES decades, or has no interval, prints as unidentified (the rule and its thresholds:
benchmark.scaling.quality, which also flags whole fits as not identified).
"""
from __future__ import annotations

import math
import re
from typing import Iterable, Sequence

from benchmark.scaling.quality import UNIDENTIFIED_DECADES, at_bound, spans_decades

POSITIVE = {"E", "A", "B", "alpha", "beta", "N_c", "D_c", "alpha_N", "alpha_D", "C_mid", "C_growth", "C_saturation",
            "N_opt", "D_opt", "a", "b"}
TEX_NAMES = {"alpha": r"\alpha", "beta": r"\beta", "alpha_N": r"\alpha_N", "alpha_D": r"\alpha_D", "N_c": "N_c",
             "D_c": "D_c", "N_opt": r"N_\mathrm{opt}", "D_opt": r"D_\mathrm{opt}", "C_mid": r"C_\mathrm{mid}",
             "C_growth": r"C_\mathrm{growth}", "C_saturation": r"C_\mathrm{sat}", "gamma": r"\gamma", "delta": r"\delta",
             "epsilon": r"\epsilon", "L_mid": r"L_\mathrm{mid}", "lo": r"\mathrm{lo}", "hi": r"\mathrm{hi}"}


def tex_name(name: str) -> str:
    return f"${TEX_NAMES.get(name, name)}$"


def escape(text: str) -> str:
    """Plain text made safe for LaTeX."""
    out = []
    for ch in str(text):
        out.append({"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
                    ">": r"\textgreater{}"}.get(ch, ch))
    return "".join(out)


def _decimals(x: float) -> int:
    """Position of the last kept digit (10^place) when x is rounded to two significant digits."""
    return math.floor(math.log10(abs(x))) - 1


def mantissa_exp(x: float, place: int) -> tuple[str, int]:
    """x rounded at 10^place, written as (mantissa text, exponent k) with 1 <= |mantissa| < 10, or k = 0 for
    numbers between 0.01 and 10^4 (written out in full)."""
    r = round(x / 10.0 ** place) * 10.0 ** place
    if r == 0:
        return "0", 0
    k = math.floor(math.log10(abs(r)))
    if -2 <= k <= 3:
        return f"{r:.{max(0, -place)}f}", 0
    digits = max(0, k - place)
    m = r / 10.0 ** k
    if round(abs(m), digits) >= 10:  # 9.99 -> 10.0: renormalise
        k, m = k + 1, m / 10
        digits = max(0, digits - 1)
    return f"{m:.{digits}f}", k


def number(x: float, place: int | None = None) -> str:
    """x in math mode as m \\times 10^{k}; place = the decimal place to round at (default: 3 significant digits)."""
    if x is None or not math.isfinite(x):
        return "--"
    if x == 0:
        return "$0$"
    place = math.floor(math.log10(abs(x))) - 2 if place is None else place
    m, k = mantissa_exp(x, place)
    m = m.replace("-", "-")
    return f"${m}$" if k == 0 else f"${m} \\times 10^{{{k}}}$"


def interval_cell(name: str, est: float | None, ci: Sequence[float] | None) -> tuple[str, str | None]:
    """(cell text, footnote mark or None) of an estimate with its 95 % interval."""
    if est is None or not math.isfinite(est):
        return "--", None
    if name in POSITIVE and at_bound(est, 0.0):
        hi = ci[1] if ci and ci[1] is not None and math.isfinite(ci[1]) else None
        return ("$0\\ [0,\\ " + number(hi)[1:-1] + "]$" if hi else "$0$") + r"\textsuperscript{b}", "b"
    if not ci or ci[0] is None or ci[1] is None or not (math.isfinite(ci[0]) and math.isfinite(ci[1])):
        return number(est) + r"\textsuperscript{u}", "u"
    lo, hi = ci
    if name in POSITIVE and spans_decades(est, lo, hi):
        return number(est, _decimals(est)) + r"\textsuperscript{u}", "u"
    sides = [w for w in (est - lo, hi - est) if w > 0]  # the nearer end sets the digits (skewed intervals)
    if not sides and est == 0:  # e.g. a bounded floor lo = 0 [0, 0]
        return "$0\\ [0,\\ 0]$", None
    place = _decimals(min(sides)) if sides else _decimals(est) - 1
    if est != 0:
        place = min(place, _decimals(est) + 1)  # never fewer than one significant digit of the estimate
    return triple(est, lo, hi, place), None


def triple(est: float, lo: float, hi: float, place: int) -> str:
    """'est [lo, hi]' rounded at 10^place with one shared power of ten: $(8.4\\ [6.6,\\ 11.6]) \\times 10^{9}$."""
    ref = round(est / 10.0 ** place) * 10.0 ** place or est
    k = math.floor(math.log10(abs(ref))) if ref else 0
    k = 0 if -2 <= k <= 3 else k
    dec = max(0, k - place)
    vals = [f"{round(v / 10.0 ** place) * 10.0 ** (place - k):.{dec}f}" for v in (est, lo, hi)]
    body = f"{vals[0]}\\ [{vals[1]},\\ {vals[2]}]"
    return f"${body}$" if k == 0 else f"$({body}) \\times 10^{{{k}}}$"


FOOTNOTES = {"b": r"\textsuperscript{b}\,At the bound of its domain ($\geq 0$): the fit sets it to zero; the bracket "
                  r"gives the bootstrap 95\,\% upper end.",
             "u": r"\textsuperscript{u}\,Unidentified: no bootstrap interval, or one spanning more than "
                  f"{UNIDENTIFIED_DECADES:g} decades; the data do not determine this parameter."}


def table(columns: Sequence[str], rows: Iterable[tuple[str, dict[str, tuple[float | None, Sequence[float] | None]] | str, str]],
          caption: str, label: str, extra_head: str = "") -> str:
    """booktabs table: one row per (row label, {column: (estimate, ci)}, last cell), columns = parameter names; a
    text instead of the cells (e.g. 'not identified (...)') spans the parameter columns."""
    marks: set[str] = set()
    body = []
    for name, cells, last in rows:
        if isinstance(cells, str):  # numbers in the text (1.98e-07) in math mode, as everywhere else
            text = re.sub(r"-?\d+(?:\.\d+)?e[+-]?\d+", lambda m: number(float(m.group())), escape(cells))
            body.append(escape(name) + f" & \\multicolumn{{{len(columns)}}}{{l}}{{{text}}} & {last} \\\\")
            continue
        out = []
        for c in columns:
            est, ci = cells.get(c, (None, None))
            text, mark = interval_cell(c, est, ci)
            out.append(text)
            if mark:
                marks.add(mark)
        body.append(escape(name) + " & " + " & ".join(out) + f" & {last} \\\\")
    lines = [r"\begin{table}[t]", r"\centering", r"\scriptsize", r"\setlength{\tabcolsep}{3pt}",
             r"\begin{tabular}{l" + "c" * len(columns) + "r" * (extra_head.count("&") + 1) + "}", r"\toprule",
             "Fit & " + " & ".join(tex_name(c) for c in columns) + (f" & {extra_head}" if extra_head else " & $n$") + r" \\",
             r"\midrule", *body, r"\bottomrule", r"\end{tabular}"]
    notes = " ".join(FOOTNOTES[m] for m in sorted(marks))
    lines += [r"\caption{" + caption + (" " + notes if notes else "") + "}", r"\label{" + label + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def document(tables: Sequence[str]) -> str:
    """A minimal document around generated tables (what the tests compile with pdflatex)."""
    return "\n".join([r"\documentclass{article}", r"\usepackage[margin=2cm,landscape]{geometry}", r"\usepackage{booktabs}",
                      r"\begin{document}", *tables, r"\end{document}"]) + "\n"
