"""syslog-ng for tests: the runner lives in sandbox/ (the demo uses it too); here, the skip-or-fail rule."""

from __future__ import annotations

import os
import shutil

from sandbox.syslog_ng import SyslogNg, SyslogNgMissing, free_port

__all__ = ["SyslogNg", "SyslogNgMissing", "free_port", "require_syslog_ng"]


def require_syslog_ng() -> str:
    """
    Return the syslog-ng path, or skip the calling test (fail it when ``REQUIRE_SYSLOG_NG=1``, as in CI).

    Must be called from inside a test or fixture.
    """
    import pytest

    binary = shutil.which("syslog-ng") or ("/usr/sbin/syslog-ng" if os.path.exists("/usr/sbin/syslog-ng") else None)
    if binary:
        return binary
    message = "syslog-ng is not installed (Debian package syslog-ng-core)"
    if os.environ.get("REQUIRE_SYSLOG_NG") == "1":
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError("unreachable")  # pragma: no cover
