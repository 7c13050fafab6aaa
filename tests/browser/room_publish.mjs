#!/usr/bin/env node
// Publishes camera + microphone into an onair room from headless Chromium.
//
//   node room_publish.mjs --url 'http://127.0.0.1:8080/rooms/demo?token=…' \
//        [--seconds 8] [--chromium /usr/bin/chromium] [--timeout 15] \
//        [--name Alice] [--screenshot out.png]
//
// Opens the room page (templates/room.html), waits for
// #status[data-state=published], stays published for --seconds, clicks Leave
// and waits for `left`. Chromium's fake devices stand in for the camera and
// microphone. Prints one JSON object per line on stdout:
//   {"event":"state","state":"connecting","text":"…"}     on each status change
//   {"event":"participants","identities":["alice",…]}    when the list changes
//   {"event":"console","type":"error","text":"…"}         page console errors
//   {"event":"stats","outbound":[…]}                      before leaving
//   {"event":"result","ok":true|false,…}                  last line
// Exits 0 after `left`, 1 on failure or timeout (with the status text).
// --name fills the dev-mode display-name form when the URL has no token.
// --screenshot saves the published page just before Leave.

import { emit, launch, newPage, parseCommandLine } from "./chromium.mjs";

const USAGE =
  "usage: room_publish.mjs --url <room page url incl. token> [--seconds 8] " +
  "[--chromium /usr/bin/chromium] [--timeout 15] [--name <dev display name>] [--screenshot <file.png>]";

function parseOptions() {
  const values = parseCommandLine(
    {
      url: { type: "string" },
      seconds: { type: "string", default: "8" },
      timeout: { type: "string", default: "15" },
      name: { type: "string" },
      screenshot: { type: "string" },
    },
    USAGE,
  );
  const seconds = Number(values.seconds);
  const timeout = Number(values.timeout);
  if (!values.url || !(seconds >= 0) || !(timeout > 0)) {
    console.error(USAGE);
    process.exit(2);
  }
  return { ...values, seconds, timeout };
}

// Installed before the page's own scripts: reports every change of
// #status[data-state] and of the participant identities to the driver.
function observePage() {
  const install = () => {
    let lastState = null;
    let lastText = null;
    let lastIdentities = null;
    const report = () => {
      const status = document.getElementById("status");
      if (status) {
        const state = status.dataset.state || "";
        const text = status.textContent.trim();
        if (state !== lastState || text !== lastText) {
          lastState = state;
          lastText = text;
          window.__onairReport({ kind: "state", state, text });
        }
      }
      const list = document.getElementById("participants");
      if (list) {
        const identities = Array.from(list.querySelectorAll("li[data-identity]"), (li) => li.dataset.identity);
        const key = JSON.stringify(identities);
        if (key !== lastIdentities) {
          lastIdentities = key;
          window.__onairReport({ kind: "participants", identities });
        }
      }
    };
    new MutationObserver(report).observe(document.documentElement, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
      attributeFilter: ["data-state", "data-identity"],
    });
    report();
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", install, { once: true });
  } else {
    install();
  }
}

async function main() {
  const options = parseOptions();
  let current = { state: null, text: "" };
  const waiters = new Set();

  // Resolves with the state once `accept(state)` holds, rejects after ms.
  const waitFor = (accept, ms, what) =>
    new Promise((resolve, reject) => {
      if (current.state !== null && accept(current.state)) return resolve(current.state);
      const waiter = {
        check: (state) => {
          if (!accept(state)) return;
          clearTimeout(waiter.timer);
          waiters.delete(waiter);
          resolve(state);
        },
        timer: setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`timed out after ${(ms / 1000).toFixed(1)} s waiting for ${what}`));
        }, ms),
      };
      waiter.timer.unref(); // a forgotten wait never keeps the driver alive
      waiters.add(waiter);
    });

  const fail = (reason) => {
    emit({ event: "result", ok: false, reason, state: current.state, status: current.text });
    console.error(`room_publish: ${reason} (status ${current.state ?? "unknown"}: ${current.text || "-"})`);
    return 1;
  };

  let browser;
  try {
    browser = await launch(options.chromium, { width: 1100, height: 640 });
  } catch (error) {
    return fail(error.message);
  }
  try {
    const page = await newPage(browser);

    await page.exposeFunction("__onairReport", (report) => {
      if (report.kind === "state") {
        current = { state: report.state, text: report.text };
        emit({ event: "state", state: report.state, text: report.text });
        for (const waiter of [...waiters]) waiter.check(report.state);
      } else if (report.kind === "participants") {
        emit({ event: "participants", identities: report.identities });
      }
    });
    await page.evaluateOnNewDocument(observePage);

    const response = await page.goto(options.url, { waitUntil: "domcontentloaded", timeout: options.timeout * 1000 });
    if (!response || !response.ok()) {
      return fail(`the room page answered HTTP ${response ? response.status() : "nothing"}`);
    }

    const deadline = Date.now() + options.timeout * 1000;
    const remaining = () => Math.max(1, deadline - Date.now());
    // The page's script has run by DOMContentLoaded: the first report tells
    // whether it has a token.
    let state;
    try {
      state = await waitFor(() => true, remaining(), "the page's status");
    } catch (error) {
      return fail(error.message);
    }
    if (state === "need-token") {
      if (!options.name || !(await page.$("#token-form:not([hidden])"))) {
        return fail("the page needs a token (pass one in --url, or --name in dev mode)");
      }
      await page.type("#display-name", options.name);
      await page.click("#token-form button[type=submit]");
      // A dev-token error keeps need-token with the server's text: terminal.
      await new Promise((resolve) => setTimeout(resolve, 200));
      if (current.state === "need-token") {
        await waitFor((s) => s !== "need-token", Math.min(remaining(), 5000), "the dev token").catch(() => {});
        if (current.state === "need-token") return fail("no dev token");
      }
    }

    try {
      state = await waitFor((s) => s === "published" || s === "failed" || s === "left", remaining(), "published");
    } catch (error) {
      return fail(error.message);
    }
    if (state !== "published") return fail(`the page reached ${state} instead of published`);

    // Stay published; any drop to failed/left ends the run early.
    let dropped = null;
    const drop = waitFor((s) => s === "failed" || s === "left", options.seconds * 1000 + 60_000, "a drop")
      .then((s) => { dropped = s; })
      .catch(() => {});
    await Promise.race([drop, new Promise((resolve) => setTimeout(resolve, options.seconds * 1000))]);
    if (dropped) return fail(`the connection dropped to ${dropped} while published`);

    const outbound = await page.evaluate(async () => {
      const pc = window.onair && window.onair.pc;
      if (!pc) return [];
      const out = [];
      (await pc.getStats()).forEach((s) => {
        if (s.type === "outbound-rtp") {
          out.push({ kind: s.kind, packetsSent: s.packetsSent, bytesSent: s.bytesSent, framesEncoded: s.framesEncoded });
        }
      });
      return out;
    });
    emit({ event: "stats", outbound });

    if (options.screenshot) {
      await page.screenshot({ path: options.screenshot });
      emit({ event: "screenshot", path: options.screenshot });
    }

    await page.click("#leave");
    try {
      await waitFor((s) => s === "left", 10_000, "left");
    } catch (error) {
      return fail(error.message);
    }
    emit({ event: "result", ok: true, state: current.state, status: current.text });
    return 0;
  } catch (error) {
    return fail(error.message || String(error));
  } finally {
    for (const waiter of waiters) clearTimeout(waiter.timer);
    waiters.clear();
    await browser.close().catch(() => {});
  }
}

process.exitCode = await main();
