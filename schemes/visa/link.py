"""A VISA link's options: its framing (``framing`` table) and its network management and dialect (``options``).

Every key is checked when the configuration is loaded; an error names the file, the key and the reason. The
defaults are what public implementations use; none of them is confirmed by VISA's own (confidential)
specifications, so each is listed in the README ("VISA (BASE I)").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from schemes.ebcdic import code_page_problem
from schemes.visa.dialect import Transcoder
from schemes.visa.framing import VisaFramer, VisaFraming, visa_framing
from schemes.visa.spec import CHOICES, DEFAULT_DIALECT, Dialect
from switch.contracts.network import NetMgmt
from switch.model.toml import TomlTable

# DE 70 codes (n3, two BCD bytes) that one open-source VISA interface uses (reference sections 5.4 and 9, [TPE]:
# written there as 0071, 0072, 0301, 0163): sign-on and sign-off of the dual-message service, echo, key exchange.
# The single-message service signs on with 081 / 082. VISA's cutover code is not public: off unless given.
DEFAULT_CODES: Mapping[NetMgmt, str] = {
    NetMgmt.SIGN_ON: "071", NetMgmt.SIGN_OFF: "072", NetMgmt.ECHO: "301", NetMgmt.KEY_EXCHANGE: "163",
}
# Where a key exchange carries the new zone PIN key (not public for VISA): DE 125, as the project's ISO 8583:1987
# networks do: the key under the zone master key in Thales notation, then its 6-character check value.
KEY_FIELD = 125
# The fields a key may travel in: variable-length text fields every log and journal row hides whole.
KEY_FIELDS = (45, 125)
INSTITUTION_FIELD = 33


@dataclass(frozen=True)
class VisaLink:
    """One VISA link's options (see the module docstring); immutable, shared by the link's connections."""

    framing: VisaFraming = field(default_factory=VisaFraming)
    netmgmt: Mapping[NetMgmt, str] = field(default_factory=lambda: dict(DEFAULT_CODES))
    institutions: tuple[str, ...] = ()
    institution_field: int = INSTITUTION_FIELD
    key_field: int = KEY_FIELD
    dialect: Dialect = DEFAULT_DIALECT
    transcoder: Transcoder | None = field(default=None, compare=False, repr=False)
    # DE 70 of a key exchange that carries the zone MAC key (in ``key_field`` like the PIN key); None: VISA links
    # exchange only the PIN key. VISA's code is not public.
    mac_key_code: str | None = None

    @property
    def framing_kind(self) -> str:
        return self.framing.framing_kind

    def framer(self) -> VisaFramer:
        return self.framing.framer(self.transcoder)


def read_link(framing: TomlTable | None, options: TomlTable | None, network: str) -> VisaLink:
    """A link's ``framing`` (None: ``visa`` with its defaults) and ``options`` tables."""
    link_framing = VisaFraming() if framing is None else visa_framing(framing, network)
    if options is None:
        return VisaLink(link_framing)
    codes = _netmgmt_codes(options)
    institutions = options.get("institutions", list, [])
    for i, institution in enumerate(institutions):
        if not isinstance(institution, str) or not institution.isdigit() or not 1 <= len(institution) <= 11:
            raise options.error(f"institutions[{i}]", "expected an institution id of 1 to 11 digits")
    institution_field = options.integer("institution_field", INSTITUTION_FIELD, low=2, high=128)
    key_field = options.integer("key_field", KEY_FIELD, low=2, high=128)
    if key_field not in KEY_FIELDS:
        raise options.error("key_field", f"a key travels in a text field hidden in logs: one of "
                                         f"{', '.join(map(str, KEY_FIELDS))}")
    mac_code = options.get("mac_key_exchange_code", str, None)
    if mac_code is not None and (len(mac_code) != 3 or not mac_code.isdigit() or mac_code in codes.values()):
        raise options.error("mac_key_exchange_code", "expected 3 digits (DE 70) not used by another code")
    dialect = _dialect(options)
    options.done()
    return VisaLink(link_framing, codes, tuple(institutions), institution_field, key_field, dialect,
                    None if dialect == DEFAULT_DIALECT else Transcoder(dialect), mac_code)


def _netmgmt_codes(options: TomlTable) -> dict[NetMgmt, str]:
    codes: dict[NetMgmt, str] = {}
    seen: dict[str, str] = {}
    for kind in NetMgmt:
        key = f"{kind.value}_code"
        value = options.get(key, str, DEFAULT_CODES.get(kind))
        if value is None or value == "":  # "" turns a default off (a link whose network has no key exchange)
            continue
        if len(value) != 3 or not value.isdigit() or not value.isascii():
            raise options.error(key, "expected 3 digits (DE 70, n3), or \"\" for none")
        if value in seen:
            raise options.error(key, f"{value} is already the {seen[value]}")
        seen[value] = key
        codes[kind] = value
    return codes


def _dialect(options: TomlTable) -> Dialect:
    values: dict[str, str] = {}
    for item in fields(Dialect):
        default = getattr(DEFAULT_DIALECT, item.name)
        value = options.get(item.name, str, default)
        choices = CHOICES.get(item.name)
        if choices is not None and value not in choices:
            raise options.error(item.name, f"expected one of {', '.join(choices)}")
        if item.name == "code_page":
            problem = code_page_problem(value)
            if problem is not None:
                raise options.error(item.name, problem)
        values[item.name] = value
    return Dialect(**values)
