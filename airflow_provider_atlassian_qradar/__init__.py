"""Apache Airflow provider that ships the Atlassian Cloud organization audit log to IBM QRadar as LEEF 2.0."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("airflow-provider-atlassian-qradar")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
