"""What Ray Serve itself costs a request on this machine, with no search in it: the floor under any
ingress built on Serve (``python -m bench ray_serving`` runs it in a process of its own).

    python -m bench.serve_floor [--requests 300]

A local Ray cluster with Serve's settings of ``dualsearch serve --ray``
(:data:`dualsearch.service.ray_serving.SERVE_ENVIRONMENT`), an ingress deployment of FastAPI with two
routes, and two deployments of a class whose one method returns its argument:

- ``GET /nothing``: the ingress answers at once (Serve's HTTP proxy, and the ingress's FastAPI);
- ``GET /round``: the ingress calls both deployments at once and waits for both, through
  :class:`dualsearch.service.ray_serving.ShardClient`, as a round of a sharded search does, with
  nothing to compute and a few bytes each way.

One client sends ``--requests`` of each, one at a time; their p50 and p95 are printed as JSON (the
caller records them). A round's own cost is the difference of the two p50s.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time

from bench.common import percentile_ms


class Echo:
    def echo(self, value):
        return value


def build_app(deployments: int):
    from fastapi import FastAPI
    from ray import serve

    from dualsearch.service.ray_serving import EventLoopFinder, ShardClient

    def app_builder():
        clients = [ShardClient(serve.get_deployment_handle(f"echo-{n}", app_name="floor"), f"echo-{n}", 10.0)
                   for n in range(deployments)]  # fmt: skip
        app = FastAPI()

        @app.get("/nothing")
        def nothing() -> dict:
            return {"answered": 0}

        @app.get("/round")
        def one_round() -> dict:
            asked = [client.read("echo", 1) for client in clients]
            return {"answered": sum(answer.result() for answer in asked)}

        app.add_middleware(EventLoopFinder, clients=clients)
        return app

    class Ingress:
        def __init__(self, *handles) -> None:
            self.handles = handles

    options = {"ray_actor_options": {"num_cpus": 0.1}}
    echoes = [serve.deployment(Echo, name=f"echo-{n}", **options).bind() for n in range(deployments)]
    return serve.deployment(serve.ingress(app_builder)(Ingress), name="ingress", **options).bind(*echoes)


def timed(url: str, route: str, requests: int) -> dict:
    import httpx

    seconds = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(5):  # warm: the connection, the ingress's first request
            client.get(route).raise_for_status()
        for _ in range(requests):
            started = time.perf_counter()
            client.get(route).raise_for_status()
            seconds.append(time.perf_counter() - started)
    return {"requests": requests, "p50_ms": round(percentile_ms(seconds, 50), 2),
            "p95_ms": round(percentile_ms(seconds, 95), 2)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--deployments", type=int, default=2, help="deployments a round calls (the shards)")
    args = parser.parse_args(argv)
    from dualsearch.service.ray_serving import SERVE_ENVIRONMENT

    os.environ.update(SERVE_ENVIRONMENT)  # before the cluster starts: every process of it reads them
    import ray
    from ray import serve

    ray.init(include_dashboard=False, logging_level="WARNING")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(args.deployments), name="floor", route_prefix="/")
    try:
        floor = {route: timed(f"http://127.0.0.1:{port}", f"/{route}", args.requests) for route in ("nothing", "round")}
    finally:
        serve.shutdown()
        ray.shutdown()
    floor["round_p50_ms"] = round(floor["round"]["p50_ms"] - floor["nothing"]["p50_ms"], 2)
    floor["deployments"] = args.deployments
    print(json.dumps(floor))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
