// onair dashboard: the script of `/` and `/livestreams/{id}`.
//
// The pages hold no data. Everything comes from onair's REST API with the
// `Authorization` header the person signed in with (a bearer access token or
// HTTP Basic API key and secret), kept in this tab's sessionStorage. Any 401
// brings the sign-in form back. Text from the server (room names, identities,
// errors) only ever reaches the page through textContent.
"use strict";
(() => {
  const AUTH_KEY = "onair.dashboard.authorization";
  const WHO_KEY = "onair.dashboard.who";
  const OPEN_STATES = ["idle", "starting", "active", "stopping"];
  const ENDED_STATES = ["completed", "failed"];
  const STATE_LABELS = {
    idle: "Idle", starting: "Starting", active: "Active", stopping: "Stopping",
    completed: "Completed", failed: "Failed",
  };
  const SOURCE_LABELS = { camera: "camera", microphone: "mic", screen_share: "screen", screen_share_audio: "screen audio" };

  const $ = (id) => document.getElementById(id);
  const body = document.body;
  const devMode = body.dataset.devMode === "true";

  // ---- helpers -------------------------------------------------------------

  /** An element with a class and text (text only through textContent). */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function stateBadge(state) {
    const badge = el("span", "state", STATE_LABELS[state] || state || "unknown");
    badge.dataset.state = state || "";
    return badge;
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  function formatTime(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    const today = new Date().toDateString() === date.toDateString();
    return today ? date.toLocaleTimeString() : date.toLocaleString();
  }

  function formatDuration(seconds) {
    if (typeof seconds !== "number" || !(seconds >= 0)) return "—";
    const s = Math.floor(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = String(s % 60).padStart(2, "0");
    return h > 0 ? h + ":" + String(m).padStart(2, "0") + ":" + rest : m + ":" + rest;
  }

  function formatBytes(bytes) {
    if (typeof bytes !== "number" || bytes <= 0) return "—";
    const units = ["B", "kB", "MB", "GB", "TB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
    return (unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)) + " " + units[unit];
  }

  /** The claims of a JWT, without checking it (the server does that). */
  function claimsOf(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const json = decodeURIComponent(Array.from(atob(part), (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""));
      return JSON.parse(json) || {};
    } catch (_) {
      return {};
    }
  }

  /** base64 of UTF-8 text (btoa alone takes Latin-1 only). */
  function base64(text) {
    const bytes = new TextEncoder().encode(text);
    let binary = "";
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary);
  }

  // ---- the REST API ---------------------------------------------------------

  class AuthRequired extends Error {}

  class ApiFailure extends Error {
    constructor(status, message, code, body) {
      super(message);
      this.status = status;
      this.code = code;
      this.body = body;
    }
  }

  function authorization() {
    return sessionStorage.getItem(AUTH_KEY) || "";
  }

  /** fetch with the stored Authorization; a 401 signs out and throws AuthRequired. */
  async function authorizedFetch(path, options) {
    const auth = authorization();
    if (!auth) {
      showLogin("");
      throw new AuthRequired("not signed in");
    }
    const init = Object.assign({ cache: "no-store" }, options || {});
    init.headers = Object.assign({ Authorization: auth }, init.headers || {});
    const response = await fetch(path, init);
    if (response.status === 401) {
      const message = await errorMessage(response);
      signOut("Your credentials were not accepted: " + message);
      throw new AuthRequired(message);
    }
    return response;
  }

  /** The server's error text: JSON {"error","code"} or the body. */
  async function errorMessage(response) {
    let text = "";
    try { text = await response.text(); } catch (_) { /* nothing */ }
    try {
      const json = JSON.parse(text);
      if (json && typeof json.error === "string") return json.error + (json.code ? " (" + json.code + ")" : "");
    } catch (_) { /* not JSON */ }
    return "HTTP " + response.status + (text.trim() ? ": " + text.trim().slice(0, 200) : "");
  }

  /** A JSON call: resolves with the body, rejects with ApiFailure or AuthRequired. */
  async function api(method, path, payload) {
    const options = { method };
    if (payload !== undefined) {
      options.headers = { "Content-Type": "application/json" };
      options.body = JSON.stringify(payload);
    }
    const response = await authorizedFetch(path, options);
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
    if (!response.ok) {
      const message = json && typeof json.error === "string" ? json.error : "HTTP " + response.status + (text ? ": " + text.slice(0, 200) : "");
      throw new ApiFailure(response.status, message, json && json.code, json);
    }
    return json;
  }

  function describe(error) {
    if (error instanceof ApiFailure) return error.message + (error.code ? " (" + error.code + ")" : "") + " — HTTP " + error.status;
    return error && error.message ? error.message : String(error);
  }

  /** Runs `task` now and then again `delay()` ms after each run ends, until stopped. */
  function poller(task, delay) {
    let timer = null;
    let running = false;
    let busy = false;
    const tick = async () => {
      timer = null;
      if (!running || busy) return;
      busy = true;
      try {
        await task();
      } catch (error) {
        if (!(error instanceof AuthRequired)) console.warn("onair dashboard:", error);
      } finally {
        busy = false;
      }
      if (running && timer === null) timer = setTimeout(tick, typeof delay === "function" ? delay() : delay);
    };
    return {
      start() { if (running) return; running = true; tick(); },
      stop() { running = false; if (timer) clearTimeout(timer); timer = null; },
      /** Runs again at once (after the current run, if one is under way). */
      soon() { if (!running) return; if (timer) clearTimeout(timer); timer = null; if (!busy) tick(); else timer = setTimeout(tick, 50); },
      get running() { return running; },
    };
  }

  // ---- signing in -------------------------------------------------------------

  let pageController = null;

  function showLogin(message) {
    if (pageController) pageController.stop();
    $("app").hidden = true;
    $("logout").hidden = true;
    $("who").textContent = "";
    $("login").hidden = false;
    $("login-message").textContent = message || "";
  }

  function showApp() {
    $("login").hidden = true;
    $("login-message").textContent = "";
    $("app").hidden = false;
    $("logout").hidden = false;
    const who = sessionStorage.getItem(WHO_KEY) || "";
    $("who").textContent = who ? "Signed in as " + who : "";
    if (pageController) pageController.start();
  }

  function signOut(message) {
    sessionStorage.removeItem(AUTH_KEY);
    sessionStorage.removeItem(WHO_KEY);
    showLogin(message);
  }

  /** Stores the credentials if the API accepts them. */
  async function signIn(header, who) {
    sessionStorage.setItem(AUTH_KEY, header);
    sessionStorage.setItem(WHO_KEY, who);
    try {
      await api("GET", "/api/video/livestream?limit=1");
    } catch (error) {
      if (error instanceof AuthRequired) return; // the form is back with the reason
      // Accepted credentials that cannot list livestreams still sign in;
      // each section says what it cannot show.
      console.warn("onair dashboard: signed in, but listing livestreams failed:", error);
    }
    showApp();
  }

  function setUpLogin() {
    $("login-token").addEventListener("submit", (event) => {
      event.preventDefault();
      let token = $("login-token-value").value.trim().replace(/^bearer\s+/i, "");
      if (!token) { $("login-message").textContent = "Paste an access token first."; return; }
      const claims = claimsOf(token);
      $("login-token-value").value = "";
      signIn("Bearer " + token, claims.sub || claims.iss || "a token");
    });
    $("login-key").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("login-key-id").value.trim();
      const secret = $("login-key-secret").value;
      if (!key || !secret) { $("login-message").textContent = "Give both the API key and its secret."; return; }
      $("login-key-secret").value = "";
      signIn("Basic " + base64(key + ":" + secret), key + " (API key)");
    });
    const dev = $("login-dev");
    if (dev && devMode) {
      dev.addEventListener("click", async () => {
        dev.disabled = true;
        try {
          const response = await fetch("/dashboard/dev-token", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({}),
          });
          if (!response.ok) throw new Error("no dev token: " + await errorMessage(response));
          const reply = await response.json();
          if (!reply || !reply.token) throw new Error("no dev token in the reply");
          await signIn("Bearer " + reply.token, (reply.identity || "dashboard") + " (dev token)");
        } catch (error) {
          $("login-message").textContent = describe(error);
        } finally {
          dev.disabled = false;
        }
      });
    }
    $("logout").addEventListener("click", () => signOut("Signed out."));
  }

  // ---- going live --------------------------------------------------------------

  /** A go-live request from the form's choices (see the REST API in README.md). */
  function goLiveRequest(room, { layout, preset, mp4, hls, rtmpUrl, streamKey, latencyMode, maxDuration }) {
    const request = { roomName: room, layout, mp4: !!mp4 };
    if (hls) request.hls = true;
    if (preset.startsWith("resolution:")) request.resolution = preset.slice("resolution:".length);
    else request.preset = preset.replace(/^preset:/, "");
    if (latencyMode) request.latencyMode = latencyMode;
    if (maxDuration) request.maxDuration = maxDuration;
    if (rtmpUrl) {
      const destination = { type: "custom", customRtmpUrl: rtmpUrl, name: "custom" };
      if (streamKey) destination.streamKey = streamKey;
      request.additionalDestinations = [destination];
    }
    return request;
  }

  async function goLive(request) {
    const created = await api("POST", "/api/video/livestream", request);
    if (!created || !created.livestreamId) throw new Error("the go-live answer has no livestreamId");
    location.assign("/livestreams/" + encodeURIComponent(created.livestreamId));
    return created;
  }

  // ---- `/`: rooms and livestreams ---------------------------------------------

  function homePage() {
    const rooms = new Map(); // name → { li, parts }
    let livestreams = [];

    function roomEntry(name) {
      let entry = rooms.get(name);
      if (entry) return entry;
      const li = $("room-template").content.firstElementChild.cloneNode(true);
      li.dataset.room = name;
      const parts = {
        link: li.querySelector(".room-name"),
        counts: li.querySelector(".counts"),
        people: li.querySelector(".people"),
        live: li.querySelector(".room-live"),
        toggle: li.querySelector(".golive-toggle"),
        form: li.querySelector("form.golive"),
        error: li.querySelector("form.golive .error"),
        submit: li.querySelector("form.golive button[type=submit]"),
      };
      parts.link.textContent = name;
      parts.link.href = "/rooms/" + encodeURIComponent(name);
      parts.toggle.addEventListener("click", () => {
        parts.form.hidden = false;
        parts.toggle.hidden = true;
        parts.form.querySelector("select[name=layout]").focus();
      });
      parts.form.querySelector(".cancel").addEventListener("click", () => {
        parts.form.hidden = true;
        parts.toggle.hidden = false;
        parts.error.textContent = "";
      });
      parts.form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const form = parts.form.elements;
        parts.error.textContent = "";
        parts.submit.disabled = true;
        parts.submit.textContent = "Going live…";
        try {
          await goLive(goLiveRequest(name, {
            layout: form.layout.value,
            preset: form.preset.value,
            mp4: form.mp4.checked,
            hls: form.hls.checked,
            rtmpUrl: form.rtmpUrl.value.trim(),
            streamKey: form.streamKey.value,
          }));
        } catch (error) {
          if (!(error instanceof AuthRequired)) parts.error.textContent = "Could not go live: " + describe(error);
          parts.submit.disabled = false;
          parts.submit.textContent = "Go live";
        }
      });
      entry = { li, parts };
      rooms.set(name, entry);
      return entry;
    }

    function renderRooms(list) {
      const seen = new Set();
      const ul = $("rooms");
      list.forEach((room, index) => {
        const name = String(room.name);
        seen.add(name);
        const { li, parts } = roomEntry(name);
        const participants = Number(room.numParticipants) || 0;
        const tracks = Number(room.numTracks) || 0;
        li.dataset.participants = String(participants);
        li.dataset.tracks = String(tracks);
        parts.counts.textContent = plural(participants, "participant", "participants") + " · " + plural(tracks, "track", "tracks");
        if (Array.isArray(room.participants)) {
          parts.people.textContent = room.participants.map((p) => {
            const tracksText = (p.tracks || []).map((t) => (SOURCE_LABELS[t.source] || t.source || t.kind) + (t.muted ? " (muted)" : "")).join(", ");
            return (p.name || p.identity) + (tracksText ? " (" + tracksText + ")" : "");
          }).join(" · ");
        } else {
          parts.people.textContent = "";
        }
        const open = livestreams.find((l) => l.roomName === name && OPEN_STATES.includes(l.status));
        parts.live.replaceChildren();
        if (open) {
          const link = el("a", "", "");
          link.href = "/livestreams/" + encodeURIComponent(open.livestreamId);
          link.append(stateBadge(open.status));
          parts.live.append(link);
        }
        if (ul.children[index] !== li) ul.insertBefore(li, ul.children[index] || null);
      });
      for (const [name, entry] of rooms) {
        if (!seen.has(name)) { entry.li.remove(); rooms.delete(name); }
      }
      $("rooms-note").textContent = list.length === 0 ? "No open rooms. Rooms open when someone joins: /rooms/<name>." : "";
    }

    function renderLivestreams() {
      const tbody = $("livestreams").tBodies[0];
      if (livestreams.length === 0) {
        const row = el("tr", "empty");
        const cell = el("td", "", "No livestreams yet.");
        cell.colSpan = 7;
        row.append(cell);
        tbody.replaceChildren(row);
        return;
      }
      tbody.replaceChildren(...livestreams.map((l) => {
        const row = el("tr");
        row.dataset.livestreamId = l.livestreamId;
        row.dataset.state = l.status;
        const link = el("a", "", l.roomName);
        link.href = "/livestreams/" + encodeURIComponent(l.livestreamId);
        const roomCell = el("td");
        roomCell.append(link);
        const stateCell = el("td");
        stateCell.append(stateBadge(l.status));
        const outputs = (l.outputs || []).filter((o) => o.status !== "removed")
          .map((o) => (o.name || o.kind) + " " + o.status).join(", ");
        row.append(
          roomCell,
          stateCell,
          el("td", "", l.layout),
          el("td", "", l.preset),
          el("td", "", formatTime(l.startedAt || l.createdAt)),
          el("td", "", formatDuration(l.durationSeconds)),
          el("td", "", outputs || "—"),
        );
        return row;
      }));
    }

    async function refresh() {
      const [roomsResult, livestreamsResult] = await Promise.allSettled([
        api("GET", "/dashboard/rooms"),
        api("GET", "/api/video/livestream?limit=20"),
      ]);
      for (const result of [roomsResult, livestreamsResult]) {
        if (result.status === "rejected" && result.reason instanceof AuthRequired) throw result.reason;
      }
      if (livestreamsResult.status === "fulfilled") {
        livestreams = Array.isArray(livestreamsResult.value && livestreamsResult.value.livestreams) ? livestreamsResult.value.livestreams : [];
        $("livestreams-note").textContent = "";
        renderLivestreams();
      } else {
        $("livestreams-note").textContent = "Livestreams unavailable: " + describe(livestreamsResult.reason);
      }
      if (roomsResult.status === "fulfilled") {
        renderRooms(Array.isArray(roomsResult.value && roomsResult.value.rooms) ? roomsResult.value.rooms : []);
      } else {
        $("rooms-note").textContent = "Rooms unavailable: " + describe(roomsResult.reason);
      }
    }

    return poller(refresh, 2000);
  }

  // ---- `/livestreams/{id}` ---------------------------------------------------------

  function livestreamPage() {
    const id = body.dataset.livestreamId;
    const statusPath = "/api/video/livestream/status?id=" + encodeURIComponent(id);
    let current = null;
    let layoutBusy = false;
    let stopBusy = false;
    let stopArmedUntil = 0;
    let frames = 0;
    let frameUrl = null;

    // For debugging (and the browser test): what the page knows.
    window.onairDashboard = {
      get status() { return current; },
      get frames() { return frames; },
    };

    const statusPoll = poller(refreshStatus, () => (current && ["idle", "starting", "stopping"].includes(current.status)) || stopBusy ? 500 : 1000);
    // The program plays as video where Media Source Extensions can play its
    // stream; otherwise (or if the type is refused) its latest frame is
    // shown as a JPEG twice a second.
    let streamPlayable = "MediaSource" in window;
    let streamAbort = null;
    const previewPoll = poller(refreshPreview, 500);
    const streamPoll = poller(playStream, 1000);

    function startPreview() {
      if (streamPlayable) {
        if (!streamPoll.running) streamPoll.start();
      } else if (!previewPoll.running) {
        previewPoll.start();
      }
    }

    function stopPreview() {
      previewPoll.stop();
      streamPoll.stop();
      if (streamAbort) streamAbort.abort();
      streamAbort = null;
    }

    function setMessage(text) {
      $("message").textContent = text || "";
    }

    async function refreshStatus() {
      try {
        current = await api("GET", statusPath);
      } catch (error) {
        if (error instanceof ApiFailure && error.status === 404) {
          const state = $("state");
          state.dataset.state = "unknown";
          state.textContent = "Not found";
          setMessage("No livestream " + id + " (or it belongs to someone else).");
          stopPreview();
          return;
        }
        throw error;
      }
      render();
    }

    function render() {
      const l = current;
      const state = $("state");
      state.dataset.state = l.status;
      state.textContent = STATE_LABELS[l.status] || l.status;
      document.title = "onair — " + l.roomName + " · " + (STATE_LABELS[l.status] || l.status);
      $("room-name").textContent = l.roomName;
      $("summary").textContent = l.layout + " · " + l.resolution + "@" + l.fps + (l.durationSeconds != null ? " · " + formatDuration(l.durationSeconds) + " on air" : "");
      $("error").textContent = l.error ? "Error: " + l.error : "";
      $("live-badge").hidden = l.status !== "active";

      const open = OPEN_STATES.includes(l.status);
      const ended = ENDED_STATES.includes(l.status);
      const stop = $("stop");
      stop.hidden = !open;
      stop.disabled = stopBusy || l.status === "stopping";
      if (l.status === "stopping" || stopBusy) stop.textContent = "Stopping…";
      else if (Date.now() < stopArmedUntil) stop.textContent = "Click again to stop";
      else stop.textContent = "Stop";
      $("again").hidden = !ended;

      const select = $("layout");
      if (!layoutBusy) {
        if (![...select.options].some((o) => o.value === l.layout)) select.append(el("option", "", l.layout));
        select.value = l.layout;
      }
      select.disabled = layoutBusy || !(l.status === "starting" || l.status === "active");

      renderDetails(l);
      renderHistory(l.events || []);
      renderOutputs(l.outputs || []);

      if (ended) {
        stopPreview();
        const shown = frames + playerFrames() > 0;
        $("preview-note").textContent = shown ? "The program has ended; its last frame." : "The program has ended.";
        if (!shown) $("preview-waiting").textContent = "No program";
      } else {
        startPreview();
      }
    }

    function renderDetails(l) {
      const rows = [
        ["Livestream", l.livestreamId],
        ["Room", null],
        ["Preset", l.preset + " (" + l.resolution + ", " + l.fps + " fps)"],
        ["Media", l.media],
        ["Latency", l.latencyMode],
        ["Max duration", l.maxDuration ? formatDuration(l.maxDuration) : "—"],
        ["Created", formatTime(l.createdAt)],
        ["Started", formatTime(l.startedAt)],
        ["Ended", formatTime(l.endedAt)],
        ["On air", formatDuration(l.durationSeconds)],
      ];
      if (l.participantsComposed != null) rows.push(["On the program", plural(l.participantsComposed, "participant", "participants")]);
      if (l.muxLiveStreamId) rows.push(["Mux live stream", l.muxLiveStreamId + (l.muxStatus ? " (" + l.muxStatus + ")" : "")]);
      if (l.playbackUrl) rows.push(["Playback", l.playbackUrl]);
      if (l.muxAssetId) rows.push(["Mux asset", l.muxAssetId]);
      const nodes = [];
      for (const [label, value] of rows) {
        const dd = el("dd");
        if (label === "Room") {
          const link = el("a", "", l.roomName);
          link.href = "/rooms/" + encodeURIComponent(l.roomName);
          dd.append(link);
        } else {
          dd.textContent = value == null ? "—" : String(value);
        }
        nodes.push(el("dt", "", label), dd);
      }
      $("details").replaceChildren(...nodes);
    }

    function renderHistory(events) {
      $("history").replaceChildren(...events.map((e) => {
        const li = el("li");
        li.dataset.to = e.to;
        li.append(stateBadge(e.to));
        if (e.reason) li.append(" ", el("span", "", e.reason));
        li.append(el("span", "when", formatTime(e.at) + (e.from ? " · from " + e.from : "")));
        return li;
      }));
    }

    function renderOutputs(outputs) {
      const tbody = $("outputs").tBodies[0];
      if (outputs.length === 0) {
        const row = el("tr", "empty");
        const cell = el("td", "", "No outputs.");
        cell.colSpan = 6;
        row.append(cell);
        tbody.replaceChildren(row);
        return;
      }
      tbody.replaceChildren(...outputs.map((o) => {
        const row = el("tr");
        row.dataset.outputId = o.id;
        row.dataset.kind = o.kind;
        row.dataset.state = o.status;
        const status = el("td");
        status.append(stateBadge(o.status));
        row.append(
          el("td", "", (o.name || o.kind) + (o.type && o.type !== o.name ? " · " + o.type : "") + " (" + o.kind + ")"),
          el("td", "url", o.url),
          status,
          el("td", "", o.retries),
          el("td", "", formatBytes(o.bytes)),
          el("td", "", o.lastError || "—"),
        );
        return row;
      }));
    }

    function playerFrames() {
      const player = $("player");
      return player.getVideoPlaybackQuality ? player.getVideoPlaybackQuality().totalVideoFrames : 0;
    }

    // One viewing of the program's stream (fragmented MP4, fetched with the
    // Authorization header, which a <video src> cannot send) until it ends;
    // the poller reconnects a second later while the livestream runs.
    async function playStream() {
      const abort = new AbortController();
      streamAbort = abort;
      const note = $("preview-note");
      let response;
      try {
        response = await authorizedFetch("/api/video/livestream/" + encodeURIComponent(id) + "/preview.mp4", { signal: abort.signal });
      } catch (error) {
        if (error.name === "AbortError") return;
        throw error;
      }
      if (response.status !== 200) {
        await response.text().catch(() => "");
        if (response.status === 503) note.textContent = "Waiting for the program";
        else if (response.status !== 409) note.textContent = "Preview unavailable (HTTP " + response.status + ")";
        return;
      }
      const type = response.headers.get("content-type") || "";
      if (!MediaSource.isTypeSupported(type)) {
        abort.abort();
        streamPlayable = false;
        streamPoll.stop();
        startPreview();
        return;
      }
      const player = $("player");
      const source = new MediaSource();
      const sourceUrl = URL.createObjectURL(source);
      player.src = sourceUrl;
      await new Promise((resolve) => source.addEventListener("sourceopen", resolve, { once: true }));
      URL.revokeObjectURL(sourceUrl);
      const buffer = source.addSourceBuffer(type);
      const chunks = [];
      const append = () => {
        if (!buffer.updating && chunks.length > 0 && source.readyState === "open") buffer.appendBuffer(chunks.shift());
      };
      buffer.addEventListener("updateend", () => {
        followLiveEdge(player, buffer);
        append();
      });
      const reader = response.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(value);
          append();
        }
      } catch (error) {
        if (error.name !== "AbortError") throw error;
      }
    }

    // Plays close to the newest frame (a stalled or backgrounded tab would
    // otherwise fall behind) and keeps at most a minute buffered.
    function followLiveEdge(player, buffer) {
      const ranges = player.buffered;
      if (ranges.length === 0) return;
      const start = ranges.start(ranges.length - 1);
      const end = ranges.end(ranges.length - 1);
      if (player.currentTime < start || end - player.currentTime > 3) player.currentTime = Math.max(start, end - 0.5);
      if (player.paused) player.play().catch(() => { /* autoplay refused: the controls remain */ });
      if (!buffer.updating && end - ranges.start(0) > 60) buffer.remove(0, end - 30);
    }

    $("player").addEventListener("playing", () => {
      const player = $("player");
      player.hidden = false;
      $("preview").hidden = true;
      $("preview-waiting").hidden = true;
      $("preview-note").textContent = "Live · " + (player.videoWidth ? player.videoWidth + "×" + player.videoHeight : "audio only");
    });

    // The latest program frame, fetched with the Authorization header (an
    // <img src> cannot send one) and shown from a blob: URL.
    async function refreshPreview() {
      const response = await authorizedFetch("/api/video/livestream/" + encodeURIComponent(id) + "/preview.jpg");
      const note = $("preview-note");
      if (response.status === 200) {
        const blob = await response.blob();
        const url = URL.createObjectURL(blob);
        const next = new Image();
        next.src = url;
        try {
          await next.decode();
        } catch (_) {
          URL.revokeObjectURL(url);
          note.textContent = "A preview frame did not decode.";
          return;
        }
        const img = $("preview");
        img.src = url;
        img.hidden = false;
        $("preview-waiting").hidden = true;
        if (frameUrl) URL.revokeObjectURL(frameUrl);
        frameUrl = url;
        frames += 1;
        img.dataset.frames = String(frames);
        note.textContent = "Live preview · " + next.naturalWidth + "×" + next.naturalHeight;
        return;
      }
      await response.text().catch(() => "");
      if (response.status === 503) {
        if (frames === 0) {
          $("preview-waiting").hidden = false;
          $("preview-waiting").textContent = "Waiting for the first frame…";
        }
        note.textContent = "Waiting for the first frame";
      } else if (response.status === 404) {
        note.textContent = "No preview for this livestream.";
      } else {
        note.textContent = "Preview unavailable (HTTP " + response.status + ")";
      }
    }

    $("layout").addEventListener("change", async () => {
      const select = $("layout");
      const layout = select.value;
      layoutBusy = true;
      select.disabled = true;
      $("layout-note").textContent = "Switching to " + layout + "…";
      setMessage("");
      try {
        current = await api("PATCH", "/api/video/livestream/" + encodeURIComponent(id), { layout });
        $("layout-note").textContent = "Layout: " + current.layout;
      } catch (error) {
        if (error instanceof AuthRequired) return;
        $("layout-note").textContent = "";
        setMessage("Could not change the layout: " + describe(error));
      } finally {
        layoutBusy = false;
      }
      statusPoll.soon();
    });

    $("stop").addEventListener("click", async () => {
      if (stopBusy || !current) return;
      // Two clicks: a running broadcast never ends by a stray click.
      if (Date.now() >= stopArmedUntil) {
        stopArmedUntil = Date.now() + 5000;
        $("stop").textContent = "Click again to stop";
        setTimeout(() => { if (current) render(); }, 5100);
        return;
      }
      stopArmedUntil = 0;
      stopBusy = true;
      setMessage("");
      render();
      statusPoll.soon();
      try {
        current = await api("DELETE", "/api/video/livestream?id=" + encodeURIComponent(id));
      } catch (error) {
        if (!(error instanceof AuthRequired)) setMessage("Could not stop: " + describe(error));
      } finally {
        stopBusy = false;
      }
      if (current) render();
      statusPoll.soon();
    });

    $("again").addEventListener("click", async () => {
      if (!current) return;
      const l = current;
      const again = $("again");
      again.disabled = true;
      setMessage("");
      try {
        await goLive(goLiveRequest(l.roomName, {
          layout: l.layout,
          preset: /^\d+x\d+$/.test(l.preset) ? "resolution:" + l.preset : "preset:" + l.preset,
          mp4: (l.outputs || []).some((o) => o.kind === "mp4"),
          hls: (l.outputs || []).some((o) => o.kind === "hls"),
          latencyMode: l.latencyMode,
          maxDuration: l.maxDuration,
        }));
      } catch (error) {
        if (!(error instanceof AuthRequired)) setMessage("Could not go live again: " + describe(error));
        again.disabled = false;
      }
    });
    $("again").title = "The same room, layout and preset. RTMP destinations (their stream keys are not kept) are added from the dashboard's Go live form.";

    return {
      start() { statusPoll.start(); },
      stop() { statusPoll.stop(); stopPreview(); },
    };
  }

  // ---- start ---------------------------------------------------------------------

  const page = body.dataset.page;
  if (page === "home") pageController = homePage();
  else if (page === "livestream") pageController = livestreamPage();
  setUpLogin();
  if (authorization()) showApp();
  else showLogin("");
})();
