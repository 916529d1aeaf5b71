"""Terminal admission: whether a message from a terminal may go on, decided before routing (atm-interface,
"Terminal admission"). Pure: the engine passes the terminal as its cache holds it.

=================== ================================ =============================================================
terminal            message                          decision
=================== ================================ =============================================================
unknown             anything                         58 unknown terminal
any known           0220/0221, 0420/0421 (advices)   admitted: they report what already happened to cash
closed              anything else                    58 terminal closed
out of service      anything else                    58 terminal out of service (0800 too: sign-on refused)
supervisor mode     0800, 0500                       admitted (a custodian balancing or rekeying the terminal)
supervisor mode     financial requests               58 terminal in supervisor mode
in service          withdrawal, dispenser in fault   58 dispenser fault (last DE 48 ST): no cash can go out
in service          deposit, depository in fault     58 depository fault
in service          anything else                    admitted
=================== ================================ =============================================================

Why advices pass whatever the status: a terminal taken out of service (or closed) while a confirmation or a
reversal sits in its store-and-forward queue still sends it, and refusing it would leave a customer charged for
cash that never came out, or the cassettes counting notes that did. Only an unknown terminal, whose advices
cannot be about anything the host approved, is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from atmp.model import DeviceState, Terminal, TerminalStatus

NOT_PERMITTED = "58"  # transaction not permitted to terminal (ISO 8583:1987 DE 39)
WITHDRAWAL = "01"
DEPOSIT = "21"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused message: the response code and the reason, for the log and the journal."""

    code: str
    reason: str


def admit(terminal: Terminal | None, mti: str, processing_code: str | None) -> Refusal | None:
    """None when the message may go on; otherwise the refusal."""
    if terminal is None:
        return Refusal(NOT_PERMITTED, "unknown terminal")
    if mti[1:3] in ("22", "42"):
        return None
    status = terminal.status
    if status is TerminalStatus.CLOSED:
        return Refusal(NOT_PERMITTED, "terminal closed")
    if status is TerminalStatus.OUT_OF_SERVICE:
        return Refusal(NOT_PERMITTED, "terminal out of service")
    if status is TerminalStatus.SUPERVISOR:
        if mti[:2] in ("08", "05"):
            return None
        return Refusal(NOT_PERMITTED, "terminal in supervisor mode")
    transaction = (processing_code or "")[:2]
    if transaction == WITHDRAWAL and terminal.device.dispenser is DeviceState.FAULT:
        return Refusal(NOT_PERMITTED, "dispenser fault")
    if transaction == DEPOSIT and terminal.device.depository is DeviceState.FAULT:
        return Refusal(NOT_PERMITTED, "depository fault")
    return None
