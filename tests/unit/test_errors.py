"""One error tree for the gateway: every exception class the gateway defines descends from ``GatewayError`` (the
one signal that is not an error is named), and errors are told apart by class, never by class name."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import gateway
from drivers.errors import DeviceTimeout, DriverError
from gateway.errors import GatewayError
from gateway.faces.ocpp.client import ResetRequested
from gateway.faces.web.middleware import _TooLarge
from gateway.runtime.supervisor import _reason

NOT_ERRORS: set[type[BaseException]] = {ResetRequested, _TooLarge}
"""Signals, not errors: a Reset carried out (reconnect), a request body past the limit (answered 413)."""


def gateway_exceptions() -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for info in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__.startswith("gateway."):
                found.add(value)
    return found


def test_every_gateway_error_descends_from_gateway_error() -> None:
    found = gateway_exceptions()
    assert len(found) > 15
    strays = sorted(c.__qualname__ for c in found - NOT_ERRORS if not issubclass(c, GatewayError))
    assert strays == []


def test_a_drivers_own_kind_of_timeout_reads_as_a_timeout() -> None:
    class LateAnswer(DeviceTimeout):
        """A driver's refinement: its class name is not one the gateway knows."""

    assert _reason(LateAnswer("slow")) == "timeout"
    assert _reason(DriverError("odd")) == "odd"
