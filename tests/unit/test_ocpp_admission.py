"""The OCPP endpoint's password throttle, in virtual time: guesses are bounded, the right password gets in."""

from __future__ import annotations

from support.clock import ManualClock

from drivers.ocpp.admission import AdmissionLimits, AuthThrottle

LIMITS = AdmissionLimits()


def guess(throttle: AuthThrottle, identity: str, address: str) -> bool:
    """One wrong attempt; True if its password was checked."""
    if not throttle.may_check(identity, address):
        return False
    throttle.failed(address)
    return True


def test_one_address_gets_a_handful_of_guesses_then_one_a_minute() -> None:
    clock = ManualClock()
    throttle = AuthThrottle(clock)
    checked = 0
    for _ in range(60):  # 906 guesses a second in the issue: here one second's worth of them, 60 s long
        for _ in range(906):
            checked += guess(throttle, "CP-1", "10.0.0.9")
        clock.advance(1)
    assert checked <= LIMITS.per_address_burst + 1
    assert throttle.may_check("CP-1", "10.0.0.10")  # another address is not held up


def test_many_addresses_exhaust_the_endpoint_and_the_right_charger_still_gets_in() -> None:
    clock = ManualClock()
    throttle = AuthThrottle(clock)
    throttle.succeeded("CP-1", "10.0.0.1")  # the charger's usual address
    checked = 0
    for second in range(120):
        for n in range(300):  # 300 addresses guessing at once
            checked += guess(throttle, "CP-1", f"192.168.{second % 2}.{n}")
        # the real charger, every second: at its usual address it is always checked at once
        assert throttle.may_check("CP-1", "10.0.0.1")
        clock.advance(1)
    # at most the burst, a second's refill, and one per identity per trickle in lockdown
    assert checked <= LIMITS.overall_burst + 120 * LIMITS.overall_per_s + 120 / LIMITS.trickle_s + 1
    # a charger back at a new address during the attack: checked within one trickle of its identity
    waited = 0.0
    while not throttle.may_check("CP-2", "10.0.0.77"):
        clock.advance(1)
        waited += 1
    assert waited <= LIMITS.trickle_s
