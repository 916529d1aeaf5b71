"""Operations per second of the software HSM for the functions behind CA, CC, DC, CY, M6 and KQ.

Run ``python -m bench.hsm_ops [--seconds S]``. Keys are generated under the public Thales test LMK; each
operation runs repeatedly for about S seconds on one core and the rate is printed. Figures only: nothing is
asserted (wall-clock numbers depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from hsm import emv, pinblock
from hsm.cipher import tdes_encrypt
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk
from hsm.software import SoftwareHsm

PAN = "4761739001010010"
ACCOUNT = PAN[-13:-1]


def _operations(hsm: SoftwareHsm, codec: KeyCodec) -> dict[str, tuple[str, Callable[[], object]]]:
    tpk_clear = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    tpk = codec.to_lmk("002", ClearKey(tpk_clear), "U")
    zpk_a = hsm.generate_key("001", "U").under_lmk
    zpk_b = hsm.generate_key("001", "U").under_lmk
    pvk = hsm.generate_key("002", "U").under_lmk
    cvk = hsm.generate_key("402", "U").under_lmk
    tak = hsm.generate_key("003", "U").under_lmk
    mk_clear = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    mk_ac = codec.to_lmk("109", ClearKey(mk_clear), "U")

    tpk_block = tdes_encrypt(tpk_clear, pinblock.encode(0, "1234", ACCOUNT)).hex().upper()
    zpk_block = hsm.translate_pin_tpk_to_zpk(tpk, zpk_a, tpk_block, "01", "01", ACCOUNT).pin_block
    pvv = hsm.generate_pvv("002", tpk, pvk, tpk_block, "01", ACCOUNT, 1)
    cvv = hsm.generate_cvv(cvk, PAN, "2912", "101")
    message = bytes(range(256))
    arqc_data = bytes(range(37))
    icc = emv.icc_master_key(mk_clear, PAN, "01")
    arqc = emv.application_cryptogram(emv.ac_session_key(18, icc, "0012", None), arqc_data, 2).hex()

    return {
        "CA": ("translate PIN TPK->ZPK (format 01->01)",
               lambda: hsm.translate_pin_tpk_to_zpk(tpk, zpk_a, tpk_block, "01", "01", ACCOUNT)),
        "CC": ("translate PIN ZPK->ZPK (format 01->47)",
               lambda: hsm.translate_pin_zpk_to_zpk(zpk_a, zpk_b, zpk_block, "01", "47", ACCOUNT)),
        "DC": ("verify PIN, VISA PVV (TPK)",
               lambda: hsm.verify_pin_pvv("002", tpk, pvk, tpk_block, "01", ACCOUNT, 1, pvv)),
        "CY": ("verify CVV", lambda: hsm.verify_cvv(cvk, PAN, "2912", "101", cvv)),
        "M6": ("generate MAC, X9.19, 256 bytes", lambda: hsm.generate_mac("003", tak, message)),
        "KQ": ("verify ARQC, Visa CVN 18 + ARPC",
               lambda: (hsm.verify_arqc(mk_ac, 18, PAN, "01", "0012", arqc_data, arqc),
                        hsm.generate_arpc(mk_ac, 18, PAN, "01", "0012", arqc, csu="00820000"))),
    }


def _rate(operation: Callable[[], object], seconds: float) -> float:
    operation()  # warm caches (LMK variants, cipher objects) before timing
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            operation()
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per operation (default 1)")
    args = parser.parse_args(argv)
    lmk = Lmk.thales_test()
    hsm = SoftwareHsm(lmk)
    print(f"software HSM, test LMK {lmk.check_value()[:6]}, {args.seconds:g} s per operation, one thread")
    print(f"{'cmd':<4} {'operation':<42} {'ops/s':>10} {'us/op':>8}")
    for command, (label, operation) in _operations(hsm, KeyCodec(lmk)).items():
        rate = _rate(operation, args.seconds)
        print(f"{command:<4} {label:<42} {rate:>10,.0f} {1e6 / rate:>8.1f}")


if __name__ == "__main__":
    main()
