"""The one record type every corpus reader yields."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A document as the engine sees it.

    Attributes:
        id: Unique, non-empty identifier within its corpus.
        title: Optional title ("" when the source has none).
        text: Body text; never empty.
        metadata: JSON-serialisable extra fields, returned with search results.

    Example:
        >>> Document("d1", "Tea", "Green tea is unfermented.").encoding_text()
        'Tea Green tea is unfermented.'
    """

    id: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def encoding_text(self) -> str:
        """The string the document tower sees: ``title + " " + text``, as BEIR and MTEB encode."""
        return f"{self.title} {self.text}" if self.title else self.text

    def content_hash(self) -> str:
        """sha256 of everything the index stores for this document, to spot changed documents."""
        payload = json.dumps([self.title, self.text, self.metadata], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()
