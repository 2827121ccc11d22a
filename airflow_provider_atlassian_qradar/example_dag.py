"""Print or write the provider's DAG file, for installs from a wheel (which has no ``dags/`` folder).

``python -m airflow_provider_atlassian_qradar.example_dag`` prints it;
``python -m airflow_provider_atlassian_qradar.example_dag --write "$AIRFLOW_HOME/dags/atlassian_audit_to_qradar.py"``
writes it (refusing to overwrite a different file unless ``--force``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

DAG_FILE = '''"""Hourly: Atlassian organization audit log -> IBM QRadar (atlassian_admin_default, qradar_default)."""

from airflow_provider_atlassian_qradar.dag_factory import build_audit_dag

dag = build_audit_dag("atlassian_audit_to_qradar")
'''


def main(argv: Sequence[str] | None = None) -> int:
    """Print the DAG file, or write it to ``--write PATH``; return the process exit code.

    :param argv: command-line arguments (default ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_atlassian_qradar.example_dag",
        description="Print the hourly Atlassian audit log -> QRadar DAG file, or write it into your DAGs folder.",
    )
    parser.add_argument(
        "--write",
        metavar="PATH",
        help="write the DAG file here instead of printing it; a folder (or a path ending in /) gets "
        "atlassian_audit_to_qradar.py",
    )
    parser.add_argument("--force", action="store_true", help="overwrite PATH if it exists with other content")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(DAG_FILE)
        return 0
    path = Path(args.write)
    if path.is_dir() or args.write.endswith(("/", "\\")):
        path = path / "atlassian_audit_to_qradar.py"
    if path.exists() and path.read_text(encoding="utf-8") != DAG_FILE and not args.force:
        print(f"{path} exists with other content: pass --force to overwrite it", file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DAG_FILE, encoding="utf-8")
    print(f"wrote {path}: the DAG atlassian_audit_to_qradar (unpause it in the UI)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
