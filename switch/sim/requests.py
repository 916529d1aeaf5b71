"""Requests for the acquirer simulator: generated from a template or read from a JSON-lines file. No I/O
beyond reading that file.

Every request gets a unique STAN (11) and RRN (37) so responses can be matched by the scheme's key (default
MTI class + 11 + 41) and a switch's duplicate check does not refuse them. The STAN starts at a random offset
and the RRN carries the run's start time, so two runs in a row do not reuse the same pairs either.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

from switch.model.errors import ConfigError
from switch.model.message import FieldValue, Message

STAN_MODULO = 999_999  # STANs run 000001..999999


@dataclass(frozen=True)
class RequestTemplate:
    mti: str = "0200"
    pan: str = "4111111111111111"
    amount: int = 1000  # minor units
    processing_code: str = "000000"
    currency: str = "840"
    terminal_id: str = "BHSIM001"
    merchant_id: str = "BULKHEADSIM0001"
    atm: bool = False  # an ATM withdrawal: track 2 and a PIN block instead of a keyed PAN
    # A real card's track 2 and PIN block (see switch.sim.cards); without them, an ATM request carries a dummy
    # track and random PIN block bytes, which a switch can forward but an issuer will not accept.
    track2: str | None = None
    pin_block: bytes | None = None

    def build(self) -> Message:
        """The template as a message; :class:`Numbering` adds 7, 11, 12, 13 and 37 per request."""
        if self.mti[1:2] == "8":
            return Message(self.mti, {70: "301"})
        if self.atm:
            return self._atm()
        return Message(self.mti, {
            2: self.pan,
            3: self.processing_code,
            4: f"{self.amount:012d}",
            18: "5999",
            22: "012",  # PAN manually keyed, no PIN entry capability stated
            25: "00",
            41: self.terminal_id,
            42: self.merchant_id,
            49: self.currency,
        })


    def _atm(self) -> Message:
        # Track 2 equivalent data: PAN '=' expiry YYMM, service code, discretionary data.
        return Message(self.mti, {
            3: self.processing_code if self.processing_code != "000000" else "011000",
            4: f"{self.amount:012d}",
            18: "6011",
            22: "021",  # magnetic stripe read, PIN entered
            35: self.track2 or f"{self.pan}=2812101000000000",
            41: self.terminal_id,
            49: self.currency,
            52: self.pin_block if self.pin_block is not None else random.randbytes(8),
        })


class Numbering:
    """Stamps STAN, RRN and transmission times on request ``index`` of a run."""

    def __init__(self, seed: int | None = None, now: float | None = None) -> None:
        rng = random.Random(seed)
        self.stan_base = rng.randrange(STAN_MODULO)
        now = time.time() if now is None else now
        self._tm = time.gmtime(now)
        # RRN = 5 digits of the run's start time (seconds modulo 10^5) + 7 digits of request index.
        self.rrn_prefix = f"{int(now) % 100_000:05d}"

    def stan(self, index: int) -> str:
        return f"{(self.stan_base + index) % STAN_MODULO + 1:06d}"

    def rrn(self, index: int) -> str:
        return f"{self.rrn_prefix}{index % 10_000_000:07d}"

    def stamp(self, msg: Message, index: int, terminal_id: str, omit: frozenset[int] = frozenset()) -> Message:
        """``msg`` with the fields it lacks of 7, 11, 12, 13, 37 and 41 (a field it has is sent as it is, so a
        request file can fix a STAN), except those in ``omit`` (a file's ``null``: sent without the field)."""
        out = msg.copy()
        fields = out.fields
        fields.setdefault(11, self.stan(index))
        fields.setdefault(7, time.strftime("%m%d%H%M%S", self._tm))
        if out.mti[1] != "8":
            fields.setdefault(37, self.rrn(index))
            fields.setdefault(12, time.strftime("%H%M%S", self._tm))
            fields.setdefault(13, time.strftime("%m%d", self._tm))
            fields.setdefault(41, terminal_id)
        for number in omit:
            fields.pop(number, None)
        return out


@dataclass(frozen=True)
class FileRequest:
    """One line of a request file: the message, and the fields the line set to ``null`` (left out: the
    simulator does not number them)."""

    message: Message
    omit: frozenset[int] = frozenset()


def load_requests(path: Path, binary_fields: frozenset[int]) -> list[Message]:
    """The messages of :func:`load_request_file` (without what it says to leave out)."""
    return [request.message for request in load_request_file(path, binary_fields)]


def load_request_file(path: Path, binary_fields: frozenset[int]) -> list[FileRequest]:
    """One JSON object per line: ``{"mti": "0200", "fields": {"2": "...", "52": "<hex>"}}``.

    Values are strings; fields the scheme carries as binary (``binary_fields``) are given in hex; ``null`` leaves
    the field out even where the simulator would number it (7, 11, 12, 13, 37, 41), so a request without a STAN
    can be sent. Fields given are sent as they are, STAN and RRN included (every time the line is sent). Blank
    lines and lines starting with ``#`` are skipped.
    """
    file = str(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(file, "", f"cannot read: {exc.strerror}") from None
    out: list[FileRequest] = []
    for number, line in enumerate(lines, start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(_parse_line(line, binary_fields, file, number))
    if not out:
        raise ConfigError(file, "", "no requests in the file")
    return out


def _parse_line(line: str, binary_fields: frozenset[int], file: str, number: int) -> FileRequest:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(file, "", f"not JSON ({exc.msg})", number) from None
    if not isinstance(data, dict) or set(data) - {"mti", "fields"}:
        raise ConfigError(file, "", 'expected {"mti": ..., "fields": {...}}', number)
    mti = data.get("mti")
    if not isinstance(mti, str) or len(mti) != 4 or not mti.isdigit() or int(mti[2]) % 2:
        raise ConfigError(file, "mti", "expected a 4-digit request MTI", number)
    raw = data.get("fields", {})
    if not isinstance(raw, dict):
        raise ConfigError(file, "fields", "expected an object", number)
    fields: dict[int, FieldValue] = {}
    omit: set[int] = set()
    for key, value in raw.items():
        if not key.isdigit() or not 2 <= int(key) <= 128:
            raise ConfigError(file, f"fields.{key}", "expected a field number from 2 to 128", number)
        if value is None:
            omit.add(int(key))
            continue
        if not isinstance(value, str):
            raise ConfigError(file, f"fields.{key}", "expected a string or null", number)
        fields[int(key)] = _value(int(key), value, binary_fields, file, number)
    return FileRequest(Message(mti, fields), frozenset(omit))


def _value(field: int, value: str, binary_fields: frozenset[int], file: str, number: int) -> FieldValue:
    if field not in binary_fields:
        return value
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ConfigError(file, f"fields.{field}", "binary field: expected hex", number) from None
