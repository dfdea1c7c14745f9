"""leaderboard/index.html: one self-contained page (inline CSS and JS, figures as data URIs, no network).

A sortable, filterable table of every run of every source, the fitted laws with intervals and
held-out errors, the figures, the card's key numbers and a source selector; a print stylesheet lays
out the same content for paper.
"""
from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any, Sequence

CSS = """
:root{--fg:#111;--mut:#555;--line:#ccc;--hi:#f3f3f3}
*{box-sizing:border-box}body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0}
main{max-width:1400px;margin:0 auto;padding:1rem 1.25rem}h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .5rem;border-bottom:1px solid var(--line)}
.mut{color:var(--mut)}.keys{display:flex;flex-wrap:wrap;gap:.6rem;margin:.6rem 0}.key{border:1px solid var(--line);border-radius:6px;padding:.4rem .7rem;min-width:10rem}
.key b{display:block;font-size:1.05rem}.controls{position:sticky;top:0;background:#fff;padding:.5rem 0;border-bottom:1px solid var(--line);z-index:2;display:flex;flex-wrap:wrap;gap:.8rem;align-items:center}
.controls label{white-space:nowrap}input[type=search]{font:inherit;padding:.25rem .4rem;min-width:16rem}
.wrap{overflow-x:auto;max-height:70vh;border:1px solid var(--line)}table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{padding:.2rem .45rem;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}th:first-child,td:first-child,td.t,th.t{text-align:left}
thead th{position:sticky;top:0;background:var(--hi);cursor:pointer;user-select:none}thead th[aria-sort=ascending]::after{content:" \\25B2"}thead th[aria-sort=descending]::after{content:" \\25BC"}
tbody tr:hover{background:#fafafa}.hidden{display:none}figure{margin:1rem 0;break-inside:avoid}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:var(--mut);font-size:12px}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:1rem}
@media print{.controls,.noprint{display:none}.wrap{max-height:none;overflow:visible;border:0}thead th{position:static}
body{font-size:10px}table{font-size:8.5px}th,td{padding:1px 3px}h2{break-after:avoid}tr{break-inside:avoid}.grid{display:block}a{color:inherit;text-decoration:none}}
"""

JS = """
(function(){
  function num(td){var v=td.getAttribute('data-v');if(v===null)return null;var x=parseFloat(v);return isNaN(x)?v:x;}
  document.querySelectorAll('table.sortable thead th').forEach(function(th,col){
    th.addEventListener('click',function(){
      var table=th.closest('table'),body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      var dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
      table.querySelectorAll('thead th').forEach(function(o){o.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',dir===1?'ascending':'descending');
      rows.sort(function(a,b){var x=num(a.cells[col]),y=num(b.cells[col]);
        if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
        if(typeof x==='number'&&typeof y==='number')return dir*(x-y);return dir*String(x).localeCompare(String(y));});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  var boxes=document.querySelectorAll('input.src'),q=document.getElementById('q');
  function apply(){
    var on={};boxes.forEach(function(b){on[b.value]=b.checked;});var text=(q.value||'').toLowerCase();
    document.querySelectorAll('tr[data-source]').forEach(function(tr){
      var show=on[tr.getAttribute('data-source')]!==false&&(!text||tr.textContent.toLowerCase().indexOf(text)>=0);
      tr.classList.toggle('hidden',!show);});
    document.querySelectorAll('table.sortable').forEach(function(t){
      var shown=Array.prototype.filter.call(t.tBodies[0].rows,function(r){return !r.classList.contains('hidden');});
      var n=t.tHead.rows[0].cells.length;
      for(var c=0;c<n;c++){var empty=t.tHead.rows[0].cells[c].hasAttribute('data-opt')&&shown.every(function(r){return r.cells[c].getAttribute('data-v')===null;});
        t.tHead.rows[0].cells[c].classList.toggle('hidden',empty);
        Array.prototype.forEach.call(t.tBodies[0].rows,function(r){r.cells[c].classList.toggle('hidden',empty);});}
      var cnt=document.getElementById(t.id+'-count');if(cnt)cnt.textContent=shown.length;
    });
  }
  boxes.forEach(function(b){b.addEventListener('change',apply);});q.addEventListener('input',apply);
  document.getElementById('all').addEventListener('click',function(){boxes.forEach(function(b){b.checked=true;});apply();});
  apply();
})();
"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for the page: plain when moderate, m×10<sup>k</sup> otherwise."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, int) and abs(x) < 10_000:
        return str(x)
    if x == 0:
        return "0"
    k = math.floor(math.log10(abs(x)))
    if -2 <= k <= 3:
        return f"{x:.{max(0, digits - 1 - k)}f}"
    m = x / 10 ** k
    return f"{m:.{digits - 1}f}×10<sup>{k}</sup>"


def cell(x: Any, text: str | None = None, cls: str = "") -> str:
    v = "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f' data-v="{esc(x)}"'
    c = f' class="{cls}"' if cls else ""
    return f"<td{c}{v}>{text if text is not None else esc(x)}</td>"


def runs_table(runs: list[dict], values: dict[tuple[str, str, str, str], float], family: dict[tuple[str, str], str],
               headline: Sequence[tuple[str, str, str]]) -> str:
    head = ["source", "run", "family", "N", "N non-emb.", "D (tokens)", "C (FLOP)", "status"]
    th = "".join(f'<th class="t">{h}</th>' if i < 3 or h == "status" else f"<th>{h}</th>" for i, h in enumerate(head))
    th += "".join(f"<th data-opt>{esc(label)}</th>" for _, _, label in headline)
    body = []
    for r in sorted(runs, key=lambda r: (r["source"] != "local", r["source"], r["flops"], r["run_id"])):
        s, rid = r["source"], r["run_id"]
        tds = [cell(s, cls="t"), cell(rid, cls="t"), cell(family.get((s, r["model_size"]), r["model_size"]), cls="t"),
               cell(r["n_params"], fmt(r["n_params"])), cell(r["n_params_nonembedding"], fmt(r["n_params_nonembedding"])),
               cell(r["tokens"], fmt(r["tokens"])), cell(r["flops"], fmt(r["flops"])), cell(r["status"], cls="t")]
        tds += [cell(values.get((s, rid, m, t)), fmt(values.get((s, rid, m, t)), 4)) for m, t, _ in headline]
        body.append(f'<tr data-source="{esc(s)}">' + "".join(tds) + "</tr>")
    return (f'<div class="wrap"><table id="runs" class="sortable"><thead><tr>{th}</tr></thead><tbody>'
            + "\n".join(body) + "</tbody></table></div>")


def fits_table(groups: list[dict]) -> str:
    head = '<th class="t">source</th><th class="t">law</th><th class="t">target</th><th class="t">parameter</th><th>estimate</th><th>95 % interval</th><th>held-out |rel. err.|</th><th>points</th>'
    body = []
    for g in groups:
        for p, est in g["params"].items():
            ci = g["ci95"].get(p)
            body.append(f'<tr data-source="{esc(g["source"])}">' + cell(g["source"], cls="t") + cell(g["law"], cls="t")
                        + cell(g["target"], cls="t") + cell(p, cls="t") + cell(est, fmt(est, 4))
                        + cell(None if ci is None else ci[0], "–" if ci is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]")
                        + cell(g["rel_err"], "–" if g["rel_err"] is None else f"{100 * g['rel_err']:.2f} %")
                        + cell(g["n_points"]) + "</tr>")
    return (f'<div class="wrap"><table id="fits" class="sortable"><thead><tr>{head}</tr></thead><tbody>'
            + "\n".join(body) + "</tbody></table></div>")


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render(*, runs: list[dict], metrics: list[dict], groups: list[dict], sources: list[dict], models: list[dict],
           figures: Sequence[tuple[str, Path]], keys: Sequence[tuple[str, str]], headline: Sequence[tuple[str, str, str]],
           git_sha: str, title: str = "Scaling-law benchmark: leaderboard") -> str:
    """The page's HTML. `figures`: (caption, PNG path) inlined as data URIs; `keys`: (label, value) of the card."""
    values = {(m["source"], m["run_id"], m["metric"], m["task"]): m["value"] for m in metrics}
    family = {(m["source"], m["model_size"]): m["family"] for m in models}
    names = list(dict.fromkeys(["local", *sorted({r["source"] for r in runs})]))
    names = [n for n in names if any(r["source"] == n for r in runs)]
    count = {n: sum(r["source"] == n for r in runs) for n in names}
    boxes = "".join(f'<label><input type="checkbox" class="src" value="{esc(n)}" checked> {esc(n)} ({count[n]})</label>' for n in names)
    used = [h for h in headline if any((r["source"], r["run_id"], h[0], h[1]) in values for r in runs)]
    src_rows = "".join(f"<tr><td class=t>{esc(s['source'])}</td><td class=t>{esc(s['citation'])}</td>"
                       f"<td class=t>{esc(s['url'] or '–')}</td><td class=t>{esc((s['commit'] or '–')[:12])}</td>"
                       f"<td class=t>{esc(s['license'] or '–')}</td><td>{s['n_runs']}</td><td class=t>{esc(s['note'] or '')}</td></tr>"
                       for s in sources)
    figs = "".join(f'<figure><img alt="{esc(c)}" src="{data_uri(p)}"><figcaption>{esc(c)}</figcaption></figure>' for c, p in figures)
    meta = json.dumps({"sources": names, "runs": count}).replace("</", "<\\/")
    key_html = "".join(f'<div class="key"><span class="mut">{esc(k)}</span><b>{v}</b></div>' for k, v in keys)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><style>{CSS}</style></head>
<body><main>
<h1>{esc(title)}</h1>
<p class="mut">Every run of every source (this grid and imported published results), the laws fitted to each with 95 % bootstrap
intervals and held-out extrapolation errors, and the figures. Generated by <code>python -m benchmark report</code> at git commit
<code>{esc(git_sha)}</code>; opens from disk with no network. Click a column header to sort.</p>
<div class="keys">{key_html}</div>
<div class="controls"><strong>Sources:</strong> {boxes} <button id="all" type="button">all</button>
<label>Filter <input id="q" type="search" placeholder="run, family, law, target…"></label></div>
<h2>Runs (<span id="runs-count">{len(runs)}</span>)</h2>
{runs_table(runs, values, family, used)}
<h2>Fitted laws (<span id="fits-count">{sum(len(g['params']) for g in groups)}</span> parameters)</h2>
{fits_table(groups)}
<h2>Figures</h2><div class="grid">{figs}</div>
<h2>Sources</h2><div class="wrap"><table><thead><tr><th class=t>source</th><th class=t>citation</th><th class=t>files</th><th class=t>commit</th><th class=t>license</th><th>runs</th><th class=t>how</th></tr></thead>
<tbody>{src_rows}</tbody></table></div>
</main><script>{JS}</script>
<script type="application/json" id="page-data">{meta}</script>
</body></html>
"""
