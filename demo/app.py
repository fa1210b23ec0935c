"""The Gradio demo: a plain :func:`run_query` and :func:`build_demo` around it.

``run_query`` searches one or more indexes and renders escaped HTML panels (see
:mod:`dualsearch.demo.render`); the ``/search`` API endpoint returns the same search as JSON-able dicts
(:func:`dualsearch.requests.search.search_records`) for ``gradio_client``. Gradio is imported only inside
:func:`build_demo` and :func:`launch_demo`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

from dualsearch.defaults import MODE
from dualsearch.demo.render import HEAD_HTML, PANEL_CSS, PanelInfo, header_html, message_html, render_results
from dualsearch.errors import DualsearchError, InvalidInputError, require
from dualsearch.ranking.settings import MODES
from dualsearch.read.searcher import Searcher
from dualsearch.requests.search import (
    DEFAULT_K,
    MAX_K,
    MAX_QUERY_CHARS,
    SearchRequest,
    prepare_query,
    search_all,
    search_records,
)

logger = logging.getLogger(__name__)

EMPTY_QUERY_MESSAGE = "Type a query and press Enter (or click Search)."
STDLIB_EXAMPLES = [
    "how do I parse command line arguments",
    "read and write CSV files",
    "run a function in a background thread",
    "difference between two dates",
    "find all matches of a regular expression",
    "serialize an object to JSON",
]
TINY_EXAMPLES = ["how is espresso made", "why does mars look red", "escape html on a web page"]


def run_query(
    searchers: Mapping[str, Searcher], query: str | None, k=DEFAULT_K, nprobe=0, mode: str | None = None, filter=None
) -> list[str]:
    """Search every index for ``query`` and render one escaped HTML panel per index.

    Never raises for bad input or a failed search: an empty query, no results and errors become
    messages in the panels.

    Args:
        searchers: Index label -> open searcher (one panel each, in order).
        query: Query text; longer than :data:`~dualsearch.requests.search.MAX_QUERY_CHARS` is shortened at a word.
        k: Results per index, 1 to :data:`~dualsearch.requests.search.MAX_K`.
        nprobe: Inverted lists to visit; 0 or None for each index's calibrated default.
        mode: ``hybrid``, ``dense`` or ``lexical``; None or empty for each index's default.
        filter: Metadata conditions, e.g. ``"kind=function; year>=2010"`` (see ``parse_filter_text``).

    Example:
        >>> panels = run_query({"tiny": Searcher.open("tiny-index")}, "green tea", k=3)  # doctest: +SKIP
        >>> len(panels), "<mark>tea</mark>" in panels[0]  # doctest: +SKIP
        (1, True)
    """
    text, note = prepare_query(query)
    if not text:
        return [message_html(EMPTY_QUERY_MESSAGE, name=name) for name in searchers]
    try:
        answers = search_all(searchers, SearchRequest.checked(text, k, nprobe, mode, filter, explain=True))
    except DualsearchError as error:
        return [message_html(f"Search failed: {error}", error=True, name=name) for name in searchers]
    except Exception as error:  # the page shows a message, never a traceback
        logger.exception("search failed for query %r", text[:100])
        message = f"Search failed unexpectedly ({type(error).__name__}: {error}). The server log has details."
        return [message_html(message, error=True, name=name) for name in searchers]
    return [
        render_results(
            answer.results,
            text,
            PanelInfo(answer.name, answer.seconds, answer.nprobe, searchers[answer.name].manifest.nlist, note),
            answer.explanations,
        )
        for answer in answers
    ]


def examples_for(searcher: Searcher) -> list[str]:
    """Example queries that suit the index's corpus (none for a corpus we know nothing about)."""
    return {"default": STDLIB_EXAMPLES, "tiny": TINY_EXAMPLES}.get(searcher.manifest.corpus, [])


TOWER_NAMES = {
    "default": "all-MiniLM-L6-v2 (default)",
    "stdlib": "all-MiniLM-L6-v2, tuned on Python questions (stdlib)",
}


def describe(searcher: Searcher) -> str:
    """One line about an index: documents (of every shard, for a sharded index), towers, FAISS index."""
    manifest = searcher.manifest  # a sharded index's: its first shard's, whose towers and lists all shards share
    corpus = "the Python standard library docs" if manifest.corpus == "default" else repr(manifest.corpus)
    towers = TOWER_NAMES.get(manifest.model, repr(manifest.model))
    probe = f", default nprobe {manifest.default_nprobe} of {manifest.nlist} lists" if manifest.nlist else ""
    shards = getattr(searcher, "shards", None)
    where = f" in {len(shards)} shards" if shards else ""
    return f"{len(searcher):,} documents from {corpus}{where} · towers {towers} · FAISS {manifest.factory}{probe}"


def open_searchers(index_dirs: Sequence[str], show_progress: bool = False) -> dict[str, Searcher]:
    """Open each index (``default``: the stdlib docs index, built on first use) under a unique label.

    An index built with the same towers as an earlier one shares its loaded encoder.

    Example:
        >>> list(open_searchers(["runs/zero-shot", "runs/fine-tuned"]))  # doctest: +SKIP
        ['zero-shot', 'fine-tuned']
    """
    from dualsearch.errors import IndexMismatchError
    from dualsearch.profiles.stdlib import resolve_index_dir

    searchers: dict[str, Searcher] = {}
    for argument in index_dirs:
        path = resolve_index_dir(argument, show_progress=show_progress)
        searcher = None
        for other in searchers.values():
            try:
                searcher = Searcher.open(path, encoder=other.encoder)
                break
            except IndexMismatchError:
                continue
        if searcher is None:  # (not `or`: a Searcher's truth is its document count)
            searcher = Searcher.open(path)
        label = str(argument) if str(argument) == "default" else (path.resolve().name or str(path))
        base, number = label, 2
        while label in searchers:  # two folders both called "index"
            label, number = f"{base} ({number})", number + 1
        searchers[label] = searcher
    return searchers


def _nprobe_slider(gr, searchers: Mapping[str, Searcher]):
    ivf = [searcher.manifest for searcher in searchers.values() if searcher.manifest.nlist]
    if not ivf:
        return gr.Slider(
            0,
            1,
            value=0,
            step=1,
            label="nprobe",
            interactive=False,
            info="not used: no inverted lists (exact search over every document)",
        )
    defaults = {manifest.default_nprobe for manifest in ivf}
    return gr.Slider(
        0,
        max(manifest.nlist for manifest in ivf),
        value=defaults.pop() if len(defaults) == 1 else 0,
        step=1,
        label="nprobe",
        info="inverted lists visited per query; 0 = the calibrated default",
    )


def _default_mode(searchers: Mapping[str, Searcher]) -> str:
    """The mode the indexes were built to search with (hybrid if they differ)."""
    modes = {searcher.settings.mode for searcher in searchers.values()}
    return modes.pop() if len(modes) == 1 else MODE


def _handlers(gr, searchers: Mapping[str, Searcher]):
    """The page's event handler (HTML panels) and the ``/search`` API function (JSON-able dicts)."""

    def show(query, k, nprobe, mode, filter_text):
        panels = run_query(searchers, query, k, nprobe, mode, filter_text)
        return panels[0] if len(panels) == 1 else tuple(panels)

    def search(query: str, k: int = DEFAULT_K, nprobe: int = 0, mode: str = "", filter: str = "") -> list[dict]:
        """Search every index: one dict per index with its ranked results (rank, doc_id, score, title,
        text, metadata, passage, dense and lexical scores). ``mode``: hybrid, dense or lexical (empty: the
        index's default); ``filter``: conditions such as ``kind=function; year>=2010``."""
        try:
            return search_records(searchers, query, k, nprobe, mode, filter)
        except DualsearchError as error:
            raise gr.Error(str(error), print_exception=False) from None  # a user mistake, not a server fault

    return show, search


def build_demo(searchers: Mapping[str, Searcher], examples: Sequence[str] = ()):
    """The Gradio page: query box, examples, k, nprobe, mode and filter controls, one result panel per index.

    Also registers the ``/search`` API endpoint (:func:`dualsearch.requests.search.search_records`)
    for ``gradio_client``.

    Args:
        searchers: Index label -> open searcher; two of them are shown side by side.
        examples: Example queries offered under the query box.

    Example:
        >>> demo = build_demo({"default": Searcher.open("my-index")}, STDLIB_EXAMPLES)  # doctest: +SKIP
        >>> launch_demo(demo, port=7860)  # doctest: +SKIP
    """
    if not searchers:
        raise InvalidInputError("build_demo needs at least one searcher")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    gr = require("gradio", "demo", "the demo")

    show, search = _handlers(gr, searchers)
    with gr.Blocks(title="dualsearch demo", analytics_enabled=False) as demo:
        gr.HTML(
            header_html([(name, describe(s)) for name, s in searchers.items()]),
            css_template=PANEL_CSS,
            js_on_load=None,
            head=HEAD_HTML,
        )
        with gr.Row(equal_height=False):
            query = gr.Textbox(
                show_label=False,
                container=False,
                scale=5,
                autofocus=True,
                elem_id="query",
                max_lines=3,
                placeholder="Ask in plain words, e.g. " + (examples[0] if examples else "…"),
            )
            button = gr.Button("Search", variant="primary", scale=0, min_width=120, elem_id="search-button")
        if examples:
            example_set = gr.Examples([[example] for example in examples], inputs=[query], label="Example queries")
        with gr.Row():
            k = gr.Slider(1, min(MAX_K, 50), value=DEFAULT_K, step=1, label="Results (k)")
            nprobe = _nprobe_slider(gr, searchers)
        with gr.Row():
            mode = gr.Radio(list(MODES), value=_default_mode(searchers), label="Mode", elem_id="mode")
            filter_text = gr.Textbox(
                label="Filter",
                elem_id="filter",
                placeholder="metadata conditions, e.g. kind=function; year>=2010",
                max_lines=1,
            )
        inputs = [query, k, nprobe, mode, filter_text]
        with gr.Row(equal_height=False):
            panels = [
                gr.HTML(
                    message_html(EMPTY_QUERY_MESSAGE, name=name),
                    css_template=PANEL_CSS,
                    js_on_load=None,
                    elem_id=f"results-{position}",
                    elem_classes=["ds-output"],
                )
                for position, name in enumerate(searchers)
            ]
        if examples:
            example_set.load_input_event.then(show, inputs, panels, api_visibility="private")
        gr.on([query.submit, button.click, filter_text.submit], show, inputs, panels, api_visibility="private")
        gr.api(search, api_name="search")
    return demo


def launch_demo(demo, port: int | None = None, block: bool = True, quiet: bool = False) -> str:
    """Serve ``demo`` on 127.0.0.1 and return its local URL.

    Args:
        demo: What :func:`build_demo` returned.
        port: TCP port; None takes the first free one from 7860.
        block: Serve until interrupted; False runs the server in a thread until ``demo.close()``.
        quiet: Do not print the URL banner.

    Raises:
        InvalidInputError: the port is taken (or cannot be bound).

    Example:
        >>> url = launch_demo(demo, port=7860, block=False)  # doctest: +SKIP
    """
    try:
        _, local_url, _ = demo.launch(
            server_name="127.0.0.1",
            server_port=port,
            prevent_thread_lock=not block,
            quiet=quiet,
            share=False,
            inbrowser=False,
            show_error=False,
            ssr_mode=False,
            mcp_server=False,
            pwa=False,
            enable_monitoring=False,
        )
    except OSError as error:
        logger.debug("launch failed: %s", error)
        where = f"127.0.0.1:{port}" if port else "127.0.0.1 (ports 7860-7959)"
        raise InvalidInputError(
            f"cannot serve the demo on {where}: the port is in use or cannot be bound; "
            "choose another (dualsearch demo --port N)"
        ) from None
    return local_url


__all__ = ["MAX_QUERY_CHARS", "build_demo", "examples_for", "launch_demo", "run_query", "search_records"]
