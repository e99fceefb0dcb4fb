"""How many password guesses the OCPP endpoint checks, and why the right password still gets in promptly.

Every wrong password (or unknown identity) costs a token from two buckets: the address's own (``per_address``:
5, then one per minute) and the endpoint's (``overall``: 30, then one a second). A connection attempt whose
password is checked needs a token in its address's bucket; when that is empty the attempt gets HTTP 429 without
being checked, so one address gets a handful of guesses and then one a minute.

When the endpoint's bucket is empty (many addresses guessing at once) the endpoint is in lockdown, and an attempt
is checked only if

* its (identity, address) pair authenticated successfully before (``trusted``): a charger at the address it has
  used is never delayed by anybody else's failures;
* or its identity's ``trickle`` is due: each identity may have one attempt checked every ``trickle_s`` seconds
  from any address, so a charger that comes back at a new address is let in within ``trickle_s`` plus its own
  retry interval, unless the attackers guess at that very identity (then they share its trickle with it).

Checked guesses are so bounded by 5 per address plus one per address per minute, by 30 plus one a second over the
endpoint, and in lockdown by one per identity per ``trickle_s``. Pure: the caller passes a monotonic clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from drivers.ocpp.throttle import TokenBucket


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    per_address_burst: int = 5
    per_address_per_s: float = 1 / 60
    overall_burst: int = 30
    overall_per_s: float = 1.0
    trickle_s: float = 10.0
    """In lockdown, one checked attempt per identity per this many seconds."""
    remembered: int = 10_000
    """Addresses (and trusted pairs) kept; the least recently seen are forgotten first."""


DEFAULT_LIMITS = AdmissionLimits()


class AuthThrottle:
    def __init__(self, clock: Callable[[], float], limits: AdmissionLimits = DEFAULT_LIMITS) -> None:
        self._clock = clock
        self.limits = limits
        self._addresses: OrderedDict[str, TokenBucket] = OrderedDict()
        self._overall = TokenBucket(limits.overall_per_s, limits.overall_burst)
        self._trusted: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._trickle: dict[str, float] = {}
        self.refused = 0
        """Attempts answered without their password being checked."""
        self.failures = 0

    def _bucket(self, address: str) -> TokenBucket:
        bucket = self._addresses.get(address)
        if bucket is None:
            bucket = TokenBucket(self.limits.per_address_per_s, self.limits.per_address_burst)
            self._addresses[address] = bucket
            while len(self._addresses) > self.limits.remembered:
                self._addresses.popitem(last=False)
        else:
            self._addresses.move_to_end(address)
        return bucket

    def may_check(self, identity: str, address: str) -> bool:
        """Whether this attempt's credentials are checked (False: refuse it unchecked, HTTP 429)."""
        now = self._clock()
        allowed = self._may_check(identity, address, now)
        if not allowed:
            self.refused += 1
        return allowed

    def _may_check(self, identity: str, address: str, now: float) -> bool:
        if self._bucket(address).wait_s(now) > 0:
            return False
        if self._overall.wait_s(now) == 0 or (identity, address) in self._trusted:
            return True
        if now - self._trickle.get(identity, -float("inf")) >= self.limits.trickle_s:
            self._trickle[identity] = now
            return True
        return False

    def failed(self, address: str) -> None:
        """A checked attempt from ``address`` was wrong."""
        now = self._clock()
        self.failures += 1
        self._bucket(address).take(now)
        self._overall.take(now)

    def succeeded(self, identity: str, address: str) -> None:
        self._trusted[(identity, address)] = None
        self._trusted.move_to_end((identity, address))
        while len(self._trusted) > self.limits.remembered:
            self._trusted.popitem(last=False)
