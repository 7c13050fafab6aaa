#!/usr/bin/env python3
"""WHIP (RFC 9725) publisher built on aiortc, used by onair's integration tests.

Publishes a synthetic camera (solid colour plus a small white square moving along
the top band, deterministic) and a sine tone, then ends the session with DELETE.
Progress is printed to stdout as JSON lines:
  {"event":"created","location":...}  {"event":"connected"}  {"event":"done",...}
  {"event":"error",...}
Exit codes: 0 ok, 1 connection failed / not connected within 10 s, 2 HTTP error.
See tests/peers/README.md.
"""

import argparse
import asyncio
import fractions
import json
import signal
import sys
import time
from urllib.parse import urljoin

import aiohttp
import aioice.ice
import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

CONNECT_TIMEOUT = 10.0
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960  # 20 ms
VIDEO_CLOCK = 90000


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


# aioice never gathers 127.0.0.1. Offer it too, so that a server that only
# advertises 127.0.0.1 from a socket bound to 0.0.0.0 (which answers checks sent
# from the interface address with that address, failing aioice's source check)
# still gets a working loopback pair.
_host_addresses = aioice.ice.get_host_addresses


def _host_addresses_with_loopback(use_ipv4, use_ipv6):
    addresses = _host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    if use_ipv4 and "127.0.0.1" not in addresses:
        addresses.append("127.0.0.1")
    return addresses


aioice.ice.get_host_addresses = _host_addresses_with_loopback


class Pacer:
    """Sleeps so that the n-th item is released n * period after the first."""

    def __init__(self, period):
        self.period = period
        self.start = None
        self.count = 0

    async def next(self):
        if self.start is None:
            self.start = time.monotonic()
        delay = self.start + self.count * self.period - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self.count += 1
        return self.count - 1


def rgb_to_yuv(rgb):
    """The colour's Y, U, V as swscale converts it (the receiver converts back)."""
    image = np.full((16, 16, 3), rgb, dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    planes = frame.to_ndarray()  # (24, 16): Y rows, then U and V packed
    return int(planes[0, 0]), int(planes[16, 0]), int(planes[20, 0])


class PatternVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, width, height, fps, rgb):
        super().__init__()
        self.width, self.height = width, height
        self.pacer = Pacer(1 / fps)
        self.fps = fps
        y, u, v = rgb_to_yuv(rgb)
        self.y = np.full((height, width), y, dtype=np.uint8)
        chroma = np.empty(width * height // 2, dtype=np.uint8)
        chroma[: width * height // 4] = u
        chroma[width * height // 4 :] = v
        self.chroma = chroma.reshape(height // 2, width)
        self.square = max(16, height // 8) // 2 * 2
        self.top = max(2, height // 16) // 2 * 2  # stays clear of the centre region

    async def recv(self):
        n = await self.pacer.next()
        s = self.square
        x = (n * 4) % (self.width - s) // 2 * 2
        y = self.y.copy()
        y[self.top : self.top + s, x : x + s] = 235  # white: Y=235, U=V=128
        chroma = self.chroma.copy()
        u = chroma[: self.height // 4].reshape(self.height // 2, self.width // 2)
        v = chroma[self.height // 4 :].reshape(self.height // 2, self.width // 2)
        for plane in (u, v):
            plane[self.top // 2 : (self.top + s) // 2, x // 2 : (x + s) // 2] = 128
        frame = av.VideoFrame.from_ndarray(np.vstack([y, chroma]), format="yuv420p")
        frame.pts = round(n * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """48 kHz mono s16 in 20 ms frames: a sine at `hz` (-12 dBFS), or silence."""

    kind = "audio"

    def __init__(self, hz):
        super().__init__()
        self.hz = hz
        self.pacer = Pacer(AUDIO_SAMPLES / AUDIO_RATE)

    async def recv(self):
        n = await self.pacer.next()
        if self.hz > 0:
            t = (np.arange(AUDIO_SAMPLES) + n * AUDIO_SAMPLES) / AUDIO_RATE
            samples = (0.25 * 32767 * np.sin(2 * np.pi * self.hz * t)).astype(np.int16)
        else:
            samples = np.zeros(AUDIO_SAMPLES, dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = n * AUDIO_SAMPLES
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


def video_codec_preferences(name):
    mime = {"vp8": "video/VP8", "h264": "video/H264"}[name]
    codecs = RTCRtpSender.getCapabilities("video").codecs
    return [c for c in codecs if c.mimeType == mime] + [
        c for c in codecs if c.mimeType == "video/rtx"
    ]


async def first(*events, timeout):
    """Waits for the first of `events` to be set; returns it (None on timeout)."""
    waiters = {asyncio.ensure_future(e.wait()): e for e in events}
    done, pending = await asyncio.wait(
        waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    return waiters[done.pop()] if done else None


async def publish(args):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: offline
    connected, failed, stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)

    @pc.on("connectionstatechange")
    def on_state():
        if pc.connectionState == "connected":
            connected.set()
        elif pc.connectionState in ("failed", "closed"):
            failed.set()

    if not args.no_video:
        track = PatternVideoTrack(args.width, args.height, args.fps, args.color)
        transceiver = pc.addTransceiver(track, direction="sendonly")
        if args.video_codec:
            transceiver.setCodecPreferences(video_codec_preferences(args.video_codec))
    if not args.no_audio:
        pc.addTransceiver(ToneAudioTrack(args.tone), direction="sendonly")

    # aiortc gathers all candidates here; the offer is complete (no trickle).
    await pc.setLocalDescription(await pc.createOffer())
    if args.debug:
        print(f"--- offer\n{pc.localDescription.sdp}", file=sys.stderr)

    headers = {"Content-Type": "application/sdp"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    async with aiohttp.ClientSession() as http:
        try:
            async with http.post(args.url, data=pc.localDescription.sdp, headers=headers) as resp:
                body = await resp.text()
                location = resp.headers.get("Location")
                status = resp.status
        except aiohttp.ClientError as exc:
            emit("error", status=None, body=str(exc))
            await pc.close()
            return 2
        if status != 201 or not location:
            emit("error", status=status, body=body if status != 201 else "201 without Location")
            await pc.close()
            return 2
        location = urljoin(args.url, location)
        emit("created", location=location)
        if args.debug:
            print(f"--- answer\n{body}", file=sys.stderr)

        async def delete():
            try:
                async with http.delete(location, headers=headers) as resp:
                    return resp.status
            except aiohttp.ClientError:
                return None

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        except Exception as exc:  # a malformed or unacceptable answer
            emit("error", reason=f"bad answer: {exc}", delete_status=await delete())
            await pc.close()
            return 1

        result = await first(connected, failed, timeout=CONNECT_TIMEOUT)
        if result is not connected:
            reason = "connection failed" if result is failed else "not connected within 10 s"
            emit("error", reason=reason, delete_status=await delete())
            await pc.close()
            return 1
        emit("connected")

        # Publish until --seconds pass, a signal asks to stop, or the connection drops.
        if await first(failed, stop, timeout=args.seconds) is failed:
            emit("error", reason="connection failed while publishing", delete_status=await delete())
            await pc.close()
            return 1
        delete_status = await delete()
    await pc.close()
    emit("done", delete_status=delete_status)
    return 0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, help="e.g. http://127.0.0.1:PORT/whip/v1")
    p.add_argument("--token", help="sent as Authorization: Bearer TOKEN")
    p.add_argument("--seconds", type=float, default=10, help="how long to publish (default 10)")
    p.add_argument("--color", default="30,90,200", help="video colour R,G,B (default 30,90,200)")
    p.add_argument("--size", default="640x360", help="WIDTHxHEIGHT (default 640x360)")
    p.add_argument("--fps", type=float, default=30)
    p.add_argument("--tone", type=float, default=440, help="sine Hz, 0 = silence (default 440)")
    p.add_argument("--video-codec", choices=["vp8", "h264"], help="offer only this codec (+ RTX)")
    p.add_argument("--no-audio", action="store_true")
    p.add_argument("--no-video", action="store_true")
    p.add_argument(
        "--audio-level",
        action="store_true",
        help="no-op: aiortc always sends ssrc-audio-level (RFC 6464) with measured levels",
    )
    p.add_argument("--debug", action="store_true", help="print the offer and answer SDP to stderr")
    args = p.parse_args()
    try:
        args.color = [int(c) for c in args.color.split(",")]
        args.width, args.height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error("bad --color or --size")
    if len(args.color) != 3 or not all(0 <= c <= 255 for c in args.color):
        p.error("--color needs three values 0-255")
    if args.width % 2 or args.height % 4 or args.width < 32 or args.height < 32:
        p.error("--size needs an even width and a height divisible by 4, at least 32x32")
    if args.no_audio and args.no_video:
        p.error("nothing to publish")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(publish(parse_args())))
