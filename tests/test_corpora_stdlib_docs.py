"""The embedded default corpus: the standard library as users name it, extracted in a guarded child process.

No towers here: the extraction runs once a session (about twenty seconds, most of it counting usage in the
library's source), and the tests read its result.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from dualsearch.corpora.records import FieldNames, validated_documents
from dualsearch.corpora.stdlib_docs import extract, stdlib_records
from dualsearch.corpora.stdlib_extract import ENUM_PLACEHOLDER, UNDOCUMENTED, document
from dualsearch.corpora.stdlib_modules import SIDE_EFFECT_MODULES

# The names of issue #14's first list: what Python users look up.
ISSUE_NAMES = [
    "open",
    "random.shuffle",
    "random.choice",
    "hashlib.sha256",
    "io.StringIO",
    "math.gcd",
    "collections.defaultdict",
    "csv.reader",
    "struct.pack",
    "zlib.compress",
    "decimal.Decimal",
    "sqlite3.connect",
    "pickle.dump",
    "asyncio.gather",
    "str.split",
    "list.sort",
    "dict.setdefault",
    "pathlib.Path.glob",
    "datetime.datetime.strftime",
    "asyncio.sleep",
    "os.path.join",
    "os.listdir",
]
NOT_DOCUMENTED = ["nturl2path", "getpass.win_getpass", "distutils", "xxsubtype"]


pytestmark = pytest.mark.slow  # most tests read the extraction of the whole standard library (about 15 s)


@pytest.fixture(scope="session")
def extraction() -> dict:
    return extract()


@pytest.fixture(scope="session")
def docs(extraction) -> dict:
    return {d.id: d for d in validated_documents(stdlib_records(extraction), FieldNames())}


def by_name(docs: dict) -> dict:
    return {doc_id.split(":", 1)[1]: doc for doc_id, doc in docs.items()}


def records_digest(records: list) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def test_every_name_of_the_issue_is_one_document_with_a_readable_title(docs):
    names = by_name(docs)
    missing = [name for name in ISSUE_NAMES if name not in names]
    assert missing == []
    for name in ISSUE_NAMES:
        title = names[name].title
        assert title == name or title.startswith(name + "("), title
        assert len(title) <= 100 and names[name].text.strip()
    assert names["open"].metadata["module"] == "builtins" and names["str.split"].metadata["kind"] == "method"


def test_re_exports_are_documented_under_the_name_people_import(docs):
    names = by_name(docs)
    assert names["asyncio.sleep"].metadata["defined_in"] == "asyncio.tasks.sleep"
    assert names["os.path.join"].metadata["defined_in"] == "posixpath.join" or sys.platform == "win32"
    assert names["os.listdir"].metadata["module"] == "os"
    for duplicate in ("asyncio.tasks.sleep", "posixpath.join", "posix.listdir", "io.open", "builtins.open"):
        assert duplicate not in names


def test_platform_test_and_removed_modules_are_left_out_and_counted(docs, extraction):
    names = by_name(docs)
    for name in NOT_DOCUMENTED:
        assert not [n for n in names if n == name or n.startswith(name + ".")], name
    assert not any(n.startswith(("test.", "idlelib", "encodings.cp", "lib2to3")) for n in names)
    left_out = extraction["left_out"]
    assert "private" in left_out and "lib2to3" in left_out["test suite, tool or example"]
    if sys.platform != "win32":
        assert {"nturl2path", "msvcrt", "winreg"} <= set(left_out["for another platform"])


def test_titles_carry_signatures_and_texts_start_with_the_summary(docs):
    dumps = docs["function:json.dumps"]
    assert dumps.title.startswith("json.dumps(obj, *, skipkeys=False") and dumps.title.endswith(", ...)")
    assert dumps.text.startswith("Serialize ``obj`` to a JSON formatted ``str``.")
    assert "``indent``" in dumps.text  # the rest of the docstring follows the summary
    assert dumps.metadata["signature"].endswith("sort_keys=False, **kw)")
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert {k: dumps.metadata[k] for k in ("kind", "module", "python", "deprecated")} == {
        "kind": "function",
        "module": "json",
        "python": python,
        "deprecated": False,
    }
    pack = docs["function:struct.pack"]  # a C function whose docstring opens with its signature
    assert pack.title == "struct.pack(format, v1, v2, ...)" and pack.text.startswith("Return a bytes object")
    # a signature line that also says what the method does stays: the summary is in it
    assert "remove specified key and return the corresponding value" in docs["method:dict.pop"].text
    assert docs["method:str.split"].title == "str.split(sep=None, maxsplit=-1)"  # no self
    assert docs["function:random.random"].title == "random.random()"  # no parameters, none cut
    assert docs["class:argparse.ArgumentParser"].title.startswith("argparse.ArgumentParser(prog=None")
    assert not any(" at 0x" in d.title or " at 0x" in d.text for d in docs.values())


def test_an_alias_is_not_documented_by_its_origins_docstring(docs):
    # wsgiref.types.WSGIEnvironment = dict[str, Any] reports dict's __doc__ as its own
    class_texts = {d.text for d in docs.values() if d.metadata["kind"] == "class"}
    assert not [doc_id for doc_id, d in docs.items() if d.metadata["kind"] == "data" and d.text in class_texts]


def test_values_nothing_documents_are_documents_by_their_type_and_never_show_a_container(docs):
    pi = docs["data:math.pi"]
    assert pi.title == "math.pi" and pi.text.startswith("Data math.pi = 3.14159") and UNDOCUMENTED in pi.text
    environ = docs["data:os.environ"]  # its contents would be the environment: only its type is said
    assert environ.text == f"Data os.environ, of type os._Environ, {UNDOCUMENTED}."
    assert environ.metadata["defined_in"] == "os.environ" and environ.metadata["usage"] > 100
    assert "data:socket.AF_INET" not in docs  # a C API's constants (capitals) stay out


def test_an_enumeration_without_a_docstring_lists_its_members(docs):
    import enum

    Colour = enum.Enum("Colour", "RED GREEN")
    Colour.__doc__ = ENUM_PLACEHOLDER  # what the standard library's own enumerations get (re.RegexFlag)
    text = document("class", "paint.Colour", "paint", Colour)["text"]
    assert text == f"Enumeration paint.Colour, {UNDOCUMENTED}. Its members: RED, GREEN."
    assert "IGNORECASE" in docs["class:re.RegexFlag"].text


def test_a_leading_deprecated_marker_gives_way_to_the_summary():
    def load(name):
        """**DEPRECATED**

        Load a module by name."""

    record = document("function", "old.load", "old", load)
    assert record["text"] == "Load a module by name." and record["metadata"]["deprecated"] is True
    assert record["title"] == "old.load(name) (deprecated)"


def test_documented_data_and_topics(docs):
    assert docs["data:sys.argv"].text.startswith("command line arguments")
    assert docs["data:os.sep"].title == "os.sep"
    assert docs["data:pathlib.PurePath.suffix"].metadata["kind"] == "data"
    assert {"topic:assert", "topic:with", "module:json", "module:os.path"} <= set(docs)
    assert docs["module:json"].title == "json module"


def test_deprecation_is_flagged(docs, extraction):
    if sys.version_info < (3, 13):  # the PEP 594 modules are gone from 3.13
        assert docs["module:cgi"].metadata["deprecated"] is True
        assert "cgi" in extraction["deprecated_modules"]  # it warned when imported
    assert docs["class:ast.Num"].metadata["deprecated"] is True  # "Deprecated AST node class."
    assert docs["class:DeprecationWarning"].metadata["deprecated"] is False
    assert docs["module:json"].metadata["deprecated"] is False


def test_deprecated_documents_say_so_and_implementation_submodules_are_left_out(docs, extraction):
    if sys.version_info < (3, 13):
        assert docs["module:cgi"].title == "cgi module (deprecated)"
    assert (
        docs["function:json.dumps"].title.startswith("json.dumps(") and "(deprecated)" not in docs["module:json"].title
    )
    left_out = extraction["left_out"]["implementation of a package that re-exports from it"]
    assert {"json.encoder", "asyncio.tasks", "unittest.case"} <= set(left_out)
    assert "module:json.encoder" not in docs and "class:json.JSONEncoder" in docs
    assert "class:unittest.mock.Mock" in docs and "class:collections.abc.Iterable" in docs  # not re-exported: kept


def test_a_class_without_a_docstring_is_documented_by_its_call_and_methods(docs):
    writer = docs["class:csv.DictWriter"]
    assert writer.title.startswith("csv.DictWriter(f, fieldnames")
    assert writer.text.startswith("Class csv.DictWriter(") and "writerow" in writer.text


def test_a_function_or_method_without_a_docstring_is_documented_by_its_call(docs):
    parse_args = docs["method:argparse.ArgumentParser.parse_args"]
    assert parse_args.title == "argparse.ArgumentParser.parse_args(args=None, namespace=None)"
    assert parse_args.text == f"Method {parse_args.title}, {UNDOCUMENTED}."


def test_a_name_a_package_imports_from_its_submodule_but_leaves_out_of_its_all_is_documented(docs):
    # Python 3.11's asyncio binds TaskGroup from asyncio.taskgroups but forgets it in __all__
    task_group = docs["class:asyncio.TaskGroup"]
    assert task_group.metadata["module"] == "asyncio" and "class:asyncio.taskgroups.TaskGroup" not in docs


def test_the_child_never_imports_a_deny_listed_module(extraction):
    imported = set(extraction["sys_modules"])
    assert not {name for name in imported if name.split(".")[0] in SIDE_EFFECT_MODULES}
    assert "turtledemo" not in imported and "antigravity" not in imported and "this" not in imported
    if "tkinter" in extraction["left_out"].get("GUI without a display", []):
        assert "tkinter" not in imported and "turtle" in extraction["import_failed"]  # turtle imports tkinter


def test_the_calling_process_imports_nothing_and_the_extraction_is_repeatable(extraction):
    code = (
        "import hashlib, json, sys\n"
        "from dualsearch.corpora.stdlib_docs import extract\n"
        "before = set(sys.modules)\n"
        "payload = extract()\n"
        "records = json.dumps(payload['records'], sort_keys=True).encode()\n"
        "print(json.dumps({'new': sorted(set(sys.modules) - before), 'digest': hashlib.sha256(records).hexdigest(),\n"
        "                  'leaks': b'canary-7f3a' in records}))\n"
    )
    environment = {**os.environ, "DUALSEARCH_CANARY": "canary-7f3a"}  # cgi's environ=os.environ default
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True, env=environment
    )
    report = json.loads(completed.stdout)
    assert report["new"] == [] and report["leaks"] is False
    assert report["digest"] == records_digest(extraction["records"])  # same documents run to run: no addresses


def test_the_judged_queries_are_answerable_from_the_corpus(docs):
    from bench.stdlib_search import QUERIES, read_queries

    queries = read_queries(QUERIES)
    assert len(queries) >= 50
    unanswerable = [row["query"] for row in queries.values() if not set(row["answers"]) & set(docs)]
    assert unanswerable == []


def test_the_search_benchmark_helpers_run_as_documented():
    import doctest

    import bench.stdlib_ablations
    import bench.stdlib_dev
    import bench.stdlib_search

    assert doctest.testmod(bench.stdlib_search).failed == 0
    assert doctest.testmod(bench.stdlib_dev).failed == 0
    assert doctest.testmod(bench.stdlib_ablations).failed == 0


def test_usage_ranks_the_names_everybody_uses_above_rare_ones(docs):
    usage = {doc_id: doc.metadata["usage"] for doc_id, doc in docs.items()}
    assert all(isinstance(count, int) and count >= 0 for count in usage.values())
    assert usage["function:open"] > 100 * max(usage["function:fileinput.filelineno"], 1)
    assert usage["function:os.path.join"] > usage["function:os.path.sameopenfile"]
    assert usage["function:random.choice"] > usage["method:random.Random.choice"]  # the name people import wins
    assert usage["method:list.append"] > usage["method:collections.UserList.append"]
    assert {count for doc_id, count in usage.items() if doc_id.startswith("topic:")} == {0}
    assert usage["module:os"] > 100 > usage["module:xdrlib"]  # a module: the files that import it


def test_the_default_index_is_built_with_lead_passages_and_its_own_ranking(monkeypatch, tmp_path, capsys):
    from dualsearch.profiles import stdlib as default_index

    built = {}
    monkeypatch.setenv("DUALSEARCH_HOME", str(tmp_path))
    monkeypatch.setattr("dualsearch.towers.backends.load_encoder", lambda *args: "towers")
    report = SimpleNamespace(document_count=26)  # index_corpus returns (report, skipped records)

    def index_corpus(corpus, index_dir, *args, **kwargs):  # leaves the directory a build leaves, and no index
        Path(index_dir).mkdir(parents=True)
        built.update(kwargs)
        return report, []

    monkeypatch.setattr("dualsearch.write.build.index_corpus", index_corpus)
    assert default_index.resolve_index_dir("default", show_progress=True) == default_index.default_index_dir()
    said = capsys.readouterr().err
    assert "standard library docs, once: later runs reuse it" in said and "(26 documents) in" in said
    assert built["config"].lead_passage and built["search_settings"] == default_index.stdlib_settings()
    from dualsearch.towers.weights import stdlib_towers_id

    # beside it, which stdlib towers built it: a later dualsearch shipping others builds it again
    assert (default_index.default_index_dir() / default_index.TOWERS_FILE).read_text() == stdlib_towers_id()
