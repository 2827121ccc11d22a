"""The fault harness: hostile servers, the scenario table, its runner and table (``make faults``, ``pytest -m faults``).

Import the submodules directly: ``hostile_servers`` stays light for the hook tests, ``runner`` pulls in Airflow.
"""
