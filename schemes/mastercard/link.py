"""A Mastercard link's options: its framing (``framing`` table) and its network management and dialect (``options``).

Framing: the 2-byte binary length of MIP, not counting itself, and no header (reference section 6.1, PosNG
``MIP.java``): the shared ``binary2`` framing with its keys (``max_frame``, ``keepalive_echo``,
``length_includes_prefix``). Every ``options`` key is checked when the configuration is loaded, an error naming the
file, the key and the reason; each default is what a public implementation does and none is confirmed by
Mastercard's own (confidential) specifications, so each is listed in the README ("Mastercard").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from schemes.ebcdic import DEFAULT_CODE_PAGE, Recoder, RecodingFramer, code_page_problem
from schemes.mastercard.spec import mastercard_spec
from switch.contracts.network import NetMgmt
from switch.model.toml import TomlTable
from switch.wire.compiled import CompiledCodec, compile_codec
from switch.wire.framing.base import Framer
from switch.wire.framing.options import LengthFraming, length_framing

FRAMINGS = ("binary2",)
# DE 70 codes one open-source processor's Mastercard constants use (reference sections 6.3 and 9, [TPE]): sign-on
# 001, sign-off 002, group sign-on 061 / sign-off 062 (065 / 066 are that source's other pair), echo 270, key
# exchange 161. Mastercard's cutover code is not public: off unless given.
DEFAULT_CODES: Mapping[NetMgmt, str] = {
    NetMgmt.SIGN_ON: "001", NetMgmt.SIGN_OFF: "002", NetMgmt.ECHO: "270", NetMgmt.KEY_EXCHANGE: "161",
}
GROUP_SIGNON, GROUP_SIGNOFF = "061", "062"
# Where a group sign-on names the institution: DE 2, as an open-source processor's Mastercard interface sends its
# sign-on group id (a 5-digit "logon PAN group id"); DE 33 is the other usual choice.
INSTITUTION_FIELD = 2
# The DE 48 sub-element a key exchange carries the new key in: the key under the zone master key in Thales notation,
# then its 6-character check value (this project's layout; the public sources give none). 11 is "key exchange block
# data" in Mastercard's numbering as far as public material names it.
KEY_SUBELEMENT = "11"
# DE 61.13 of a request that comes without DE 61 and without DE 19 (the acquirer's country): this project's default.
DEFAULT_COUNTRY = "840"


@cache
def codec_for(code_page: str) -> CompiledCodec:
    """The compiled codec of Mastercard bodies in one code page (one per code page, shared by its links)."""
    name = "mastercard" if code_page == DEFAULT_CODE_PAGE else f"mastercard {code_page}"
    return compile_codec(name, mastercard_spec(code_page))


@dataclass(frozen=True)
class MastercardLink:
    """One Mastercard link's options (see the module docstring); immutable, shared by the link's connections."""

    framing: LengthFraming = field(default_factory=LengthFraming)
    netmgmt: Mapping[NetMgmt, str] = field(default_factory=lambda: dict(DEFAULT_CODES))
    group_signon_code: str = GROUP_SIGNON
    group_signoff_code: str = GROUP_SIGNOFF
    institutions: tuple[str, ...] = ()
    institution_field: int = INSTITUTION_FIELD
    key_subelement: str = KEY_SUBELEMENT
    mac_key_code: str | None = None
    code_page: str = DEFAULT_CODE_PAGE
    recoder: Recoder | None = field(default=None, compare=False, repr=False)

    @property
    def framing_kind(self) -> str:
        return self.framing.kind

    def framer(self) -> Framer:
        inner = self.framing.framer()
        return inner if self.recoder is None else RecodingFramer(inner, self.recoder)


def _code(options: TomlTable, key: str, default: str | None, seen: dict[str, str]) -> str | None:
    value: str | None = options.get(key, str, default)
    if value is None or value == "":  # "" turns a default off
        return None
    if len(value) != 3 or not (value.isascii() and value.isdigit()):
        raise options.error(key, "expected 3 digits (DE 70), or \"\" for none")
    if value in seen:
        raise options.error(key, f"{value} is already the {seen[value]}")
    seen[value] = key
    return value


def read_link(framing: TomlTable | None, options: TomlTable | None, network: str) -> MastercardLink:
    """A link's ``framing`` (None: ``binary2``) and ``options`` tables."""
    link_framing = LengthFraming() if framing is None else length_framing(framing, FRAMINGS, network)
    if options is None:
        return MastercardLink(link_framing)
    seen: dict[str, str] = {}
    codes: dict[NetMgmt, str] = {}
    for kind in NetMgmt:
        code = _code(options, f"{kind.value}_code", DEFAULT_CODES.get(kind), seen)
        if code is not None:
            codes[kind] = code
    group_on = _code(options, "group_signon_code", GROUP_SIGNON, seen) or GROUP_SIGNON
    group_off = _code(options, "group_signoff_code", GROUP_SIGNOFF, seen) or GROUP_SIGNOFF
    mac_code = _code(options, "mac_key_exchange_code", None, seen)
    institutions = options.get("institutions", list, [])
    for i, institution in enumerate(institutions):
        if not isinstance(institution, str) or not institution.isdigit() or not 1 <= len(institution) <= 11:
            raise options.error(f"institutions[{i}]", "expected an institution id of 1 to 11 digits")
    institution_field = options.integer("institution_field", INSTITUTION_FIELD, low=2, high=128)
    if institution_field not in (2, 32, 33, 100):
        raise options.error("institution_field", "one of 2, 32, 33, 100 (a numeric variable field)")
    subelement = options.get("key_subelement", str, KEY_SUBELEMENT)
    if len(subelement) != 2 or not subelement.isdigit():
        raise options.error("key_subelement", "expected a 2-digit DE 48 sub-element tag")
    code_page = options.get("code_page", str, DEFAULT_CODE_PAGE)
    problem = code_page_problem(code_page)
    if problem is not None:
        raise options.error("code_page", problem)
    options.done()
    recoder = None if code_page == DEFAULT_CODE_PAGE else Recoder(codec_for(code_page), codec_for(DEFAULT_CODE_PAGE))
    return MastercardLink(link_framing, codes, group_on, group_off, tuple(institutions), institution_field,
                          subelement, mac_code, code_page, recoder)
