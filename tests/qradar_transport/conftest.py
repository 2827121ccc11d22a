"""Fixtures shared by the sender tests: certificates, 100k LEEF records, the syslog-ng binary."""

from __future__ import annotations

import pytest

from sandbox.leef_samples import make_leef_records
from sandbox.receivers import CertBundle, generate_certs, require_syslog_ng


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertBundle:
    return generate_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def records_100k() -> list[tuple[str, int]]:
    return make_leef_records(100_000, size=400)


@pytest.fixture
def syslog_ng_binary() -> str:
    return require_syslog_ng()
