"""Small, pure helpers of the benchmark report: reading results, formatting cells and tables,
saying how a number was measured. No measuring and no plotting here."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def load_result(results_dir: Path, name: str) -> dict | None:
    """``results/<name>.json`` as a dict, or None when it is missing or unreadable (logged).

    Example:
        >>> load_result(Path("/nonexistent"), "engine") is None
        True
    """
    path = Path(results_dir) / f"{name}.json"
    if not path.is_file():
        logger.info("%s not found: that section says 'not run yet'", path)
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        logger.warning("cannot read %s (%s): that section says 'not run yet'", path, error)
        return None
    if not isinstance(record, dict):
        logger.warning("%s does not hold a JSON object: ignored", path)
        return None
    return record


def dig(record: Any, *keys: Any, default: Any = None) -> Any:
    """``record[k1][k2]...`` or ``default`` as soon as a key or index is missing.

    Example:
        >>> dig({"a": {"b": [1, 2]}}, "a", "b", 1), dig({"a": {}}, "a", "b", default="-")
        (2, '-')
    """
    for key in keys:
        try:
            record = record[key]
        except (KeyError, IndexError, TypeError):
            return default
    return record


def cell(value: Any, digits: int = 4) -> str:
    """One table cell: ``-`` for missing, floats to ``digits`` decimals, large numbers with separators.

    Example:
        >>> cell(None), cell(0.64712), cell(12345.6, 1), cell(7), cell("IVF|Flat")
        ('-', '0.6471', '12,345.6', '7', 'IVF\\\\|Flat')
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], digits: int | Sequence[int] = 4) -> str:
    """A GitHub markdown table; ``digits`` is one precision for all columns or one per column.

    Example:
        >>> print(markdown_table(["system", "nDCG@10"], [["BM25", 0.665], ["ours", None]]))
        | system | nDCG@10 |
        |---|---|
        | BM25 | 0.6650 |
        | ours | - |
    """
    per_column = [digits] * len(headers) if isinstance(digits, int) else list(digits)
    if len(per_column) != len(headers):
        raise ValueError(f"{len(per_column)} precisions for {len(headers)} columns")
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {row!r} has {len(row)} cells, the table {len(headers)} columns")
        lines.append("| " + " | ".join(cell(v, d) for v, d in zip(row, per_column)) + " |")
    return "\n".join(lines)


def machine_text(machine: dict | None) -> str:
    """One phrase for the machine, from either machine format the scripts write.

    Example:
        >>> machine_text({"cpu": "Xeon", "cores": 2, "memory_gib": 23.5})
        'Xeon, 2 cores, 23.5 GiB'
        >>> machine_text({"processor": "x86_64", "cpu_count": 2, "memory_gb": 23.5, "torch_threads": 2})
        'x86_64, 2 cores, 23.5 GiB, 2 torch threads'
    """
    if not machine:
        return "machine not recorded"
    parts = [str(machine.get("cpu") or machine.get("processor") or "unknown CPU")]
    cores = machine.get("cores") or machine.get("cpu_count")
    if cores:
        parts.append(f"{cores} cores")
    memory = machine.get("memory_gib") or machine.get("memory_gb")
    if memory:
        parts.append(f"{memory} GiB")
    if machine.get("torch_threads"):
        parts.append(f"{machine['torch_threads']} torch threads")
    return ", ".join(parts)


def load_average(record: dict) -> list | None:
    """The 1/5/15-minute load average at the start of a run, when the script recorded it."""
    return dig(record, "load_average", "start") or dig(record, "machine", "load_average_at_start")


def command_text(record: dict) -> str:
    """The command(s) that made a result: ``command``, or ``commands`` joined (a resumed run has several).

    Example:
        >>> command_text({"commands": ["python a.py ", "python a.py --resume"]})
        'python a.py`, then `python a.py --resume'
    """
    commands = record.get("commands")
    if isinstance(commands, list) and commands:
        return "`, then `".join(str(c).strip() for c in commands)
    return str(record.get("command", "?")).strip()


def provenance(record: dict, name: str) -> str:
    """How a result was measured: command, date, machine, load average, raw file.

    Example:
        >>> result = {"command": "python -m bench.engine", "date": "2026-01-01", "machine": {"cpu": "Xeon", "cores": 2}}
        >>> provenance(result, "engine")
        '*Measured by `python -m bench.engine` on 2026-01-01; Xeon, 2 cores. Raw numbers: `results/engine.json`.*'
    """
    text = f"*Measured by `{command_text(record)}` on {record.get('date', '?')}; {machine_text(record.get('machine'))}"
    load, end = load_average(record), dig(record, "load_average", "end")
    if load:
        text += f"; load average {', '.join(f'{x:g}' for x in load)} at start"
        text += f", {', '.join(f'{x:g}' for x in end)} at end" if end else ""
    return text + f". Raw numbers: `results/{name}.json`.*"


def busy_note(record: dict) -> str | None:
    """A caveat when the 1-minute load average at start exceeded the core count, else None.

    Example:
        >>> busy_note({"machine": {"cores": 2}, "load_average": {"start": [4.4, 4, 4]}})[:40]
        'The machine was busy (1-minute load 4.4 '
    """
    load, cores = load_average(record), dig(record, "machine", "cores") or dig(record, "machine", "cpu_count")
    if not load or not cores or load[0] <= cores:
        return None
    return (
        f"The machine was busy (1-minute load {load[0]:g} on {cores} cores, shared with other work): absolute "
        "times are pessimistic, and the smallest batches and single-query timings the noisiest, as every "
        "thread waits for its turn on a core. Compare settings within this run, not with other machines."
    )


def percent(share: float | None) -> str | None:
    """0.797 -> '79.7%' (None stays None)."""
    return None if share is None else f"{100 * share:.1f}%"


def short_provenance(record: dict) -> str:
    """Command, date and machine on one line, for a figure's footer."""
    return (
        f"{command_text(record).replace('`', '')} | {record.get('date', '?')} | {machine_text(record.get('machine'))}"
    )


def not_run(name: str, command: str | None = None) -> str:
    """The line a section shows when its results file is missing."""
    return f"_Not run yet: `{command or f'python -m bench {name}'}` writes `results/{name}.json`._"


def fastest_at(runs: Sequence[dict], target: float, key: str = "batch_queries_per_second") -> dict:
    """The fastest run whose overlap@10 reaches ``target``; the most accurate one if none does.

    Example:
        >>> runs = [{"overlap@10": 0.9, "batch_queries_per_second": 900},
        ...         {"overlap@10": 0.99, "batch_queries_per_second": 300},
        ...         {"overlap@10": 1.0, "batch_queries_per_second": 100}]
        >>> fastest_at(runs, 0.95)["batch_queries_per_second"], fastest_at(runs, 1.01)["overlap@10"]
        (300, 1.0)
    """
    if not runs:
        raise ValueError("no runs")
    reaching = [run for run in runs if run.get("overlap@10", 0) >= target]
    if reaching:
        return max(reaching, key=lambda run: run.get(key) or 0)
    return max(runs, key=lambda run: (run.get("overlap@10", 0), run.get(key) or 0))


def mib(value: float | int | None) -> float | None:
    """Bytes to MiB (None stays None)."""
    return None if value is None else value / 2**20
