"""Store and forward on a real node (issue 11): a reversal never overtakes the stand-in advice of its original,
even across a restart; a silent entry does not hold up the others of its destination; an entry out of attempts
becomes an exception for the operator, with its metrics."""

from __future__ import annotations

from pathlib import Path

import trio

from switch.exchange.reversal import build_reversal, original_data_elements
from switch.model.message import Message
from switch.ops.metrics import registry_for
from switch.runtime.node import Node
from switch.storage.journal import find_exchanges
from switch.storage.saf import SafItem
from tests.integration.harness import PAN, client, issuer, port_of, purchase, running_node, write_config

SILENT_PAN = "4761739001010051"  # the issuer simulator never answers this card
ROUTES = """
default = "issuer"
[destinations.issuer]
links = ["up"]
stand_in = { max_amount = 5000, mti = ["0100", "0200"], processing_codes = ["00", "01"], currency = "840" }
"""


async def _items(node: Node) -> list[SafItem]:
    return await trio.to_thread.run_sync(lambda: node.saf.list_items())


async def _until(check: object, timeout: float = 10) -> None:
    assert callable(check)
    with trio.fail_after(timeout):
        while not await check():
            await trio.sleep(0.02)


def _acquirer_reversal(original: Message) -> Message:
    """The acquirer's 0400 for ``original``: its own STAN and transmission time, field 90 naming the original."""
    rev = build_reversal(original, "68", transmission_time="1122101111")
    rev.fields[11] = f"{(int(str(original[11])) + 500_000) % 1_000_000:06d}"
    rev.fields[37] = "9" + str(original[37])[1:]
    assert rev[90] == original_data_elements(original)
    return rev


async def test_an_acquirers_reversal_after_a_restart_waits_for_the_stand_in_advice_of_its_original(
        tmp_path: Path, db_url: str) -> None:
    async with issuer() as first:
        port = first.port
        # The advice is not due for a minute: the node stops before it leaves, as in the issue.
        conf = write_config(tmp_path, db_url, {"up": port}, ROUTES, saf_delay_ms=60_000)
        async with running_node(conf) as node, client(port_of(node)) as c:
            first.cancel.cancel()  # the issuer goes down: the purchase is stood in for and its advice queued
            with trio.fail_after(5):
                while node.outbound["up"].is_up():
                    await trio.sleep(0.01)
            original = purchase(amount=2500)
            answer = await c.call(original)
            assert (answer[39], str(answer[38])[0]) == ("00", "S")
            (advice,) = await _items(node)
            assert (advice.mti, advice.status) == ("0220", "pending")

    # The node restarts, the issuer is back, and the acquirer (which saw no answer) reverses the purchase.
    async with issuer(port=port) as back, running_node(conf) as node, client(port_of(node)) as c:
        rev = _acquirer_reversal(original)
        answer = await c.call(rev)
        # Accepted by the switch and queued behind the advice, not forwarded past it.
        assert (answer.mti, answer[39]) == ("0410", "00")
        advice, queued = await _items(node)
        # After the restart the switch found what the original was sent upstream as in the journal: the reversal
        # names it (its own STAN is the switch's), so it is held behind that original's advice.
        assert (advice.mti, queued.mti) == ("0220", "0400") and queued.stan != rev[11]
        assert queued.original_key == advice.original_key is not None
        await trio.sleep(0.3)  # several forwarder polls: the advice is not due, so neither is the reversal
        assert back.stats.received["0400"] == 0 and back.stats.received["0220"] == 0

        assert await node.saf_retry(None) == 2  # both are made due; the reversal still follows the advice

        async def both_acked() -> bool:
            return all(i.status == "acked" for i in await _items(node))

        await _until(both_acked)
        advice, queued = await _items(node)
        assert advice.completed_at is not None and queued.last_attempt_at is not None
        assert advice.completed_at <= queued.last_attempt_at  # the advice was answered before it left
        assert (back.stats.received["0220"], back.stats.received["0400"]) == (1, 1)


async def test_an_acquirers_reversal_arriving_while_its_purchase_is_upstream_queues_behind_the_stand_in_advice(
        tmp_path: Path, db_url: str) -> None:
    rules: dict[str, object] = {"rules": [{"action": "drop", "bin": SILENT_PAN}]}
    async with issuer(rules) as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES, timeout_ms=600, saf_delay_ms=60_000)
        async with running_node(conf) as node, client(port_of(node)) as c:
            original = purchase(pan=SILENT_PAN, amount=2500)
            await c.send(original)
            await trio.sleep(0.1)  # the purchase is upstream, unanswered, when the acquirer gives up on it
            rev = _acquirer_reversal(original)
            answer = await c.call(rev)
            # Answered once the purchase has fallen back: held behind its stand-in advice, not sent past it.
            assert (answer.mti, answer[39]) == ("0410", "00")
            stood_in = await c.wait(original)
            assert (stood_in[39], str(stood_in[38])[0]) == ("00", "S")
            assert iss.stats.received["0200"] == 1 and iss.stats.received["0400"] == 0
            advice, queued = await _items(node)
            assert (advice.mti, queued.mti) == ("0221", "0400") and queued.stan != rev[11]
            assert advice.id < queued.id and advice.original_key == queued.original_key is not None


async def test_a_reversal_with_nothing_queued_for_its_original_goes_straight_to_the_issuer(
        tmp_path: Path, db_url: str) -> None:
    async with issuer() as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES)
        async with running_node(conf) as node, client(port_of(node)) as c:
            original = purchase(amount=2500)
            assert (await c.call(original))[39] == "00"
            answer = await c.call(_acquirer_reversal(original))
            assert (answer.mti, answer[39]) == ("0410", "00")
            assert iss.stats.received["0400"] == 1
            assert await _items(node) == []


async def test_a_silent_entry_does_not_hold_up_its_destination_and_becomes_an_exception(
        tmp_path: Path, db_url: str) -> None:
    rules: dict[str, object] = {"rules": [{"action": "drop", "bin": SILENT_PAN}]}
    async with issuer(rules) as iss:
        conf = write_config(tmp_path, db_url, {"up": iss.port}, ROUTES.replace("max_amount = 5000", "max_amount = 1"),
                            timeout_ms=300, saf_delay_ms=0, saf_send_timeout_ms=300, saf_retry_ms=200,
                            saf_max_attempts=3)
        async with running_node(conf) as node, client(port_of(node)) as c:
            silent = purchase(pan=SILENT_PAN, amount=4321)
            assert (await c.call(silent))[39] == "91"  # unanswered: a reversal is queued, which is not answered
            (row,) = await trio.to_thread.run_sync(lambda: find_exchanges(node.engine, stan=str(silent[11])))
            silent_upstream = row.upstream_stan  # the reversal goes under the STAN the purchase was sent with

            async def first_tried() -> bool:
                items = await _items(node)
                return bool(items) and items[0].attempts >= 1

            await _until(first_tried)
            # Another original's reversal, queued behind the silent one, is delivered meanwhile.
            other = purchase(pan=PAN, amount=700)
            await node.saf_queue.enqueue([("up", build_reversal(other, "68", transmission_time="1122101212"), "t2")])

            async def other_acked() -> bool:
                return any(i.stan == other[11] and i.status == "acked" for i in await _items(node))

            await _until(other_acked, timeout=5)
            head = next(i for i in await _items(node) if i.stan == silent_upstream)
            assert head.status in ("pending", "exception")

            async def escalated() -> bool:
                return any(i.stan == silent_upstream and i.status == "exception" for i in await _items(node))

            await _until(escalated)
            head = next(i for i in await _items(node) if i.stan == silent_upstream)
            assert head.attempts == 3
            await trio.sleep(0.5)  # an exception is not retried automatically
            assert (await trio.to_thread.run_sync(node.saf.get, head.id)).attempts == 3  # type: ignore[union-attr]
            registry = registry_for(node)
            assert registry.get_sample_value("bulkhead_saf_exceptions", {"destination": "up"}) == 1
            assert registry.get_sample_value("bulkhead_saf_destination_pending", {"destination": "up"}) == 0
            age = registry.get_sample_value("bulkhead_saf_oldest_age_seconds", {"destination": "up"})
            assert age is not None and age >= 0

            # The operator settles it: the destination's series read 0, they do not vanish (an alert on them would
            # otherwise stay stuck at its last value).
            await trio.to_thread.run_sync(lambda: node.saf.act(head.id, "cancel", actor="ops", reason="settled",
                                                               now=head.created_at))

            async def drained() -> bool:
                return registry_for(node).get_sample_value("bulkhead_saf_exceptions", {"destination": "up"}) == 0

            await _until(drained)
            registry = registry_for(node)
            assert registry.get_sample_value("bulkhead_saf_destination_pending", {"destination": "up"}) == 0
            assert registry.get_sample_value("bulkhead_saf_oldest_age_seconds", {"destination": "up"}) == 0
