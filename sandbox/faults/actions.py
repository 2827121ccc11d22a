"""What scenarios do to the simulator, the receiver and the connections (before, mid-window, between tries, fix)."""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from sandbox.faults.environment import PAGE_SIZE, Env, Hook
from sandbox.faults.hostile_servers import Behaviour


def set_faults(**switches: Any) -> Hook:
    def apply(env: Env) -> None:
        env.sim.faults.update(**switches)

    return apply


def clear_faults(env: Env) -> None:
    env.sim.faults.clear()


def slow_api_for_a_while(env: Env) -> None:
    # Longer than the hook's 1.5 s read timeout, for about 5 s: a few requests time out, then answers come.
    env.sim.faults.update(slow_seconds=4)
    env.later(5, lambda: env.sim.faults.update(slow_seconds=0))


def read_so_far(env: Env) -> None:
    # Let syslog-ng read the two pages already sent, so the duplicates depend on the sender, not on timing.
    env.receiver.syslog.wait_for_lines(2 * PAGE_SIZE, timeout=60)


def stop_receiver(env: Env) -> None:
    if env.receiver.transport in ("tcp", "tls") and env.receiver.syslog.running:
        read_so_far(env)
    env.receiver.stop()


def resume_receiver(env: Env) -> None:
    env.receiver.resume()


def drop_receiver_briefly(env: Env) -> None:
    stop_receiver(env)
    env.receiver.resume_after(3)


def restart_receiver(env: Env) -> None:
    read_so_far(env)
    env.receiver.syslog.restart()


def good_server_cert(env: Env) -> None:
    env.receiver.replace("server")
    env.publish_connections()


def trust_the_right_ca(env: Env) -> None:
    env.qradar_extra["ca_cert"] = str(env.certs.ca_cert)
    env.publish_connections()


def http_503_storm(env: Env) -> None:
    env.receiver.http.responses.extend([503] * 5)


def combined_api_storm(env: Env) -> None:
    env.sim.faults.update(rate_limit_burst=2, retry_after_seconds=0.3, server_error_burst=2, reset_mid_body=1)


def api_503_and_receiver_restart(env: Env) -> None:
    env.sim.faults.update(server_error_burst=2, server_error_status=503)
    restart_receiver(env)


def malformed_then_odd_pages(env: Env) -> None:
    env.sim.faults.update(malformed_json=1, repeat_previous_page=1, empty_page_with_cursor=1, reject_cursor=1)


def working_connection(env: Env) -> None:
    """The fix of a hostile-endpoint row: point the connection at the real API again, with the right fields."""
    env.front_enabled = False
    env.atlassian_fields.clear()
    env.publish_connections()


def heal_receiver(env: Env) -> None:
    assert env.receiver.stalling is not None
    env.receiver.stalling.heal()


def raise_body_limit(env: Env) -> None:
    env.receiver.stop()
    env.receiver.max_body_bytes = None
    env.receiver.start()
    env.publish_connections()


#: The hostile front's request numbers: 1 is /event-actions, 2 the first page, 3 the second page.
SECOND_PAGE = 3


def front(behaviour: Callable[[], Behaviour], *, times: int = 1) -> Callable[[], dict[int, Behaviour]]:
    """A front script that answers the second page's request (and the next ``times - 1``) with ``behaviour``."""
    return lambda: {SECOND_PAGE + index: behaviour() for index in range(times)}


PERSISTENT = 10**6


def http_date_in(seconds: float) -> str:
    """An HTTP date ``seconds`` from now, written from a naive datetime (so it ends ``-0000``)."""
    return email.utils.format_datetime(datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=seconds))
