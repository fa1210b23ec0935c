"""Publishing a directory so that readers, and a crash, see the old one or the new one whole: the one
place that writes a directory beside its target, makes it durable and renames it into place.

Used for index versions (:func:`dualsearch.index.layout.publish`, which then switches ``CURRENT``),
exported towers (:mod:`dualsearch.towers.export`) and fine-tuned model directories
(:mod:`dualsearch.finetune.train`). The bottom layer: it imports nothing of ours.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's entry to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(directory: Path) -> None:
    """Flush every file under ``directory``, then the directories holding them, then ``directory``."""
    for path in sorted(Path(directory).rglob("*"), reverse=True):  # deeper entries sort after their parents
        fsync_path(path)
    fsync_path(directory)


def publish_directory(staged: Path, target: Path, replace: bool = False) -> Path:
    """Rename the finished directory ``staged`` to ``target`` after flushing it, and flush their parent.

    An empty ``target`` is replaced. A full one is replaced only with ``replace`` (its old contents are
    moved aside first and removed once the new ones are in place); otherwise the rename fails with an
    ``OSError`` and ``target`` keeps what it holds (a concurrent writer that finished first wins).

    Example:
        >>> import tempfile
        >>> parent = Path(tempfile.mkdtemp())
        >>> staged = parent / ".staged"
        >>> staged.mkdir()
        >>> _ = (staged / "a.txt").write_text("new")
        >>> publish_directory(staged, parent / "out").name, (parent / "out" / "a.txt").read_text()
        ('out', 'new')
    """
    staged, target = Path(staged), Path(target)
    fsync_tree(staged)
    old = None
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    elif replace and target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
    os.rename(staged, target)
    fsync_path(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


@contextmanager
def staged_directory(target: Path, replace: bool = False) -> Iterator[Path]:
    """An empty directory beside ``target`` to fill; published as ``target`` (:func:`publish_directory`)
    when the block succeeds, removed when it fails, so readers never see a partial ``target``.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "towers"
        >>> with staged_directory(target) as staged:
        ...     _ = (staged / "tower.json").write_text("{}")
        >>> sorted(p.name for p in target.iterdir())
        ['tower.json']
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as scratch:
        staged = Path(scratch) / "staged"
        staged.mkdir()
        yield staged
        publish_directory(staged, target, replace)
