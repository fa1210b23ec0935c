"""The /search API endpoint, called over HTTP with gradio_client (the demo served on 127.0.0.1)."""

from __future__ import annotations

import pytest

from dualsearch.read.searcher import Searcher
from tests.demo_server import GRADIO_NOISE, served_demo

pytestmark = [GRADIO_NOISE, pytest.mark.slow]  # a real Gradio server a test


@pytest.fixture
def searcher(tiny_index, fake_encoder) -> Searcher:
    searcher = Searcher.open(tiny_index, encoder=fake_encoder)
    yield searcher
    searcher.close()


def test_gradio_client_gets_the_same_results_as_the_python_api(searcher):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    with served_demo({"tiny": searcher}) as url:
        assert url.startswith("http://127.0.0.1:")
        client = Client(url, verbose=False)
        assert list(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ["/search"]
        for query in ("how is espresso made", "biggest planet", "🍵 緑茶 tea"):
            [answer] = client.predict(query, 5, api_name="/search")
            expected = searcher.search(query, k=5)
            assert [hit["id"] for hit in answer["results"]] == [hit.doc_id for hit in expected], query
            assert [hit["score"] for hit in answer["results"]] == pytest.approx([hit.score for hit in expected])
        [answer] = client.predict("why does mars look red", api_name="/search")  # k and nprobe are optional
        assert len(answer["results"]) == 10 and answer["index"] == "tiny" and answer["nprobe"] == 1
        with pytest.raises(AppError, match="empty query"):
            client.predict("   ", api_name="/search")
        with pytest.raises(AppError, match="k must be a whole number between 1 and 100"):
            client.predict("tea", 0, api_name="/search")


def test_a_busy_port_is_a_clear_error(searcher):
    import socket

    from dualsearch.demo.app import build_demo, launch_demo
    from dualsearch.errors import InvalidInputError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        the_demo = build_demo({"tiny": searcher})
        with pytest.raises(InvalidInputError, match=f"cannot serve the demo on 127.0.0.1:{port}: the port is in use"):
            launch_demo(the_demo, port=port, block=False, quiet=True)


def test_the_gradio_client_example_in_docs_runs_as_written(searcher):
    import re
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "demo.md").read_text(encoding="utf-8")
    [example] = [block for block in re.findall(r"```python\n(.*?)```", docs, re.S) if "gradio_client" in block]
    assert (
        len([line for line in example.splitlines() if line.strip()]) == 3
        and 'Client("http://127.0.0.1:7860/")' in example
    )  # three lines, as documented
    with served_demo({"tiny": searcher}) as url:
        namespace: dict = {}
        exec(example.replace("http://127.0.0.1:7860/", url), namespace)
    expected = searcher.search("how do I parse command line arguments", k=5)
    assert [hit["id"] for hit in namespace["results"]] == [hit.doc_id for hit in expected]
