"""HTML for the demo page: escaped result panels with the query's words marked.

Everything that comes from a document or a query goes through :func:`html.escape` before it reaches
the page, so markup inside documents (``<script>``, ``<img onerror=...>``) is shown as text and never
runs. The only tags in the output are the ones written here.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from dualsearch.ranking.explain import highlight_words
from dualsearch.read.searcher import SearchResult
from dualsearch.requests.snippets import matched_text, query_terms, snippet, term_pattern

logger = logging.getLogger(__name__)

# Gradio 6's theme declares Source Sans Pro 400 and 600 only, and ships 600 as a 55-glyph subset, so bold
# text mixes two fonts. Bold text here uses the full Bold face Gradio also serves, declared in the page
# head (a component's css_template is nested under its id, where @font-face is not allowed).
HEAD_HTML = """<style>
@font-face { font-family: "ds-bold"; font-weight: 700; font-style: normal;
             src: url("static/fonts/SourceSansPro/SourceSansPro-Bold.woff2") format("woff2"); }
</style>"""

# Scoped to each gr.HTML panel by Gradio (gr.HTML(css_template=...)); theme variables keep dark mode legible.
PANEL_CSS = """
.ds-panel b, .ds-name, .ds-title { font-family: "ds-bold", var(--font); font-weight: 700; }
.ds-panel { font-size: var(--text-md); line-height: 1.45; }
.ds-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.5em; margin-bottom: 0.4em; }
.ds-name { font-size: var(--text-lg); }
.ds-meta, .ds-ids { color: var(--body-text-color-subdued); font-size: var(--text-sm); }
.ds-results { list-style: none; padding: 0; margin: 0; }
.ds-result { border: 1px solid var(--border-color-primary); border-radius: var(--radius-md);
             padding: 0.6em 0.8em; margin: 0 0 0.6em 0; background: var(--background-fill-secondary); }
.ds-title { overflow-wrap: anywhere; }
.ds-rank { display: inline-block; min-width: 1.4em; margin-right: 0.3em; color: var(--color-accent); }
.ds-ids code { font-size: var(--text-sm); overflow-wrap: anywhere; }
.ds-snippet { margin: 0.3em 0 0 0; white-space: normal; overflow-wrap: anywhere; }
.ds-panel mark { background: color-mix(in srgb, var(--color-accent) 28%, transparent); color: inherit;
                  padding: 0 0.1em; border-radius: 2px; }
.ds-message { padding: 0.7em 0.9em; border-radius: var(--radius-md); border: 1px solid var(--border-color-primary); }
.ds-error { border-color: var(--error-border-color); background: var(--error-background-fill);
            color: var(--error-text-color); }
.ds-note { color: var(--body-text-color-subdued); font-size: var(--text-sm); margin-bottom: 0.4em; }
.ds-index { color: var(--body-text-color-subdued); font-size: var(--text-sm); margin: 0.1em 0; }
"""


@dataclass(frozen=True)
class PanelInfo:
    """What a result panel says about its search besides the results."""

    name: str  # index label, e.g. "default" or a directory name
    seconds: float  # query encoding + ANN search
    nprobe: int  # inverted lists visited; 0 for indexes without lists
    nlist: int  # 0 for indexes without inverted lists
    note: str = ""  # e.g. "query shortened to ..."


def highlight(text: str, terms: Sequence[str]) -> str:
    """Escape ``text`` and wrap words starting with one of ``terms`` in ``<mark>``.

    Example:
        >>> highlight("Use <b>argparse</b> to parse args", ["parse", "argparse"])
        'Use &lt;b&gt;<mark>argparse</mark>&lt;/b&gt; to <mark>parse</mark> args'
    """
    pattern = term_pattern(terms)
    if pattern is None:
        return html.escape(text)
    pieces, position = [], 0
    for match in pattern.finditer(text):
        pieces.append(html.escape(text[position : match.start()]))
        pieces.append(f"<mark>{html.escape(match.group())}</mark>")
        position = match.end()
    pieces.append(html.escape(text[position:]))
    return "".join(pieces)


def render_results(
    results: Sequence[SearchResult], query: str, info: PanelInfo, explanations: Sequence[dict] | None = None
) -> str:
    """A panel of ranked results: rank, title, score, doc id and a highlighted snippet, all escaped.

    With ``explanations`` (:meth:`~dualsearch.read.searcher.Searcher.explain`), a result's marked words are
    those holding the largest shares of its towers' score; otherwise (and for BM25-only results) the
    query's words are marked.

    Example:
        >>> from dualsearch.read.searcher import SearchResult
        >>> hit = SearchResult(1, "d1", 0.9, "<b>Tea</b>", "Green tea")
        >>> "&lt;b&gt;" in render_results([hit], "tea", PanelInfo("idx", 0.01, 0, 0))
        True
    """
    query_words = query_terms(query)
    explanations = explanations or [{}] * len(results)
    items = "".join(
        _render_result(result, _marked_words(result, explanation) or query_words)
        for result, explanation in zip(results, explanations)
    )
    body = (
        f'<ol class="ds-results">{items}</ol>'
        if results
        else message_html("No results: the index returned nothing for this query.")
    )
    return _panel(info, len(results), body)


def _marked_words(result: SearchResult, explanation: dict) -> list[str]:
    """The words of the title and text with the largest shares of the towers' score (none without an
    explanation of the towers' side)."""
    tokens = explanation.get("document_tokens")
    if not tokens:
        return []
    return highlight_words(result.title, tokens, field="title") + highlight_words(result.text, tokens)


def _render_result(result: SearchResult, terms: Sequence[str]) -> str:
    title = result.title or result.doc_id
    return (
        f'<li class="ds-result" data-doc-id="{html.escape(result.doc_id)}">'
        f'<div class="ds-title"><span class="ds-rank">{result.rank}.</span>{highlight(title, terms)}</div>'
        f'<div class="ds-ids">score {result.score:.3f} · <code>{html.escape(result.doc_id)}</code></div>'
        f'<p class="ds-snippet">{highlight(snippet(matched_text(result), terms), terms)}</p></li>'
    )


def _panel(info: PanelInfo, count: int, body: str) -> str:
    probe = f" · nprobe {info.nprobe} of {info.nlist} lists" if info.nlist else ""
    meta = f"{count} result{'s' if count != 1 else ''} in {info.seconds * 1000:.1f} ms{probe}"
    note = f'<div class="ds-note">{html.escape(info.note)}</div>' if info.note else ""
    return (
        f'<div class="ds-panel"><div class="ds-head"><span class="ds-name">{html.escape(info.name)}</span>'
        f'<span class="ds-meta">{meta}</span></div>{note}{body}</div>'
    )


def message_html(text: str, error: bool = False, name: str = "") -> str:
    """A message box (a hint, or an error in red) with ``text`` escaped, optionally under an index name.

    Example:
        >>> message_html("Type a query <here>")
        '<div class="ds-message ds-info">Type a query &lt;here&gt;</div>'
    """
    kind = "ds-error" if error else "ds-info"
    box = f'<div class="ds-message {kind}">{html.escape(text)}</div>'
    if not name:
        return box
    return (
        f'<div class="ds-panel"><div class="ds-head"><span class="ds-name">{html.escape(name)}</span></div>{box}</div>'
    )


def header_html(descriptions: Sequence[tuple[str, str]]) -> str:
    """The page heading: one escaped line per index, ``(name, description)``.

    Example:
        >>> "&lt;" in header_html([("idx", "<odd> model")])
        True
    """
    lines = "".join(
        f'<div class="ds-index"><b>{html.escape(name)}</b>: {html.escape(text)}</div>' for name, text in descriptions
    )
    title = "dualsearch: semantic search with query and document towers"
    return f'<div class="ds-panel"><div class="ds-name">{title}</div>{lines}</div>'
