"""The row browser's markup: sampled rows per group, each response token shaded by the
teacher's entropy or by its log-prob, with the top-k alternatives on hover.

The shading is computed here, so the page reads right before any script runs; the small
script in `BROWSER_JS` only switches the shading, the group shown, and fills the hover
box from one JSON blob (token strings once, each token's alternatives as ids).
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

SURPRISAL_SCALE = 6.0  # nats: a sampled token at log-prob -6 (p = 0.25 %) is fully shaded
ENTROPY_RGB, SURPRISAL_RGB = "235,130,20", "200,40,110"


def entropy_shade(entropy: float, top_k: int) -> float:
    """0..1: the token's entropy over the most its top-k plus tail bucket can have."""
    return min(max(entropy / math.log(top_k + 1), 0.0), 1.0)


def surprisal_shade(logprob: float) -> float:
    """0..1: how unlikely the teacher found the sampled token, -log p over 6 nats."""
    return min(max(-logprob / SURPRISAL_SCALE, 0.0), 1.0)


def _rgba(rgb: str, alpha: float) -> str:
    return f"rgba({rgb},{alpha:.3f})"


def _token_span(index: int, token: dict[str, Any], text: str, top_k: int) -> str:
    """A token with its entropy and log-prob; its shade (by entropy, until the switch
    changes it) is set here so the page reads right before any script runs."""
    by_entropy = _rgba(ENTROPY_RGB, entropy_shade(token["entropy"], top_k))
    return (
        f"<span class='tok' data-i='{index}' data-e='{token['entropy']:.6g}' "
        f"data-l='{token['logprob']:.6g}' style='background:{by_entropy}'>"
        f"{html.escape(text)}</span>"
    )


def _row_header(row: dict[str, Any]) -> str:
    facts = [("record", row["record_id"][:16]), ("domain", row["domain"])]
    facts += [("reference", row["reference"]), ("finish", row["finish_reason"])]
    if row.get("reason"):
        facts += [("dropped by", row["step"]), ("reason", row["reason"])]
    cells = "".join(
        f"<span class='fact'><b>{name}</b> {html.escape(str(value))}</span>"
        for name, value in facts
        if value is not None
    )
    details = row.get("details")
    if details:
        cells += f"<span class='fact'><b>details</b> {html.escape(json.dumps(details))}</span>"
    return f"<div class='facts'>{cells}</div>"


def _row_card(row: dict[str, Any], first: int, strings: dict[int, str], top_k: int) -> str:
    spans = "".join(
        _token_span(first + offset, token, strings[token["id"]], top_k)
        for offset, token in enumerate(row["tokens"])
    )
    cut = (
        f"<span class='cut'> … {row['tokens_cut']} more tokens</span>" if row["tokens_cut"] else ""
    )
    return (
        f"<article class='row'>{_row_header(row)}"
        f"<details><summary>prompt</summary><pre>{html.escape(row['prompt'])}</pre></details>"
        f"<div class='response'>{spans}{cut}</div></article>"
    )


def browser_html(
    groups: dict[str, list[dict[str, Any]]], strings: dict[int, str], top_k: int
) -> str:
    """The browser: group tabs, shading switch, row cards, hover box, token data."""
    tabs, panes, tokens = [], [], []
    for number, (group, rows) in enumerate(groups.items()):
        active = " active" if number == 0 else ""
        tabs.append(
            f"<button class='tab{active}' data-group='{html.escape(group)}'>"
            f"{html.escape(group)} ({len(rows)})</button>"
        )
        cards = []
        for row in rows:
            cards.append(_row_card(row, len(tokens), strings, top_k))
            tokens.extend(
                [t["id"], round(t["entropy"], 4), round(t["logprob"], 4), round(t["tail"], 4),
                 [[i, round(p, 4)] for i, p in t["top"]], round(t["rest"], 4)]
                for t in row["tokens"]
            )  # fmt: skip
        hidden = "" if number == 0 else " hidden"
        panes.append(
            f"<div class='pane' data-group='{html.escape(group)}'{hidden}>{''.join(cards)}</div>"
        )
    shading = {"e": [ENTROPY_RGB, math.log(top_k + 1)], "l": [SURPRISAL_RGB, SURPRISAL_SCALE]}
    strings_by_id = {str(i): s for i, s in strings.items()}
    data = json.dumps({"strings": strings_by_id, "tokens": tokens, "shading": shading})
    data = data.replace("</", "<\\/")  # a token string can't close the script element
    return (
        "<div class='controls'>shade tokens by "
        "<label><input type='radio' name='shade' value='e' checked> teacher entropy</label> "
        "<label><input type='radio' name='shade' value='l'> sampled token's log-prob</label>"
        f"<span class='legend'>darker = less sure (entropy up to ln({top_k}+1) nats; "
        f"log-prob down to -{SURPRISAL_SCALE:g} nats)</span></div>"
        f"<nav class='tabs'>{''.join(tabs)}</nav>{''.join(panes)}"
        "<div id='tip' role='tooltip' hidden></div>"
        f"<script type='application/json' id='token-data'>{data}</script>"
    )


BROWSER_JS = """
(() => {
  const data = JSON.parse(document.getElementById('token-data').textContent);
  const tip = document.getElementById('tip');
  const text = (id) => data.strings[id] ?? ('#' + id);
  const esc = (s) => s.replace(/[&<>]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;'}[c]));
  document.querySelectorAll('input[name=shade]').forEach((radio) => {
    radio.addEventListener('change', () => {
      // entropy over ln(k + 1), or the sampled token's -log-prob over 6 nats, as in Python
      const [rgb, scale] = data.shading[radio.value];
      const sign = radio.value === 'e' ? 1 : -1;
      document.querySelectorAll('.tok').forEach((t) => {
        const alpha = Math.min(Math.max(sign * Number(t.dataset[radio.value]) / scale, 0), 1);
        t.style.background = `rgba(${rgb},${alpha.toFixed(3)})`;
      });
    });
  });
  document.querySelectorAll('.tab').forEach((tab) => {
    tab.addEventListener('click', () => {
      const group = tab.dataset.group;
      document.querySelectorAll('.tab').forEach((t) => t.classList.toggle('active', t === tab));
      document.querySelectorAll('.pane').forEach((p) => { p.hidden = p.dataset.group !== group; });
    });
  });
  const quoted = (id) => `<code>${esc(JSON.stringify(text(id)))}</code>`;
  const percent = (p) => `${(100 * p).toFixed(1)}%`;
  document.addEventListener('mouseover', (event) => {
    const tok = event.target.closest('.tok');
    if (!tok) { tip.hidden = true; return; }
    const [id, entropy, logprob, tail, top, rest] = data.tokens[Number(tok.dataset.i)];
    const rows = top.map(([alt, p]) =>
      `<tr class="${alt === id ? 'sampled' : ''}"><td>${quoted(alt)}</td>` +
      `<td>${percent(p)}</td><td><i style="width:${Math.round(100 * p)}px"></i></td></tr>`);
    tip.innerHTML = `<div>${quoted(id)} log-prob ${logprob.toFixed(3)}, ` +
      `entropy ${entropy.toFixed(3)} nats</div><table>${rows.join('')}` +
      (rest > 0 ? `<tr><td>the other top-k entries</td><td>${percent(rest)}</td></tr>` : '') +
      `<tr><td>beyond the top-k</td><td>${percent(tail)}</td><td></td></tr></table>`;
    tip.hidden = false;
    const box = tok.getBoundingClientRect();
    const room = document.documentElement.clientWidth - tip.offsetWidth - 8;
    const left = Math.max(0, Math.min(box.left, room));  // keep the box inside the window
    tip.style.left = `${window.scrollX + left}px`;
    tip.style.top = `${window.scrollY + box.bottom + 4}px`;
  });
})();
"""
