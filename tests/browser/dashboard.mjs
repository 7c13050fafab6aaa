#!/usr/bin/env node
// Takes a room live and stops it from onair's dashboard in headless Chromium.
//
//   node dashboard.mjs --base http://127.0.0.1:7880 --room demo \
//        [--participants 2] [--layout grid] [--switch-to speaker] \
//        [--chromium /usr/bin/chromium] [--timeout 120] [--screenshots DIR]
//
// Signs in with "Use dev token" on `/`, waits for the room with
// --participants participants, opens its Go live form, picks --layout and
// submits; on `/livestreams/{id}` waits for `active`, checks the preview
// player shows program frames that change, switches the layout to
// --switch-to with the select, stops with the Stop button (two clicks) and
// waits for `completed`; "Go live again" starts (and the driver stops) a
// second one; back on `/` the livestream is listed as completed;
// then checks that a rejected token brings the sign-in form back. Prints one JSON object per line on stdout:
//   {"event":"state","state":"starting"}        each #state[data-state] change
//   {"event":"room", …}  {"event":"golive","id":…}  {"event":"preview", …}
//   {"event":"layout", …}  {"event":"history","to":[…]}  {"event":"again","id":…}  {"event":"listed", …}
//   {"event":"screenshot","path":…}  {"event":"rejected","message":…}
//   {"event":"console","type":"error"|"pageerror","text":…}
//   {"event":"result","ok":true|false,"reason":…}            last line
// Exits 0 on success, 1 on failure (the reason names what never happened).

import path from "node:path";
import { emit, launch, newPage, parseCommandLine } from "./chromium.mjs";

const USAGE =
  "usage: dashboard.mjs --base <http://host:port> --room <name> [--participants 2] [--layout grid] " +
  "[--switch-to speaker] [--chromium /usr/bin/chromium] [--timeout 120] [--screenshots <dir>]";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function parseOptions() {
  const values = parseCommandLine(
    {
      base: { type: "string" },
      room: { type: "string" },
      participants: { type: "string", default: "2" },
      layout: { type: "string", default: "grid" },
      "switch-to": { type: "string", default: "speaker" },
      timeout: { type: "string", default: "120" },
      screenshots: { type: "string" },
    },
    USAGE,
  );
  const timeout = Number(values.timeout);
  const participants = Number(values.participants);
  if (!values.base || !values.room || !(timeout > 0) || !(participants >= 0)) {
    console.error(USAGE);
    process.exit(2);
  }
  return { ...values, timeout, participants };
}

class Failure extends Error {}

// Installed before the page's script: reports every change of #state[data-state].
function observeState() {
  const install = () => {
    let last = null;
    const report = () => {
      const state = document.getElementById("state");
      if (!state) return;
      const value = state.dataset.state || "";
      if (value !== last) {
        last = value;
        window.__onairState(value, state.textContent.trim());
      }
    };
    new MutationObserver(report).observe(document.documentElement, {
      subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["data-state"],
    });
    report();
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", install, { once: true });
  else install();
}

// In the page: what the preview shows — the <video> player, or the JPEG
// <img> where the stream cannot play — drawn to a canvas: its size, luma
// spread, a hash, and how many frames it has shown.
function sampleFrame() {
  const video = document.getElementById("player");
  const img = document.getElementById("preview");
  let shown;
  if (video && !video.hidden && video.readyState >= 2 && video.videoWidth > 0) {
    shown = { kind: "video", source: video, width: video.videoWidth, height: video.videoHeight, frames: video.getVideoPlaybackQuality().totalVideoFrames };
  } else if (img && !img.hidden && img.complete && img.naturalWidth > 0) {
    shown = { kind: "jpeg", source: img, width: img.naturalWidth, height: img.naturalHeight, frames: Number(img.dataset.frames || 0) };
  } else {
    return null;
  }
  const canvas = document.createElement("canvas");
  canvas.width = shown.width;
  canvas.height = shown.height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(shown.source, 0, 0);
  const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
  let sum = 0;
  let squares = 0;
  let hash = 2166136261;
  const n = data.length / 4;
  for (let i = 0; i < data.length; i += 4) {
    const luma = (data[i] * 299 + data[i + 1] * 587 + data[i + 2] * 114) / 1000;
    sum += luma;
    squares += luma * luma;
    hash = Math.imul(hash ^ (data[i] >> 2) ^ (data[i + 1] << 6) ^ (data[i + 2] << 14), 16777619) >>> 0;
  }
  const mean = sum / n;
  return {
    kind: shown.kind,
    width: shown.width,
    height: shown.height,
    mean,
    stddev: Math.sqrt(Math.max(0, squares / n - mean * mean)),
    hash,
    frames: shown.frames,
    paused: video ? video.paused : null,
  };
}

async function main() {
  const options = parseOptions();
  const deadline = Date.now() + options.timeout * 1000;
  const remaining = () => Math.max(1, deadline - Date.now());
  let currentState = null;
  const states = [];
  let page;

  // Polls `check` in the page (or in Node) until it returns a truthy value.
  const until = async (what, ms, check) => {
    const end = Date.now() + Math.min(ms, remaining());
    let last;
    for (;;) {
      try {
        last = await check();
      } catch (error) {
        last = undefined;
        if (!/context was destroyed|Execution context|detached/i.test(String(error?.message))) throw error;
      }
      if (last) return last;
      if (Date.now() > end) {
        const shown = page ? await page.evaluate(() => {
          const text = (id) => document.getElementById(id)?.textContent?.trim() || "";
          return { state: document.getElementById("state")?.dataset.state, status: text("state"), message: text("message"), error: text("error"), login: text("login-message"), rooms: text("rooms-note"), preview: text("preview-note") };
        }).catch(() => ({})) : {};
        throw new Failure(`timed out after ${(ms / 1000).toFixed(0)} s waiting for ${what} (page shows ${JSON.stringify(shown)})`);
      }
      await sleep(200);
    }
  };
  const waitForState = (want, ms) =>
    until(`the page's state to reach ${want} (states seen: ${states.join(" → ") || "none"})`, ms, () => {
      if (currentState === "failed" && want !== "failed") throw new Failure(`the livestream failed while waiting for ${want} (states seen: ${states.join(" → ")})`);
      return currentState === want;
    });
  const screenshot = async (name) => {
    if (!options.screenshots) return;
    const file = path.join(options.screenshots, name);
    await page.screenshot({ path: file, fullPage: true });
    emit({ event: "screenshot", path: file });
  };

  let browser;
  try {
    browser = await launch(options.chromium, { width: 1280, height: 900 });
  } catch (error) {
    emit({ event: "result", ok: false, reason: error.message });
    return 1;
  }
  try {
    let previewMisses = 0;
    page = await newPage(browser, {
      types: ["error", "warn"],
      // The preview answers 503 until the first frame: Chromium logs each one.
      ignore: (message, url) => {
        const miss = /\/preview\.(jpg|mp4)$/.test(url) && message.text().startsWith("Failed to load resource");
        if (miss) previewMisses += 1;
        return miss;
      },
    });
    await page.exposeFunction("__onairState", (state, text) => {
      currentState = state;
      if (state && states[states.length - 1] !== state) states.push(state);
      emit({ event: "state", state, text });
    });
    await page.evaluateOnNewDocument(observeState);

    // `/`: nothing is shown before signing in.
    const home = await page.goto(new URL("/", options.base).href, { waitUntil: "domcontentloaded", timeout: remaining() });
    if (!home || !home.ok()) throw new Failure(`/ answered HTTP ${home ? home.status() : "nothing"}`);
    await until("the sign-in form", 10_000, () => page.$("#login:not([hidden])"));
    if (await page.$("#app:not([hidden])")) throw new Failure("the dashboard shows before signing in");
    await page.click("#login-dev");
    await until("the dashboard after Use dev token", 10_000, () => page.$("#app:not([hidden])"));
    const who = await page.$eval("#who", (node) => node.textContent);
    emit({ event: "signed-in", who });

    // The room with its participants.
    const roomSelector = `li.room[data-room="${options.room}"]`;
    const room = await until(`room ${options.room} with ${options.participants} participants`, 30_000, () =>
      page.evaluate((selector, want) => {
        const li = document.querySelector(selector);
        if (!li || Number(li.dataset.participants) !== want) return null;
        return {
          participants: Number(li.dataset.participants),
          tracks: Number(li.dataset.tracks),
          counts: li.querySelector(".counts").textContent,
          link: li.querySelector("a.room-name").getAttribute("href"),
          name: li.querySelector("a.room-name").textContent,
        };
      }, roomSelector, options.participants));
    emit({ event: "room", ...room });

    // Go live with the form.
    await page.click(`${roomSelector} .golive-toggle`);
    await until("the Go live form", 5_000, () => page.$(`${roomSelector} form.golive:not([hidden])`));
    await page.select(`${roomSelector} select[name=layout]`, options.layout);
    const form = await page.$eval(`${roomSelector} form.golive`, (f) => ({
      layout: f.elements.layout.value,
      preset: f.elements.preset.value,
      mp4: f.elements.mp4.checked,
      layouts: [...f.elements.layout.options].map((o) => o.value),
    }));
    emit({ event: "form", ...form });
    const [navigation] = await Promise.all([
      page.waitForNavigation({ waitUntil: "domcontentloaded", timeout: 20_000 }).catch((error) => error),
      page.click(`${roomSelector} form.golive button[type=submit]`),
    ]);
    if (navigation instanceof Error) {
      const error = await page.$eval(`${roomSelector} form.golive .error`, (node) => node.textContent).catch(() => "");
      throw new Failure(`going live did not open the livestream page: ${error || navigation.message}`);
    }
    const match = /^\/livestreams\/([0-9a-f-]{36})$/.exec(new URL(page.url()).pathname);
    if (!match) throw new Failure(`went to ${page.url()} instead of /livestreams/{id}`);
    const id = match[1];
    emit({ event: "golive", id, url: page.url() });

    // `/livestreams/{id}`: still signed in (sessionStorage), on air.
    await until("the livestream page's content", 10_000, () => page.$("#app:not([hidden])"));
    await waitForState("active", 30_000);

    // The preview shows program frames, and they move.
    const first = await until("a program frame in the preview", 20_000, () => page.evaluate(sampleFrame));
    const frames = [first];
    const sampleUntil = Date.now() + 4000;
    while (Date.now() < sampleUntil) {
      await sleep(700);
      const next = await page.evaluate(sampleFrame);
      if (next) frames.push(next);
    }
    const last = frames[frames.length - 1];
    const preview = {
      kind: last.kind,
      paused: last.paused,
      width: first.width,
      height: first.height,
      samples: frames.length,
      distinct: new Set(frames.map((f) => f.hash)).size,
      firstStddev: first.stddev,
      lastStddev: last.stddev,
      framesLoaded: last.frames - first.frames,
      previewMisses,
      note: await page.$eval("#preview-note", (node) => node.textContent),
    };
    emit({ event: "preview", ...preview });

    // Switch the layout with the select.
    await until("the layout select to be enabled", 5_000, () => page.$("#layout:not([disabled])"));
    await page.select("#layout", options["switch-to"]);
    const layout = await until(`the layout to become ${options["switch-to"]}`, 15_000, () =>
      page.evaluate((want) => {
        const status = window.onairDashboard && window.onairDashboard.status;
        const note = document.getElementById("layout-note").textContent;
        const select = document.getElementById("layout");
        const message = document.getElementById("message").textContent;
        if (message) return { failed: message };
        if (!status || status.layout !== want || select.value !== want || !note.includes(want)) return null;
        return { layout: status.layout, select: select.value, note, summary: document.getElementById("summary").textContent };
      }, options["switch-to"]));
    if (layout.failed) throw new Failure(`the layout switch failed: ${layout.failed}`);
    emit({ event: "layout", ...layout });
    // Let the new layout reach the preview before the screenshot.
    await sleep(2500);
    await screenshot("livestream.png");

    // Stop: two clicks.
    await page.click("#stop");
    const armed = await page.$eval("#stop", (node) => node.textContent);
    await page.click("#stop");
    emit({ event: "stop", armed });
    await waitForState("completed", 40_000);
    const ended = await until("the history and the Go live again button", 10_000, () =>
      page.evaluate(() => {
        const to = [...document.querySelectorAll("#history li[data-to]")].map((li) => li.dataset.to);
        const again = document.getElementById("again");
        const stop = document.getElementById("stop");
        if (!to.includes("completed") || again.hidden) return null;
        return {
          to,
          again: !again.hidden,
          stopHidden: stop.hidden,
          outputs: [...document.querySelectorAll("#outputs tbody tr[data-kind]")].map((tr) => ({ kind: tr.dataset.kind, state: tr.dataset.state })),
        };
      }));
    emit({ event: "history", ...ended });

    // "Go live again" starts a new livestream of the same room and layout; stop it too.
    const [again] = await Promise.all([
      page.waitForNavigation({ waitUntil: "domcontentloaded", timeout: 20_000 }).catch((error) => error),
      page.click("#again"),
    ]);
    if (again instanceof Error) {
      const message = await page.$eval("#message", (node) => node.textContent).catch(() => "");
      throw new Failure(`Go live again did not open a new livestream page: ${message || again.message}`);
    }
    const againId = (/^\/livestreams\/([0-9a-f-]{36})$/.exec(new URL(page.url()).pathname) || [])[1];
    if (!againId || againId === id) throw new Failure(`Go live again went to ${page.url()}`);
    await until("the new livestream page's content", 10_000, () => page.$("#app:not([hidden])"));
    await waitForState("active", 30_000);
    const againLayout = await page.evaluate(() => window.onairDashboard.status.layout);
    await page.click("#stop");
    await page.click("#stop");
    await waitForState("completed", 40_000);
    emit({ event: "again", id: againId, layout: againLayout });

    // Back on `/`: the livestream is listed as completed; the form again, photographed.
    await page.goto(new URL("/", options.base).href, { waitUntil: "domcontentloaded", timeout: remaining() });
    const listed = await until("the completed livestream in the list on /", 10_000, () =>
      page.evaluate((livestream) => {
        const row = document.querySelector(`#livestreams tr[data-livestream-id="${livestream}"]`);
        if (!row || row.dataset.state !== "completed") return null;
        return { state: row.dataset.state, text: row.textContent, link: row.querySelector("a").getAttribute("href") };
      }, id));
    emit({ event: "listed", ...listed });
    await until(`room ${options.room} on /`, 10_000, () => page.$(roomSelector));
    await page.click(`${roomSelector} .golive-toggle`);
    await page.select(`${roomSelector} select[name=layout]`, options.layout);
    await screenshot("dashboard-home.png");

    // A token the server rejects brings the sign-in form back.
    await page.evaluate(() => sessionStorage.setItem("onair.dashboard.authorization", "Bearer not-a-token"));
    await page.reload({ waitUntil: "domcontentloaded" });
    const relogin = await until("the sign-in form after a rejected token", 10_000, () =>
      page.evaluate(() => {
        const login = document.getElementById("login");
        const message = document.getElementById("login-message").textContent;
        return !login.hidden && document.getElementById("app").hidden && message ? { message } : null;
      }));
    emit({ event: "rejected", ...relogin });

    emit({ event: "result", ok: true, id, states });
    return 0;
  } catch (error) {
    const reason = error instanceof Failure ? error.message : `${error?.stack || error}`;
    emit({ event: "result", ok: false, reason, states });
    console.error(`dashboard: ${reason}`);
    return 1;
  } finally {
    await browser.close().catch(() => {});
  }
}

process.exitCode = await main();
