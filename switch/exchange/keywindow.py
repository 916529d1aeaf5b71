"""The two-key window of a link's working key (zone PIN key or zone MAC key) across a dynamic key exchange.

A key exchange does not stop the traffic: requests the network sent under the old key are still arriving when the
new one is installed. The window keeps at most two keys per link and kind, the current one and the previous one,
with the instant the current one was activated (``time.perf_counter_ns``, the clock of ``meta.received_ns``):

- a request from the network is read under the key that was current when it was *received*
  (:meth:`KeyWindow.at`): received before the activation, the previous key; after, the current one. The activation
  instant is the receive time of the message that carried the new key (the network's key-exchange request, or its
  answer to ours): a network uses a new key for what it sends after that message, so the link's own byte order
  tells the two keys apart, whatever the HSM's speed;
- a MAC that does not verify under that key is tried under the other one while the window is open
  (``key_window_s``, default 60 s; :meth:`KeyWindow.candidates`): a response to a request we sent under the old key,
  or a message the network MACed a moment before it switched;
- while a key exchange is under way (from the message carrying the new key until the HSM has imported it, or
  refused it) requests received after that message wait for the outcome (:meth:`KeyWindow.pending_for`), so none
  is read under a key about to be replaced.

Sans-I/O: plain values, no clock reads here (the caller passes the instants).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_WINDOW_S = 60.0


@dataclass
class KeyWindow:
    """One link's current and previous key of one kind (an LMK cryptogram each)."""

    current: str
    window_ns: int = int(DEFAULT_WINDOW_S * 1e9)
    previous: str | None = None
    activated_ns: int = 0
    # Set while a key exchange is under way: requests received from this instant on wait for its outcome.
    changing_since_ns: int | None = None

    def at(self, received_ns: int) -> str:
        """The key a request received at ``received_ns`` travels under."""
        previous = self.previous
        if previous is not None and received_ns < self.activated_ns:
            return previous
        return self.current

    def candidates(self, received_ns: int, now_ns: int) -> tuple[str, ...]:
        """The keys to try, in order, for a MAC on a message received at ``received_ns``: the key of its receive
        time first, then the other one while the window (from the activation) is open."""
        first = self.at(received_ns)
        previous = self.previous
        if previous is None or now_ns - self.activated_ns > self.window_ns:
            return (first,)
        return (first, previous if first == self.current else self.current)

    def pending_for(self, received_ns: int) -> bool:
        """Whether a request received at ``received_ns`` must wait for the key exchange under way."""
        since = self.changing_since_ns
        return since is not None and received_ns >= since

    def install(self, key: str, activated_ns: int) -> None:
        """``key`` is current from ``activated_ns``; the current one becomes the previous (an older one is gone)."""
        if key == self.current:  # the same key again (a repeated exchange): nothing moves
            return
        self.previous, self.current, self.activated_ns = self.current, key, activated_ns

    def expired(self, now_ns: int) -> bool:
        """Whether the previous key has outlived the window (it is then dropped by :meth:`forget_previous`)."""
        return self.previous is not None and now_ns - self.activated_ns > self.window_ns

    def forget_previous(self) -> None:
        self.previous = None
