"""The service's write-ahead log (dualsearch.write.write_log), its application as a version
(dualsearch.write.logged_writes), merges beside the writers (dualsearch.write.background_merge), and a
random history of writes and merges against a plain dict."""

from __future__ import annotations

import random

import pytest

from dualsearch.corpora.document import Document
from dualsearch.index import layout
from dualsearch.index.manifest import Manifest
from dualsearch.read.searcher import Searcher
from dualsearch.testing import FakeEncoder
from dualsearch.write.background_merge import merge_due
from dualsearch.write.build import IndexConfig, build_index
from dualsearch.write.lock import IndexLock
from dualsearch.write.logged_writes import apply_records
from dualsearch.write.merge_policy import SEGMENTS_PER_TIER
from dualsearch.write.reindex import delete_documents, optimize
from dualsearch.write.write_log import LogOwnedError, LogRecord, WriteAheadLog

FLAT = IndexConfig(factory="Flat")  # exact dense scores, so two indexes of the same documents score alike
QUERIES = ["green tea", "volcano lava", "notes about kites", "river stones", "python lists"]
WORDS = "tea volcano lava kite river stone python list coffee mars red green lake bird wind".split()


def note(number: int, version: int = 0) -> Document:
    rng = random.Random(number * 1000 + version)
    return Document(f"n{number}", f"Note {number}", " ".join(rng.choices(WORDS, k=8)), {"n": number})


def test_records_come_back_in_order_and_a_torn_tail_is_dropped(tmp_path):
    log = WriteAheadLog(tmp_path, applied=0)
    log.append("add", documents=[Document("a\nb", "T", "text é", {"x": [1, None]})])
    log.append("delete", ids=["a\nb"])
    log.close()
    (path,) = (tmp_path / layout.LOG_DIR).glob("*.wal")
    with path.open("ab") as handle:
        handle.write(b'0badc0de {"sequence": 3, "operation": "del')  # a crash in the middle of a third append
    records = WriteAheadLog.read(path.parent, after=0)
    assert [(r.sequence, r.operation) for r in records] == [(1, "add"), (2, "delete")]
    assert records[0].documents == (Document("a\nb", "T", "text é", {"x": [1, None]}),)
    reopened = WriteAheadLog(tmp_path, applied=1)  # a version holds record 1: only 2 is replayed
    assert [r.sequence for r in reopened.records] == [2] and reopened.append("delete", ids=["z"]).sequence == 3
    reopened.close()


def test_a_damaged_record_fails_its_checksum(tmp_path):
    log = WriteAheadLog(tmp_path, applied=0)
    log.append("delete", ids=["d1"])
    log.close()
    (path,) = (tmp_path / layout.LOG_DIR).glob("*.wal")
    path.write_bytes(path.read_bytes().replace(b"d1", b"d2"))
    assert WriteAheadLog.read(path.parent, after=0) == []


def test_one_process_owns_the_log_and_files_go_once_a_version_holds_them(tmp_path):
    log = WriteAheadLog(tmp_path, applied=0)
    with pytest.raises(LogOwnedError, match="another server"):
        WriteAheadLog(tmp_path, applied=0)  # a second server on the index: its writes are refused
    log.append("delete", ids=["a"])
    log.rotate()
    log.append("delete", ids=["b"])
    log.discard_through(1)
    assert [r.ids for r in WriteAheadLog.read(log.directory, after=0)] == [("b",)]
    log.close()


@pytest.fixture
def index_dir(tmp_path):
    directory = tmp_path / "idx"
    build_index([note(n) for n in range(30)], directory, FakeEncoder(), FLAT)
    return directory


def live_manifest(index_dir) -> Manifest:
    return Manifest.read(layout.current_version_dir(index_dir))


def documents_of(index_dir) -> dict[str, Document]:
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        return {d.id: d for d in searcher.store.iter_documents()}


def test_records_are_applied_as_their_net_change_in_one_version(index_dir):
    records = [
        LogRecord(1, "add", (note(100), note(3, version=1))),
        LogRecord(2, "delete", ids=("n100", "n4")),
        LogRecord(3, "add", (note(101),)),
    ]
    report = apply_records(index_dir, records, FakeEncoder())
    assert (report.added, report.updated, report.deleted) == (1, 1, 1)
    manifest = live_manifest(index_dir)
    assert manifest.log_sequence == 3 and len(manifest.segments) == 2
    held = documents_of(index_dir)
    assert "n100" not in held and "n4" not in held and held["n3"] == note(3, version=1) and "n101" in held


def answers(index_dir, **options) -> list[tuple[list[float], list[tuple[str, float]]]]:
    """Each query's top-10 scores, and its results above the tenth score, ties ordered by id: two
    indexes of the same documents may order tied documents apart, and so cut a tie at the tenth apart."""
    with Searcher.open(index_dir, encoder=FakeEncoder()) as searcher:
        found = []
        for query in QUERIES:
            hits = [(r.doc_id, round(r.score, 5)) for r in searcher.search(query, k=10, **options)]
            scores = sorted((score for _, score in hits), reverse=True)
            above = sorted((hit for hit in hits if hit[1] > scores[-1]), key=lambda hit: (-hit[1], hit[0]))
            found.append((scores, above))
        return found


def test_a_merge_keeps_what_was_deleted_while_it_built(index_dir, tmp_path):
    for number in range(SEGMENTS_PER_TIER):  # ten segments of five documents: a tier due for a merge
        batch = tuple(note(100 + 5 * number + i) for i in range(5))
        apply_records(index_dir, [LogRecord(number + 1, "add", batch)], FakeEncoder())
    assert len(live_manifest(index_dir).segments) == 1 + SEGMENTS_PER_TIER

    def lock_after_a_write():
        delete_documents(index_dir, ["n103"], FakeEncoder())  # published while the merge was building
        return IndexLock(index_dir)

    version_dir = merge_due(index_dir, FakeEncoder(), lock_after_a_write)
    assert version_dir is not None
    manifest = live_manifest(index_dir)
    first, merged = manifest.segment_entries()
    assert (merged.documents, merged.deleted_count) == (5 * SEGMENTS_PER_TIER, 1)
    assert manifest.log_sequence == SEGMENTS_PER_TIER  # carried from the version published meanwhile
    expected = {d.id: d for d in [note(n) for n in range(30)] + [note(100 + n) for n in range(50)]}
    del expected["n103"]
    assert documents_of(index_dir) == expected
    fresh = tmp_path / "fresh"
    build_index(list(expected.values()), fresh, FakeEncoder(), FLAT)
    for mode in ("hybrid", "dense", "lexical"):
        assert answers(index_dir, mode=mode) == answers(fresh, mode=mode)
    assert merge_due(index_dir, FakeEncoder()) is None  # nothing due any more


def test_a_merge_whose_segments_were_taken_meanwhile_publishes_nothing(index_dir):
    for number in range(SEGMENTS_PER_TIER):
        apply_records(index_dir, [LogRecord(number + 1, "add", (note(100 + number),))], FakeEncoder())

    def lock_after_an_optimize():
        optimize(index_dir, FakeEncoder())
        return IndexLock(index_dir)

    before = layout.live_version_name(index_dir)
    assert merge_due(index_dir, FakeEncoder(), lock_after_an_optimize) is None
    assert layout.live_version_name(index_dir) != before and len(live_manifest(index_dir).segments) == 1
    assert not list((index_dir / layout.SEGMENTS_DIR).glob(".merge-*"))  # its build directory is gone


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_random_history_of_writes_and_merges_answers_as_a_fresh_build(index_dir, tmp_path, seed):
    rng = random.Random(seed)
    expected = {d.id: d for d in [note(n) for n in range(30)]}
    sequence, next_number = 0, 1000
    for step in range(40):
        records = []
        for _ in range(rng.randint(1, 3)):
            sequence += 1
            kind = rng.choice(["add", "add", "update", "delete"])
            if kind == "add" or len(expected) < 5:
                documents = tuple(note(next_number + i) for i in range(rng.randint(1, 4)))
                next_number += len(documents)
            elif kind == "update":
                documents = tuple(note(int(doc_id[1:]), version=step + 1) for doc_id in rng.sample(sorted(expected), 2))
            else:
                doomed = tuple(rng.sample(sorted(expected), rng.randint(1, 3)))
                records.append(LogRecord(sequence, "delete", ids=doomed))
                for doc_id in doomed:
                    del expected[doc_id]
                continue
            records.append(LogRecord(sequence, "add", documents))
            expected.update((d.id, d) for d in documents)
        apply_records(index_dir, records, FakeEncoder())
        if rng.random() < 0.3:
            merge_due(index_dir, FakeEncoder())
        if rng.random() < 0.05:
            optimize(index_dir, FakeEncoder())
    assert documents_of(index_dir) == expected
    assert live_manifest(index_dir).log_sequence == sequence
    fresh = tmp_path / "fresh"
    build_index(list(expected.values()), fresh, FakeEncoder(), FLAT)
    for mode in ("hybrid", "dense", "lexical"):
        assert answers(index_dir, mode=mode) == answers(fresh, mode=mode)
        condition = {"n": {"gte": 500}}
        assert answers(index_dir, mode=mode, filter=condition) == answers(fresh, mode=mode, filter=condition)
