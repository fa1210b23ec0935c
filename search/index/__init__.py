"""The on-disk index: layout, manifest, document store, vectors, FAISS, BM25, passages."""
