"""Privacy rules (`[[privacy.rules]]`): which calls are journalled how.

Rules are evaluated in order and the first rule whose conditions all hold decides; a condition
left empty holds for every call, a list holds when any of its items does. One action per rule:

  keep          the entry as it is (an exemption: later rules do not apply)
  shorten       the last `digits` digits of Rufnummer and Weitergeleitet become `x`
  anonymise     no number, no contact fields (the call itself is journalled)
  pseudonymise  the numbers become a keyed HMAC ("P:" + 16 hex digits): calls of one number
                can be counted without storing it; the contact fields are emptied
  drop          not journalled at all (counted)

Where a rule acts (`stage`): "after" the look-up (default: the contact is found from the full
number, then the number is changed) or "before" it, in the gateway, so that the number never
reaches the broker in full. An entry a "before" rule changed goes straight to the writer (its
number can no longer be looked up); one it drops is never published.

One decision per entry, the first match over the whole list, wherever it is taken: the gateway
walks the rules and stops at the first rule that needs the contact (`contact_source`), which it
cannot know yet; the look-up then walks the same list on the enriched entry. Rules without a
contact condition see only fields the look-up does not change, so both walks agree.

Numbers in rules are read as the look-up reads journal numbers (lookup/normalize.py, found as
the `cti_journal.numbers` plugin so that shared/ never imports a process folder): `089 1234567`,
`+49 89 1234567` and `0049891234567` are one number.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry, Counter

from cti_journal.shared.config import LookupSettings, PrivacyRule, Settings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.masking import mask_numbers_in
from cti_journal.shared.message import JournalEntry, Lookup

log = logging.getLogger(__name__)

STATES: Final = ("CONN", "RING", "BUSY")
PSEUDONYM_PREFIX: Final = "P:"
MIN_KEY_CHARS: Final = 16
_SEPARATORS: Final = str.maketrans("", "", " -/().\t")
_RANGE: Final = re.compile(r"(\d+)-(\d+)")


class Normalizer(Protocol):
    """What the rules need of the look-up's number reading (lookup/normalize.py)."""

    country_code: str
    area_code: str
    max_extension_digits: int

    def to_key(self, dial: str, *, foreign_as_is: bool = False) -> int | None: ...

    def journal(self, rufnummer: str, amtsholung: str = "", *, incoming: bool = False) -> Any: ...


def load_normalizer(lookup: LookupSettings) -> Normalizer:
    """The number reading the look-up uses, so that rules read numbers as it does. Imported here,
    when a rule needs numbers: the reader loads phonenumbers' metadata, which `probe` (the
    container health check, every few seconds) and configs without number rules never need."""
    from cti_journal.shared.normalize import NumberNormalizer

    return NumberNormalizer.from_settings(lookup)


# -- patterns -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LocalPattern:
    exact: str = ""
    prefix: str = ""
    low: int = -1
    high: int = -1
    lengths: tuple[int, int] = (0, 0)

    def matches(self, digits: str) -> bool:
        if self.exact:
            return digits == self.exact
        if self.prefix:
            return digits.startswith(self.prefix)
        if not digits.isdigit() or not self.lengths[0] <= len(digits) <= self.lengths[1]:
            return False
        return self.low <= int(digits) <= self.high


def _local_pattern(text: str, where: str) -> _LocalPattern:
    raw = text.strip()
    if m := _RANGE.fullmatch(raw):
        low, high = m.group(1), m.group(2)
        if int(low) > int(high):
            raise ConfigError(where, f"range {raw!r} runs backwards")
        return _LocalPattern(low=int(low), high=int(high), lengths=(len(low), len(high)))
    prefix = raw.endswith("*")
    digits = raw.removesuffix("*").translate(_SEPARATORS)
    if not digits.isdigit():
        raise ConfigError(
            where, f"{raw!r}: expected digits, a range such as 200-219, or a prefix such as 0891*"
        )
    return _LocalPattern(prefix=digits) if prefix else _LocalPattern(exact=digits)


@dataclass(frozen=True, slots=True)
class _NumberPattern:
    key: int | None = None  # an exact number
    key_prefix: str = ""  # E.164 digits a number starts with
    extension: str = ""  # an internal extension (exact)

    def matches(self, keys: Sequence[int], extension: str) -> bool:
        if self.extension:
            return extension == self.extension
        if self.key is not None:
            return self.key in keys
        return any(str(k).startswith(self.key_prefix) for k in keys)


def _number_pattern(text: str, normalizer: Normalizer, where: str) -> _NumberPattern:
    raw = text.strip()
    prefix = raw.endswith("*")
    dial = raw.removesuffix("*").translate(_SEPARATORS)
    body = dial[1:] if dial.startswith("+") else dial
    if not body.isdigit():
        raise ConfigError(where, f"{raw!r}: expected a phone number, optionally ending in *")
    if not prefix and dial.isdigit() and len(dial) <= normalizer.max_extension_digits:
        return _NumberPattern(extension=dial)
    if prefix:
        return _NumberPattern(key_prefix=_key_prefix(dial, normalizer, where))
    key = normalizer.to_key(dial)
    if key is None:
        raise ConfigError(where, f"{raw!r} is not a number the look-up can read")
    return _NumberPattern(key=key)


def _key_prefix(dial: str, normalizer: Normalizer, where: str) -> str:
    """The E.164 digits every number dialled as `dial…` starts with."""
    if dial.startswith("+"):
        return dial[1:]
    if dial.startswith("00"):
        return dial[2:]
    if dial.startswith("0"):
        return normalizer.country_code + dial[1:]
    if not normalizer.area_code:
        raise ConfigError(where, f"{dial!r}* is a local number: set lookup.area_code, or add 0")
    return normalizer.country_code + normalizer.area_code + dial


# -- compiled rules -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    index: int
    rule: PrivacyRule
    label: str
    local: tuple[_LocalPattern, ...]
    number: tuple[_NumberPattern, ...]

    @property
    def needs_contact(self) -> bool:
        return bool(self.rule.contact_source)

    def matches(self, entry: JournalEntry, normalizer: Normalizer | None) -> bool:
        rule = self.rule
        if rule.direction != "any" and entry.in_out != rule.direction[0]:
            return False
        if rule.states and entry.verb_zustand not in rule.states:
            return False
        if rule.lcr and entry.lcr not in rule.lcr:
            return False
        if rule.amtsholung and entry.amtsholung not in rule.amtsholung:
            return False
        if rule.contact_source and entry.datensatz_tabelle not in rule.contact_source:
            return False
        if self.local:
            local = entry.lokale_rufnummer.translate(_SEPARATORS)
            if not any(p.matches(local) for p in self.local):
                return False
        if self.number:
            assert normalizer is not None
            keys, extension = _read(entry, normalizer)
            if not any(p.matches(keys, extension) for p in self.number):
                return False
        return True


def _read(entry: JournalEntry, normalizer: Normalizer) -> tuple[tuple[int, ...], str]:
    # As the look-up reads it: the outside prefix is stripped from outgoing calls only.
    found = normalizer.journal(entry.rufnummer, entry.amtsholung, incoming=entry.in_out == "i")
    if found is None:
        return (), ""
    return tuple(found.keys), str(found.extension)


class Decision:
    """Outcome of walking the rules: a rule, no rule, or 'ask again after the look-up'."""

    DEFER: Final = "defer"


class PrivacyRules:
    """The compiled rules of one process, with their metric."""

    def __init__(
        self,
        rules: Sequence[CompiledRule],
        normalizer: Normalizer | None,
        key: bytes,
        registry: CollectorRegistry | None,
    ) -> None:
        self.rules = tuple(rules)
        self.normalizer = normalizer
        self._key = key
        self.applied = Counter(
            "cti_journal_privacy_applied",
            "Entries a privacy rule decided (action drop: not journalled)",
            ["rule", "action"],
            registry=registry,
        )
        # Bound once: .labels() per entry costs more than the rule itself.
        self._counted = {r.index: self.applied.labels(r.label, r.rule.action) for r in self.rules}
        self._warned_late: set[int] = set()

    def __bool__(self) -> bool:
        return bool(self.rules)

    @classmethod
    def from_settings(
        cls, settings: Settings, registry: CollectorRegistry | None = None
    ) -> PrivacyRules:
        compiled = compile_rules(settings)
        # A pseudonym is of the number as the look-up reads it, wherever it is computed (a rule,
        # a subject request): with a key, the normaliser is always there.
        needs_numbers = any(r.number for r in compiled) or bool(settings.privacy.pseudonym_key)
        normalizer = load_normalizer(settings.lookup) if needs_numbers else None
        key = settings.privacy.pseudonym_key.encode()
        return cls(compiled, normalizer, key, registry)

    # -- deciding ---------------------------------------------------------------------------
    def decide(self, entry: JournalEntry, *, contact_known: bool) -> CompiledRule | str | None:
        for rule in self.rules:
            if rule.needs_contact and not contact_known:
                return Decision.DEFER
            if rule.matches(entry, self.normalizer):
                return rule
        return None

    def at_gateway(self, entry: JournalEntry, to_lookup: bool) -> tuple[JournalEntry | None, bool]:
        """(the entry as it leaves the gateway or None if dropped, whether it still goes to the
        look-up). An entry that skips the look-up (pre-enriched) gets every rule here."""
        decision = self.decide(entry, contact_known=not to_lookup)
        if not isinstance(decision, CompiledRule):
            return entry, to_lookup
        if to_lookup and decision.rule.stage == "after":
            return entry, True  # the look-up takes the same decision on the enriched entry
        if decision.rule.action == "keep":
            self._count(decision)
            return entry, to_lookup
        changed = self.apply(decision, entry)
        if changed is None or not to_lookup:
            return changed, False
        return changed.evolve(lookup=Lookup.SKIPPED), False

    def after_lookup(self, entry: JournalEntry) -> JournalEntry | None:
        """The enriched entry as the writer gets it; None if a rule drops it."""
        decision = self.decide(entry, contact_known=True)
        if not isinstance(decision, CompiledRule):
            return entry
        if decision.rule.stage == "before" and decision.rule.action == "keep":
            return entry  # the gateway kept it, and counted it: nothing to do or say here
        if decision.rule.stage == "before" and decision.index not in self._warned_late:
            self._warned_late.add(decision.index)
            log.warning(
                "privacy rule %s (stage before) applied after the look-up: does the gateway "
                "run with the same [[privacy.rules]]? (logged once)",
                decision.label,
            )
        return self.apply(decision, entry)

    # -- actions ----------------------------------------------------------------------------
    def apply(self, rule: CompiledRule, entry: JournalEntry) -> JournalEntry | None:
        self._count(rule)
        action = rule.rule.action
        if action == "keep":
            return entry
        if action == "drop":
            return None
        if action == "shorten":
            n = rule.rule.digits
            return entry.evolve(
                rufnummer=shorten(entry.rufnummer, n),
                weitergeleitet=shorten(entry.weitergeleitet, n),
            )
        if action == "anonymise":
            return entry.evolve(rufnummer="", weitergeleitet="", **_NO_CONTACT)
        incoming = entry.in_out == "i"
        return entry.evolve(
            rufnummer=self.pseudonym(entry.rufnummer, entry.amtsholung, incoming=incoming),
            weitergeleitet=self.pseudonym(
                entry.weitergeleitet, entry.amtsholung, incoming=incoming
            ),
            **_NO_CONTACT,
        )

    def pseudonym(self, number: str, amtsholung: str = "", *, incoming: bool = False) -> str:
        """ "P:" + 16 hex digits of HMAC-SHA256(key, the number as the look-up reads it, in the
        call's direction): the same for every notation of one number, on every host with the
        same key."""
        if not number.strip():
            return ""
        return self.pseudonym_of(
            canonical_number(number, amtsholung, self.normalizer, incoming=incoming)
        )

    def pseudonym_of(self, canonical: str) -> str:
        digest = hmac.new(self._key, canonical.encode(), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:16]

    def _count(self, rule: CompiledRule) -> None:
        self._counted[rule.index].inc()


_NO_CONTACT: Final = {"name": "", "firma": "", "datensatz_id": "", "datensatz_tabelle": ""}


def shorten(number: str, digits: int) -> str:
    """`0891234567` → `0891234xxx`: the last `digits` digits replaced, separators kept."""
    if not number:
        return number
    out = list(number)
    left = digits
    for i in range(len(out) - 1, -1, -1):
        if left == 0:
            break
        if out[i].isdigit():
            out[i] = "x"
            left -= 1
    return "".join(out)


def canonical_number(
    number: str, amtsholung: str, normalizer: Normalizer | None, *, incoming: bool = False
) -> str:
    """One spelling per number: "+<E.164>" for numbers the look-up reads, "ext:<n>" for
    internal extensions, else the text without separators."""
    if normalizer is not None:
        # The first reading only: the look-up tries others for a match, but whose number a
        # stored value is must not depend on which of them happens to be someone's.
        found = normalizer.journal(number, amtsholung, incoming=incoming)
        if found is not None and found.keys:
            return f"+{found.keys[0]}"
        if found is not None and found.extension:
            return f"ext:{found.extension}"
    return number.strip().translate(_SEPARATORS).lower()


# -- validation ---------------------------------------------------------------------------------


def compile_rules(settings: Settings) -> list[CompiledRule]:
    """The configured rules, checked; ConfigError names `privacy.rules[i].<key>`."""
    privacy = settings.privacy
    normalizer: Normalizer | None = None
    compiled: list[CompiledRule] = []
    for i, rule in enumerate(privacy.rules):
        where = f"privacy.rules[{i}]"
        _check_rule(rule, where)
        if rule.action == "pseudonymise":
            _check_key(privacy.pseudonym_key, where)
        local = tuple(_local_pattern(p, f"{where}.local[{j}]") for j, p in enumerate(rule.local))
        numbers: tuple[_NumberPattern, ...] = ()
        if rule.number:
            normalizer = normalizer or load_normalizer(settings.lookup)
            numbers = tuple(
                _number_pattern(p, normalizer, f"{where}.number[{j}]")
                for j, p in enumerate(rule.number)
            )
        label = mask_numbers_in(rule.name) if rule.name else f"rules[{i}]"
        compiled.append(CompiledRule(i, rule, label, local, numbers))
    return compiled


def _check_rule(rule: PrivacyRule, where: str) -> None:
    for j, state in enumerate(rule.states):
        if state not in STATES:
            raise ConfigError(f"{where}.states[{j}]", f"{state!r} is not one of {STATES}")
    if rule.contact_source and rule.stage == "before":
        raise ConfigError(
            f"{where}.contact_source",
            'the contact is known only after the look-up: use stage = "after"',
        )
    if rule.action == "shorten" and not 1 <= rule.digits <= 15:
        raise ConfigError(f"{where}.digits", f"must be 1..15, is {rule.digits}")


def _check_key(key: str, where: str) -> None:
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(
            "privacy.pseudonym_key_file",
            f"{where} pseudonymises: it needs a secret key of at least {MIN_KEY_CHARS} "
            "characters in a file readable only by the service, e.g. "
            "`head -c 32 /dev/urandom | base64 > /etc/cti-journal/pseudonym.key`",
        )


def validate_privacy(settings: Settings) -> None:
    """Config checks at load time (every process), so that a bad rule stops it with exit 2."""
    compile_rules(settings)
    days, retention = settings.broker.dead_letter_days, settings.writer.retention_days
    if retention and (days == 0 or days > retention):
        raise ConfigError(
            "broker.dead_letter_days",
            f"dead letters hold whole entries and must not outlive writer.retention_days "
            f"({retention}); set it to 1..{retention} (it is {days})",
        )


__all__ = [
    "PSEUDONYM_PREFIX",
    "CompiledRule",
    "PrivacyRule",
    "PrivacyRules",
    "canonical_number",
    "compile_rules",
    "load_normalizer",
    "shorten",
    "validate_privacy",
]
