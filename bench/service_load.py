"""Load on `dualsearch serve` over the SciFact index: 1, 4 and 16 concurrent clients, with and without
micro-batching and with one or all cores per forward pass, then a re-index published during a
16-client run.

    python -m bench.service_load [--data ../shared/data] [--index-dir /tmp/dualsearch-bench/scifact-service]
                                 [--seconds 20]

The server runs as a user runs it (``python -m dualsearch serve DIR --port 0``, shipped defaults) in
its own process on 127.0.0.1; the clients are threads of this process, each with its own keep-alive
connection, sending ``GET /search?q=...&k=10`` with SciFact query texts in turn for a fixed time
(and at most ``--max-requests`` each). Every setting runs in one invocation on one machine, so their
ratios compare like with like. Each run also reports the CPU the server and the clients used (cores
kept busy, milliseconds per request), which bounds what more clients can gain. Writes
results/service_load.json.

The swap run: 16 clients search while ``python -m dualsearch add DIR FILE`` (another process) adds
one document; every answer carries the version it came from, so the run reports failed requests
and how long after the publish the answers switched.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import DEFAULT_DATA, log_phases_only, percentile_ms, write_result

logger = logging.getLogger(__name__)
CLIENTS = (1, 4, 16)
SERVING = re.compile(r"on (http://127\.0\.0\.1:\d+) ")


@dataclass
class ClientLog:
    """What one client saw: per request, when it finished (wall clock), how long it took, status, version."""

    finished: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ServerSetting:
    """One way to run the server: its label in the results, extra ``serve`` options, environment."""

    label: str
    options: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()


SETTINGS = (
    ServerSetting("micro_batching"),
    ServerSetting("one_pass_per_request", ("--no-micro-batching",)),
    ServerSetting("micro_batching_one_thread_per_pass", (), (("DUALSEARCH_THREADS", "1"),)),
    ServerSetting("one_pass_per_request_one_thread_per_pass", ("--no-micro-batching",), (("DUALSEARCH_THREADS", "1"),)),
)


def start_server(index_dir: Path, setting: ServerSetting) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "dualsearch", "serve", str(index_dir), "--port", "0", *setting.options]
    environment = os.environ | dict(setting.environment)
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    for line in server.stdout:  # the towers load first: up to a minute
        found = SERVING.search(line)
        if found:
            threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()  # drain
            return server, found.group(1)
    raise RuntimeError(f"the server exited before serving (exit code {server.wait()})")


def client_loop(url: str, queries: list[str], offset: int, stop: threading.Event, max_requests: int, log: ClientLog):
    import httpx

    with httpx.Client(base_url=url, timeout=60) as client:
        for number in range(max_requests):
            if stop.is_set():
                return
            query = queries[(offset + number) % len(queries)]
            started = time.monotonic()
            try:
                response = client.get("/search", params={"q": query, "k": 10})
                status = response.status_code
                version = response.json().get("version", "") if status == 200 else ""
            except Exception as error:  # a refused or dropped connection counts as a failed request
                logger.warning("request failed: %s", error)
                status, version = 0, ""
            finished = time.monotonic()
            log.finished.append(time.time())  # wall clock: compared with the pointer file's mtime
            log.seconds.append(finished - started)
            log.statuses.append(status)
            log.versions.append(version)


def run_clients(url: str, queries: list[str], clients: int, seconds: float, max_requests: int, during=None):
    """``clients`` threads for ``seconds``, or, given ``during(start)``, until it returns (it runs in
    this thread meanwhile)."""
    logs, stop = [ClientLog() for _ in range(clients)], threading.Event()
    start = time.monotonic()
    threads = [
        threading.Thread(target=client_loop, args=(url, queries, number * 997, stop, max_requests, logs[number]))
        for number in range(clients)
    ]
    for thread in threads:
        thread.start()
    extra = during(start) if during else stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = max((time.monotonic() - start), 1e-9)
    return logs, elapsed, extra


def summary(logs: list[ClientLog], elapsed: float) -> dict:
    seconds = [value for log in logs for value in log.seconds]
    statuses = [value for log in logs for value in log.statuses]
    return {
        "requests": len(seconds),
        "errors": sum(status != 200 for status in statuses),
        "queries_per_second": round(len(seconds) / elapsed, 1),
        "latency_ms": {q: round(percentile_ms(seconds, int(q[1:])), 2) for q in ("p50", "p95", "p99")},
    }


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc), None where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def own_cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured_run(server: subprocess.Popen, url: str, queries: list[str], clients: int, seconds: float, cap: int):
    """:func:`summary` of one run, plus the CPU the server and the clients used: cores kept busy on
    average, and milliseconds per request (what a run at more clients can spread over the cores)."""
    server_before, clients_before = process_cpu_seconds(server.pid), own_cpu_seconds()
    logs, elapsed, _ = run_clients(url, queries, clients, seconds, cap)
    server_after, clients_after = process_cpu_seconds(server.pid), own_cpu_seconds()
    numbers = summary(logs, elapsed)
    requests = max(numbers["requests"], 1)
    used = {"clients": clients_after - clients_before}
    if server_before is not None and server_after is not None:
        used["server"] = server_after - server_before
    numbers["cpu"] = {
        side: {"cores_busy": round(value / elapsed, 2), "ms_per_request": round(1000 * value / requests, 2)}
        for side, value in used.items()
    }
    return numbers


def ensure_index(scifact: Path, index_dir: Path) -> None:
    from dualsearch.index.layout import is_index_dir

    if not is_index_dir(index_dir):
        logger.info("building %s with the shipped defaults (a few minutes)", index_dir)
        command = [sys.executable, "-m", "dualsearch", "index", str(scifact), "--out", str(index_dir)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def swap_run(url: str, index_dir: Path, queries: list[str], seconds: float, max_requests: int) -> dict:
    """16 clients while another process adds a document (loading the towers, encoding, publishing),
    and ``seconds`` after: failures, and when the answers switched."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")  # new content each run, so the add always publishes
    document = {"id": "bench-swap", "title": "Swap marker", "text": f"A document added while clients search ({stamp})."}
    scratch = Path(tempfile.mkdtemp())
    (scratch / "new.jsonl").write_text(json.dumps(document) + "\n", encoding="utf-8")

    def publish(start: float) -> dict:
        """Search for a while, add the document from another process, search ``seconds`` more."""
        time.sleep(seconds / 4)
        began = time.monotonic()
        command = [sys.executable, "-m", "dualsearch", "add", str(index_dir), str(scratch / "new.jsonl")]
        done = subprocess.run(command, capture_output=True, text=True)
        published = time.monotonic()
        time.sleep(seconds)
        return {"exit_code": done.returncode, "began": began - start, "published": published - start}

    logs, elapsed, timing = run_clients(url, queries, 16, seconds, max_requests, during=publish)
    published_at = (index_dir / "CURRENT").stat().st_mtime  # the switch: `add` replaced the pointer
    answers = sorted((t, v) for log in logs for t, v, s in zip(log.finished, log.versions, log.statuses) if s == 200)
    old = answers[0][1] if answers else ""
    first_new = next((t for t, v in answers if v != old), None)
    last_old = max((t for t, v in answers if v == old), default=None)
    return {
        **summary(logs, elapsed),
        "add_exit_code": timing["exit_code"],
        "add_seconds": round(timing["published"] - timing["began"], 2),
        "versions": sorted({v for _, v in answers}),
        # seconds after the pointer switch (its file's mtime) that answers came from the new version
        "first_new_answer_after_switch_seconds": round(first_new - published_at, 3) if first_new else None,
        "last_old_answer_after_switch_seconds": round(last_old - published_at, 3) if last_old else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding scifact/ (BEIR layout)")
    parser.add_argument("--index-dir", type=Path, default=Path("/tmp/dualsearch-bench/scifact-service"))
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each client run")
    parser.add_argument("--max-requests", type=int, default=5000, help="per client and run, whatever the time")
    args = parser.parse_args(argv)
    log_phases_only()
    from dualsearch.corpora.beir import read_queries

    scifact = args.data / "scifact"
    ensure_index(scifact, args.index_dir)
    queries = list(read_queries(scifact).values())  # texts only; metadata is never read
    runs: dict[str, dict] = {}
    swap = None
    for setting in SETTINGS:
        label = setting.label
        server, url = start_server(args.index_dir, setting)
        try:
            run_clients(url, queries, 2, 3.0, 50)  # warm-up: first calls allocate
            for clients in CLIENTS:
                numbers = measured_run(server, url, queries, clients, args.seconds, args.max_requests)
                runs.setdefault(label, {})[str(clients)] = numbers
                logger.info("%s, %d clients: %s", label, clients, numbers)
            if setting == SETTINGS[0]:  # the shipped defaults
                swap = swap_run(url, args.index_dir, queries, args.seconds, args.max_requests)
                logger.info("swap run: %s", swap)
        finally:
            server.terminate()
            server.wait(timeout=30)
    ratios = {
        label: round(by_clients["16"]["queries_per_second"] / by_clients["1"]["queries_per_second"], 2)
        for label, by_clients in runs.items()
    }
    # One client waits for each answer, so whatever it keeps busy is one request's whole cost in
    # sequence; with perfect scaling and no cheaper requests under load, 16 clients can at most fill
    # the cores: the 16-to-1 ratio is bounded by cores / (cores one client keeps busy).
    ceilings = {}
    for label, by_clients in runs.items():
        busy = sum(side["cores_busy"] for side in by_clients["1"]["cpu"].values())
        ceilings[label] = round((os.cpu_count() or 1) / busy, 2) if busy else None
    result = {
        "collection": "scifact",
        "index_dir": str(args.index_dir),
        "seconds_per_run": args.seconds,
        "clients": list(CLIENTS),
        "runs": runs,
        "throughput_16_over_1_clients": ratios,
        "ratio_ceiling_cores_over_one_client_busy": ceilings,
        "swap_during_16_clients": swap,
        "torch_threads_env": os.environ.get("OMP_NUM_THREADS", "torch default"),
        "onnx_threads_env": os.environ.get("DUALSEARCH_THREADS", "onnxruntime default (all cores)"),
    }
    path = write_result("service_load", result)
    print(f"wrote {path}: 16/1 throughput {ratios}; swap run errors {swap['errors'] if swap else 'n/a'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
