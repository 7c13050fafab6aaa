#!/usr/bin/env python3
"""Tiny WHIP/WHEP server on aiortc: a dev tool to prove the test peers work
without onair. Not used by the tests.

  POST /whip/v1            publish; 201, Location /whip/v1/sessions/<id>
  POST /whep/v1/<anything> play the last published video/audio (MediaRelay);
                           201, Location /whep/v1/sessions/<id>
  DELETE <Location>        200 (404 when unknown)

Prints {"event":"listening","port":N} once ready.
"""

import argparse
import asyncio
import json
import uuid

import aioice.ice
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole, MediaRelay

relay = MediaRelay()
published = {}  # kind -> the relayed track of the latest publisher
sessions = {}  # Location path -> RTCPeerConnection


def authorized(request):
    token = request.app["token"]
    return token is None or request.headers.get("Authorization") == f"Bearer {token}"


async def negotiate(request, kind, setup):
    if not authorized(request):
        return web.Response(status=401, text="bad token")
    if request.content_type != "application/sdp":
        return web.Response(status=415, text="expected application/sdp")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    await pc.setRemoteDescription(RTCSessionDescription(sdp=await request.text(), type="offer"))
    setup(pc)
    await pc.setLocalDescription(await pc.createAnswer())
    location = f"/{kind}/v1/sessions/{uuid.uuid4().hex}"
    sessions[location] = pc
    return web.Response(
        status=201,
        text=pc.localDescription.sdp,
        content_type="application/sdp",
        headers={"Location": location},
    )


async def whip(request):
    def setup(pc):
        for transceiver in pc.getTransceivers():
            track = transceiver.receiver.track
            # Keep one relay consumer running so the source never backs up.
            sink = MediaBlackhole()
            sink.addTrack(relay.subscribe(track))
            asyncio.ensure_future(sink.start())
            published[track.kind] = track

    return await negotiate(request, "whip", setup)


async def whep(request):
    def setup(pc):
        for kind in ("video", "audio"):
            if kind in published:
                pc.addTrack(relay.subscribe(published[kind], buffered=False))

    return await negotiate(request, "whep", setup)


async def delete(request):
    pc = sessions.pop(request.path, None)
    if pc is None:
        return web.Response(status=404)
    await pc.close()
    return web.Response(status=200)


async def main(args):
    if args.candidates:  # advertise only these host addresses
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: args.candidates.split(",")
    app = web.Application()
    app["token"] = args.token
    app.router.add_post("/whip/v1", whip)
    app.router.add_post("/whep/v1/{tail:.*}", whep)
    app.router.add_delete("/{kind:whip|whep}/v1/sessions/{id}", delete)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(json.dumps({"event": "listening", "port": port}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.gather(*(pc.close() for pc in sessions.values()))
        await runner.cleanup()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--token", help="require Authorization: Bearer TOKEN")
    p.add_argument("--candidates", help="comma-separated host addresses to offer (default: all)")
    try:
        asyncio.run(main(p.parse_args()))
    except KeyboardInterrupt:
        pass
