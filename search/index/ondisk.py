"""IVF inverted lists kept in a file and memory-mapped at search time, for indexes larger than memory.

FAISS's ``OnDiskInvertedLists`` store every list in one file (``index.ivfdata`` beside ``index.faiss``);
the index file keeps only the quantiser and each list's offset. A search maps the file and touches
the ``nprobe`` lists it visits, so resident memory follows what is searched, not the index's size.

Built from shards, as ``faiss.contrib.ondisk.merge_ondisk`` does: each block of vectors is added to
its own copy of the trained (empty) index, written to disk, and the shards' lists are merged into the
lists file, so a build holds one shard in memory, never the whole index. Arrays and directories in,
indexes out; the version's files and checksums are :mod:`dualsearch.write.version_writer`'s.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

import faiss
import numpy as np

from dualsearch.errors import IndexBuildError
from dualsearch.index import ann
from dualsearch.index.layout import IVFDATA_FILE

SHARD_VECTORS = 131_072  # vectors per shard: 192 MiB of 384-d float32 codes in memory at a time


def add_in_shards(
    trained: faiss.Index, vectors: np.ndarray, directory: Path, shard_vectors: int | None = None
) -> faiss.Index:
    """Fill ``trained`` (an empty, trained IVF index) with (n, d) ``vectors`` under row ids 0..n-1,
    its lists in ``directory/index.ivfdata``; returns it.

    Example:
        >>> import tempfile
        >>> vectors = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
        >>> index = ann.train_index(ann.IndexPlan("IVF4,Flat", 4), 8, vectors)
        >>> add_in_shards(index, vectors, Path(tempfile.mkdtemp()), shard_vectors=128).ntotal
        300
    """
    from faiss.contrib.ondisk import merge_ondisk

    if ann.ivf_part(trained) is None:
        raise IndexBuildError("on-disk inverted lists need an IVF index (a factory such as 'IVF,Flat')")
    shard_vectors = shard_vectors or SHARD_VECTORS
    shard_dir = directory / ".shards"
    shard_dir.mkdir(exist_ok=True)
    try:
        shard_files = []
        for start in range(0, max(len(vectors), 1), shard_vectors):
            shard = faiss.clone_index(trained)
            block = np.asarray(vectors[start : start + shard_vectors])
            ann.add_vectors(shard, block, np.arange(start, start + len(block)))
            shard_files.append(str(shard_dir / f"shard-{len(shard_files):06d}.faiss"))
            faiss.write_index(shard, shard_files[-1])
            del shard
        with _quiet_stdout():  # FAISS prints the lists file's size as it grows
            merge_ondisk(trained, shard_files, str(directory / IVFDATA_FILE))
    finally:
        shutil.rmtree(shard_dir, ignore_errors=True)
    return trained


def read_index(path: Path, on_disk: bool, mapped: bool = False) -> faiss.Index:
    """Read an index file; an on-disk one maps the lists file beside it, read-only, wherever the
    version directory now is (it was written in a build directory and renamed since). ``mapped`` maps
    an IVF index's lists instead of reading them (for one about to be emptied)."""
    if not on_disk:
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP if mapped else 0)
    with _quiet_stdout():  # FAISS prints the lists file's new location on every such read
        return faiss.read_index(str(path), faiss.IO_FLAG_ONDISK_SAME_DIR | faiss.IO_FLAG_READ_ONLY)


def emptied(index: faiss.Index) -> faiss.Index:
    """``index`` with its trained quantiser and no vectors, its lists in memory: an on-disk index's
    lists file is let go of (never written), so a new version can be built on the same centroids."""
    ivf = ann.ivf_part(index)
    if ivf is not None and not isinstance(faiss.downcast_InvertedLists(ivf.invlists), faiss.ArrayInvertedLists):
        lists = faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
        ivf.replace_invlists(lists, True)
        lists.this.disown()  # the index owns and frees it now
    index.reset()
    return index


@contextlib.contextmanager
def _quiet_stdout():
    """Silence C-level writes to standard output (FAISS's progress lines) for the block: a search's
    ``--json`` output must stay parseable."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
