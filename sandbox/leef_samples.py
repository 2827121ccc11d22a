"""Hand-built LEEF 2.0 lines for sender and receiver tests (independent of the package's encoder)."""

from __future__ import annotations


def make_leef_records(count: int, size: int = 400, prefix: str = "ev") -> list[tuple[str, int]]:
    """
    Realistic single-line LEEF 2.0 events of about ``size`` bytes, each with a unique ``id=`` (``prefix-000042``).

    Built by hand (the tests do not depend on the LEEF encoder). Tabs delimit attributes; one value carries
    non-ASCII text so that byte-exact comparisons cover UTF-8.
    """
    base_ms = 1767268800123
    records = []
    for index in range(count):
        event_ms = base_ms + index
        head = (
            f"LEEF:2.0|Atlassian|Organization Audit Log|1.0|user.login|x09|devTime={event_ms}\tcat=success"
            f"\tsev=3\tid={prefix}-{index:06d}\tusrName=alice.{index % 97}@example.com\tsrc=203.0.113.{index % 250}"
            f"\turl=https://admin.atlassian.com/o/1a2b3c/audit-log?event={index}\tuserAgent=Mozilla/5.0 (X11; Linux)"
            "\tgroupName=Ops\\tAdmins | EU - Zürich\tnote="
        )
        filler = max(0, size - len(head.encode("utf-8")))
        records.append((head + ("abcdefghij" * (filler // 10 + 1))[:filler], event_ms))
    return records
