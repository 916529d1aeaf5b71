"""Reading a parsed TOML table with typed getters and no silently ignored keys.

Shared by ``node.toml`` (:mod:`switch.config`, the cells' and the HSM's tables) and ``products.toml``
(:mod:`processors.catalog_file`). Every error is a :class:`~switch.model.errors.ConfigError` naming the file, the
dotted key and the reason; :meth:`TomlTable.done` turns every key nobody asked for into an "unknown key"
error with a "did you mean" suggestion (a misspelt limit silently ignored is a card with no limit).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from switch.model.errors import ConfigError

_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "a boolean", list: "a list",
               dict: "a table"}


def kind_name(kind: type | tuple[type, ...]) -> str:
    """``int`` -> "an integer", ``(int, float)`` -> "an integer or a number": the expected type in words."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)


class TomlTable:
    """A TOML table being read: tracks which keys were used so leftovers become errors.

    ``prefix`` is the table's dotted key in the file ("" for the root, "listeners[0]" for an array item).
    """

    def __init__(self, data: Mapping[str, Any], file: str, prefix: str) -> None:
        self.data = data
        self.file = file
        self.prefix = prefix
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        # A key with a dot in it (the catalogue's fee keys) is quoted as TOML would write it.
        part = f'"{name}"' if "." in name else name
        return f"{self.prefix}.{part}" if self.prefix else part

    def error(self, name: str, reason: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), reason)

    def value_name(self, value: Any) -> str:
        """How a wrong value's type is named after "got" (a boolean is always "a boolean")."""
        return type(value).__name__

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = ..., *, required: bool = False) -> Any:
        """The value of ``name``, checked to be a ``kind``; ``default`` when absent (required without one)."""
        self.used.add(name)
        if name not in self.data:
            if required or default is ...:
                raise self.error(name, "is required")
            return default
        value = self.data[name]
        # bool is an int in Python; a TOML `true` where a number belongs is still a mistake.
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.error(name, f"expected {kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.error(name, f"expected {kind_name(kind)}, got {self.value_name(value)}")
        return value

    def positive(self, name: str, default: float | int, *, integer: bool = True) -> Any:
        value = self.get(name, int if integer else (int, float), default)
        if value <= 0:
            raise self.error(name, "must be greater than zero")
        return value

    def non_negative(self, name: str, default: int) -> int:
        value = self.get(name, int, default)
        if value < 0:
            raise self.error(name, "must not be negative")
        return int(value)

    def non_negative_number(self, name: str, default: float) -> float:
        value = self.get(name, (int, float), default)
        if value < 0:
            raise self.error(name, "must not be negative")
        return float(value)

    def integer(self, name: str, default: Any = ..., *, low: int = 0, high: int | None = None) -> int:
        """An integer in ``low`` .. ``high``."""
        value = self.optional_integer(name, default, low=low, high=high)
        assert value is not None
        return value

    def optional_integer(self, name: str, default: Any = None, *, low: int = 0,
                         high: int | None = None) -> int | None:
        """An integer in ``low`` .. ``high``, or ``default`` (None) when absent."""
        value = self.get(name, int, default)
        if value is None:
            return None
        if value < low:
            raise self.error(name, "must not be negative" if low == 0 else f"must be at least {low}")
        if high is not None and value > high:
            raise self.error(name, f"must be at most {high}")
        return int(value)

    def port(self, name: str = "port") -> int:
        """A TCP port, 0 to 65535 (0: any free port)."""
        value = self.get(name, int, required=True)
        if not 0 <= value <= 65535:
            raise self.error(name, "must be between 0 and 65535")
        return int(value)

    @staticmethod
    def path(value: str, base: Path) -> Path:
        """A path from the file, resolved against ``base`` (the file's folder) unless absolute."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    def table(self, name: str, *, required: bool = False) -> Self | None:
        """The sub-table ``name`` as a reader of the same class, or None when absent and not required."""
        value = self.get(name, dict, None, required=required)
        return None if value is None else type(self)(value, self.file, self.key(name))

    def done(self) -> None:
        """Refuse the first key (in sorted order) that no getter asked for."""
        for extra in sorted(set(self.data) - self.used):
            hint = difflib.get_close_matches(extra, sorted(self.used), n=1)
            raise self.error(extra, "unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
