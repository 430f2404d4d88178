"""Which bridge a token travels by: a rule on its token contract's account (README "Token flows
and bridges").

The rule is a list of ``SUFFIX=BRIDGE`` entries (setting ``bridges``), tried in order: a token
contract equal to SUFFIX or ending with ``.SUFFIX`` belongs to BRIDGE; any other to ``unknown``.
The rollups keep the token contract, and the rule is applied when they are read, so changing it
re-labels all history without a rebuild.
"""

from __future__ import annotations

UNKNOWN = "unknown"
DEFAULT_RULES: tuple[str, ...] = ("omft.near=omft", "hot.tg=hot", "bridge.near=rainbow")


def parse(rules: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """``["omft.near=omft", ...]`` -> ``[("omft.near", "omft"), ...]``; raises ValueError on a bad entry."""
    out = []
    for rule in rules:
        suffix, sep, name = rule.strip().partition("=")
        suffix, name = suffix.strip().lower().lstrip("*").lstrip("."), name.strip()
        if not sep or not suffix or not name or "'" in suffix + name or "\\" in suffix + name:
            raise ValueError(f"bridge rule {rule!r}: expected SUFFIX=NAME, e.g. omft.near=omft")
        out.append((suffix, name))
    return out


def bridge_of(rules: list[tuple[str, str]], token_contract: str) -> str:
    for suffix, name in rules:
        if token_contract == suffix or token_contract.endswith("." + suffix):
            return name
    return UNKNOWN


def bridge_sql(rules: list[tuple[str, str]], column: str) -> str:
    """The same rule as a ClickHouse expression over ``column`` (entries are checked by ``parse``)."""
    if not rules:
        return f"'{UNKNOWN}'"
    cases = ", ".join(f"{column} = '{s}' OR endsWith({column}, '.{s}'), '{n}'" for s, n in rules)
    return f"multiIf({cases}, '{UNKNOWN}')"
