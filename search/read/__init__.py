"""The read path: the searcher, the live index a server follows, and evaluation."""
