#!/usr/bin/env node
// Drives LiveKit's official Node server SDK (livekit-server-sdk, pinned in
// package.json) against a server, for onair's compatibility tests
// (tests/common/lk_sdk.rs spawns it).
//
//   node lk_server_sdk.mjs --url http://127.0.0.1:PORT --key KEY --secret SECRET \
//        [--request-timeout SECONDS]
//
// Long-lived: reads one JSON command per line on stdin and writes exactly one
// JSON line per command on stdout (nothing else goes to stdout; logs go to
// stderr). Commands may overlap; replies carry the command's id.
//
//   {"id": 1, "service": "room"|"egress"|"webhook"|"token", "method": "<SDK method>", "args": [...]}
//   -> {"id": 1, "ok": <result as plain JSON>}
//   -> {"id": 1, "error": {"name", "message", "status", "code", "metadata", "cause"}}
//
// Services: `room` = RoomServiceClient, `egress` = EgressClient (both built once
// from --url/--key/--secret), `webhook` = WebhookReceiver(key, secret) (method
// `receive`, args [body, authHeader, skipAuth?, clockTolerance?]), `token` =
// AccessToken (method `toJwt`, args [identity, videoGrant, options?]; options:
// ttl, name, metadata, attributes, kind, sha256, roomPreset, roomConfig) or
// TokenVerifier (method `verify`, args [jwt, clockTolerance?]).
//
// Arguments arrive as plain JSON and are turned into the SDK's own classes the
// way an application writes them (`new StreamOutput({protocol: StreamProtocol.RTMP,
// urls})` etc.): every protobuf message is built with the SDK class's
// `fromJson`, which takes protojson (lowerCamelCase or proto names, enum names
// as strings) and rejects unknown fields, so a typo in a test fails loudly.
//   * egress outputs: {"stream": {...}, "file": {...}, "segments": {...},
//     "images": {...}} -> EncodedOutputs of StreamOutput / EncodedFileOutput /
//     SegmentedFileOutput / ImageOutput; a bare legacy single output is
//     {"$type": "StreamOutput" | "EncodedFileOutput" | "SegmentedFileOutput", ...}.
//     startTrackEgress's output: a websocket URL string or a DirectFileOutput.
//   * encodingOptions: an object -> EncodingOptions, a preset name string
//     ("H264_1080P_30") -> EncodingOptionsPreset value.
//   * audioMixing: enum name; webhooks: [WebhookConfig]; createRoom's egress
//     (RoomEgress) and agents ([RoomAgentDispatch]); updateParticipant's
//     permission (ParticipantPermission; canPublishSources as names).
//   * sendData: data as a UTF-8 string -> Uint8Array, kind "RELIABLE" | "LOSSY".
//   * removeParticipant's revokeTokenTs: number or string -> bigint.
// Results: protobuf messages as `toJson({emitDefaultValues: true})` (lowerCamelCase
// names, enum names, int64 as strings, bytes as base64, defaults included so
// that e.g. status EGRESS_STARTING (= 0) is visible); arrays element-wise;
// `void` -> null; a bigint -> string.

import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

import {
  AccessToken,
  DataPacket_Kind,
  DirectFileOutput,
  EgressClient,
  EncodedFileOutput,
  EncodingOptions,
  EncodingOptionsPreset,
  ImageOutput,
  ParticipantPermission,
  RoomAgentDispatch,
  RoomCompositeEgressRequest,
  RoomConfiguration,
  RoomEgress,
  RoomServiceClient,
  SegmentedFileOutput,
  StartEgressRequest,
  StreamOutput,
  TokenVerifier,
  TrackSource,
  WebhookConfig,
  WebhookReceiver,
} from "livekit-server-sdk";

// stdout carries the replies only: the SDK logs with console.debug (stdout in
// Node) when an error body does not parse, so every console method goes to stderr.
for (const level of ["log", "info", "debug"]) {
  console[level] = (...args) => console.error(...args);
}

const USAGE =
  "usage: lk_server_sdk.mjs --url http://127.0.0.1:PORT --key KEY --secret SECRET [--request-timeout SECONDS]";

function options() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: "string" },
        key: { type: "string" },
        secret: { type: "string" },
        "request-timeout": { type: "string" },
      },
    }));
  } catch (error) {
    console.error(`${error.message}\n${USAGE}`);
    process.exit(2);
  }
  if (!values.url || !values.key || !values.secret) {
    console.error(USAGE);
    process.exit(2);
  }
  const timeout = values["request-timeout"];
  if (timeout !== undefined && !(Number(timeout) > 0)) {
    console.error(`--request-timeout must be a positive number of seconds\n${USAGE}`);
    process.exit(2);
  }
  return { ...values, requestTimeout: timeout === undefined ? undefined : Number(timeout) };
}

const opts = options();
const clientOptions = opts.requestTimeout === undefined ? undefined : { requestTimeout: opts.requestTimeout };
const roomClient = new RoomServiceClient(opts.url, opts.key, opts.secret, clientOptions);
const egressClient = new EgressClient(opts.url, opts.key, opts.secret, clientOptions);
const webhookReceiver = new WebhookReceiver(opts.key, opts.secret);
const tokenVerifier = new TokenVerifier(opts.key, opts.secret);

// ---- JSON -> SDK classes ----------------------------------------------------

class BadArgument extends Error {
  constructor(message) {
    super(message);
    this.name = "BadArgument";
  }
}

/** A protobuf-es message of `type` from protojson (an instance passes through). */
function message(type, json, what) {
  if (json === undefined || json === null) return undefined;
  if (json instanceof type) return json;
  if (typeof json !== "object" || Array.isArray(json)) {
    throw new BadArgument(`${what}: expected an object for ${type.typeName}, got ${JSON.stringify(json)}`);
  }
  try {
    return type.fromJson(json);
  } catch (error) {
    throw new BadArgument(`${what}: ${error.message}`);
  }
}

function messages(type, list, what) {
  if (list === undefined || list === null) return undefined;
  if (!Array.isArray(list)) throw new BadArgument(`${what}: expected an array`);
  return list.map((item, i) => message(type, item, `${what}[${i}]`));
}

/** An enum value from its name (a number passes through). */
function enumValue(enumObject, value, what) {
  if (value === undefined || value === null || typeof value === "number") return value ?? undefined;
  const number = enumObject[value];
  if (typeof number !== "number") {
    const names = Object.keys(enumObject).filter((k) => typeof enumObject[k] === "number");
    throw new BadArgument(`${what}: unknown value ${JSON.stringify(value)} (one of ${names.join(", ")})`);
  }
  return number;
}

/** An enum value of one field of a message type (for enums the SDK does not re-export). */
function fieldEnumValue(type, jsonName, value, what) {
  if (value === undefined || value === null || typeof value === "number") return value ?? undefined;
  const info = type.fields.findJsonName(jsonName)?.T?.findName?.(value);
  if (!info) throw new BadArgument(`${what}: unknown value ${JSON.stringify(value)}`);
  return info.no;
}

/** EncodingOptions (object) or an EncodingOptionsPreset (name or number). */
function encodingOptions(value, what = "encodingOptions") {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string" || typeof value === "number") {
    return enumValue(EncodingOptionsPreset, value, what);
  }
  return message(EncodingOptions, value, what);
}

const LEGACY_OUTPUTS = { EncodedFileOutput, StreamOutput, SegmentedFileOutput };

/** EncodedOutputs {file, stream, segments, images}, or one legacy output with "$type". */
function encodedOutputs(value, what = "output") {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new BadArgument(`${what}: expected an object`);
  }
  if ("$type" in value) {
    const { $type, ...rest } = value;
    const type = LEGACY_OUTPUTS[$type];
    if (!type) throw new BadArgument(`${what}: unknown $type ${JSON.stringify($type)}`);
    return message(type, rest, what);
  }
  const known = ["file", "stream", "segments", "images"];
  const unknown = Object.keys(value).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new BadArgument(`${what}: unknown keys ${unknown.join(", ")} (expected ${known.join(", ")} or $type)`);
  }
  const outputs = {};
  if (value.file !== undefined) outputs.file = message(EncodedFileOutput, value.file, `${what}.file`);
  if (value.stream !== undefined) outputs.stream = message(StreamOutput, value.stream, `${what}.stream`);
  if (value.segments !== undefined) {
    outputs.segments = message(SegmentedFileOutput, value.segments, `${what}.segments`);
  }
  if (value.images !== undefined) outputs.images = message(ImageOutput, value.images, `${what}.images`);
  return outputs;
}

/** Options objects of the egress start calls: encodingOptions, audioMixing, webhooks. */
function egressOptions(value, what = "opts") {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) throw new BadArgument(`${what}: expected an object`);
  const out = { ...value };
  if ("encodingOptions" in out) out.encodingOptions = encodingOptions(out.encodingOptions, `${what}.encodingOptions`);
  if ("audioMixing" in out) {
    out.audioMixing = fieldEnumValue(RoomCompositeEgressRequest, "audioMixing", out.audioMixing, `${what}.audioMixing`);
  }
  if ("webhooks" in out) out.webhooks = messages(WebhookConfig, out.webhooks, `${what}.webhooks`);
  return out;
}

function trackSources(list, what) {
  if (!Array.isArray(list)) return list;
  return list.map((s, i) =>
    typeof s === "string" ? enumValue(TrackSource, s.toUpperCase(), `${what}[${i}]`) : s,
  );
}

/** Partial<ParticipantPermission> as the SDK takes it. */
function permission(value, what = "permission") {
  if (value === undefined || value === null) return undefined;
  return message(ParticipantPermission, value, what);
}

function bigint(value, what) {
  if (value === undefined || value === null || typeof value === "bigint") return value ?? undefined;
  try {
    return BigInt(value);
  } catch {
    throw new BadArgument(`${what}: not an integer: ${JSON.stringify(value)}`);
  }
}

// ---- the services ----------------------------------------------------------

/** Room service: [method] -> (args) -> SDK call. */
const ROOM = {
  createRoom: ([options]) => {
    const o = { ...(options ?? {}) };
    if ("egress" in o) o.egress = message(RoomEgress, o.egress, "options.egress");
    if ("agents" in o) o.agents = messages(RoomAgentDispatch, o.agents, "options.agents");
    return roomClient.createRoom(o);
  },
  listRooms: ([names]) => roomClient.listRooms(names ?? undefined),
  deleteRoom: ([room]) => roomClient.deleteRoom(room),
  updateRoomMetadata: ([room, metadata]) => roomClient.updateRoomMetadata(room, metadata),
  listParticipants: ([room]) => roomClient.listParticipants(room),
  getParticipant: ([room, identity]) => roomClient.getParticipant(room, identity),
  removeParticipant: ([room, identity, options]) => {
    if (options === undefined || options === null) return roomClient.removeParticipant(room, identity);
    return roomClient.removeParticipant(room, identity, {
      ...options,
      revokeTokenTs: bigint(options.revokeTokenTs, "options.revokeTokenTs"),
    });
  },
  forwardParticipant: ([room, identity, destinationRoom]) =>
    roomClient.forwardParticipant(room, identity, destinationRoom),
  moveParticipant: ([room, identity, destinationRoom]) => roomClient.moveParticipant(room, identity, destinationRoom),
  mutePublishedTrack: ([room, identity, trackSid, muted]) =>
    roomClient.mutePublishedTrack(room, identity, trackSid, muted),
  updateParticipant: ([room, identity, optionsOrMetadata, maybePermission, maybeName]) => {
    if (optionsOrMetadata !== null && typeof optionsOrMetadata === "object") {
      const o = { ...optionsOrMetadata };
      if ("permission" in o) o.permission = permission(o.permission, "options.permission");
      return roomClient.updateParticipant(room, identity, o);
    }
    return roomClient.updateParticipant(
      room,
      identity,
      optionsOrMetadata ?? undefined,
      permission(maybePermission),
      maybeName ?? undefined,
    );
  },
  updateSubscriptions: ([room, identity, trackSids, subscribe]) =>
    roomClient.updateSubscriptions(room, identity, trackSids ?? [], subscribe),
  sendData: ([room, data, kind, options]) => {
    if (typeof data !== "string") throw new BadArgument("data: expected a UTF-8 string");
    return roomClient.sendData(
      room,
      new TextEncoder().encode(data),
      enumValue(DataPacket_Kind, kind ?? "RELIABLE", "kind"),
      options ?? {},
    );
  },
};

const EGRESS = {
  startRoomCompositeEgress: ([roomName, output, optsOrLayout, ...rest]) => {
    if (typeof optsOrLayout === "string") {
      // deprecated positional form: layout, options, audioOnly, videoOnly, customBaseUrl, audioMixing
      const [encoding, audioOnly, videoOnly, customBaseUrl, audioMixing] = rest;
      return egressClient.startRoomCompositeEgress(
        roomName,
        encodedOutputs(output),
        optsOrLayout,
        encodingOptions(encoding),
        audioOnly ?? undefined,
        videoOnly ?? undefined,
        customBaseUrl ?? undefined,
        fieldEnumValue(RoomCompositeEgressRequest, "audioMixing", audioMixing, "audioMixing"),
      );
    }
    return egressClient.startRoomCompositeEgress(roomName, encodedOutputs(output), egressOptions(optsOrLayout));
  },
  startWebEgress: ([url, output, opts]) =>
    egressClient.startWebEgress(url, encodedOutputs(output), egressOptions(opts)),
  startParticipantEgress: ([roomName, identity, output, opts]) =>
    egressClient.startParticipantEgress(roomName, identity, encodedOutputs(output), egressOptions(opts)),
  startTrackCompositeEgress: ([roomName, output, optsOrAudioTrackId, videoTrackId, encoding]) => {
    if (typeof optsOrAudioTrackId === "string") {
      return egressClient.startTrackCompositeEgress(
        roomName,
        encodedOutputs(output),
        optsOrAudioTrackId,
        videoTrackId ?? undefined,
        encodingOptions(encoding),
      );
    }
    return egressClient.startTrackCompositeEgress(roomName, encodedOutputs(output), egressOptions(optsOrAudioTrackId));
  },
  startTrackEgress: ([roomName, output, trackId, webhooks]) =>
    egressClient.startTrackEgress(
      roomName,
      typeof output === "string" ? output : message(DirectFileOutput, output, "output"),
      trackId,
      messages(WebhookConfig, webhooks, "webhooks"),
    ),
  startEgress: ([request]) => egressClient.startEgress(message(StartEgressRequest, request, "request")),
  updateLayout: ([egressId, layout]) => egressClient.updateLayout(egressId, layout),
  updateStream: ([egressId, addOutputUrls, removeOutputUrls]) =>
    egressClient.updateStream(egressId, addOutputUrls ?? undefined, removeOutputUrls ?? undefined),
  listEgress: ([options]) => egressClient.listEgress(options ?? undefined),
  stopEgress: ([egressId]) => egressClient.stopEgress(egressId),
};

const WEBHOOK = {
  receive: ([body, authHeader, skipAuth, clockTolerance]) =>
    webhookReceiver.receive(body, authHeader ?? undefined, skipAuth ?? false, clockTolerance ?? undefined),
};

const TOKEN = {
  toJwt: ([identity, grant, options]) => {
    const o = options ?? {};
    const token = new AccessToken(opts.key, opts.secret, {
      identity: identity ?? undefined,
      ttl: o.ttl,
      name: o.name,
      metadata: o.metadata,
      attributes: o.attributes,
    });
    if (grant) {
      const g = { ...grant };
      if ("canPublishSources" in g) g.canPublishSources = trackSources(g.canPublishSources, "grant.canPublishSources");
      token.addGrant(g);
    }
    if (o.kind !== undefined) token.kind = o.kind;
    if (o.sha256 !== undefined) token.sha256 = o.sha256;
    if (o.roomPreset !== undefined) token.roomPreset = o.roomPreset;
    if (o.roomConfig !== undefined) token.roomConfig = message(RoomConfiguration, o.roomConfig, "options.roomConfig");
    return token.toJwt();
  },
  verify: ([jwt, clockTolerance]) => tokenVerifier.verify(jwt, clockTolerance ?? undefined),
};

const SERVICES = { room: ROOM, egress: EGRESS, webhook: WEBHOOK, token: TOKEN };

// ---- results and errors as plain JSON --------------------------------------

function isMessage(value) {
  return typeof value?.toJson === "function" && typeof value?.getType === "function";
}

function plain(value) {
  if (value === undefined || value === null) return null;
  if (typeof value === "bigint") return value.toString();
  if (isMessage(value)) return value.toJson({ emitDefaultValues: true });
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function errorJson(error) {
  if (!(error instanceof Error)) {
    return { name: typeof error, message: String(error), status: null, code: null, metadata: null, cause: null };
  }
  return {
    name: error.name ?? null,
    message: error.message ?? null,
    status: error.status ?? null,
    code: error.code ?? null,
    metadata: error.metadata ?? null,
    cause: error.cause === undefined ? null : String(error.cause?.message ?? error.cause),
  };
}

function reply(object) {
  process.stdout.write(`${JSON.stringify(object)}\n`);
}

async function handle(line) {
  let id = null;
  try {
    let command;
    try {
      command = JSON.parse(line);
    } catch (error) {
      throw new BadArgument(`not JSON: ${error.message}`);
    }
    id = command?.id ?? null;
    const service = SERVICES[command?.service];
    if (!service) {
      throw new BadArgument(`unknown service ${JSON.stringify(command?.service)} (${Object.keys(SERVICES).join(", ")})`);
    }
    const method = Object.hasOwn(service, command.method) ? service[command.method] : undefined;
    if (!method) {
      throw new BadArgument(
        `unknown ${command.service} method ${JSON.stringify(command.method)} (${Object.keys(service).join(", ")})`,
      );
    }
    const args = command.args ?? [];
    if (!Array.isArray(args)) throw new BadArgument("args: expected an array");
    const result = await method(args);
    reply({ id, ok: plain(result) });
  } catch (error) {
    console.error(`lk_server_sdk: command ${id}: ${error?.name}: ${error?.message}`);
    reply({ id, error: errorJson(error) });
  }
}

const pending = new Set();
const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on("line", (line) => {
  if (line.trim() === "") return;
  const task = handle(line).finally(() => pending.delete(task));
  pending.add(task);
});
input.on("close", async () => {
  await Promise.allSettled([...pending]);
  process.exit(0);
});
console.error(`lk_server_sdk: livekit-server-sdk driver for ${opts.url} ready`);
