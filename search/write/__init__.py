"""The write path: one version-writing transaction, building, re-indexing, lock, executors."""
