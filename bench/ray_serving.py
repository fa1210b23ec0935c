"""A sharded index on Ray Serve against one server of the same corpus: fan-out overhead, a replica
killed under load, and a write through the ingress.

    python -m bench ray_serving [--data ../shared/data] [--work /tmp/dualsearch-bench-sharding] [--seconds 20]

SciFact's index (default towers and settings, the one ``python -m bench sharding`` builds, reused
when it is there) and the same index split into 2 shards. Then, on this machine:

1. **Fan-out overhead**: ``dualsearch serve ONE`` (one process) and ``dualsearch serve SHARDED --ray``
   (a local Ray cluster, one replica a shard) each answer SciFact's test queries from one client, one
   request at a time; the p50 and p95 of each, and the difference of the p50s. Both rank the same
   documents; the difference is the ingress's hops (HTTP proxy, ingress, three rounds to the shards).
2. **A replica killed under load**: 2 replicas a shard, 16 clients for ``--seconds``; a third of the
   way in, the process of one replica of shard 0 gets SIGKILL (Serve starts another). Failed requests
   are counted.
3. **Writes**: two documents added through the ingress, one after the other, each answered once its
   shard's writer logged it (202); then how long until a search finds it (the shard's refresh, 1 s by
   default; the first write also loads its writer's document tower).
4. **Serve's own floor** (:mod:`bench.serve_floor`): a request through Serve's proxy and an ingress
   that calls nothing, and one with one round of trivial calls to 2 deployments: what any ingress on
   Serve pays here before it searches anything.
5. **A cost model** for 10M, 100M and 1B documents (:func:`cost_model`): shards, memory per shard by
   encoding, and a query's expected p50 from the per-shard search results/scale.json measured plus
   the overhead measured here.

Both servers run as users run them (``python -m dualsearch serve ...``), in their own processes on
127.0.0.1. Writes results/ray_serving.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import DEFAULT_DATA, RESULTS_DIR, machine, percentile_ms, write_result
from bench.service_load import SERVING, run_clients, summary

logger = logging.getLogger("bench.ray_serving")
SHARDS, REPLICAS = 2, 2
TOKEN = "bench-ray-serving"


def start(command: list[str], environment: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Start a ``dualsearch serve`` process and return it with the URL it prints."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=environment, start_new_session=True)  # fmt: skip
    for line in process.stdout:
        logger.debug("server: %s", line.rstrip())
        found = SERVING.search(line)
        if found:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, found.group(1)
    raise RuntimeError(f"{' '.join(command[2:])} exited before serving (exit code {process.wait()})")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


MODES = ("hybrid", "dense", "lexical")


def sequential(url: str, queries: list[str], mode: str) -> tuple[dict, list[list[tuple[str, float]]]]:
    """``queries`` searched one at a time in ``mode`` (top 10): the latency's p50 and p95, and each
    query's (id, score) results."""
    import httpx

    seconds, found = [], []
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get("/search", params={"q": queries[0], "k": 10, "mode": mode}).raise_for_status()  # warm
        for query in queries:
            started = time.perf_counter()
            answer = client.get("/search", params={"q": query, "k": 10, "mode": mode})
            seconds.append(time.perf_counter() - started)
            answer.raise_for_status()
            found.append([(result["id"], result["score"]) for result in answer.json()["results"]])
    latency = {"requests": len(seconds), "p50_ms": round(percentile_ms(seconds, 50), 2),
               "p95_ms": round(percentile_ms(seconds, 95), 2)}  # fmt: skip
    return latency, found


def health_latency(url: str, requests: int = 300) -> dict:
    """``GET /health`` one at a time: what an HTTP request costs the server with no search in it (through
    ``--ray``: Serve's proxy and the ingress, and no call to a shard)."""
    import httpx

    seconds = []
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get("/health").raise_for_status()
        for _ in range(requests):
            started = time.perf_counter()
            client.get("/health").raise_for_status()
            seconds.append(time.perf_counter() - started)
    return {"requests": requests, "p50_ms": round(percentile_ms(seconds, 50), 2),
            "p95_ms": round(percentile_ms(seconds, 95), 2)}  # fmt: skip


def served_modes(url: str, queries: list[str]) -> tuple[dict, dict]:
    """Every mode's latency and results, and the latency of ``/health``, from one server."""
    latency, found = {"health": health_latency(url)}, {}
    for mode in MODES:
        latency[mode], found[mode] = sequential(url, queries, mode)
    return latency, found


def agreement(one: list[list[tuple[str, float]]], sharded: list[list[tuple[str, float]]]) -> dict:
    """How many queries got the same top 10 ids in the same order, and the largest score difference.

    Example:
        >>> agreement([[("a", 0.5), ("b", 0.4)]], [[("a", 0.5), ("b", 0.40001)]])
        {'queries': 1, 'same_top_10': 1, 'max_score_difference': 1e-05}
    """
    same = sum([i for i, _ in a] == [i for i, _ in b] for a, b in zip(one, sharded, strict=True))
    gaps = [abs(x - y) for a, b in zip(one, sharded) for (_, x), (_, y) in zip(a, b)]
    return {"queries": len(one), "same_top_10": same, "max_score_difference": round(max(gaps, default=0.0), 8)}


SHARD_DOCUMENTS = 1_000_000  # a shard of the size results/scale.json measured (1M vectors, IVF4000,Flat)
CORPORA = (10_000_000, 100_000_000, 1_000_000_000)
ID_BYTES = 8  # FAISS keeps an int64 id beside each vector's code in the inverted lists


def code_bytes(dimension: int) -> dict[str, int]:
    """Bytes a vector takes in an IVF index's lists, by encoding (FAISS's layouts; PQ with 48 sub-quantizers)."""
    return {"IVF-Flat": 4 * dimension + ID_BYTES, "IVF-SQ8": dimension + ID_BYTES, "IVF-PQ48": 48 + ID_BYTES}


def cost_model(scale: dict, overhead_ms: float, replicas: int) -> dict:
    """What serving 10M, 100M and 1B documents takes, from measured figures: shards of
    :data:`SHARD_DOCUMENTS` (the size results/scale.json measured), each shard's list memory per encoding,
    and a query's expected p50: the per-shard search at its calibrated nprobe plus this run's fan-out
    overhead. A query waits for its slowest shard; with 10 shards or more its median waits for a shard at
    its 93rd percentile or beyond (0.5 ** (1 / 10)), so the per-shard p95 stands in for it.

    Example:
        >>> curve = [{"nprobe": 768, "p50_ms": 25.0, "p95_ms": 26.0}]
        >>> scale = {"dimension": 384, "default_nprobe": 768, "curve": curve}
        >>> model = cost_model(scale, 10.0, 2)
        >>> model["rows"][0]["shards"], model["rows"][0]["expected_p50_ms"], model["rows"][0]["memory_gib"]["IVF-SQ8"]
        (10, 36.0, 0.37)
    """
    point = next(row for row in scale["curve"] if row["nprobe"] == scale["default_nprobe"])
    per_vector = code_bytes(scale["dimension"])
    rows = []
    for documents in CORPORA:
        shards = math.ceil(documents / SHARD_DOCUMENTS)
        rows.append({
            "documents": documents,
            "shards": shards,
            "replicas": replicas,
            "processes": shards * replicas,
            "memory_gib": {name: round(size * SHARD_DOCUMENTS / 2**30, 2) for name, size in per_vector.items()},
            "expected_p50_ms": round(point["p95_ms"] + overhead_ms, 1),
        })  # fmt: skip
    return {"shard_documents": SHARD_DOCUMENTS, "per_shard_p50_ms": point["p50_ms"],
            "per_shard_p95_ms": point["p95_ms"], "nprobe": scale["default_nprobe"], "overhead_ms": overhead_ms,
            "rows": rows}  # fmt: skip


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def kill_one_replica(after: float) -> dict:
    """SIGKILL one replica process of shard 0 ``after`` seconds from now (Ray names its worker processes
    after the actor they run), as a machine or process failure would take it."""
    time.sleep(after)
    # the shard's replicas, not its writer (ServeReplica:dualsearch:shard-000-writer)
    found = subprocess.run(["pgrep", "-f", "ServeReplica:dualsearch:shard-000( |$)"], capture_output=True, text=True)
    pids = [int(pid) for pid in found.stdout.split()]
    if not pids:
        raise RuntimeError("no replica process of shard 0 found to kill")
    os.kill(pids[0], signal.SIGKILL)
    return {"killed_pid": pids[0], "replica_processes": len(pids), "at_seconds": after}


def write_through(url: str) -> dict:
    """Two documents added through the ingress, one after the other: how long until each is answered
    (logged) and until a search finds it. The first write loads its shard writer's document tower; the
    second shows a write with the towers loaded, searchable within the shard's refresh interval."""
    return {"first": _write_one(url, "bench-ray-write-1"), "second": _write_one(url, "bench-ray-write-2")}


def _write_one(url: str, doc_id: str) -> dict:
    import httpx

    record = {"_id": doc_id, "title": "Ray write", "text": f"Zebrafish fins regrow after amputation {doc_id}"}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, timeout=120) as client:
        started = time.perf_counter()
        answer = client.post("/documents", json=[record], headers=headers)
        acknowledged = time.perf_counter() - started
        answer.raise_for_status()
        while True:
            hits = client.get("/search", params={"q": record["text"], "k": 3}).json()["results"]
            if hits and hits[0]["id"] == record["_id"]:
                break
            if time.perf_counter() - started > 120:
                raise RuntimeError("the written document was not found within 120 s")
        searchable = time.perf_counter() - started
        return {"acknowledged_seconds": round(acknowledged, 3), "searchable_seconds": round(searchable, 3),
                "status": answer.status_code, "answer": answer.json()}  # fmt: skip


def serve_floor() -> dict:
    """Ray Serve's own cost of a request and of a round on this machine (:mod:`bench.serve_floor`, in a
    process and a Ray cluster of its own)."""
    done = subprocess.run([sys.executable, "-m", "bench.serve_floor"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding scifact/ in BEIR layout")
    parser.add_argument("--work", type=Path, default=Path("/tmp/dualsearch-bench-sharding"))
    parser.add_argument("--seconds", type=float, default=20.0, help="the 16-client run's length")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request drowns the run's own

    from bench.sharding import scifact_indexes
    from dualsearch.corpora.beir import read_qrels, read_queries

    # split anew: the write below must add its document to shards that do not hold it from an earlier run
    one_dir, sharded_dir, _ = scifact_indexes(args.data / "scifact", args.work, SHARDS, again=True)
    collection = args.data / "scifact"
    queries = read_queries(collection)
    test = [queries[query_id] for query_id in sorted(read_qrels(collection, "test"))]
    result: dict = {"collection": "scifact", "shards": SHARDS, "machine": machine()}

    single, url = start([sys.executable, "-m", "dualsearch", "serve", str(one_dir), "--port", "0"])
    try:
        result["single_process"], one_found = served_modes(url, test)
    finally:
        stop(single)
    environment = os.environ | {"DUALSEARCH_TOKEN": TOKEN}
    for replicas in (1, REPLICAS):  # each serving process starts a local Ray cluster of its own
        command = [sys.executable, "-m", "dualsearch", "serve", str(sharded_dir), "--ray", "--port", str(free_port()),
                   "--replicas", str(replicas)]  # fmt: skip
        served, ray_url = start(command, environment)
        try:
            if replicas == 1:
                result["ray"], ray_found = served_modes(ray_url, test)
                result["same_as_one_index"] = {mode: agreement(one_found[mode], ray_found[mode]) for mode in MODES}
                continue
            killed: dict = {}

            def kill_during(begun: float) -> None:
                killed.update(kill_one_replica(args.seconds / 3))
                time.sleep(max(0.0, args.seconds - (time.monotonic() - begun)))

            logs, elapsed, _ = run_clients(ray_url, test, 16, args.seconds, 10**9, during=kill_during)
            result["replica_killed"] = summary(logs, elapsed) | killed
            result["write"] = write_through(ray_url)
        finally:
            stop(served)
    result["serve_floor"] = serve_floor()
    result["fan_out_overhead_by_mode_p50_ms"] = {
        mode: round(result["ray"][mode]["p50_ms"] - result["single_process"][mode]["p50_ms"], 2) for mode in MODES
    }
    # the headline: the index's default mode, hybrid, as users search it
    result["fan_out_overhead_p50_ms"] = result["fan_out_overhead_by_mode_p50_ms"]["hybrid"]
    # the floor under any ingress on Serve: a request through its proxy and the ingress that calls no shard
    result["health_overhead_p50_ms"] = round(
        result["ray"]["health"]["p50_ms"] - result["single_process"]["health"]["p50_ms"], 2
    )
    scale_file = RESULTS_DIR / "scale.json"
    if scale_file.is_file():  # the per-shard search, measured by python -m bench scale
        scale = json.loads(scale_file.read_text(encoding="utf-8"))
        result["cost_model"] = cost_model(scale, result["fan_out_overhead_p50_ms"], REPLICAS)
    path = write_result("ray_serving", result)
    shown = ("single_process", "ray", "fan_out_overhead_by_mode_p50_ms", "health_overhead_p50_ms", "serve_floor",
             "same_as_one_index")  # fmt: skip
    print(json.dumps({key: result[key] for key in shown}, indent=1))
    print(f"replica killed under 16 clients: {result['replica_killed']['errors']} failed of "
          f"{result['replica_killed']['requests']}; wrote {path}")  # fmt: skip
    exact = all(found["same_top_10"] == found["queries"] for found in result["same_as_one_index"].values())
    return 0 if result["replica_killed"]["errors"] == 0 and exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
