"""The SMTP sink: an `aiosmtpd` server on its own port that keeps every mail it is given.

The sandbox's stand-in for the company's mail relay, so email alerts are visible in `make dev` and
asserted in tests. It speaks real SMTP (smtplib talks to it unchanged) and requires ``AUTH`` with the
sandbox credentials (``credentials.SMTP``; a wrong password is ``535``), without TLS. Mail is kept in
the world (it survives a restart of the sandbox and a reset clears it); nothing is relayed.

It listens on ``settings.sandbox_smtp_port()`` when the sandbox is served (`make dev`: 8025), or on a
free port in tests (`SandboxServer.smtp_port`).

Control plane, under ``/_sandbox/mail``:

- ``GET /messages``  every mail received (from, to, subject, body), oldest first; also in
  ``GET /_sandbox/state``
- ``GET /server``    ``{"host", "port"}`` where the SMTP server listens
"""

from __future__ import annotations

import email
import email.policy
import logging
import warnings
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.base import SystemSandbox
from mienne_ops.sandbox.catalog import Catalog

log = logging.getLogger("mienne_ops.sandbox.mail")
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every connection at INFO
SYSTEM = "mail"
HOST = "127.0.0.1"
# AUTH without TLS is what this local sink means to do (it never relays); say nothing per connection.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS", module="aiosmtpd")


class Sandbox(SystemSandbox):
    name = SYSTEM
    #: Where to listen; None: a free port chosen at start (set by the server before it starts).
    port: int | None = None
    _controller: Controller | None = None

    def routes(self) -> list[BaseRoute]:
        return []  # no HTTP API: the system is the SMTP server

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/messages", lambda request: JSONResponse({"messages": self.messages()}), methods=["GET"]),
            Route("/server", self._server, methods=["GET"]),
        ]

    def reset(self, catalog: Catalog) -> None:
        self.world.clear_system(SYSTEM)

    def state(self) -> dict[str, Any]:
        return {"messages": self.messages()}

    def credentials(self) -> dict[str, Any]:
        return {**credentials.SMTP, "host": HOST, "port": self.port}

    def messages(self) -> list[dict[str, Any]]:
        return self.world.list(SYSTEM, "message")

    def start(self) -> None:
        if self.port is None:
            from mienne_ops.sandbox.server import free_port

            self.port = free_port()
        controller = Controller(
            self,
            hostname=HOST,
            port=self.port,
            authenticator=_authenticate,
            auth_required=True,
            auth_require_tls=False,
        )
        try:
            controller.start()
        except Exception:  # e.g. the port is taken: the other fakes still serve; email alerts say why
            log.exception("sandbox SMTP sink could not listen on %s:%s", HOST, self.port)
            return
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook for a mail's content: keep it, answer 250."""
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        number = self.world.next_id(f"{SYSTEM}:message")
        self.world.put(
            SYSTEM,
            "message",
            number,
            {
                "id": number,
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "subject": str(parsed.get("subject", "")),
                "body": body.get_content() if body is not None else "",
                "received_at": self.world.now().isoformat(),
            },
        )
        return "250 Message accepted for delivery"

    def _server(self, request: Request) -> JSONResponse:
        return JSONResponse({"host": HOST, "port": self.port})


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    """Only the sandbox's SMTP user and password log in (535 otherwise, as a relay answers)."""
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    ok = (
        auth_data.login.decode() == credentials.SMTP["username"]
        and auth_data.password.decode() == credentials.SMTP["password"]
    )
    return AuthResult(success=ok, handled=False)
