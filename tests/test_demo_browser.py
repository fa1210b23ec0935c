"""The demo page in headless Debian Chromium (Playwright): search, escaping, messages, offline rendering.

Needs /usr/bin/chromium (``make browser`` installs it). Without it the tests skip, except under CI
(env ``CI`` set), where they fail: CI must run them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.write.build import build_index
from tests.demo_server import GRADIO_NOISE, served_demo

pytestmark = [pytest.mark.browser, GRADIO_NOISE]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
HOSTILE = [  # documents that try to run code in the page
    {
        "_id": "xss-script",
        "title": "Script <script>window.__pwned=3</script> in a title",
        "text": "A pwned page would run <script>window.__pwned=1</script> and "
        '<img src=x onerror="window.__pwned=2"> if nobody escaped this text.',
    },
    {
        "_id": "xss-template",
        "title": "Template ${window.__pwned=4} {{constructor}}",
        "text": "Gradio renders HTML through a JS template: ${window.__pwned=4} must stay literal text.",
    },
    {"_id": "tea-green", "title": "Green tea", "text": "Green tea leaves are not oxidised."},
    {"_id": "coffee", "title": "Espresso", "text": "Espresso forces hot water through ground coffee."},
]


def _chromium_or_skip() -> None:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found: install Debian's chromium (make browser, or apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set, so the browser tests must run)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def searcher(tmp_path_factory) -> Searcher:
    from dualsearch.corpora.sources import read_corpus

    folder = tmp_path_factory.mktemp("hostile")
    corpus = folder / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(record) + "\n" for record in HOSTILE), encoding="utf-8")
    encoder = FakeEncoder()
    build_index(read_corpus(corpus), folder / "index", encoder, corpus_name=str(corpus))
    searcher = Searcher.open(folder / "index", encoder=encoder)
    yield searcher
    searcher.close()


@pytest.fixture(scope="module")
def page_and_blocked(searcher):
    """A Chromium page on the served demo, with every request off 127.0.0.1 blocked and recorded."""
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with served_demo({"hostile": searcher}, ["green tea", "script pwned"]) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(20_000)
        blocked: list[str] = []

        def offline(route):
            if route.request.url.startswith(url):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        page.route("**/*", offline)
        page.goto(url)
        page.locator("#query textarea").wait_for()
        yield page, blocked
        browser.close()


def _search(page, query: str) -> None:
    box = page.locator("#query textarea")
    box.fill(query)
    box.press("Enter")


def test_search_shows_ranked_results_and_never_runs_document_markup(page_and_blocked, searcher):
    page, blocked = page_and_blocked
    _search(page, "pwned script img onerror")
    page.locator("#results-0 li.ds-result").first.wait_for()
    shown = page.locator("#results-0 li.ds-result").evaluate_all("items => items.map(item => item.dataset.docId)")
    assert shown == [hit.doc_id for hit in searcher.search("pwned script img onerror", k=10)]
    assert shown[0] == "xss-script"
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("#results-0 script, #results-0 img").count() == 0
    text = page.locator("#results-0").inner_text()
    assert "<script>window.__pwned=1</script>" in text and '<img src=x onerror="window.__pwned=2">' in text
    assert "${window.__pwned=4} {{constructor}}" in text  # Gradio's template syntax stays literal too
    assert page.locator("#results-0 mark").first.inner_text().lower() in {"pwned", "script", "img", "onerror"}
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)
    assert blocked == [], f"the page tried to reach the network: {blocked}"


def test_empty_long_and_emoji_queries_show_messages_not_tracebacks(page_and_blocked):
    page, _ = page_and_blocked
    _search(page, "   ")
    page.locator("#results-0 .ds-info").wait_for()
    assert "Type a query" in page.locator("#results-0").inner_text()
    _search(page, "🍵 緑茶 green tea " * 700)  # about 11,000 characters
    page.locator("#results-0 .ds-note").wait_for()
    assert "Query shortened" in page.locator("#results-0 .ds-note").inner_text()
    assert page.locator("#results-0 li.ds-result").first.get_attribute("data-doc-id") == "tea-green"
    assert "Traceback" not in page.content()


def test_clicking_an_example_runs_it(page_and_blocked):
    from playwright.sync_api import expect

    page, _ = page_and_blocked
    first_result = page.locator("#results-0 li.ds-result").first
    _search(page, "espresso coffee")
    expect(first_result).to_have_attribute("data-doc-id", "coffee")
    page.get_by_text("green tea", exact=True).click()
    expect(page.locator("#query textarea")).to_have_value("green tea")
    expect(first_result).to_have_attribute("data-doc-id", "tea-green")


def test_missing_chromium_skips_locally_but_fails_under_ci(monkeypatch, tmp_path):
    monkeypatch.setitem(globals(), "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-chromium not found"):
        _chromium_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        _chromium_or_skip()
