"""The report page in headless Chromium: it renders, its charts are there, hovering a token
shows the teacher's top-k, the controls work, and it neither logs an error nor fetches
anything. Needs the Debian `chromium` package (CI installs it) and Playwright's Python
client, which drives that binary; skipped, saying which is missing, without them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from distill.curate import curate_dataset
from distill.report import collect_report, write_report
from tests.factories import make_record, write_fake_dataset

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extra)")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(), reason="needs the chromium binary (apt-get install chromium)"
)
QUESTIONS = [
    ("How many real roots has x^2 + 1?\nA. Two\nB. Zero\nC. One\nD. Three", "B", "math"),
    ("Which organ pumps blood?\nA. Lung\nB. Heart\nC. Liver\nD. Skin", "B", "bio"),
    ("What is the capital of France?\nA. Rome\nB. Oslo\nC. Paris\nD. Bern", "C", "geo"),
    ("Which gas do plants take in?\nA. CO2\nB. O2\nC. N2\nD. He", "A", "bio"),
]


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    records = []
    for row, (question, answer, domain) in enumerate(QUESTIONS):
        for sample, said in enumerate([answer, "A" if answer != "A" else "D", "maybe"]):
            response = f"I think it is {said}. Answer: {said}"
            records.append(
                make_record(
                    question,
                    response,
                    row=row,
                    sample_index=sample,
                    domain=domain,
                    reference=answer,
                    top_k=5,
                )
            )
    write_fake_dataset(run / "gen", records)
    curate_dataset(run / "gen", run / "curated")
    (run / "kd").mkdir()
    metrics = {"mode": "kd", "steps": 2, "loss_curve": [[1, 5.0], [2, 4.0]],
               "heldout": {"kl": 2.0, "nll": 3.0, "tokens": 10},
               "heldout_initial": {"kl": 9.0, "nll": 9.0, "tokens": 10},
               "heldout_curve": [{"step": 2, "kl": 2.0, "nll": 3.0, "tokens": 10}]}  # fmt: skip
    (run / "kd" / "metrics.json").write_text(json.dumps(metrics))
    html_path, _ = write_report(collect_report([run]), run / "report.html")
    return html_path


def test_report_page_in_headless_chromium(report_page: Path) -> None:
    errors: list[str] = []
    fetched: list[str] = []
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: fetched.append(r.url))
        page.goto(report_page.as_uri())
        # funnel, domains, confidence signals, lengths/entropy, training
        assert page.locator("figure.chart svg").count() == 5
        assert page.locator("section#rows .tab").count() >= 2  # kept and a reject reason
        data = json.loads(page.locator("#token-data").text_content())
        first = page.locator(".pane:not([hidden]) .tok").first
        token_id, _, logprob, tail, top, rest = data["tokens"][int(first.get_attribute("data-i"))]
        assert page.locator("#tip").is_hidden()
        first.hover()
        tip = page.locator("#tip")
        assert tip.is_visible()
        text = tip.inner_text()
        assert f'"#{token_id}"' in text and f"log-prob {logprob:.3f}" in text
        shown = re.findall(r'"#(\d+)"\t([0-9.]+)%', text)  # the hover box's table rows
        assert [int(alt) for alt, _ in shown] == [alt for alt, _ in top]  # each, in order
        for (_, percent), (_, prob) in zip(shown, top, strict=True):
            assert abs(float(percent) - 100 * prob) <= 0.051  # shown to one decimal
        assert rest == 0.0  # k = 5, under the 6 alternatives shown: every entry is listed
        beyond = re.search(r"beyond the top-k\t([0-9.]+)%", text)
        assert beyond and abs(float(beyond.group(1)) - 100 * tail) <= 0.051
        page.check("input[name=shade][value=l]")
        background = first.evaluate("t => t.style.background")  # rgb(...) when opaque
        shade = re.fullmatch(r"rgba?\(200, 40, 110(?:, ([0-9.]+))?\)", background)
        expected = min(max(-float(first.get_attribute("data-l")) / 6.0, 0.0), 1.0)
        assert shade, background
        assert abs(float(shade.group(1) or 1.0) - expected) <= 1e-3
        reason_tab = page.locator(".tab").nth(1)
        reason_tab.click()
        group = reason_tab.get_attribute("data-group")
        assert page.locator(f".pane[data-group='{group}']").is_visible()
        assert page.locator(".pane[data-group='kept']").is_hidden()
        browser.close()
    assert errors == []
    assert fetched == [report_page.as_uri()]  # the page itself, nothing else
