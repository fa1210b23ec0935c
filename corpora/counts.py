"""What a count field holds: a non-negative finite number (views, links, how often code uses a name),
or nothing. The one rule for an index's prior field (:mod:`dualsearch.ranking.priors`), checked when a
document is written, so that one bad value can never reach a search.
"""

from __future__ import annotations

import math
from typing import Any


def count_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a count, or None when it can (None itself: the document has no count).

    Example:
        >>> count_problem(12), count_problem(None), count_problem(0.5)
        (None, None, None)
        >>> count_problem("many"), count_problem(-3), count_problem(True)
        ("found 'many'", 'found -3', 'found True')
    """
    if value is None:
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and value >= 0 and not math.isinf(value):  # NaN fails value >= 0
        return None
    return f"found {value!r:.40}"


def count_rule(field: str) -> str:
    return f"the prior field {field!r} must hold a non-negative number (or be absent)"
