//! CPU time and peak memory of a child process, from `wait4`'s rusage.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub user: Duration,
    pub system: Duration,
    pub wall: Duration,
    pub max_rss_bytes: u64,
}

impl Usage {
    pub fn cpu_seconds(&self) -> f64 {
        (self.user + self.system).as_secs_f64()
    }
}

/// Runs `command` to completion and returns what it used.
pub fn run_child(command: &mut Command) -> anyhow::Result<Usage> {
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills; `pid` is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    anyhow::ensure!(
        waited == pid,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    anyhow::ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{:?} failed (status {status})",
        command.get_program()
    );
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Usage {
        user: time(usage.ru_utime),
        system: time(usage.ru_stime),
        wall,
        // Linux reports ru_maxrss in KiB.
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
    })
}

/// This process's CPU time so far.
pub fn own_cpu() -> Duration {
    // SAFETY: `rusage` is plain data that getrusage fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The run with the median CPU time (its wall time comes with it).
pub fn median(runs: &[Usage]) -> Usage {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.cpu_seconds().total_cmp(&b.cpu_seconds()));
    sorted[sorted.len() / 2]
}

/// The median of the runs' peak RSS (a run's peak is noisier than its CPU time).
pub fn median_rss(runs: &[Usage]) -> u64 {
    let mut peaks: Vec<u64> = runs.iter().map(|u| u.max_rss_bytes).collect();
    peaks.sort_unstable();
    peaks[peaks.len() / 2]
}
