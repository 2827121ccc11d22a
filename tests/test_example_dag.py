"""``python -m airflow_provider_atlassian_qradar.example_dag``: the DAG file a wheel user gets, parsed by Airflow."""

from __future__ import annotations

import subprocess
import sys

from airflow_provider_atlassian_qradar import example_dag


def test_prints_the_dag_file(capsys):
    assert example_dag.main([]) == 0
    out = capsys.readouterr().out
    assert out == example_dag.DAG_FILE
    assert 'build_audit_dag("atlassian_audit_to_qradar")' in out
    code_lines = [line for line in out.splitlines() if line.strip()]
    assert len(code_lines) == 3  # docstring, import, the DAG


def test_written_file_is_a_dag_airflow_loads(tmp_path):
    """Written into an empty DAGs folder, Airflow's DagBag loads exactly the one DAG without import errors."""
    dags = tmp_path / "dags"
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_atlassian_qradar.example_dag", "--write", str(dags) + "/"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [p.name for p in dags.iterdir()] == ["atlassian_audit_to_qradar.py"]  # a new folder, named by the "/"
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags))  # examples are off: tests/conftest.py sets LOAD_EXAMPLES=False
    assert bag.import_errors == {}
    assert list(bag.dag_ids) == ["atlassian_audit_to_qradar"]
    dag = bag.dags["atlassian_audit_to_qradar"]  # as parsed (get_dag would read the metadata database)
    assert [task.task_id for task in dag.tasks] == ["deliver_audit_events"]


def test_write_refuses_to_overwrite_other_content(tmp_path, capsys):
    target = tmp_path / "mine.py"
    target.write_text("# my own DAG\n")
    assert example_dag.main(["--write", str(target)]) == 1
    assert target.read_text() == "# my own DAG\n"
    assert "--force" in capsys.readouterr().err
    assert example_dag.main(["--write", str(target), "--force"]) == 0
    assert target.read_text() == example_dag.DAG_FILE
    assert example_dag.main(["--write", str(target)]) == 0  # same content: nothing to refuse
