"""A small path syntax to pick values out of a JSON reply (the http contact source's mapping).

    data[*]                       every element of the list under "data"
    attributes.name.first         nested objects
    attributes.phones[*].number   "number" of every element of a list
    items[0].id                   one element by position (negative counts from the end)
    ["@odata.nextLink"]           a name with dots or brackets, in double quotes
    (empty)                       the document itself

A step that does not fit the document (a missing name, an index out of range, a list where an
object was expected, null) yields nothing: a contact without a company simply has none. Why
not JMESPath or JSONPath: a REST CRM's reply needs exactly these steps, and this is 60 lines
without a dependency; a path that needs more (filters, functions) is better written as an
ODBC view or a small export script than as a configuration language.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

_NAME: Final = re.compile(r"[^.\[\]\"]+")
_INDEX: Final = re.compile(r"\[(\*|-?\d+)\]")
_QUOTED: Final = re.compile(r'\[("(?:[^"\\]|\\.)*")\]')

Step = str | int | None  # a name, a position, None = every element


@dataclass(frozen=True)
class JsonPath:
    text: str
    steps: tuple[Step, ...]

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        """Raises ValueError saying where the path is wrong."""
        steps: list[Step] = []
        pos, dot_ok = 0, False
        while pos < len(text):
            if dot_ok and text[pos] == ".":
                pos += 1
                name = _NAME.match(text, pos)
                if name is None:
                    raise ValueError(f"{text!r}: a name must follow the '.' at {pos}")
                steps.append(name.group(0).strip())
                pos = name.end()
                continue
            if (index := _INDEX.match(text, pos)) is not None:
                value = index.group(1)
                steps.append(None if value == "*" else int(value))
                pos = index.end()
            elif (quoted := _QUOTED.match(text, pos)) is not None:
                steps.append(json.loads(quoted.group(1)))
                pos = quoted.end()
            elif not steps and (name := _NAME.match(text, pos)) is not None:
                steps.append(name.group(0).strip())
                pos = name.end()
            else:
                raise ValueError(
                    f"{text!r}: unexpected {text[pos]!r} at {pos} (expected name.name, [*], "
                    '[0] or ["name"])'
                )
            dot_ok = True
        return cls(text, tuple(steps))

    def values(self, document: Any) -> Iterator[Any]:
        """Every value the path reaches in `document`, in document order (nulls left out)."""
        yield from _walk(document, self.steps)

    def first(self, document: Any) -> Any:
        return next(self.values(document), None)

    @property
    def many(self) -> bool:
        """True when the path can reach several values (it has a [*])."""
        return None in self.steps

    def __str__(self) -> str:
        return self.text


def _walk(node: Any, steps: tuple[Step, ...]) -> Iterator[Any]:
    if node is None:
        return
    if not steps:
        yield node
        return
    step, rest = steps[0], steps[1:]
    if step is None:
        if isinstance(node, list):
            for item in node:
                yield from _walk(item, rest)
    elif isinstance(step, int):
        if isinstance(node, list) and -len(node) <= step < len(node):
            yield from _walk(node[step], rest)
    elif isinstance(node, dict) and step in node:
        yield from _walk(node[step], rest)


def text_of(value: Any) -> str:
    """A JSON scalar as the text a contact field holds: numbers without `.0`, bools as words,
    objects and lists as nothing (a mapping that points at an object is a mapping mistake the
    `check` command shows as records without names or numbers)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return ""
