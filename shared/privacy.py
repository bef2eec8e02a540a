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

What a rule matches is in shared/privacy_patterns.py, how the configured rules are checked in
shared/privacy_validation.py; here, the decision and the actions.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from typing import Final

from prometheus_client import CollectorRegistry, Counter

from cti_journal.shared.config import Settings
from cti_journal.shared.message import JournalEntry, Lookup
from cti_journal.shared.privacy_patterns import (
    SEPARATORS,
    CompiledRule,
    Normalizer,
    load_normalizer,
)
from cti_journal.shared.privacy_validation import compile_rules

log = logging.getLogger(__name__)

PSEUDONYM_PREFIX: Final = "P:"


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
    return number.strip().translate(SEPARATORS).lower()


__all__ = ["PSEUDONYM_PREFIX", "Decision", "PrivacyRules", "canonical_number", "shorten"]
