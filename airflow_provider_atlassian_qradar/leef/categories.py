"""The action table: the category (cat) and default severity (sev) of each built-in Atlassian action."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Category and default severity of common Atlassian organization audit actions (ids from
# GET /admin/v1/orgs/{org}/event-actions). Unknown actions get cat "Other" and sev 5. cat comes only from
# this table, so an action's cat never changes between windows (QRadar's QID map keys on it); deployments may
# override sev (severity_overrides), and the organization's own group names go to actionGroup.
_ACTION_TABLE: dict[str, tuple[str, int]] = {
    # Authentication and sessions
    "user_login": ("Authentication", 3),
    "user_logout": ("Authentication", 2),
    "user_login_failed": ("Authentication", 6),
    "user_password_changed": ("Authentication", 5),
    "user_password_reset": ("Authentication", 5),
    "user_sessions_revoked": ("Authentication", 5),
    "two_step_verification_enabled": ("Authentication", 4),
    "two_step_verification_disabled": ("Authentication", 7),
    # API credentials
    "api_token_created": ("ApiCredentials", 6),
    "api_token_revoked": ("ApiCredentials", 5),
    "api_token_expired": ("ApiCredentials", 3),
    "api_key_created": ("ApiCredentials", 8),
    "api_key_revoked": ("ApiCredentials", 6),
    "api_key_deleted": ("ApiCredentials", 6),
    "scim_api_key_regenerated": ("ApiCredentials", 8),
    # User lifecycle
    "user_created": ("UserManagement", 4),
    "user_invited": ("UserManagement", 4),
    "user_account_claimed": ("UserManagement", 4),
    "user_details_updated": ("UserManagement", 3),
    "user_email_changed": ("UserManagement", 6),
    "user_deactivated": ("UserManagement", 6),
    "user_reactivated": ("UserManagement", 5),
    "user_deleted": ("UserManagement", 7),
    "user_removed_from_org": ("UserManagement", 6),
    # Groups
    "group_created": ("GroupManagement", 4),
    "group_renamed": ("GroupManagement", 4),
    "group_deleted": ("GroupManagement", 6),
    "user_added_to_group": ("GroupManagement", 5),
    "user_removed_from_group": ("GroupManagement", 4),
    # Product access and admin roles
    "product_access_granted": ("ProductAccess", 5),
    "product_access_revoked": ("ProductAccess", 5),
    "product_admin_granted": ("ProductAccess", 7),
    "product_admin_revoked": ("ProductAccess", 6),
    "org_admin_granted": ("ProductAccess", 9),
    "org_admin_revoked": ("ProductAccess", 7),
    "site_admin_granted": ("ProductAccess", 8),
    "site_admin_revoked": ("ProductAccess", 6),
    # Security policies and identity
    "policy_created": ("Policy", 6),
    "policy_updated": ("Policy", 7),
    "policy_deleted": ("Policy", 8),
    "authentication_policy_updated": ("Policy", 7),
    "data_security_policy_created": ("Policy", 6),
    "data_security_policy_updated": ("Policy", 7),
    "data_security_policy_deleted": ("Policy", 8),
    "ip_allowlist_updated": ("Policy", 8),
    "saml_configuration_updated": ("Identity", 8),
    "identity_provider_linked": ("Identity", 8),
    "identity_provider_unlinked": ("Identity", 8),
    "user_provisioning_directory_created": ("Identity", 6),
    "user_provisioning_directory_deleted": ("Identity", 7),
    "domain_verified": ("Identity", 5),
    "domain_removed": ("Identity", 6),
    # Audit log itself
    "audit_log_viewed": ("Audit", 2),
    "audit_log_exported": ("Audit", 6),
    # Organization, sites and apps
    "org_renamed": ("Organization", 4),
    "site_added_to_org": ("Organization", 5),
    "site_removed_from_org": ("Organization", 6),
    "app_installed": ("Apps", 5),
    "app_uninstalled": ("Apps", 4),
    "app_access_granted": ("Apps", 5),
    "app_access_revoked": ("Apps", 4),
}
#: action id -> cat, the only source of cat (unknown actions: :data:`FALLBACK_CATEGORY`).
ACTION_CATEGORIES: Mapping[str, str] = {action: cat for action, (cat, _) in _ACTION_TABLE.items()}
#: action id -> built-in sev 1..10 (used when severity_overrides has no entry for the action).
DEFAULT_SEVERITY: Mapping[str, int] = {action: sev for action, (_, sev) in _ACTION_TABLE.items()}
FALLBACK_CATEGORY = "Other"
FALLBACK_SEVERITY = 5
CATEGORY_BY_ACTION: dict[str, str] = dict(ACTION_CATEGORIES)
SEVERITY_TEXT = tuple(str(severity) for severity in range(11))


def clamp_severity(value: Any, action: str) -> int:
    """Return a severity override as an int clamped to 1..10; ValueError names the action if it is no int."""
    try:
        severity = int(value)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"severity_overrides[{action!r}] is {value!r}: use an integer 1 (lowest) .. 10 (highest)"
        ) from error
    return 1 if severity < 1 else 10 if severity > 10 else severity
