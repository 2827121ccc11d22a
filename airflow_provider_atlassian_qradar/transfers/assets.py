"""The Asset that stands for one organization's audit log, and its state store (Airflow 3.3+)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset


def audit_log_asset(atlassian_conn_id: str) -> Asset:
    """Return the Asset that stands for one organization's audit log in QRadar (one connection = one org)."""
    return Asset(name=f"atlassian_audit_log__{atlassian_conn_id}", uri=f"atlassian-audit://{atlassian_conn_id}")


def asset_state(context: Any, atlassian_conn_id: str) -> Any:
    """The organization's asset state store (get/set/delete), or None on an Airflow without one (before 3.3)."""
    stores = context.get("asset_state_store")
    if stores is None:
        return None
    asset = audit_log_asset(atlassian_conn_id)
    try:
        return stores[asset]
    except (KeyError, TypeError):  # the user replaced the outlets: address the asset by name
        from airflow.sdk.execution_time.context import AssetStateStoreAccessor

        return AssetStateStoreAccessor(name=asset.name)
