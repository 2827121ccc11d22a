"""Real receivers standing in for QRadar: syslog-ng, an HTTP(S) receiver, and throw-away certificates.

The demo's fallback receiver is :mod:`sandbox.receivers.line_receiver` (not re-exported: it runs with ``-m``).
"""

from __future__ import annotations

from sandbox.receivers.certs import CLIENT_KEY_PASSPHRASE, CertBundle, generate_certs
from sandbox.receivers.https_receiver import HttpsReceiver, ReceivedPost
from sandbox.receivers.syslog_ng import SyslogNg, find_syslog_ng, free_port, require_syslog_ng

__all__ = [
    "CLIENT_KEY_PASSPHRASE",
    "CertBundle",
    "HttpsReceiver",
    "ReceivedPost",
    "SyslogNg",
    "find_syslog_ng",
    "free_port",
    "generate_certs",
    "require_syslog_ng",
]
