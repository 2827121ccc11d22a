"""The read path imports nothing from Airflow: it runs, and is tested, without it."""

from __future__ import annotations

import subprocess
import sys

IMPORT_ALL = """
import importlib, pkgutil, sys
import airflow_provider_atlassian_qradar.atlassian_api as package
for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
print(sorted(name for name in sys.modules if name == "airflow" or name.startswith("airflow.")))
"""


def test_atlassian_api_imports_no_airflow():
    result = subprocess.run([sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
