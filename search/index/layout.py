"""The on-disk layout of an index directory, and its atomic switch between versions.

    DIR/CURRENT            name of the live version and the sha256 of its manifest.json, e.g.
                           "v000002 9f86d0...", replaced with os.replace (a CURRENT of only the name,
                           written before the checksum was recorded, is read as unprotected)
    DIR/v000002/           an immutable version: manifest.json, index.faiss, documents.sqlite,
                           vectors.f32 (row-aligned float32 vectors, for exact search)
    DIR/.build-*/          a version being written; never read, removed on failure

A version is written in full beside the live one, fsynced, renamed into place, and only then named
in CURRENT. A reader resolves CURRENT once and keeps its version open, so it never sees a mix; a
crash at any moment leaves CURRENT naming a complete version. (``os.replace`` cannot swap a
non-empty directory in place on POSIX, hence the pointer file.) The manifest holds every other
file's checksum and CURRENT holds the manifest's, so an edit of the manifest that keeps it valid
JSON is still refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dualsearch.atomic import fsync_path, publish_directory
from dualsearch.corpora.text import lone_surrogate_position
from dualsearch.errors import (
    DiskFullError,
    DualsearchError,
    IndexCorruptError,
    IndexNotFoundError,
    IndexNotWritableError,
    InvalidInputError,
    is_disk_full,
)
from dualsearch.index.failpoints import failpoint
from dualsearch.index.manifest import (
    INDEX_FILE,
    IVFDATA_FILE,
    MANIFEST_NAME,
    SEGMENTS_DIR,
    STORE_FILE,
    VECTORS_FILE,
)

logger = logging.getLogger(__name__)

CURRENT_NAME = "CURRENT"
# INDEX_FILE, STORE_FILE, VECTORS_FILE and IVFDATA_FILE are defined by the manifest, which checks them
_VERSION = re.compile(r"^v(\d{6,})$")
_SEGMENT = re.compile(r"^s(\d{6,})$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
LOG_DIR = "wal"  # the service's write-ahead log (dualsearch.write.write_log)
MERGE_PREFIX = ".merge-"  # a background merge's segment build directory: .merge-<pid>-<random>
KEEP_PREVIOUS_VERSIONS = 1  # a reader that resolved CURRENT just before a switch still finds its files


def is_index_dir(path: Path) -> bool:
    return (path / CURRENT_NAME).is_file()


def current_version_dir(index_dir: str | Path) -> Path:
    """The live version's directory, with a clear error when ``index_dir`` is not an index or its
    pointer or manifest is damaged."""
    index_dir = Path(index_dir)
    if not index_dir.exists():
        raise IndexNotFoundError(f"no index at {index_dir}")
    pointer = index_dir / CURRENT_NAME
    if not pointer.is_file():
        raise IndexNotFoundError(f"{index_dir} is not a dualsearch index (no {CURRENT_NAME} file)")
    name, manifest_sha256 = _read_pointer(pointer)
    version = index_dir / name
    if not _VERSION.match(name) or not (version / MANIFEST_NAME).is_file():
        raise IndexCorruptError(f"{pointer} names {name!r}, which is not a complete index version")
    if manifest_sha256 is None:
        logger.info("%s holds no manifest checksum (written by an earlier dualsearch): not verified", pointer)
    elif file_checksum(version / MANIFEST_NAME)["sha256"] != manifest_sha256:
        raise IndexCorruptError(f"{version / MANIFEST_NAME} does not match the checksum in {pointer}: edited")
    return version


def _read_pointer(pointer: Path) -> tuple[str, str | None]:
    """(version name, sha256 of its manifest or None for a pointer written before it was recorded)."""
    try:
        fields = pointer.read_bytes().decode("utf-8").split()
    except UnicodeDecodeError:
        raise IndexCorruptError(f"{pointer} is damaged: not text") from None
    except OSError as error:
        raise IndexCorruptError(f"{pointer} cannot be read: {error.strerror}") from None
    if len(fields) == 1:
        return fields[0], None
    if len(fields) == 2 and _SHA256.match(fields[1]):
        return fields[0], fields[1]
    raise IndexCorruptError(f"{pointer} is damaged: expected a version name and a checksum, got {fields!r:.80}")


def _version_numbers(index_dir: Path) -> list[int]:
    return sorted(int(m.group(1)) for p in index_dir.iterdir() if (m := _VERSION.match(p.name)) and p.is_dir())


_OWN_NAMES = (".lock", ".chunks", ".build-", SEGMENTS_DIR, LOG_DIR)  # what a writer leaves before the first version


def check_writable(index_dir: Path) -> None:
    """Refuse to write an index into a file, into a directory holding anything else, or at a path
    that is not UTF-8 (FAISS and SQLite cannot open it, and would fail only after all the encoding)."""
    if lone_surrogate_position(str(index_dir)) is not None:
        raise InvalidInputError(f"the index path {os.fsencode(index_dir)!r} is not valid UTF-8")
    if index_dir.exists() and not index_dir.is_dir():
        raise InvalidInputError(f"{index_dir} exists and is not a directory")
    if holds_something_else(index_dir):
        raise InvalidInputError(f"{index_dir} is not empty and not a dualsearch index; refusing to write into it")


def holds_something_else(path: Path) -> bool:
    """True for a directory that is not an index and holds more than a first build leaves behind: no
    index can be written there."""
    if not path.is_dir() or is_index_dir(path):
        return False
    return any(not entry.name.startswith(_OWN_NAMES) for entry in path.iterdir())


def not_writable(path: Path, error: OSError) -> IndexNotWritableError | DiskFullError:
    """The one-line error for a directory or file a writer cannot create (read-only, under a file, or
    on a full disk)."""
    if is_disk_full(error):
        return disk_full(path.parent, error, path)
    return IndexNotWritableError(f"cannot write to {path}: {error.strerror or error}")


def disk_full(index_dir: Path, error: BaseException, writing: Path) -> DiskFullError:
    """The one-line error for a write to ``index_dir`` that found the disk full: what was being written
    (the file the system names, else ``writing``) and the version still live, read from CURRENT now."""
    target = getattr(error, "filename", None) or writing
    live = live_version_name(index_dir)
    kept = f"the live version {live} is unchanged" if live else "no version was published"
    return DiskFullError(
        f"no space left on device writing {target}; {kept} (a new version needs free space beside the live one)"
    )


def live_version_name(index_dir: Path) -> str | None:
    """The name CURRENT gives the live version, or None when there is none (or it cannot be read)."""
    try:
        return _read_pointer(Path(index_dir) / CURRENT_NAME)[0]
    except (DualsearchError, OSError):
        return None


@contextmanager
def removed_on_failure(index_dir: Path, created: bool) -> Iterator[None]:
    """Remove ``index_dir`` if the block fails and this build ``created`` it, so a failed first build
    leaves no directory holding only a lock and checkpoints. Enter it while holding the writer lock.
    An interrupted build (Ctrl+C) keeps everything, so its rerun resumes from the checkpoints."""
    try:
        yield
    except Exception:
        if created:
            logger.info("removing %s: the build that created it failed", index_dir)
            shutil.rmtree(index_dir, ignore_errors=True)
        raise


def remove_stale_builds(index_dir: Path) -> None:
    """Delete build directories of writers that died (call while holding the writer lock)."""
    for stale in [*index_dir.glob(".build-*"), *(index_dir / SEGMENTS_DIR).glob(".build-*")]:
        logger.warning("removing %s, left by a writer that stopped before publishing", stale)
        shutil.rmtree(stale, ignore_errors=True)
    for merging in (index_dir / SEGMENTS_DIR).glob(f"{MERGE_PREFIX}*"):
        pid = merging.name.removeprefix(MERGE_PREFIX).partition("-")[0]
        if not (pid.isdigit() and process_alive(int(pid))):
            logger.warning("removing %s, left by a merge whose process is gone", merging)
            shutil.rmtree(merging, ignore_errors=True)
    (index_dir / f".{CURRENT_NAME}.tmp").unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**31
    return True


def prepare_build_dir(index_dir: str | Path, prefix: str = ".build-") -> Path:
    """A fresh hidden build directory inside ``index_dir`` (created if needed)."""
    index_dir = Path(index_dir)
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        build_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=index_dir))
    except OSError as error:
        raise not_writable(index_dir, error) from None
    os.chmod(build_dir, 0o755)  # mkdtemp makes it private; readers may run as other users
    return build_dir


def segment_dir(index_dir: str | Path, name: str) -> Path:
    return Path(index_dir) / SEGMENTS_DIR / name


def prepare_segment_build_dir(index_dir: str | Path, background: bool = False) -> Path:
    """A fresh hidden build directory for a new segment, in ``index_dir/segments``. A merge in the
    background builds without the writer lock: its directory names its process, and other writers
    remove it only once that process is gone."""
    prefix = f"{MERGE_PREFIX}{os.getpid()}-" if background else ".build-"
    return prepare_build_dir(Path(index_dir) / SEGMENTS_DIR, prefix)


def publish_segment(index_dir: str | Path, build_dir: Path, version_name: str) -> str:
    """Rename a finished segment build directory into place, named after the version that writes it
    (``v000007`` writes ``s000007``: version numbers only grow, so a name is never used twice); returns
    the name. A segment no version names yet is invisible to readers, and removed after the next
    publish if the version that would name it never was, or replaced by the next writer's segment of
    the same name."""
    name = "s" + version_name.removeprefix("v")
    # One there already was placed by a writer killed before it published ``version_name``, the next
    # version (the caller holds the writer lock): no version names it, so it is replaced
    publish_directory(build_dir, Path(index_dir) / SEGMENTS_DIR / name, replace=True)
    return name


def next_version_name(index_dir: str | Path) -> str:
    """The name the next published version will take (ask it while holding the writer lock)."""
    numbers = _version_numbers(Path(index_dir)) if Path(index_dir).is_dir() else []
    return f"v{(numbers[-1] + 1 if numbers else 1):06d}"


def file_checksum(path: Path, chunk_bytes: int = 1 << 22) -> dict[str, int | str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


REQUIRED_FILES = (INDEX_FILE, STORE_FILE, VECTORS_FILE)  # a manifest that lists fewer is not checking them


def tree_checksums(root: Path, directory: Path) -> dict[str, dict[str, int | str]]:
    """The checksum of every file under ``directory``, by path relative to ``root``."""
    return {
        path.relative_to(root).as_posix(): file_checksum(path)
        for path in sorted(Path(directory).rglob("*"))
        if path.is_file()
    }


def verify_files(version_dir: Path, files: dict[str, dict], full: bool = True) -> None:
    """Refuse a version whose files are missing, truncated or (with ``full``) altered."""
    unlisted = [name for name in REQUIRED_FILES if name not in files]
    if unlisted:
        raise IndexCorruptError(f"{version_dir / MANIFEST_NAME} lists no checksum for {', '.join(unlisted)}")
    verify_listed_files(version_dir, files, full)


def verify_listed_files(root: Path, files: dict[str, dict], full: bool = True) -> None:
    """Refuse files (paths relative to ``root``) missing, truncated or (with ``full``) altered.

    A file this process has already hashed is not hashed again while its inode, size and modification
    time stay the same: a segment's files never change once published, and a server opens the same
    segments again at every write, which would otherwise cost a read of the whole index each time.
    """
    for name, expected in sorted(files.items()):
        path = root / name
        try:
            status = path.stat()
        except FileNotFoundError:
            raise IndexCorruptError(f"{path} is missing") from None
        if not path.is_file():
            raise IndexCorruptError(f"{path} is missing")
        size = status.st_size
        if size != expected.get("bytes"):
            raise IndexCorruptError(
                f"{path} has {size} bytes, the manifest says {expected.get('bytes')!r}: truncated or altered"
            )
        seen = (str(path.resolve()), status.st_ino, size, status.st_mtime_ns, expected.get("sha256"))
        if full and seen not in _VERIFIED:
            if file_checksum(path)["sha256"] != expected.get("sha256"):
                raise IndexCorruptError(f"{path} does not match its checksum in the manifest: altered or damaged")
            _VERIFIED.add(seen)


_VERIFIED: set[tuple] = set()  # (path, inode, size, mtime, sha256) of files whose checksum matched


def verify_segments(index_dir: Path, entries, full: bool = True) -> None:
    """Refuse a version whose segments' files are missing, truncated or (with ``full``) altered."""
    for entry in entries:
        verify_listed_files(segment_dir(index_dir, entry.name), entry.files, full)


MAPPED_FILES = (VECTORS_FILE, IVFDATA_FILE)  # read through memory maps while a version is searched


def check_mapped_files(version_dir: Path, files: dict[str, dict]) -> None:
    """Refuse to search an open version whose memory-mapped files changed size since it was published.

    Touching a mapped page past the end of a truncated file kills the process (SIGBUS, which no handler
    sees); this stat before each search turns the usual case into one error. Not covered: a change
    between this check and the search, and a change that keeps the size (it alters results instead).
    """
    for name in MAPPED_FILES:
        expected = files.get(name, {}).get("bytes")
        try:
            size = (version_dir / name).stat().st_size
        except FileNotFoundError:  # none, or removed after a newer publish: the mapping keeps it whole
            continue
        if expected is not None and size != expected:
            raise IndexCorruptError(
                f"{version_dir / name} has {size} bytes, the manifest says {expected}: it was changed in place "
                "while being searched (published files must never be)"
            )


def publish(index_dir: str | Path, build_dir: Path) -> Path:
    """Make a finished build directory the live version; returns the version directory."""
    index_dir = Path(index_dir)
    numbers = _version_numbers(index_dir)
    version_dir = publish_directory(build_dir, index_dir / f"v{(numbers[-1] + 1 if numbers else 1):06d}")
    failpoint("before-switch")
    pointer_tmp = index_dir / f".{CURRENT_NAME}.tmp"
    manifest_sha256 = file_checksum(version_dir / MANIFEST_NAME)["sha256"]
    pointer_tmp.write_text(f"{version_dir.name} {manifest_sha256}\n", encoding="utf-8")
    fsync_path(pointer_tmp)
    os.replace(pointer_tmp, index_dir / CURRENT_NAME)  # the switch: atomic on POSIX
    fsync_path(index_dir)
    failpoint("after-switch")
    _remove_old_versions(index_dir, keep=version_dir)
    return version_dir


def _remove_old_versions(index_dir: Path, keep: Path) -> None:
    live = int(_VERSION.match(keep.name).group(1))
    for number in _version_numbers(index_dir):
        if number < live - KEEP_PREVIOUS_VERSIONS:
            shutil.rmtree(index_dir / f"v{number:06d}", ignore_errors=True)
    _remove_unreferenced_segment_files(index_dir)


def _remove_unreferenced_segment_files(index_dir: Path) -> None:
    """Remove the segments, and the deletion files, that no version left on disk names. Nothing is
    removed when a version's manifest cannot be read: better a stray file than a missing one."""
    parent = index_dir / SEGMENTS_DIR
    if not parent.is_dir():
        return
    referenced: dict[str, set[str]] = {}
    for number in _version_numbers(index_dir):
        try:
            data = json.loads((index_dir / f"v{number:06d}" / MANIFEST_NAME).read_text(encoding="utf-8"))
            for entry in data.get("segments", []):
                referenced.setdefault(entry["name"], set()).update(entry["files"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            logger.warning("%s: a version's manifest cannot be read; keeping every segment", index_dir)
            return
    for segment in parent.iterdir():
        if not _SEGMENT.match(segment.name):
            continue  # build directories are the writer's (removed as stale at the next write)
        if segment.name not in referenced:
            shutil.rmtree(segment, ignore_errors=True)
            continue
        for path in segment.glob("deleted-*.npy"):
            if path.name not in referenced[segment.name]:
                path.unlink(missing_ok=True)


def discard(build_dir: Path) -> None:
    shutil.rmtree(build_dir, ignore_errors=True)
