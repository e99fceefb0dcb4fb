"""The one error tree of the gateway (the drivers library has its own: ``drivers.errors``).

Callers decide by class, never by message or class name. Each concrete error lives next to the code that raises
it; this module holds the base and the families, so that ``except GatewayError`` catches everything the gateway
itself raises, and a family says what the caller should do. Where an error used to be a ``ValueError``,
``RuntimeError`` or ``ConnectionError`` it still is one, so existing handlers keep working.

    GatewayError
    ├── InputError (ValueError)           bad input, refused; nothing changed. Tell whoever sent it.
    │   ├── site.config.ConfigError           a site file or proposed change breaks a rule (lists every issue)
    │   ├── runtime.commands.CommandRejected  a command from a face breaks a rule
    │   └── faces.ocpp.payload.PayloadError   an OCPP payload breaks the message format (answered with CALLERROR)
    ├── faces.web.auth.AuthError          a request the installer's credentials do not cover (carries the HTTP status)
    ├── StateError (ValueError)           persisted state cannot be read; a person must look at the file
    │   ├── faces.ocpp.sessions.SessionStateError
    │   ├── faces.ocpp.config_keys.ConfigurationStateError
    │   └── faces.ocpp.smart_charging.StoreFormatError
    ├── site.store.StoreError (RuntimeError)  persisted state cannot be written (permissions, disk full)
    ├── StoppedError (RuntimeError)       a part that ran stopped by itself; the task supervisor starts it again
    │   ├── faces.web.server.WebServerEnded   the page's HTTP server stopped serving
    │   └── faces.bms.server.BmsLineLost      the BMS face's serial port went away
    ├── StartError (RuntimeError)         a part cannot start; the gateway does not run half-configured
    │   ├── cli.run.StateDirError             the state directory cannot be used
    │   ├── faces.web.server.WebStartError    address in use, unreadable certificate
    │   ├── faces.bms.server.BmsStartError    address in use, serial port missing
    │   ├── faces.ocpp.security.SecuritySetupError   password or certificate cannot be loaded
    │   ├── i18n.catalog.CatalogError         the English message catalog cannot be read (a damaged package)
    │   └── sim.bench.optimum.SolverMissing   the benchmark's LP solver is not installed
    └── PeerError                         a device or central system failed us; try again later
        ├── runtime.follower_probe.ProbeFailed   a device probed from the web page did not answer sensibly
        ├── faces.ocpp.rpc.RpcError           answer (or was answered) with a CALLERROR
        │   └── faces.ocpp.rpc.CallErrorReceived
        ├── faces.ocpp.rpc.ConnectionLost (ConnectionError)   the connection closed while a call waited
        ├── faces.ocpp.client.BootRejected    the central system did not accept our BootNotification
        ├── faces.ocpp.outbox.OutboxFull      only transaction messages are pending and the bound is reached
        └── sim.csms.CallFailed               the test central system's call was refused or not answered

Two signals stay outside this tree because they are not errors: ``faces.ocpp.client.ResetRequested`` (a Reset was
carried out: reconnect and boot again) and ``faces.web.middleware._TooLarge`` (a request body past the limit, a
BaseException so that it reaches the middleware that answers 413).
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises."""


class InputError(GatewayError, ValueError):
    """Input broke a rule and was refused; nothing changed. The message says which rule, in the sender's words."""


class StateError(GatewayError, ValueError):
    """Persisted state cannot be read; it is never silently reset."""


class StoppedError(GatewayError, RuntimeError):
    """A part that was running stopped by itself: raised by its task, so the task supervisor logs it, shows FAULT
    and starts the part again."""


class StartError(GatewayError, RuntimeError):
    """A part of the gateway cannot start; the message says what and where."""


class PeerError(GatewayError):
    """A device or a central system failed to answer as it should; retrying later may help."""
