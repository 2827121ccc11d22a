"""The task state store's interface (get/set/delete) kept in a dict, for running the operator outside Airflow."""

from __future__ import annotations

import json
from typing import Any


class DictStore:
    """A dict-backed ``context["task_state_store"]`` that round-trips values through JSON and counts writes."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))  # what the real store can hold
        self.writes += 1

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
