"""The Slack fake: the Web API methods mienne-ops's alerts call, as strict as Slack.

Under ``/slack/api/…`` (Slack's own ``https://slack.com/api/<method>`` paths), so `slack_sdk`'s
``WebClient(base_url=…/slack/api/)`` talks to it unchanged:

- ``POST /api/chat.postMessage``: JSON (token in ``Authorization: Bearer``) or form-encoded (token in
  the header or a ``token`` field). Answers as Slack does, HTTP 200 either way:
  ``{"ok": true, "channel": "<id>", "ts": "<ts>", "message": {…}}``, or ``{"ok": false, "error": …}``
  with ``not_authed`` (no token), ``invalid_auth`` (an unknown token), ``token_revoked``,
  ``channel_not_found`` (not the bot's channel, by name ``#mienne-alerts`` or id), ``no_text``
  (neither ``text`` nor ``blocks`` nor ``attachments``), ``msg_too_long`` (text over 40,000
  characters), ``invalid_blocks`` (``blocks`` not a list of objects).
- ``POST /api/auth.test``: who the token is.
- Injected faults: 429 ``{"ok": false, "error": "ratelimited"}`` with ``Retry-After``; 5xx as JSON.

Control plane, under ``/_sandbox/slack``:

- ``GET  /messages``  every message posted, oldest first (also in ``GET /_sandbox/state``)
- ``POST /token``     ``{"revoked": true}``: the bot token now answers ``token_revoked``
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.base import SystemSandbox
from mienne_ops.sandbox.catalog import Catalog

SYSTEM = "slack"
MAX_TEXT = 40_000
BOT = {"bot_id": "B0MIENNE01", "user_id": "U0MIENNE01", "username": "mienne-ops", "team_id": "T0MIENNE01"}


class SlackError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class Sandbox(SystemSandbox):
    name = SYSTEM

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/chat.postMessage", self._method(self.post_message), methods=["POST"]),
            Route("/api/auth.test", self._method(self.auth_test), methods=["POST", "GET"]),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/messages", self._messages, methods=["GET"]),
            Route("/token", self._token, methods=["POST"]),
        ]

    def reset(self, catalog: Catalog) -> None:
        self.world.clear_system(SYSTEM)
        self.world.put(SYSTEM, "meta", "token", {"revoked": False})

    def state(self) -> dict[str, Any]:
        return {"messages": self.messages()}

    def credentials(self) -> dict[str, Any]:
        return dict(credentials.SLACK)

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return JSONResponse(
                {"ok": False, "error": "ratelimited"}, status_code=429, headers={"Retry-After": "1"}
            )
        return JSONResponse({"ok": False, "error": "internal_error"}, status_code=status)

    def messages(self) -> list[dict[str, Any]]:
        return self.world.list(SYSTEM, "message")

    # -- Web API --------------------------------------------------------------------------------
    def _method(self, handler):
        """A Web API method: read the arguments (JSON or form), check the token, answer Slack's way."""

        async def endpoint(request: Request) -> JSONResponse:
            try:
                args, form_token = await _arguments(request)
                self._authenticate(_bearer(request) or form_token)
                return JSONResponse({"ok": True, **handler(args)})
            except SlackError as error:
                return JSONResponse({"ok": False, "error": error.error})

        return endpoint

    def _authenticate(self, token: str | None) -> None:
        if not token:
            raise SlackError("not_authed")
        if token != credentials.SLACK["bot_token"]:
            raise SlackError("invalid_auth")
        if (self.world.get(SYSTEM, "meta", "token") or {}).get("revoked"):
            raise SlackError("token_revoked")

    def auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://mienne-sandbox.slack.com/",
            "team": "Mienne (sandbox)",
            "user": BOT["username"],
            **BOT,
        }

    def post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        text = args.get("text") or ""
        blocks = _blocks(args.get("blocks"))
        if not text and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        if len(str(text)) > MAX_TEXT:
            raise SlackError("msg_too_long")
        ts = f"{int(self.world.now().timestamp())}.{self.world.next_id(f'{SYSTEM}:ts'):06d}"
        message = {
            "type": "message",
            "subtype": "bot_message",
            "text": str(text),
            "ts": ts,
            "bot_id": BOT["bot_id"],
            "username": BOT["username"],
            **({"blocks": blocks} if blocks else {}),
        }
        self.world.put(SYSTEM, "message", ts, {**message, "channel": channel})
        return {"channel": channel, "ts": ts, "message": message}

    def _channel(self, channel: Any) -> str:
        known = credentials.SLACK
        if channel in (known["channel"], known["channel"].lstrip("#"), known["channel_id"]):
            return known["channel_id"]
        raise SlackError("channel_not_found")

    # -- control plane --------------------------------------------------------------------------
    def _messages(self, request: Request) -> JSONResponse:
        return JSONResponse({"messages": self.messages()})

    async def _token(self, request: Request) -> JSONResponse:
        body = json.loads(await request.body() or b"{}")
        if not isinstance(body, dict) or not isinstance(body.get("revoked"), bool):
            raise ValueError('the body is {"revoked": true|false}')
        self.world.put(SYSTEM, "meta", "token", {"revoked": body["revoked"]})
        return JSONResponse({"revoked": body["revoked"]})


async def _arguments(request: Request) -> tuple[dict[str, Any], str | None]:
    """The method's arguments and the form's ``token`` (Slack takes a JSON body's token only from
    the Authorization header)."""
    raw = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = json.loads(raw or b"{}")
        except ValueError as error:
            raise SlackError("invalid_json") from error
        if not isinstance(body, dict):
            raise SlackError("invalid_json")
        return body, None
    form = {key: values[-1] for key, values in parse_qs(raw.decode(), keep_blank_values=True).items()}
    form.update({key: value for key, value in request.query_params.items() if key not in form})
    return form, form.pop("token", None)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _blocks(value: Any) -> list[dict[str, Any]]:
    """Blocks as a list (form bodies carry them as a JSON string); anything else is invalid."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as error:
            raise SlackError("invalid_blocks") from error
    if not isinstance(value, list) or not all(isinstance(block, dict) for block in value):
        raise SlackError("invalid_blocks")
    return value
