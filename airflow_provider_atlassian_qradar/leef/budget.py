"""The frame budget: trim the least important custom values until the line fits ``max_bytes``."""

from __future__ import annotations

from airflow_provider_atlassian_qradar.leef.escaping import utf8_len
from airflow_provider_atlassian_qradar.leef.schema import MIN_MAX_BYTES

# The truncated= list names keys up to this many bytes, then counts the rest as "+N".
TRUNCATED_LIST_MAX_BYTES = 200

# Trim order under the frame budget: lower rank is trimmed first; core keys are never trimmed.
_TRIM_RANK: dict[str, int] = {
    "extra": 0,
    "appAttributes": 1,
    "msg": 2,
    "actorPicture": 3,
    "eventLink": 4,
    "actorLinkSelf": 4,
    "actorLinkAlt": 4,
    "country": 5,
    "region": 5,
    "city": 5,
    "geo": 5,
    "msgFormat": 5,
    "onBehalfOfName": 6,
    "tokenLabel": 6,
    "appType": 6,
    "actionGroup": 6,
    "eventTimeRaw": 7,
    "processedAtRaw": 7,
    "actionRaw": 7,
    "eventIdRaw": 7,
    "actorIdRaw": 7,
    "usrNameRaw": 7,
    "accountNameRaw": 7,
    "srcRaw": 7,
    "eventType": 8,
    "processedAt": 8,
    "eventTime": 8,
    "authType": 9,
    "tokenId": 9,
    "onBehalfOfId": 9,
    "onBehalfOfEmail": 9,
    "appId": 9,
    "orgId": 9,
}
_ATOMIC_KEYS = frozenset(
    ("eventTime", "processedAt", "eventType", "authType", "tokenId", "orgId", "appId", "eventIdRaw", "actorIdRaw")
)
_OBJECT_TRIM_RANK: dict[str, int] = {
    "Attributes": 1,
    "LinkSelf": 4,
    "LinkAlt": 4,
    "Name": 6,
    "Type": 9,
    "Id": 9,
}

# --- Action table -----------------------------------------------------------------------------------------


def check_max_bytes(max_bytes: int) -> None:
    """Raise ValueError if ``max_bytes`` is too small for the header and core keys."""
    if max_bytes < MIN_MAX_BYTES:
        raise ValueError(
            f"max_bytes={max_bytes} is below {MIN_MAX_BYTES}: the LEEF header and core keys alone need "
            "~300-600 bytes; raise the frame limit (RFC 5424 receivers should accept 2048)"
        )


def _trim_rank(key: str) -> int:
    rank = _TRIM_RANK.get(key)
    if rank is not None:
        return rank
    for suffix, object_rank in _OBJECT_TRIM_RANK.items():
        if key.endswith(suffix):
            return object_rank
    return 9


def _is_atomic(key: str) -> bool:
    # A shortened id, type or timestamp would look valid and mislead; such values are dropped whole.
    return key in _ATOMIC_KEYS or key.endswith(("Id", "Type"))


def cut_escaped(value: str, max_value_bytes: int) -> str:
    """Cut an escaped value to at most ``max_value_bytes`` UTF-8 bytes, never inside a char or an escape."""
    head = value.encode("utf-8")[:max_value_bytes].decode("utf-8", "ignore")
    tail_start = max(len(head) - 6, 0)
    last_backslash = head.rfind("\\", tail_start)
    if last_backslash >= 0:
        run_start = last_backslash
        while run_start > 0 and head[run_start - 1] == "\\":
            run_start -= 1
        if (last_backslash - run_start) % 2 == 0:  # an odd run: the last backslash opens an escape
            opener = head[last_backslash + 1 : last_backslash + 2]
            needed = {"x": 4, "u": 6}.get(opener, 2)
            if last_backslash + needed > len(head):
                head = head[:last_backslash]
    return head


class _TruncatedList:
    """The truncated= value: key names up to TRUNCATED_LIST_MAX_BYTES, then a "+N" count of the rest."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.names_bytes = 0
        self.overflow = 0

    def pair_bytes(self) -> int:
        if not self.names and not self.overflow:
            return 0
        size = len("\ttruncated=") + self.names_bytes
        if self.overflow:
            size += len(f",+{self.overflow}") if self.names else len(f"+{self.overflow}")
        return size

    def add(self, key: str) -> None:
        addition = len(key) + (1 if self.names else 0)
        if not self.overflow and self.names_bytes + addition <= TRUNCATED_LIST_MAX_BYTES:
            self.names.append(key)
            self.names_bytes += addition
        else:
            self.overflow += 1

    def render(self) -> str:
        parts = list(self.names)
        if self.overflow:
            parts.append(f"+{self.overflow}")
        return "truncated=" + ",".join(parts)


def fit(header: str, out: list[str], core_length: int, max_bytes: int) -> tuple[str, bool]:
    """
    Trim custom values (least important first) until the line fits; see docs/leef-mapping.md.

    :param header: the header up to and including the delimiter field's closing ``|``.
    :param out: alternating ``"\\tkey="`` (no TAB on the first) and escaped value, as the encoder built them.
    :param core_length: how many items of ``out`` are core pairs (never trimmed).
    :param max_bytes: the budget for the whole line in UTF-8 bytes.
    :return: the line and whether anything was trimmed (then it ends with a ``truncated=`` pair).
    """
    core = [out[index].lstrip("\t") + out[index + 1] for index in range(0, core_length, 2)]
    custom = [out[index][1:] + out[index + 1] for index in range(core_length, len(out), 2)]
    keys = [pair[: pair.index("=")] for pair in custom]
    sizes = [utf8_len(pair) for pair in custom]
    # Bytes of header + kept pairs + TABs, without the truncated= pair.
    line_bytes = utf8_len(header) + sum(map(utf8_len, core)) + sum(sizes) + len(core) + len(custom) - 1
    order = sorted(range(len(custom)), key=lambda index: (_trim_rank(keys[index]), -index))
    kept: list[str | None] = list(custom)
    truncated = _TruncatedList()
    for index in order:
        if line_bytes + truncated.pair_bytes() <= max_bytes:
            break
        key = keys[index]
        truncated.add(key)
        need = line_bytes + truncated.pair_bytes() - max_bytes
        value_bytes = sizes[index] - len(key) - 1
        if value_bytes > need and not _is_atomic(key):
            value = cut_escaped(custom[index][len(key) + 1 :], value_bytes - need)
            if value:
                kept[index] = key + "=" + value
                line_bytes -= value_bytes - utf8_len(value)
                break
        # Nothing useful left of the value (or a cut id would mislead): drop the pair and its TAB.
        kept[index] = None
        line_bytes -= sizes[index] + 1
    final = core + [pair for pair in kept if pair is not None]
    trimmed = bool(truncated.names or truncated.overflow)
    if trimmed:
        final.append(truncated.render())
    return header + "\t".join(final), trimmed
