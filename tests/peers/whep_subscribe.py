#!/usr/bin/env python3
"""WHEP subscriber built on aiortc, used by onair's integration tests.

Receives video and audio for --seconds, then prints what it got as the last
stdout line:
  {"event":"summary","video_frames":N,"video_size":[w,h],"video_mean_rgb":[r,g,b],
   "audio_frames":M,"audio_rms":x,"missing":[...],"delete_status":200}
video_mean_rgb is the mean colour of the centre region (middle half of each
dimension) of the last decoded frame; audio_rms is the RMS of all received
samples, 0..1 (a full-scale sine is 0.707). Values are null when nothing arrived.
Earlier lines: {"event":"created","location":...}, {"event":"connected"},
{"event":"error",...}.
Exit codes: 0 (the caller asserts on the summary), 1 connection failure (the
summary is still printed, with "error", if it dropped while receiving), 2 HTTP error.
See tests/peers/README.md.
"""

import argparse
import asyncio
import json
import signal
import sys
from urllib.parse import urljoin

import aiohttp
import aioice.ice
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

CONNECT_TIMEOUT = 10.0
FIRST_FRAME_TIMEOUT = 10.0


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


# aioice never gathers 127.0.0.1; offer it too (see whip_publish.py).
_host_addresses = aioice.ice.get_host_addresses


def _host_addresses_with_loopback(use_ipv4, use_ipv6):
    addresses = _host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    if use_ipv4 and "127.0.0.1" not in addresses:
        addresses.append("127.0.0.1")
    return addresses


aioice.ice.get_host_addresses = _host_addresses_with_loopback


class Stats:
    def __init__(self):
        self.video_frames = 0
        self.last_video = None
        self.audio_frames = 0
        self.audio_sum_squares = 0.0
        self.audio_samples = 0
        self.first = {"video": asyncio.Event(), "audio": asyncio.Event()}

    async def consume(self, track):
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                self.video_frames += 1
                self.last_video = frame  # converted once, at the end
            else:
                samples = frame.to_ndarray().astype(np.float64) / 32768  # s16, interleaved
                self.audio_frames += 1
                self.audio_sum_squares += float(np.sum(samples * samples))
                self.audio_samples += samples.size
            self.first[track.kind].set()

    def summary(self):
        size = mean_rgb = rms = None
        if self.last_video is not None:
            image = self.last_video.to_ndarray(format="rgb24")
            h, w = image.shape[:2]
            centre = image[h // 4 : h - h // 4, w // 4 : w - w // 4].reshape(-1, 3)
            size = [w, h]
            mean_rgb = [round(float(c), 1) for c in centre.mean(axis=0)]
        if self.audio_samples:
            rms = round((self.audio_sum_squares / self.audio_samples) ** 0.5, 5)
        return {
            "video_frames": self.video_frames,
            "video_size": size,
            "video_mean_rgb": mean_rgb,
            "audio_frames": self.audio_frames,
            "audio_rms": rms,
        }


async def first(*events, timeout):
    """Waits for the first of `events` to be set; returns it (None on timeout)."""
    waiters = {asyncio.ensure_future(e.wait()): e for e in events}
    done, pending = await asyncio.wait(
        waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    return waiters[done.pop()] if done else None


async def subscribe(args):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: offline
    stats = Stats()
    consumers = []
    connected, failed, stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)

    @pc.on("connectionstatechange")
    def on_state():
        if pc.connectionState == "connected":
            connected.set()
        elif pc.connectionState in ("failed", "closed"):
            failed.set()

    @pc.on("track")
    def on_track(track):
        consumers.append(asyncio.ensure_future(stats.consume(track)))

    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
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

        # The --seconds window starts once every expected kind delivered a frame.
        expected = [k for k in ("video", "audio") if getattr(args, f"expect_{k}")]
        waiting = asyncio.gather(*(stats.first[k].wait() for k in expected))
        try:
            await asyncio.wait_for(waiting, FIRST_FRAME_TIMEOUT)
        except asyncio.TimeoutError:
            pass
        dropped = await first(failed, stop, timeout=args.seconds) is failed

        summary = stats.summary()  # what arrived in the window, before tearing down
        summary["missing"] = [k for k in expected if not stats.first[k].is_set()]
        if dropped:
            summary["error"] = "connection failed while receiving"
        summary["delete_status"] = await delete()
    await pc.close()
    for task in consumers:
        task.cancel()
    emit("summary", **summary)
    return 1 if dropped else 0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, help="WHEP endpoint (opaque)")
    p.add_argument("--token", help="sent as Authorization: Bearer TOKEN")
    p.add_argument("--seconds", type=float, default=5, help="how long to receive (default 5)")
    p.add_argument(
        "--expect-video",
        action="store_true",
        help="start the --seconds window only after the first video frame (waits up to 10 s)",
    )
    p.add_argument("--expect-audio", action="store_true", help="likewise for audio")
    p.add_argument("--debug", action="store_true", help="print the offer and answer SDP to stderr")
    return p.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(subscribe(parse_args())))
