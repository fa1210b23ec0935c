"""The HTTP service: ``dualsearch serve``, a FastAPI application over one index directory.

- :mod:`~dualsearch.service.app`: the routes (search, documents, health, stats) and OpenAPI docs;
- :mod:`~dualsearch.service.auth`: bearer tokens for writes (and for reads off loopback), checked
  before a body is read;
- :mod:`~dualsearch.service.hosts`: on loopback, the Host header must name this machine (DNS rebinding);
- :mod:`~dualsearch.service.errors`: one JSON error shape and the status of each error;
- :mod:`~dualsearch.service.limits`: request bodies, bounded in size and in time;
- :mod:`~dualsearch.service.asgi`: what those middlewares share;
- :mod:`~dualsearch.service.docs`: ``/openapi.json`` and ``/docs``, served without a CDN;
- :mod:`~dualsearch.service.stats`: request counts and latency percentiles;
- :mod:`~dualsearch.service.server`: binding a socket and running uvicorn.

The search itself is :mod:`dualsearch.requests.search`, shared with the demo page, over a
:class:`~dualsearch.read.live_index.LiveIndex` that follows re-indexes without a restart.
"""
