"""Privacy rules: conditions, first match, each action, where it acts, and config errors that name
the rule and key; the retention helpers; the dead-letter TTL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cti_journal.cli.main import main as cli_main
from cti_journal.gateway.lines import Line
from cti_journal.gateway.prepare import SKIP, Preparer
from cti_journal.shared.columns import ColumnType
from cti_journal.shared.config import GatewaySettings, Settings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.message import JournalEntry, Lookup
from cti_journal.shared.metrics import make_metrics
from cti_journal.shared.privacy import PrivacyRules, shorten
from cti_journal.shared.topology import DEAD, LOOKUP, WRITE, Topology
from cti_journal.writer.mapping import MappedColumn
from cti_journal.writer.retention import cutoff_value, parse_age
from tests.support.harness import to_toml

KEY = "unit-test-pseudonym-key-0123456789"


def entry(**changes: Any) -> JournalEntry:
    values: dict[str, Any] = {
        "event_id": "e" * 32,
        "source": "cti",
        "received_at": 0.0,
        "in_out": "o",
        "zeitpunkt": "2026-11-25 10:00:00",
        "utc": "2026-11-25T09:00:00Z",
        "verb_zustand": "CONN",
        "rufnummer": "0891234567",
        "lokale_rufnummer": "4711",
    }
    values.update(changes)
    return JournalEntry(**values)


def rules(*tables: dict[str, Any], **privacy: Any) -> PrivacyRules:
    data = {"lookup": {"area_code": "89"}, "privacy": {"rules": list(tables), **privacy}}
    registry = CollectorRegistry()
    return PrivacyRules.from_settings(_settings(data), registry)


def _settings(data: dict[str, Any]) -> Settings:
    from cti_journal.shared.loader import build, validate

    settings = build(Settings, data, "")
    validate(settings)
    return settings


def applied(r: PrivacyRules, rule: str, action: str) -> float:
    return r.applied.labels(rule, action)._value.get()  # type: ignore[no-any-return]


# -- actions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "digits", "expected"),
    [
        ("0891234567", 3, "0891234xxx"),
        ("089 123-4567", 3, "089 123-4xxx"),
        ("+49 89 1234567", 5, "+49 89 12xxxxx"),
        ("12", 3, "xx"),
        ("", 3, ""),
        ("anonym", 3, "anonym"),
    ],
)
def test_shorten_replaces_the_last_digits(number: str, digits: int, expected: str) -> None:
    assert shorten(number, digits) == expected


def test_each_action() -> None:
    e = entry(
        weitergeleitet="0897654321",
        name="Anna",
        firma="X",
        datensatz_id="7",
        datensatz_tabelle="crm",
    )
    for action, check in {
        "keep": lambda out: out == e,
        "shorten": lambda out: (
            (out.rufnummer, out.weitergeleitet, out.name) == ("0891234xxx", "0897654xxx", "Anna")
        ),
        "anonymise": lambda out: (
            (out.rufnummer, out.weitergeleitet, out.name, out.firma) == ("", "", "", "")
            and out.lokale_rufnummer == "4711"
        ),
        "pseudonymise": lambda out: (
            out.rufnummer.startswith("P:")
            and len(out.rufnummer) == 18
            and out.weitergeleitet.startswith("P:")
            and out.name == out.datensatz_id == ""
        ),
        "drop": lambda out: out is None,
    }.items():
        r = rules({"action": action}, pseudonym_key=KEY)
        out = r.after_lookup(e)
        assert check(out), (action, out)
        assert applied(r, "rules[0]", action) == 1


def test_pseudonyms_are_stable_across_notations_and_processes_and_depend_on_the_key() -> None:
    first = rules({"action": "pseudonymise"}, pseudonym_key=KEY)
    second = rules({"action": "pseudonymise"}, pseudonym_key=KEY)
    other_key = rules({"action": "pseudonymise"}, pseudonym_key="another-unit-test-key-9876543210")
    # (with the outside prefix 0, "0049…" reads first as 0 + "049…", as in the look-up: the
    # international form then comes as "00049…")
    forms = ["0891234567", "089 1234567", "+49 89 1234567", "00049891234567", "00891234567"]
    made = {first.pseudonym(n) for n in forms} | {second.pseudonym(n) for n in forms}
    assert len(made) == 1
    assert first.pseudonym("0049891234567", amtsholung="9") in made  # another outside prefix
    assert other_key.pseudonym("0891234567") not in made
    assert first.pseudonym("0891234568") not in made


# -- conditions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "matching", "other"),
    [
        ({"direction": "in"}, {"in_out": "i"}, {"in_out": "o"}),
        ({"states": ["RING", "BUSY"]}, {"verb_zustand": "BUSY"}, {"verb_zustand": "CONN"}),
        ({"local": ["4790-4799"]}, {"lokale_rufnummer": "4795"}, {"lokale_rufnummer": "4800"}),
        ({"local": ["4790-4799"]}, {"lokale_rufnummer": "4795"}, {"lokale_rufnummer": "04795"}),
        ({"local": ["089 1234*"]}, {"lokale_rufnummer": "0891234200"}, {"lokale_rufnummer": "200"}),
        ({"local": ["4711"]}, {"lokale_rufnummer": "4711"}, {"lokale_rufnummer": "47110"}),
        ({"number": ["+49 89 1234567"]}, {"rufnummer": "00891234567"}, {"rufnummer": "0891234568"}),
        ({"number": ["089 1234567"]}, {"rufnummer": "0049891234567"}, {"rufnummer": "0301234567"}),
        ({"number": ["089 1234567"]}, {"rufnummer": "1234567"}, {"rufnummer": "anonym"}),
        ({"number": ["0800*"]}, {"rufnummer": "00800123456"}, {"rufnummer": "0891234567"}),
        ({"number": ["+43*"]}, {"rufnummer": "0043123456789"}, {"rufnummer": "0049891234567"}),
        ({"number": ["123"]}, {"rufnummer": "123"}, {"rufnummer": "124"}),
        (
            {"contact_source": ["Privat"]},
            {"datensatz_tabelle": "Privat"},
            {"datensatz_tabelle": "crm"},
        ),
        ({"lcr": ["010"]}, {"lcr": "010"}, {"lcr": ""}),
        ({"amtsholung": ["9"]}, {"amtsholung": "9"}, {"amtsholung": "0"}),
    ],
)
def test_each_condition(
    condition: dict[str, Any], matching: dict[str, Any], other: dict[str, Any]
) -> None:
    r = rules({**condition, "action": "drop"})
    assert r.after_lookup(entry(**matching)) is None
    assert r.after_lookup(entry(**other)) is not None


def test_first_match_wins_and_keep_exempts() -> None:
    r = rules(
        {"name": "council", "local": ["4711"], "action": "keep"},
        {"name": "out", "direction": "out", "action": "shorten"},
    )
    assert r.after_lookup(entry(lokale_rufnummer="4711")).rufnummer == "0891234567"  # type: ignore[union-attr]
    assert r.after_lookup(entry(lokale_rufnummer="200")).rufnummer == "0891234xxx"  # type: ignore[union-attr]
    assert applied(r, "council", "keep") == 1
    assert applied(r, "out", "shorten") == 1


# -- where a rule acts --------------------------------------------------------------------------


def test_a_before_rule_acts_in_the_gateway_and_the_entry_skips_the_lookup() -> None:
    r = rules({"stage": "before", "direction": "out", "action": "shorten"})
    out, to_lookup = r.at_gateway(entry(), True)
    assert out is not None and out.rufnummer == "0891234xxx"
    assert not to_lookup and out.lookup == Lookup.SKIPPED


def test_a_before_keep_is_counted_once_and_not_taken_for_a_misconfigured_gateway(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A `keep` at stage before lets the entry on to the look-up unchanged; the look-up meets
    the same rule again and must neither count it a second time nor warn."""
    r = rules({"name": "council", "stage": "before", "local": ["4711"], "action": "keep"})
    kept, to_lookup = r.at_gateway(entry(lokale_rufnummer="4711"), True)
    assert kept is not None and to_lookup
    assert r.after_lookup(kept) == kept
    assert applied(r, "council", "keep") == 1
    assert "applied after the look-up" not in caplog.text


def test_an_after_rule_leaves_the_gateway_alone() -> None:
    r = rules({"direction": "out", "action": "shorten"})
    assert r.at_gateway(entry(), True) == (entry(), True)


def test_a_contact_rule_first_defers_every_later_rule_to_the_lookup() -> None:
    r = rules(
        {"contact_source": ["Privat"], "action": "drop"},
        {"stage": "before", "direction": "out", "action": "anonymise"},
    )
    assert r.at_gateway(entry(), True) == (entry(), True)  # not decided yet
    assert r.after_lookup(entry(datensatz_tabelle="Privat")) is None
    # no private contact: the before rule applies late, in the look-up, rather than never
    assert r.after_lookup(entry(datensatz_tabelle="crm")).rufnummer == ""  # type: ignore[union-attr]


def test_an_entry_that_skips_the_lookup_gets_every_rule_in_the_gateway() -> None:
    r = rules({"contact_source": ["Privat"], "action": "drop"})
    assert r.at_gateway(entry(name="A", datensatz_tabelle="Privat"), False) == (None, False)


def test_the_gateway_drops_without_publishing_and_still_counts_the_identity() -> None:
    settings = GatewaySettings(source_id="cti")
    preparer = Preparer(settings, make_metrics(), rules({"stage": "before", "action": "drop"}))
    raw = b"o;2026-11-25 10:00:00;CONN;0891234567;;;4711;;;;0;0;;0;0\n"
    out = preparer.prepare(Line(raw), "x", 1.0)
    assert out.routing_key == SKIP and out.body == b"" and out.identity
    kept = Preparer(
        settings, make_metrics(), rules({"stage": "before", "direction": "in", "action": "drop"})
    )
    assert kept.prepare(Line(raw), "x", 1.0).routing_key == LOOKUP


def test_a_before_rule_sends_the_changed_entry_straight_to_the_writer() -> None:
    preparer = Preparer(
        GatewaySettings(), make_metrics(), rules({"stage": "before", "action": "anonymise"})
    )
    raw = b"o;2026-11-25 10:00:00;CONN;0891234567;;;4711;;;;0;0;;0;0\n"
    out = preparer.prepare(Line(raw), "x", 1.0)
    assert out.routing_key == WRITE
    assert b"0891234567" not in out.body


@pytest.mark.parametrize("action", ["drop", "anonymise", "shorten", "pseudonymise"])
def test_a_line_that_does_not_parse_is_dead_lettered_as_the_strictest_before_rule_says(
    action: str,
) -> None:
    """Issue 20, finding 11: before, the line was kept whole in <prefix>.dead for 30 days."""
    preparer = Preparer(
        GatewaySettings(),
        make_metrics(),
        rules(
            {"stage": "before", "direction": "in", "action": action, "name": "private"},
            {"stage": "before", "direction": "out", "action": "keep"},
            pseudonym_key=KEY,
        ),
    )
    raw = b"i;2026-11-25 10:00:00;CONN;089 1234567;Maria Meier;broken\n"
    out = preparer.prepare(Line(raw), "x", 1.0)
    assert out.routing_key == DEAD
    assert b"1234567" not in out.body and b"Maria" not in out.body and b"Meier" not in out.body
    assert "private" in (out.headers or {})["x-cti-redacted"]
    if action == "drop":
        assert out.body == b""
    else:
        assert out.body.count(b";") == raw.count(b";")  # the shape stays, to see why it failed


def test_without_a_before_rule_the_bad_line_is_kept_for_replay() -> None:
    preparer = Preparer(GatewaySettings(), make_metrics(), rules({"action": "drop"}))
    raw = b"i;2026-11-25 10:00:00;CONN;089 1234567;broken\n"
    out = preparer.prepare(Line(raw), "x", 1.0)
    assert out.routing_key == DEAD and out.body == raw
    assert "x-cti-redacted" not in (out.headers or {})


# -- configuration errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "setting"),
    [
        ({"action": "erase"}, "privacy.rules[1].action"),
        ({"states": ["TALK"]}, "privacy.rules[1].states[0]"),
        ({"local": ["47xx"]}, "privacy.rules[1].local[0]"),
        ({"local": ["4799-4790"]}, "privacy.rules[1].local[0]"),
        ({"number": ["0891234567", "call me"]}, "privacy.rules[1].number[1]"),
        ({"contact_source": ["Privat"], "stage": "before"}, "privacy.rules[1].contact_source"),
        ({"action": "shorten", "digits": 0}, "privacy.rules[1].digits"),
        ({"action": "pseudonymise"}, "privacy.pseudonym_key_file"),
        ({"colour": "red"}, "privacy.rules[1].colour"),
    ],
)
def test_config_errors_name_the_rule_and_key(rule: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as err:
        _settings({"privacy": {"rules": [{"action": "keep"}, rule]}})
    assert err.value.setting == setting
    if setting.endswith("pseudonym_key_file"):
        assert "privacy.rules[1]" in err.value.problem


def test_dead_letters_must_not_outlive_the_journal() -> None:
    with pytest.raises(ConfigError) as err:
        _settings({"writer": {"retention_days": 14}})
    assert err.value.setting == "broker.dead_letter_days"
    _settings({"writer": {"retention_days": 14}, "broker": {"dead_letter_days": 14}})


def test_a_bad_rule_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(to_toml({"privacy": {"rules": [{"action": "shorten", "digits": 99}]}}))
    assert cli_main(["writer", "-c", str(config)]) == 2
    assert "privacy.rules[0].digits" in capsys.readouterr().err


# -- retention helpers and the dead-letter TTL ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "days"), [("90d", 90), ("2w", 14), ("36h", 1.5), ("1w 2d", 9), (" 7D ", 7)]
)
def test_parse_age(text: str, days: float) -> None:
    assert parse_age(text) == timedelta(days=days)


@pytest.mark.parametrize("text", ["90", "d", "0d", "90 days", "-1d", "1y"])
def test_parse_age_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_age(text)


def test_cutoff_in_each_kind_of_time_column() -> None:
    cutoff = datetime(2026, 1, 15, 11, 0, 0, tzinfo=UTC)

    def column(kind: str, utc: bool = False) -> MappedColumn:
        return MappedColumn("t", ColumnType.ZEITPUNKT_NUMERISCH, kind, None, True, utc=utc)  # type: ignore[arg-type]

    berlin = "Europe/Berlin"
    assert cutoff_value(column("datetime"), cutoff, berlin) == datetime(2026, 1, 15, 12, 0)
    assert cutoff_value(column("datetime", utc=True), cutoff, berlin) == "2026-01-15T11:00:00Z"
    assert cutoff_value(column("text"), cutoff, berlin) == "2026-01-15 12:00:00"
    assert cutoff_value(column("float"), cutoff, berlin) == pytest.approx(46037.5)


def test_dead_letters_get_a_per_message_ttl_and_nothing_else_does() -> None:
    topology = Topology("p", (1000,), 20, 30 * 86_400_000)
    assert topology.expiration(DEAD) == str(30 * 86_400_000)
    assert topology.expiration(WRITE) is None
    assert Topology("p", (1000,), 20).expiration(DEAD) is None
    # the queue itself keeps its arguments: an existing deployment declares it unchanged
    dead = next(q for q in topology.queues() if q.routing_key == DEAD)
    assert dead.arguments == {"x-queue-type": "quorum"}
