"""The silent-source alarm in a task: keep the organization's delivery record and say what to check when silent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_atlassian_qradar.silence import STATE_KEY, DeliveryRecord, Verdict, assess
from airflow_provider_atlassian_qradar.transfers.assets import asset_state
from airflow_provider_atlassian_qradar.windows import Window


def judge_silence(
    context: Any,
    atlassian_conn_id: str,
    window: Window,
    summary: dict[str, Any],
    newest_ms: int | None,
    span: timedelta,
    log: Any,
) -> Verdict | None:
    """Update the organization's delivery record and judge the alarm for this window (adds ``summary["silence"]``).

    :param span: the alarm span, in whole windows.
    :return: the verdict, or None when the alarm cannot judge (no asset state store, or its state failed).
    """
    accessor = asset_state(context, atlassian_conn_id)
    if accessor is None:
        log.warning(
            "this Airflow has no asset state store (needs 3.3+): the silent-source alarm is off; "
            "pass silence_after=None to silence this"
        )
        return None
    delivered = int(summary.get("sent", 0)) + int((summary.get("reconcile") or {}).get("late_delivered", 0))
    try:
        previous = DeliveryRecord.from_json(accessor.get(STATE_KEY))
    except Exception as err:  # the alarm is an aid: its state must never fail a delivered window
        log.warning("could not read the silent-source alarm's record (%s); the alarm skips this window", err)
        return None
    verdict = assess(
        previous,
        window,
        delivered=delivered,
        newest_processed_ms=newest_ms,
        now=datetime.now(timezone.utc),
        silence_after=span,
    )
    try:
        accessor.set(STATE_KEY, verdict.record.to_json())
    except Exception as err:
        log.warning("could not store the silent-source alarm's record (%s); the alarm skips this window", err)
        return None
    summary["silence"] = {
        "judged": verdict.judged,
        "silent": verdict.silent,
        "silence_hours": round(verdict.silence.total_seconds() / 3600, 2) if verdict.silence is not None else None,
        "since": verdict.since.isoformat() if verdict.since else None,
    }
    return verdict


def silence_message(
    org_id: str, atlassian_conn_id: str, window: Window, verdict: Verdict, filters: dict[str, Any]
) -> str:
    """The silent-source warning: how long nothing was delivered, and what to check.

    :param filters: the task's event filters that are set (name -> value).
    """
    hours = (verdict.silence or timedelta(0)).total_seconds() / 3600
    since = verdict.since.isoformat() if verdict.since else "?"
    return (
        f"silent source: no audit event of organization {org_id} ({atlassian_conn_id!r}) has been "
        f"delivered for {hours:g} h of windows (since {since}, up to the end of window {window}). Check: "
        "the API key has not expired or been revoked and still has scope read:events:admin (Atlassian "
        "Administration > Settings > API keys); the organization still has an Atlassian Guard subscription "
        "(the audit log API needs it); "
        + (
            f"the filter {filters} is not narrower than intended; "
            if filters
            else "no filter is set (the whole audit log is read); "
        )
        + "and whether the organization really had no admin activity"
    )
