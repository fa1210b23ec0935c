"""The read path: the searcher, the live index a server follows, and evaluation."""

from dualsearch.read.searcher import Searcher
from dualsearch.read.sharded import ShardedSearcher

Searcher.open_sharded = ShardedSearcher.open  # Searcher.open of a sharded index opens every shard
