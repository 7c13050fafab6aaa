#!/usr/bin/env python3
"""Drives LiveKit's official Python server SDK (`livekit-api`, pinned in
requirements.txt) against a server, for onair's compatibility tests
(tests/common/lk_sdk.rs spawns it).

    $PY tests/peers/lk_api.py --url http://127.0.0.1:PORT --key KEY --secret SECRET \\
        [--request-timeout SECONDS]

Long-lived, one asyncio loop and one `api.LiveKitAPI(url, key, secret)` for the
process's life. Reads one JSON command per line on stdin and writes exactly one
JSON line per command on stdout (nothing else goes to stdout; logs go to
stderr). Commands may overlap; replies carry the command's id.

    {"id": 1, "service": "room"|"egress"|"webhook"|"token", "method": "<python method>", "args": [...]}
    -> {"id": 1, "ok": <result>}
    -> {"id": 1, "error": {"name", "message", "status", "code", "metadata", "text"}}

* `room` / `egress`: `lkapi.room.<method>(request)` / `lkapi.egress.<method>(request)`
  with snake_case method names (list_rooms, start_room_composite_egress, ...).
  `args` is `[<request as protojson dict>]` (lowerCamelCase or proto names, enum
  names as strings; unknown fields are an error); the request type is the
  method's annotated parameter type (api.ListRoomsRequest, ...), filled with
  `json_format.ParseDict`. `ok` is `MessageToDict(result,
  preserving_proto_field_name=True, always_print_fields_with_no_presence=True)`:
  snake_case names, enum names, int64 as strings, bytes as base64, defaults
  included (so status EGRESS_STARTING, which is 0, is visible); `null` for
  methods returning None.
* `webhook`: method `receive`, args `[body, auth_header]` ->
  `api.WebhookReceiver(api.TokenVerifier(key, secret)).receive(...)`, the event as above.
* `token`: method `to_jwt`, args `[identity, video_grant, options?]` (grant keys
  snake_case or lowerCamelCase -> api.VideoGrants; options: ttl seconds, name,
  metadata, attributes, kind, sha256, room_preset, room_config); method `verify`,
  args `[jwt]` -> the claims as the SDK's `Claims.asdict()`.
* Errors: the SDK's `ServerError` (alias TwirpError) gives `code` (Twirp code),
  `message` (the server's `msg`), `status` (HTTP status) and `metadata` (`meta`);
  `text` is `str(e)`. Other exceptions give their type name and `str(e)`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import inspect
import json
import logging
import re
import sys
import typing

import aiohttp
from google.protobuf import json_format
from google.protobuf.message import Message
from livekit import api

# stdout carries the replies only: anything else that prints goes to stderr.
REPLIES = sys.stdout
sys.stdout = sys.stderr

log = logging.getLogger("lk_api")


class BadArgument(Exception):
    pass


def to_dict(result: typing.Any) -> typing.Any:
    if result is None:
        return None
    if isinstance(result, Message):
        return json_format.MessageToDict(
            result,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        )
    if isinstance(result, (list, tuple)):
        return [to_dict(item) for item in result]
    if isinstance(result, dict):
        return {key: to_dict(value) for key, value in result.items()}
    if isinstance(result, (str, int, float, bool)):
        return result
    return str(result)


def request_type(method: typing.Callable) -> type[Message]:
    """The request message type of a service method, from its annotations."""
    params = [p for p in inspect.signature(method).parameters.values() if p.name != "self"]
    if len(params) != 1:
        raise BadArgument(f"{method.__name__} does not take one request message")
    hint = typing.get_type_hints(method).get(params[0].name)
    if not (isinstance(hint, type) and issubclass(hint, Message)):
        raise BadArgument(f"{method.__name__}: no request message type ({hint!r})")
    return hint


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Driver:
    def __init__(self, url: str, key: str, secret: str, request_timeout: float | None):
        timeout = aiohttp.ClientTimeout(total=request_timeout) if request_timeout else None
        self.key = key
        self.secret = secret
        self.lkapi = api.LiveKitAPI(url, key, secret, timeout=timeout)
        self.verifier = api.TokenVerifier(key, secret)
        self.webhooks = api.WebhookReceiver(self.verifier)

    async def close(self) -> None:
        await self.lkapi.aclose()

    async def call(self, service: str, method: str, args: list) -> typing.Any:
        if service in ("room", "egress"):
            client = self.lkapi.room if service == "room" else self.lkapi.egress
            fn = getattr(client, method, None) if not method.startswith("_") else None
            if fn is None or not inspect.iscoroutinefunction(fn):
                names = sorted(
                    n
                    for n, f in inspect.getmembers(client, inspect.iscoroutinefunction)
                    if not n.startswith("_")
                )
                raise BadArgument(f"unknown {service} method {method!r} ({', '.join(names)})")
            if len(args) > 1:
                raise BadArgument("args: expected [<request as protojson dict>]")
            body = args[0] if args else {}
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise BadArgument("args[0]: expected an object (the request as protojson)")
            kind = request_type(fn)
            try:
                request = json_format.ParseDict(body, kind())
            except json_format.ParseError as e:
                raise BadArgument(f"args[0] as {kind.DESCRIPTOR.full_name}: {e}") from e
            return to_dict(await fn(request))
        if service == "webhook":
            if method != "receive":
                raise BadArgument(f"unknown webhook method {method!r} (receive)")
            body, auth = (list(args) + [None, None])[:2]
            return to_dict(self.webhooks.receive(body, auth))
        if service == "token":
            if method == "to_jwt":
                return self.token(*args)
            if method == "verify":
                return self.verifier.verify(args[0]).asdict()
            raise BadArgument(f"unknown token method {method!r} (to_jwt, verify)")
        raise BadArgument(f"unknown service {service!r} (room, egress, webhook, token)")

    def token(self, identity: str | None = None, grant: dict | None = None, options: dict | None = None) -> str:
        token = api.AccessToken(self.key, self.secret)
        if identity:
            token.with_identity(identity)
        if grant is not None:
            fields = {f.name for f in dataclasses.fields(api.VideoGrants)}
            values = {snake(k): v for k, v in grant.items()}
            unknown = sorted(set(values) - fields)
            if unknown:
                raise BadArgument(f"grant: unknown fields {unknown}")
            token.with_grants(api.VideoGrants(**values))
        for key, value in (options or {}).items():
            key = snake(key)
            if key == "ttl":
                token.with_ttl(datetime.timedelta(seconds=float(value)))
            elif key == "room_config":
                token.with_room_config(json_format.ParseDict(value, api.RoomConfiguration()))
            elif key in ("name", "metadata", "attributes", "kind", "sha256", "room_preset"):
                getattr(token, f"with_{key}")(value)
            else:
                raise BadArgument(f"options: unknown option {key!r}")
        return token.to_jwt()


def error_json(e: BaseException) -> dict:
    message = getattr(e, "message", None)
    status = getattr(e, "status", None)
    code = getattr(e, "code", None)
    metadata = getattr(e, "metadata", None)
    return {
        "name": type(e).__name__,
        "message": message if isinstance(message, str) else str(e),
        "status": status if isinstance(status, int) else None,
        "code": code if isinstance(code, (str, int)) else None,
        "metadata": metadata if isinstance(metadata, dict) else None,
        "text": str(e),
    }


def reply(obj: dict) -> None:
    REPLIES.write(json.dumps(obj) + "\n")
    REPLIES.flush()


async def handle(driver: Driver, line: str) -> None:
    ident = None
    try:
        try:
            command = json.loads(line)
        except ValueError as e:
            raise BadArgument(f"not JSON: {e}") from e
        if not isinstance(command, dict):
            raise BadArgument("a command is a JSON object")
        ident = command.get("id")
        args = command.get("args") or []
        if not isinstance(args, list):
            raise BadArgument("args: expected an array")
        result = await driver.call(str(command.get("service")), str(command.get("method")), args)
        reply({"id": ident, "ok": result})
    except Exception as e:  # every failure is a reply; the driver lives on
        log.warning("command %s: %s: %s", ident, type(e).__name__, e)
        reply({"id": ident, "error": error_json(e)})


async def main() -> None:
    parser = argparse.ArgumentParser(description="JSON-lines driver for livekit-api")
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--request-timeout", type=float, default=None,
                        help="seconds (default: the SDK's 10 s)")
    opts = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="lk_api: %(levelname)s %(name)s: %(message)s")

    driver = Driver(opts.url, opts.key, opts.secret, opts.request_timeout)
    log.info("livekit-api %s driver for %s ready", api.__version__, opts.url)
    pending: set[asyncio.Task] = set()
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            if not line.strip():
                continue
            task = asyncio.create_task(handle(driver, line))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    finally:
        await driver.close()


if __name__ == "__main__":
    asyncio.run(main())
