"""The configured privacy rules checked and compiled, at load time in every process, so that a
bad rule stops it with exit 2 and a `ConfigError` naming `privacy.rules[i].<key>`."""

from __future__ import annotations

from typing import Final

from cti_journal.shared.config import PrivacyRule, Settings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.masking import mask_numbers_in
from cti_journal.shared.privacy_patterns import (
    CompiledRule,
    Normalizer,
    NumberPattern,
    load_normalizer,
    local_pattern,
    number_pattern,
)
from cti_journal.shared.secrets import MIN_KEY_CHARS  # one rule for keys (32)

STATES: Final = ("CONN", "RING", "BUSY")


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
        local = tuple(local_pattern(p, f"{where}.local[{j}]") for j, p in enumerate(rule.local))
        numbers: tuple[NumberPattern, ...] = ()
        if rule.number:
            normalizer = normalizer or load_normalizer(settings.lookup)
            numbers = tuple(
                number_pattern(p, normalizer, f"{where}.number[{j}]")
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
