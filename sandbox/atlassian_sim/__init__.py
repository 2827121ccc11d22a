"""
Local simulator of the Atlassian Cloud Organizations REST API audit log (``/admin/v1/orgs/{orgId}/...``).

A real HTTP server (stdlib ``ThreadingHTTPServer``) for tests, the demo, benchmarks and the docker-compose
sandbox. It is not part of the installed provider. Start it with :func:`run_in_thread` or
``python -m sandbox.atlassian_sim``.

Endpoints (``Authorization: Bearer <api_key>`` on all; bad key 401, unknown org 404 ADMIN-404-2):

- ``GET .../events-stream``: ``from``, ``to``, ``cursor``, ``limit``, ``sortOrder``. Ordered by
  ``(processedAt, id)``. A cursor comes back on every non-empty page, the last one included, so the page
  after the last is empty (``next`` null unless ``empty_page_cursor``). The cursor carries from/to/sortOrder;
  parameters re-sent with a cursor are ignored.
- ``GET .../events``: ``from``, ``to``, ``cursor``, ``limit``, ``q``, ``action``, ``actor``, ``ip``,
  ``product``. Newest first by ``(time, id)``. The cursor holds only the position (ACCESS-1603): a cursor
  request without from/to/filters walks the unfiltered log. ``links.next`` keeps only cursor and limit.
- ``GET .../events/{id}`` and ``GET .../event-actions``.

Choices where the real API is silent (see the team reference ``atlassian-api.md``, section 2.3):

- **Filter clock** (``SimulatorConfig.filter_clock``). The API does not document which clock ``from``/``to``
  filter on for the stream, so both are modelled: ``time`` (default) filters on ``attributes.time`` floored to
  the millisecond, ``processed`` on ``processedAt``; inclusive at both ends (``from <= clock_ms <= to``). The
  stream *orders* by ``processedAt`` either way. ``/events`` always filters on ``time`` (its bodies carry no
  ``processedAt``). Ground truth (``/_sim/ground-truth``, :meth:`Simulator.ground_truth`) follows the
  configured clock unless ``clock=`` says otherwise.
- **Late visibility.** With ``visible_only_when_processed`` (default) an event is served only once wall-clock
  time passes its ``processedAt`` plus ``visibility_delay_seconds`` (an indexing lag, default 0). Processing
  lag is uniform in ``0..processing_lag_max_seconds``, except a long tail: ``late_fraction`` of the events
  (default 0) get a lag drawn from ``late_lag_seconds`` (e.g. 1% processed hours after they happened). Under
  the ``time`` clock such an event belongs to its old window but appears there only later; under ``processed``
  it belongs to the window of its processing time.
- **Product.** ``product`` matches when a container or context object has ``attributes.product`` equal to it
  (case-insensitive), or when the actor is that product's app (actor id ``jira``, ``confluence``...).
- **Arrays.** ``actor``/``ip``/``product`` accept repeated keys and comma-separated values.
- **Errors** without a documented code: 401 uses ``ADMIN-401-1``, any 5xx uses ``ADMIN-500-1``, a bad
  ``limit`` or ``sortOrder`` gives 400 ``ADMIN-400-4``.
- **Rate limits** apply to the two list endpoints only (by-id and event-actions are unlimited), counted per
  endpoint in a sliding 60 s window; rejected requests do not count.
- Successful responses of a rate-limited endpoint carry ``X-RateLimit-Limit/Remaining/Reset``; a natural
  429 carries those plus ``Retry-After`` and ``X-Retry-After`` (whole seconds). Forced 429s (``Faults``) send
  ``retry_after_seconds`` as given, so fractions such as ``0.2`` keep fault tests fast.
- Faults and limits are checked after auth and routing: a bad key is 401 even during a forced 429 burst.
- ``/events`` and ``/events/{id}`` bodies have no ``processedAt``; stream bodies always do.
- Event-level links (``links.self`` of an event, actor and container links) always point at
  ``api.atlassian.com``/``admin.atlassian.com``, as real data does, so served events equal
  :func:`generate_events` output; page ``links.self``/``links.next`` use ``base_url_for_links`` or the server.
- ``location`` sits at ``attributes.location`` (the API schema), not inside the actor.

Admin endpoints (no auth, no faults, not logged): ``GET /_sim/ground-truth?from=MS&to=MS`` (``to``
exclusive), ``GET|POST /_sim/faults``, ``GET /_sim/stats``, ``POST /_sim/reset``, ``GET /_sim/health``.
"""

from __future__ import annotations

from sandbox.atlassian_sim.builder import ACTIONS, HOSTILE_STRINGS, PRODUCTS
from sandbox.atlassian_sim.config import FILTER_CLOCKS, RATE_LIMIT_HEADER_MODES, Faults, SimulatorConfig
from sandbox.atlassian_sim.generator import EventStore, generate_events
from sandbox.atlassian_sim.server import RequestRecord, Simulator, run_in_thread

__all__ = [
    "ACTIONS",
    "FILTER_CLOCKS",
    "HOSTILE_STRINGS",
    "PRODUCTS",
    "RATE_LIMIT_HEADER_MODES",
    "EventStore",
    "Faults",
    "RequestRecord",
    "Simulator",
    "SimulatorConfig",
    "generate_events",
    "run_in_thread",
]
