"""Money on the wire: ISO 4217 currency codes and the ISO 8583:1987 amount fields a cell answers with.

Inside a cell money is always ``int`` minor units plus an ISO 4217 alpha code. The wire speaks numeric codes
(DE 49, 50, 51) and fixed-width digit strings (DE 4, 6, 28, 54, 95); this module converts between the two.

Sources: ISO 4217 (list one: every current code with its minor-unit exponent); ISO 8583:1987 field formats
(DE 28 ``x+n8``, DE 54 ``an..120``: repeated 20-character additional amounts).
"""

from __future__ import annotations

from decimal import Decimal

from switch.model.errors import BulkheadError


class CurrencyError(BulkheadError):
    """A currency code that is not in the ISO 4217 table (or has no minor unit)."""


# ISO 4217 list one (the current currency and funds codes, SIX as maintenance agency), as of September 2026:
# alpha code -> (numeric code, minor-unit exponent). Every current code, not only those a bank here is likely to
# see: a cardholder abroad pays in any of them, and an advice in one the cell cannot price is answered 96 until
# the operator gives it a rate (``[rates]`` in products.toml takes any code of this table). Withdrawn codes are
# not here (HRK 2023, ANG 2025 for XCG, BGN 2026 for EUR, ...): a DE 49 in one is a format error on a request, and
# an advice in one is posted from DE 6 / DE 51 or answered 96 (processors.engine.rules.resolve_amount).
ISO_4217: dict[str, tuple[str, int]] = {
    "AED": ("784", 2), "AFN": ("971", 2), "ALL": ("008", 2), "AMD": ("051", 2), "AOA": ("973", 2), "ARS": ("032", 2),
    "AUD": ("036", 2), "AWG": ("533", 2), "AZN": ("944", 2), "BAM": ("977", 2), "BBD": ("052", 2), "BDT": ("050", 2),
    "BHD": ("048", 3), "BIF": ("108", 0), "BMD": ("060", 2), "BND": ("096", 2), "BOB": ("068", 2), "BOV": ("984", 2),
    "BRL": ("986", 2), "BSD": ("044", 2), "BTN": ("064", 2), "BWP": ("072", 2), "BYN": ("933", 2), "BZD": ("084", 2),
    "CAD": ("124", 2), "CDF": ("976", 2), "CHE": ("947", 2), "CHF": ("756", 2), "CHW": ("948", 2), "CLF": ("990", 4),
    "CLP": ("152", 0), "CNY": ("156", 2), "COP": ("170", 2), "COU": ("970", 2), "CRC": ("188", 2), "CUP": ("192", 2),
    "CVE": ("132", 2), "CZK": ("203", 2), "DJF": ("262", 0), "DKK": ("208", 2), "DOP": ("214", 2), "DZD": ("012", 2),
    "EGP": ("818", 2), "ERN": ("232", 2), "ETB": ("230", 2), "EUR": ("978", 2), "FJD": ("242", 2), "FKP": ("238", 2),
    "GBP": ("826", 2), "GEL": ("981", 2), "GHS": ("936", 2), "GIP": ("292", 2), "GMD": ("270", 2), "GNF": ("324", 0),
    "GTQ": ("320", 2), "GYD": ("328", 2), "HKD": ("344", 2), "HNL": ("340", 2), "HTG": ("332", 2), "HUF": ("348", 2),
    "IDR": ("360", 2), "ILS": ("376", 2), "INR": ("356", 2), "IQD": ("368", 3), "IRR": ("364", 2), "ISK": ("352", 0),
    "JMD": ("388", 2), "JOD": ("400", 3), "JPY": ("392", 0), "KES": ("404", 2), "KGS": ("417", 2), "KHR": ("116", 2),
    "KMF": ("174", 0), "KPW": ("408", 2), "KRW": ("410", 0), "KWD": ("414", 3), "KYD": ("136", 2), "KZT": ("398", 2),
    "LAK": ("418", 2), "LBP": ("422", 2), "LKR": ("144", 2), "LRD": ("430", 2), "LSL": ("426", 2), "LYD": ("434", 3),
    "MAD": ("504", 2), "MDL": ("498", 2), "MGA": ("969", 2), "MKD": ("807", 2), "MMK": ("104", 2), "MNT": ("496", 2),
    "MOP": ("446", 2), "MRU": ("929", 2), "MUR": ("480", 2), "MVR": ("462", 2), "MWK": ("454", 2), "MXN": ("484", 2),
    "MXV": ("979", 2), "MYR": ("458", 2), "MZN": ("943", 2), "NAD": ("516", 2), "NGN": ("566", 2), "NIO": ("558", 2),
    "NOK": ("578", 2), "NPR": ("524", 2), "NZD": ("554", 2), "OMR": ("512", 3), "PAB": ("590", 2), "PEN": ("604", 2),
    "PGK": ("598", 2), "PHP": ("608", 2), "PKR": ("586", 2), "PLN": ("985", 2), "PYG": ("600", 0), "QAR": ("634", 2),
    "RON": ("946", 2), "RSD": ("941", 2), "RUB": ("643", 2), "RWF": ("646", 0), "SAR": ("682", 2), "SBD": ("090", 2),
    "SCR": ("690", 2), "SDG": ("938", 2), "SEK": ("752", 2), "SGD": ("702", 2), "SHP": ("654", 2), "SLE": ("925", 2),
    "SOS": ("706", 2), "SRD": ("968", 2), "SSP": ("728", 2), "STN": ("930", 2), "SVC": ("222", 2), "SYP": ("760", 2),
    "SZL": ("748", 2), "THB": ("764", 2), "TJS": ("972", 2), "TMT": ("934", 2), "TND": ("788", 3), "TOP": ("776", 2),
    "TRY": ("949", 2), "TTD": ("780", 2), "TWD": ("901", 2), "TZS": ("834", 2), "UAH": ("980", 2), "UGX": ("800", 0),
    "USD": ("840", 2), "USN": ("997", 2), "UYI": ("940", 0), "UYU": ("858", 2), "UYW": ("927", 4), "UZS": ("860", 2),
    "VED": ("926", 2), "VES": ("928", 2), "VND": ("704", 0), "VUV": ("548", 0), "WST": ("882", 2), "XAD": ("396", 2),
    "XAF": ("950", 0), "XCD": ("951", 2), "XCG": ("532", 2), "XOF": ("952", 0), "XPF": ("953", 0), "YER": ("886", 2),
    "ZAR": ("710", 2), "ZMW": ("967", 2), "ZWG": ("924", 2),
}
# The codes of list one whose minor unit is "N.A." (funds, bond-market units, precious metals, testing, XXX "no
# currency"): an amount in one has no minor units to count, so no account is kept and no rate is taken in one
# (an advice with such a DE 49 is posted only from DE 6 / DE 51); known here to say so in errors.
NO_MINOR_UNIT: dict[str, str] = {
    "XAG": "961", "XAU": "959", "XBA": "955", "XBB": "956", "XBC": "957", "XBD": "958", "XDR": "960",
    "XPD": "964", "XPT": "962", "XSU": "994", "XTS": "963", "XUA": "965", "XXX": "999",
}
_BY_NUMERIC: dict[str, str] = {numeric: alpha for alpha, (numeric, _) in ISO_4217.items()}

# ISO 8583 amounts are 12 digits (DE 4, 6, 54, 95); fees 8 (DE 28).
MAX_AMOUNT = 10**12 - 1
MAX_FEE = 10**8 - 1

# DE 54 amount types (ISO 8583:1987 annex, positions 3-4 of each additional amount).
LEDGER_BALANCE = "01"
AVAILABLE_BALANCE = "02"


def unknown(code: str) -> CurrencyError:
    """The error for a code outside :data:`ISO_4217`, saying why when it is one of :data:`NO_MINOR_UNIT`."""
    if code in NO_MINOR_UNIT:
        return CurrencyError(f"{code} has no minor unit in ISO 4217 (a fund, metal or testing code): no amount is "
                             "counted in it")
    return CurrencyError(f"unknown currency {code!r}: not a current ISO 4217 code")


def numeric(alpha: str) -> str:
    """ISO 4217 numeric code of an alpha code (``"USD"`` -> ``"840"``)."""
    try:
        return ISO_4217[alpha][0]
    except KeyError:
        raise unknown(alpha) from None


def alpha(code: str) -> str | None:
    """The alpha code for a numeric (``"840"``) or alpha (``"USD"``) code of :data:`ISO_4217`; None otherwise."""
    if code in ISO_4217:
        return code
    return _BY_NUMERIC.get(code)


def exponent(alpha_code: str) -> int:
    """Minor-unit exponent (USD 2, JPY 0, KWD 3)."""
    try:
        return ISO_4217[alpha_code][1]
    except KeyError:
        raise unknown(alpha_code) from None


def parse_amount(text: str | None) -> int | None:
    """A DE 4/6 style amount (up to 12 digits) as minor units; None when absent or not digits."""
    if not text or len(text) > 12 or not text.isdigit():
        return None
    return int(text)


def additional_amount(account_type: str, amount_type: str, currency_alpha: str, value: int) -> str:
    """One 20-character DE 54 additional amount: account type 2n, amount type 2n, currency 3n, sign C/D
    (C = a credit balance, the cardholder's money), amount 12n (ISO 8583:1987 DE 54)."""
    sign = "C" if value >= 0 else "D"
    return f"{account_type}{amount_type}{numeric(currency_alpha)}{sign}{min(abs(value), MAX_AMOUNT):012d}"


def balances_field(account_type: str, currency_alpha: str, ledger: int, available: int) -> str:
    """DE 54 with the ledger (01) and available (02) balances of one account."""
    return (additional_amount(account_type, LEDGER_BALANCE, currency_alpha, ledger)
            + additional_amount(account_type, AVAILABLE_BALANCE, currency_alpha, available))


def parse_additional_amounts(text: str) -> list[tuple[str, str, str, int]]:
    """DE 54 back into (account type, amount type, currency alpha, signed amount) tuples (tests, tooling)."""
    if len(text) % 20:
        raise ValueError("DE 54 is a sequence of 20-character additional amounts")
    out = []
    for i in range(0, len(text), 20):
        part = text[i:i + 20]
        cur = alpha(part[4:7])
        if cur is None or part[7] not in "CD" or not part[8:].isdigit():
            raise ValueError(f"malformed additional amount at offset {i}")
        value = int(part[8:])
        out.append((part[:2], part[2:4], cur, value if part[7] == "C" else -value))
    return out


def at_rate(value: int, billed: int, requested: int) -> int:
    """``value``, an amount in the transaction currency (DE 49), in the cardholder billing currency by the
    transaction's own rate: DE 6 (``billed``) / DE 4 (``requested``), rounded half up to the billing currency's
    minor unit. The one conversion for every amount that comes in DE 49's currency (DE 28, DE 95), so that a
    value equal to DE 4 gives exactly DE 6. ``requested`` must be positive."""
    return (2 * value * billed + requested) // (2 * requested)


def rate_ratio(rate: Decimal, source: str, target: str) -> tuple[int, int]:
    """A rate in major units (``rate`` units of ``target`` per unit of ``source``, as a rate sheet quotes it) as
    the integer pair (billed, requested) :func:`at_rate` takes, so that ``at_rate(value, *ratio)`` is ``value``
    minor units of ``source`` in minor units of ``target``, rounded half up: exactly, with no float on the way.
    EUR/USD 1.085 -> (1085, 1000); JPY/USD 0.0067 -> (67, 100) (JPY has no minor unit, USD two)."""
    sign, digits, power = rate.as_tuple()
    if sign or not isinstance(power, int) or not rate:
        raise ValueError(f"not a positive finite rate: {rate}")
    whole = int("".join(map(str, digits)))
    # rate = whole * 10**power, and minor(target) = value / 10**e(source) * rate * 10**e(target)
    shift = power + exponent(target) - exponent(source)
    return (whole * 10**shift, 1) if shift >= 0 else (whole, 10**-shift)


def fee_field(fee: int) -> str:
    """DE 28 (amount, transaction fee, ``x+n8``): ``D`` + 8 digits for a fee debited to the cardholder,
    ``C`` for one credited (ISO 8583:1987: the sign says which way the fee moves for the card account)."""
    return f"{'D' if fee >= 0 else 'C'}{min(abs(fee), MAX_FEE):08d}"


def format_amount(value: int, currency: str) -> str:
    """Minor units as people read them: major units with thousands separators and the currency's own number of
    decimals (ISO 4217 exponent), then the alphabetic code: ``123456`` CNY -> ``"1,234.56 CNY"``, ``1500`` JPY ->
    ``"1,500 JPY"``, ``-5`` USD -> ``"-0.05 USD"``. A code outside the table is shown in minor units, and says so
    (``"1234 minor units of XXX"``), rather than with a guessed exponent."""
    places = ISO_4217.get(currency, (None, None))[1]
    if places is None:
        return f"{value} minor units of {currency or '?'}"
    whole, fraction = divmod(abs(value), 10**places)
    text = f"{whole:,}" + (f".{fraction:0{places}d}" if places else "")
    return f"{'-' if value < 0 else ''}{text} {currency}"
