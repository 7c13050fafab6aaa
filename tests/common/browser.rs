//! Headless Chromium peers: the system Chromium driven by the Node scripts in
//! tests/browser (`scripts/browser-peers` installs them).

use std::path::Path;

/// The system Chromium the drivers launch (`--chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Panics (never skips) when the browser peer's tools are missing.
pub fn require_browser_peers() {
    let hint = "run scripts/browser-peers first (it installs Chromium and Node and runs \
                `npm ci` in tests/browser; CI runs it)";
    match std::process::Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("`node --version` failed ({}): {hint}", out.status),
        Err(error) => panic!("no `node` on PATH ({error}): {hint}"),
    }
    assert!(Path::new(CHROMIUM).is_file(), "no {CHROMIUM}: {hint}");
    let puppeteer =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/puppeteer-core");
    assert!(puppeteer.is_dir(), "no {}: {hint}", puppeteer.display());
}
