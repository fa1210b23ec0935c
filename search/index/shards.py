"""A sharded index directory: N complete indexes and the top-level file that names them.

    DIR/shards.json    the shards, how documents are routed to them, the towers and the search defaults
    DIR/shard-000/     a complete index (versions, segments, lock, checksums), as `dualsearch index` writes
    DIR/shard-001/     ...

A document lives in shard ``shard_of(id, N)``: the first eight bytes of the sha256 of its id, as a
number, modulo N. The hash of the id (not of its content, not the order of arrival) keeps a document
in one shard through every update, and any process routes it without asking the others.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from dualsearch.atomic import fsync_path
from dualsearch.errors import IndexCorruptError, IndexNotFoundError

SHARDS_FILE = "shards.json"
SHARDS_FORMAT = 1
ROUTING = "sha256-mod"


def is_sharded(path: str | Path) -> bool:
    """True if ``path`` is a sharded index (it holds a shards.json)."""
    return (Path(path) / SHARDS_FILE).is_file()


def is_shard(path: str | Path) -> bool:
    """True if ``path`` is one of the shards of a sharded index (the shards.json beside it names it)."""
    path = Path(path).absolute()
    if not is_sharded(path.parent):
        return False
    try:
        return path.name in ShardMap.read(path.parent).shards
    except IndexCorruptError:
        return True  # unreadable: a shard cannot tell, so it must not act alone


def shard_of(doc_id: str, count: int) -> int:
    """The shard (0..count-1) that owns ``doc_id``.

    Example:
        >>> shard_of("tea-green", 2), shard_of("tea-green", 2) == shard_of("tea-green", 2)
        (1, True)
    """
    digest = hashlib.sha256(doc_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count


def shard_name(number: int) -> str:
    return f"shard-{number:03d}"


@dataclass(frozen=True)
class ShardMap:
    """What shards.json records."""

    shards: list[str]
    model: str
    default_nprobe: int  # the nprobe every shard is searched with: one index's calibrated value
    search: dict = field(default_factory=dict)  # the search defaults (dualsearch.ranking.settings)
    routing: str = ROUTING
    format: int = SHARDS_FORMAT

    @property
    def count(self) -> int:
        return len(self.shards)

    def shard_dirs(self, root: str | Path) -> list[Path]:
        return [Path(root) / name for name in self.shards]

    def owner(self, root: str | Path, doc_id: str) -> Path:
        """The directory of the shard that owns ``doc_id``."""
        return Path(root) / self.shards[shard_of(doc_id, self.count)]

    def write(self, root: str | Path) -> None:
        """Write shards.json in ``root`` atomically (a reader sees the old file or the new one)."""
        path = Path(root) / SHARDS_FILE
        staged = path.with_name(SHARDS_FILE + ".tmp")
        staged.write_text(json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        fsync_path(staged)
        os.replace(staged, path)
        fsync_path(Path(root))

    @classmethod
    def read(cls, root: str | Path) -> ShardMap:
        path = Path(root) / SHARDS_FILE
        if not path.is_file():
            raise IndexNotFoundError(f"{root} is not a sharded index (no {SHARDS_FILE})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            shard_map = cls(**data)
        except (ValueError, TypeError) as error:
            raise IndexCorruptError(f"{path} cannot be read ({error})") from None
        if shard_map.format != SHARDS_FORMAT or shard_map.routing != ROUTING or not shard_map.shards:
            raise IndexCorruptError(
                f"{path}: format {shard_map.format!r}, routing {shard_map.routing!r}, "
                f"{len(shard_map.shards)} shards; this dualsearch reads format {SHARDS_FORMAT} routed by {ROUTING}"
            )
        return shard_map
