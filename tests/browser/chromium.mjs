// What the headless-Chromium drivers (room_publish.mjs, dashboard.mjs) share:
// their command line's common part, the JSON lines they print, launching the
// system Chromium with exactly the same flags, and a page that reports its
// console errors and uncaught exceptions.

import { parseArgs } from "node:util";
import puppeteer from "puppeteer-core";

// Exactly these flags; puppeteer only adds --remote-debugging-pipe and a
// temporary --user-data-dir (ignoreDefaultArgs drops its own defaults).
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--disable-features=WebRtcHideLocalIpsWithMdns",
];

// One JSON object per line on stdout: what the Rust tests read.
export const emit = (object) => process.stdout.write(JSON.stringify(object) + "\n");

// The driver's `options` plus `--chromium` (default /usr/bin/chromium) and
// `--help`: prints `usage` and exits 0 on --help, 2 on an unknown option.
export function parseCommandLine(options, usage) {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        ...options,
        chromium: { type: "string", default: "/usr/bin/chromium" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (error) {
    console.error(`${error.message}\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  return values;
}

// Starts `executablePath` headless with CHROMIUM_FLAGS; the error names the
// executable when it does not start.
export async function launch(executablePath, viewport) {
  try {
    return await puppeteer.launch({
      executablePath,
      headless: true,
      ignoreDefaultArgs: true,
      args: CHROMIUM_FLAGS,
      pipe: true,
      defaultViewport: viewport,
      protocolTimeout: 30_000,
    });
  } catch (error) {
    throw new Error(`could not launch ${executablePath}: ${error.message}`);
  }
}

// A new page that emits {"event":"console","type":…,"text":…,"url":…} for its
// console messages of `types` (except those `ignore(message, url)` accepts)
// and {"event":"console","type":"pageerror",…} for uncaught exceptions.
export async function newPage(browser, { types = ["error"], ignore = () => false } = {}) {
  const page = await browser.newPage();
  page.on("console", (message) => {
    if (!types.includes(message.type())) return;
    const url = message.location()?.url || "";
    if (ignore(message, url)) return;
    emit({ event: "console", type: message.type(), text: message.text(), url });
  });
  page.on("pageerror", (error) => emit({ event: "console", type: "pageerror", text: String(error?.message ?? error) }));
  return page;
}
