"""Loading settings: one TOML file plus `CTI_JOURNAL_*` environment variables into the schema of
shared/config.py, validated before anything connects.

Every string setting `x` may instead be given as `x_file = "/path"`: the file's content (stripped)
is used, so that passwords in DSNs and AMQP URLs can live in a file readable only by the service.
A process resolves only the `_file` secrets of the sections it uses (`secrets=`): a gateway
never opens the writer's DSN file, so a deployment mounts each process only its own secrets
(least privilege); a text setting whose file is not read holds the marker `UNREAD`. Every secret
file must be closed to others (shared/secrets.py).

An environment variable `CTI_JOURNAL_<SECTION>__<KEY>` overrides `[section] key` (lists:
comma-separated); only declared settings are read from the environment, so other variables with
the prefix (`CTI_JOURNAL_CONFIG`, a platform's own) never stop the process. A bad setting
raises `ConfigError` naming it; the CLI exits 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import tomllib
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from cti_journal.shared.config import Bound, Settings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.privacy_validation import validate_privacy
from cti_journal.shared.secrets import check_key_strength, check_secret_file
from cti_journal.shared.validation import validate_settings

ENV_PREFIX = "CTI_JOURNAL_"
log = logging.getLogger(__name__)
# The sections whose `_file` secrets a process may read; every one by default (check, demo).
SECTIONS: frozenset[str] = frozenset({"broker", "gateway", "lookup", "writer", "privacy"})
UNREAD = "(not read by this process)"


def load_settings(
    path: str | Path | None,
    env: Mapping[str, str] | None = None,
    *,
    secrets: frozenset[str] = SECTIONS,
    cross_checks: bool = True,
) -> Settings:
    """The settings of one file plus the environment, every value converted and within its
    bounds, the `_file` secrets read only for the sections in `secrets`. `cross_checks=False`
    skips what shared/validation.py and the privacy rules check (certificates that must load,
    rules whose numbers the number reader compiles): only for a caller that reads a few plain
    settings, such as `probe` asking for the metrics port."""
    data: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError("--config", f"file {path} does not exist") from exc
        except IsADirectoryError as exc:  # e.g. a container mount that made a folder
            raise ConfigError("--config", f"{path} is a folder, not a file") from exc
        except PermissionError as exc:
            raise ConfigError("--config", f"{path} cannot be read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from exc
    _apply_env(data, os.environ if env is None else env)
    settings = build(Settings, data, "", secrets)
    if cross_checks:
        validate(settings, secrets)
    return settings


T = TypeVar("T")


def build(
    cls: type[T], data: Mapping[str, Any], path: str, secrets: frozenset[str] = SECTIONS
) -> T:
    """A dataclass from a TOML table, checking every key and value against the type hints."""
    if not isinstance(data, Mapping):
        raise ConfigError(path or "(top)", "must be a table")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = key.removesuffix("_file") if key.endswith("_file") and key not in fields else key
        where = f"{path}.{key}" if path else key
        if name not in fields:
            raise ConfigError(where, f"unknown setting; known: {', '.join(sorted(fields))}")
        if name != key:
            if _section(where) not in secrets:
                # Not this process's secret: never opened. A text setting holds a marker, not
                # "", so that checks of other sections ("needs a DSN") still pass; a list keeps
                # its default. This process never uses either.
                if hints[name] is not str:
                    continue
                value = f"{UNREAD} {where}"
            else:
                value = _read_secret_file(where, value)
        kwargs[name] = _convert(hints[name], value, where, secrets)
        bound: Bound | None = fields[name].metadata.get("bound")
        if bound is not None and (problem := bound.check(where, kwargs[name])):
            raise ConfigError(where, problem)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(path or "(top)", f"missing a required setting: {exc}") from exc


def _section(where: str) -> str:
    return where.split(".", 1)[0].split("[", 1)[0]


def _convert(hint: Any, value: Any, where: str, secrets: frozenset[str] = SECTIONS) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where, secrets)  # type: ignore[arg-type]
    if origin is Literal:
        if value not in args:
            raise ConfigError(where, f"{value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ConfigError(where, f"expected a list, got {type(value).__name__}")
        return tuple(
            _convert(args[0], item, _item(where, i, item), secrets) for i, item in enumerate(value)
        )
    if origin in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(where, "expected a table of name = value")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin in (Union, types.UnionType):
        raise ConfigError(where, "internal: union settings are not supported")
    return _scalar(hint, value, where)


def _item(where: str, index: int, item: Any) -> str:
    """`lookup.sources[crm]`: a contact source is named by its name, as validation names it
    (`lookup.sources[crm].base_dn`), so that an admin finds the block; anything else by place."""
    name = item.get("name") if isinstance(item, Mapping) else None
    if where == "lookup.sources" and isinstance(name, str) and name.strip():
        return f"{where}[{name}]"
    return f"{where}[{index}]"


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(where, f"expected true or false, got {value!r}")
        return value
    if hint in (int, float):
        if isinstance(value, str):
            try:
                value = hint(value)
            except ValueError as exc:
                raise ConfigError(where, f"expected a number, got {value!r}") from exc
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(where, f"expected a number, got {value!r}")
        if hint is int and not isinstance(value, int):
            raise ConfigError(where, f"expected a whole number, got {value!r}")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(where, f"expected a string, got {value!r}")
        return value
    raise ConfigError(where, f"internal: unsupported setting type {hint!r}")


def _read_secret_file(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(where, "expected a file path")
    check_secret_file(where, value)
    try:
        return Path(value).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(where, f"cannot read {value}: {exc.strerror}") from exc


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Only declared settings are read: `CTI_JOURNAL_<SECTION>__<KEY>` (and `…_FILE`) for each
    field of the settings classes. Anything else under the prefix is not ours to judge —
    `CTI_JOURNAL_CONFIG` names the file, Kubernetes adds `<SERVICE>_SERVICE_HOST`-style variables
    for a Service named cti-journal-… — so it is ignored; a name inside a known section that
    matches no setting is probably a typo and gets one warning line."""
    variables = list(_declared_env(Settings, ()))
    # A field's own name wins over another field's `_FILE` form (`x_file` next to `x`).
    declared = {var.names[1]: var for var in variables} | {var.names[0]: var for var in variables}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        var = declared.get(ENV_PREFIX + key[len(ENV_PREFIX) :].upper())
        if var is None:
            if "__" in key:
                _warn_undeclared(key, declared)
            continue
        if var.table_only:
            raise ConfigError(key, f"{'.'.join(var.path)} can only be set in the TOML file")
        var.set(data, value, from_file=key.endswith("_FILE") and key != var.names[0])


@dataclass(frozen=True)
class _EnvVar:
    path: tuple[str, ...]  # TOML keys, e.g. ("broker", "urls")
    table_only: bool  # a table or an array of tables: a variable cannot spell it

    @property
    def names(self) -> tuple[str, str]:
        name = ENV_PREFIX + "__".join(self.path).upper()
        return name, f"{name}_FILE"

    def set(self, data: dict[str, Any], value: str, *, from_file: bool) -> None:
        target = data
        for part in self.path[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                raise ConfigError(part, "must be a table")
            target = nested
        name = self.path[-1]
        # The environment wins over the file, whichever of `x` / `x_file` either one uses.
        target.pop(name, None)
        target.pop(f"{name}_file", None)
        target[f"{name}_file" if from_file else name] = value


def _declared_env(cls: type, path: tuple[str, ...]) -> Iterator[_EnvVar]:
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint, where = hints[f.name], (*path, f.name)
        if dataclasses.is_dataclass(hint):
            yield from _declared_env(hint, where)  # type: ignore[arg-type]
            continue
        origin, args = get_origin(hint), get_args(hint)
        nested = origin is tuple and bool(args) and dataclasses.is_dataclass(args[0])
        yield _EnvVar(where, table_only=nested or origin in (Mapping, dict))


def _warn_undeclared(key: str, declared: Mapping[str, _EnvVar]) -> None:
    section = key[len(ENV_PREFIX) :].split("__", 1)[0]
    if not any(name.startswith(f"{ENV_PREFIX}{section}__") for name in declared):
        return
    close = difflib.get_close_matches(key, list(declared), n=1)
    log.warning("ignoring %s: not a setting%s", key, f"; did you mean {close[0]}?" if close else "")


def validate(s: Settings, secrets: frozenset[str] = SECTIONS) -> None:
    """Cross-field checks the types alone cannot express; files of sections the process does not
    use (the gateway's TLS key in a writer) are not opened."""

    validate_settings(s, secrets)
    check_key_strength("privacy.pseudonym_key_file", s.privacy.pseudonym_key)
    for where, key_file in (
        ("broker.tls.key_file", s.broker.tls.key_file),
        ("gateway.tls_key_file", s.gateway.tls_key_file),
    ):
        if key_file and _section(where) in secrets:
            check_secret_file(where, key_file)
    validate_privacy(s)
