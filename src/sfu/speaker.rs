//! Active-speaker detection from the RFC 6464 client-to-mixer audio level
//! header extension. Pure bookkeeping: the SFU feeds each audio packet's level
//! to [`ActiveSpeakers::observe`] and calls [`ActiveSpeakers::tick`] on a
//! timer; a changed list is what goes out as the room's active speakers.
//!
//! Per participant, the packets of the last observe window are kept. A
//! participant is *speaking now* when enough of that window (by audio time)
//! was louder than the active level; it *is active* from then until the hold
//! time has passed without speaking. Active speakers are ordered by a smoothed
//! loudness, and two neighbours only swap when the one behind is louder by the
//! swap margin, so near-equal voices do not make the list flap. Silence (127)
//! and missing packets are the same thing: nothing loud in the window.
//!
//! The approach follows LiveKit's `audiolevel` (active level, minimum
//! percentile of an observe window, exponential smoothing); the hold time and
//! the swap margin are ours.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// RFC 6464 level meaning digital silence (-127 dBov or quieter).
const SILENT_LEVEL: u8 = 127;

/// Audio time credited to a packet whose predecessor is unknown (the first
/// one, or the first after a gap): Opus's usual 20 ms frame.
const NOMINAL_PACKET_DURATION: Duration = Duration::from_millis(20);

/// The longest audio time one packet is credited with. Opus frames are at most
/// 60 ms in WebRTC practice; a longer gap is loss or DTX, not audio.
const MAX_PACKET_DURATION: Duration = Duration::from_millis(60);

/// Packets kept per participant: 500 ms at 10 ms frames is 50, so this only
/// bounds memory against a flood or a huge configured window.
const MAX_SAMPLES: usize = 256;

/// Tuning for [`ActiveSpeakers`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeakerConfig {
    /// A packet counts as loud when its level is at most this many -dBov.
    /// Speech through browser AGC sits around 15-35 dBov; room noise and
    /// keyboard hum are typically 50-70, so 35 separates them (LiveKit's
    /// default too).
    pub active_level: u8,
    /// Percentage of the observe window that must be loud to be speaking now.
    /// 40% tolerates the gaps between words without letting a single cough or
    /// click through.
    pub min_active_percent: u8,
    /// The sliding window the percentage is measured over. 500 ms is a couple
    /// of syllables: long enough to ignore clicks, short enough that a new
    /// speaker shows up within one window.
    pub observe_window: Duration,
    /// How long a participant stays active after they stop speaking, so that
    /// pauses between sentences do not drop them from the list.
    pub hold: Duration,
    /// Time constant of the exponential smoothing of the loudness used for
    /// ordering; damps transients so the order follows sustained loudness.
    pub smoothing: Duration,
    /// How much louder (in dB) a speaker must be than the one ahead of them
    /// to overtake. 3 dB is about the smallest difference listeners call
    /// "louder"; below it the order is kept.
    pub swap_margin_db: f64,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        Self {
            active_level: 35,
            min_active_percent: 40,
            observe_window: Duration::from_millis(500),
            hold: Duration::from_secs(1),
            smoothing: Duration::from_millis(300),
            swap_margin_db: 3.0,
        }
    }
}

/// One received packet: arrival, level, and the audio time it stands for.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    level: u8,
    duration: Duration,
}

#[derive(Debug, Default)]
struct Speaker {
    samples: VecDeque<Sample>,
    last_packet: Option<Instant>,
    last_speaking: Option<Instant>,
    /// Smoothed linear loudness (0 = silent, 1 = full scale) times the loud
    /// fraction of the window.
    smoothed: f64,
    active: bool,
}

impl Speaker {
    fn prune(&mut self, now: Instant, window: Duration) {
        while let Some(s) = self.samples.front() {
            if now.saturating_duration_since(s.at) >= window {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    fn update(&mut self, now: Instant, config: &SpeakerConfig, alpha: f64) {
        self.prune(now, config.observe_window);
        let mut loud_time = Duration::ZERO;
        let mut weighted = 0.0;
        for s in self
            .samples
            .iter()
            .filter(|s| s.level <= config.active_level)
        {
            loud_time += s.duration;
            weighted += amplitude(s.level) * s.duration.as_secs_f64();
        }
        let window = config.observe_window.as_secs_f64();
        let instant = if window > 0.0 { weighted / window } else { 0.0 };
        self.smoothed += (instant - self.smoothed) * alpha;

        let needed = config.observe_window * u32::from(config.min_active_percent.min(100)) / 100;
        if loud_time > Duration::ZERO && loud_time >= needed {
            self.last_speaking = Some(now);
        }
        self.active = self
            .last_speaking
            .is_some_and(|t| now.saturating_duration_since(t) <= config.hold);
    }
}

/// -dBov to linear amplitude: 0 -> 1.0, 20 -> 0.1, 127 -> 0.
fn amplitude(level: u8) -> f64 {
    if level >= SILENT_LEVEL {
        0.0
    } else {
        10f64.powf(-f64::from(level) / 20.0)
    }
}

/// Active speakers of a room, loudest first, with hysteresis.
#[derive(Debug)]
pub struct ActiveSpeakers<P: Clone + Eq + Hash + Ord> {
    config: SpeakerConfig,
    speakers: HashMap<P, Speaker>,
    /// The list last returned by `tick`.
    current: Vec<P>,
    last_tick: Option<Instant>,
}

impl<P: Clone + Eq + Hash + Ord> ActiveSpeakers<P> {
    pub fn new(config: SpeakerConfig) -> Self {
        Self {
            config,
            speakers: HashMap::new(),
            current: Vec::new(),
            last_tick: None,
        }
    }

    /// One packet's audio level: `level` is RFC 6464 -dBov (0 = loudest,
    /// 127 = silence; anything above 127 is treated as silence).
    pub fn observe(&mut self, participant: &P, level: u8, now: Instant) {
        let speaker = match self.speakers.get_mut(participant) {
            Some(s) => s,
            None => self.speakers.entry(participant.clone()).or_default(),
        };
        let duration = match speaker.last_packet {
            Some(prev) => {
                let gap = now.saturating_duration_since(prev);
                if gap > MAX_PACKET_DURATION {
                    NOMINAL_PACKET_DURATION
                } else {
                    gap
                }
            }
            None => NOMINAL_PACKET_DURATION,
        };
        speaker.last_packet = Some(now);
        speaker.prune(now, self.config.observe_window);
        if speaker.samples.len() >= MAX_SAMPLES {
            speaker.samples.pop_front();
        }
        speaker.samples.push_back(Sample {
            at: now,
            level: level.min(SILENT_LEVEL),
            duration,
        });
    }

    /// Forget a participant (left / track unpublished). The next `tick`
    /// reports the list without them if they were in it.
    pub fn remove(&mut self, participant: &P) {
        self.speakers.remove(participant);
    }

    /// The list last returned by `tick` (empty before the first change).
    pub fn current(&self) -> &[P] {
        &self.current
    }

    /// Call periodically (e.g. every 100-300 ms); returns Some(new ordered
    /// list, loudest first) only when the set or order of active speakers
    /// changed since the last returned list.
    #[must_use]
    pub fn tick(&mut self, now: Instant) -> Option<Vec<P>> {
        let config = self.config;
        let dt = self
            .last_tick
            .map_or(config.observe_window, |t| now.saturating_duration_since(t));
        self.last_tick = Some(now);
        // Exponential smoothing with a time constant, so the result does not
        // depend on how often tick is called.
        let alpha = if config.smoothing.is_zero() {
            1.0
        } else {
            1.0 - (-dt.as_secs_f64() / config.smoothing.as_secs_f64()).exp()
        };

        for speaker in self.speakers.values_mut() {
            speaker.update(now, &config, alpha);
        }
        // Nothing in the window and not held: the state carries no
        // information any more (a returning participant starts afresh).
        self.speakers
            .retain(|_, s| s.active || !s.samples.is_empty());

        let speakers = &self.speakers;
        let level = |p: &P| speakers.get(p).map_or(0.0, |s| s.smoothed);
        let is_active = |p: &P| speakers.get(p).is_some_and(|s| s.active);

        // Keep the previous order for those still active, then add newcomers
        // loudest first (ties by id, for determinism).
        let mut order: Vec<P> = self
            .current
            .iter()
            .filter(|p| is_active(p))
            .cloned()
            .collect();
        let kept: HashSet<&P> = order.iter().collect();
        let mut newcomers: Vec<(&P, f64)> = speakers
            .iter()
            .filter(|(p, s)| s.active && !kept.contains(p))
            .map(|(p, s)| (p, s.smoothed))
            .collect();
        newcomers.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let newcomers: Vec<P> = newcomers.into_iter().map(|(p, _)| p.clone()).collect();
        order.extend(newcomers);

        // Bubble pass: a speaker overtakes the one ahead only when louder by
        // the margin. With ratio >= 1 every swap puts a strictly louder
        // speaker first, removing one inversion, so this terminates.
        let ratio = 10f64.powf(config.swap_margin_db.max(0.0) / 20.0);
        let mut swapped = true;
        while swapped {
            swapped = false;
            for i in 1..order.len() {
                if level(&order[i]) > level(&order[i - 1]) * ratio {
                    order.swap(i, i - 1);
                    swapped = true;
                }
            }
        }

        if order == self.current {
            None
        } else {
            self.current = order.clone();
            Some(order)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP_MS: u64 = 20;
    const TICK_MS: u64 = 100;

    /// Drives an `ActiveSpeakers` with 20 ms packets and a tick every 100 ms.
    struct Sim {
        sp: ActiveSpeakers<&'static str>,
        t0: Instant,
        ms: u64,
        /// Every list `tick` returned, with its time.
        changes: Vec<(u64, Vec<&'static str>)>,
    }

    impl Sim {
        fn new() -> Self {
            Self::with(SpeakerConfig::default())
        }

        fn with(config: SpeakerConfig) -> Self {
            Self {
                sp: ActiveSpeakers::new(config),
                t0: Instant::now(),
                ms: 0,
                changes: Vec::new(),
            }
        }

        fn now(&self) -> Instant {
            self.t0 + Duration::from_millis(self.ms)
        }

        /// Runs for `dur_ms`; `level(name, ms)` is the packet each named
        /// participant sends at `ms`, or None for no packet.
        fn run_with(
            &mut self,
            dur_ms: u64,
            names: &[&'static str],
            mut level: impl FnMut(&'static str, u64) -> Option<u8>,
        ) {
            let end = self.ms + dur_ms;
            while self.ms < end {
                self.ms += STEP_MS;
                let now = self.now();
                for &name in names {
                    if let Some(l) = level(name, self.ms) {
                        self.sp.observe(&name, l, now);
                    }
                }
                if self.ms.is_multiple_of(TICK_MS) {
                    self.tick();
                }
            }
        }

        /// Runs with a constant level per participant (None = no packets).
        fn run(&mut self, dur_ms: u64, sources: &[(&'static str, Option<u8>)]) {
            let names: Vec<&'static str> = sources.iter().map(|s| s.0).collect();
            self.run_with(dur_ms, &names, |name, _| {
                sources.iter().find(|s| s.0 == name).and_then(|s| s.1)
            });
        }

        fn tick(&mut self) -> Option<Vec<&'static str>> {
            let out = self.sp.tick(self.now());
            if let Some(list) = &out {
                self.changes.push((self.ms, list.clone()));
            }
            out
        }

        fn current(&self) -> Vec<&'static str> {
            self.sp.current().to_vec()
        }

        fn first_time_active(&self, name: &str) -> Option<u64> {
            self.changes
                .iter()
                .find(|(_, l)| l.contains(&name))
                .map(|(t, _)| *t)
        }
    }

    /// Small deterministic noise source.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn single_speaker_becomes_active_within_a_second() {
        let mut sim = Sim::new();
        sim.run(1000, &[("a", Some(25))]);
        let at = sim.first_time_active("a").expect("a never became active");
        assert!(at <= 1000, "active only at {at} ms");
        assert_eq!(sim.current(), vec!["a"]);
    }

    #[test]
    fn louder_speaker_first() {
        let mut sim = Sim::new();
        sim.run(1500, &[("quiet", Some(30)), ("loud", Some(15))]);
        assert_eq!(sim.current(), vec!["loud", "quiet"]);

        // The quieter one already leading is overtaken by a clearly louder
        // newcomer.
        let mut sim = Sim::new();
        sim.run(1500, &[("quiet", Some(30))]);
        sim.run(2000, &[("quiet", Some(30)), ("loud", Some(15))]);
        assert_eq!(sim.current(), vec!["loud", "quiet"]);
    }

    #[test]
    fn brief_pauses_do_not_drop_a_speaker() {
        let mut sim = Sim::new();
        sim.run(1000, &[("a", Some(25))]);
        assert_eq!(sim.current(), vec!["a"]);
        let before = sim.changes.len();
        for _ in 0..5 {
            sim.run(200, &[("a", None)]); // no packets
            sim.run(600, &[("a", Some(25))]);
            sim.run(200, &[("a", Some(SILENT_LEVEL))]); // silence packets
            sim.run(600, &[("a", Some(25))]);
        }
        assert_eq!(sim.changes.len(), before, "changes: {:?}", sim.changes);
        assert_eq!(sim.current(), vec!["a"]);
    }

    #[test]
    fn two_seconds_of_silence_drops_a_speaker() {
        let mut sim = Sim::new();
        sim.run(1000, &[("a", Some(25))]);
        sim.run(2000, &[("a", Some(SILENT_LEVEL))]);
        assert!(sim.current().is_empty());
        assert_eq!(sim.changes.last().map(|c| c.1.clone()), Some(vec![]));
    }

    #[test]
    fn stopped_packets_decay_out() {
        let mut sim = Sim::new();
        sim.run(1000, &[("a", Some(25)), ("b", Some(20))]);
        assert_eq!(sim.current(), vec!["b", "a"]);
        sim.run(2000, &[("a", Some(25)), ("b", None)]);
        assert_eq!(sim.current(), vec!["a"]);
        // Idle state is dropped.
        assert!(!sim.sp.speakers.contains_key("b"));
    }

    #[test]
    fn background_noise_never_counts() {
        let mut sim = Sim::new();
        let mut rng = Lcg(7);
        sim.run_with(5000, &["a"], |_, _| Some(55 + rng.next(11) as u8));
        assert!(sim.changes.is_empty(), "changes: {:?}", sim.changes);
    }

    /// Two speakers with the same mean level (30 dBov), each drifting by
    /// +-1 dB every 500 ms and jittering +-3 dB per packet, for 20 s. Returns
    /// how many lists `tick` returned.
    fn near_equal_changes(config: SpeakerConfig) -> usize {
        let mut sim = Sim::with(config);
        let mut rng = Lcg(42);
        let mut drift = [1u8, 1u8];
        sim.run_with(20_000, &["a", "b"], |name, ms| {
            let k = usize::from(name == "b");
            if ms.is_multiple_of(500) {
                drift[k] = rng.next(3) as u8;
            }
            Some(26 + drift[k] + rng.next(7) as u8)
        });
        let mut set = sim.current();
        set.sort();
        assert_eq!(set, vec!["a", "b"]);
        sim.changes.len()
    }

    #[test]
    fn near_equal_speakers_do_not_flap() {
        assert_eq!(near_equal_changes(SpeakerConfig::default()), 1);
        // The same input without the margin does swap back and forth, so the
        // margin is what keeps the order.
        let no_margin = SpeakerConfig {
            swap_margin_db: 0.0,
            ..SpeakerConfig::default()
        };
        assert!(near_equal_changes(no_margin) > 5);
    }

    #[test]
    fn tick_returns_none_when_nothing_changed() {
        let mut sim = Sim::new();
        assert_eq!(sim.tick(), None);
        sim.run(1000, &[("a", Some(25))]);
        assert_eq!(sim.changes.len(), 1);
        sim.run(3000, &[("a", Some(25))]);
        assert_eq!(sim.changes.len(), 1);
        assert_eq!(sim.tick(), None);
    }

    #[test]
    fn remove_drops_immediately_and_reports() {
        let mut sim = Sim::new();
        sim.run(1000, &[("a", Some(25)), ("b", Some(20))]);
        assert_eq!(sim.current(), vec!["b", "a"]);
        sim.sp.remove(&"b");
        assert_eq!(sim.tick(), Some(vec!["a"]));
        assert_eq!(sim.tick(), None);
        // Removing someone not in the list changes nothing.
        sim.sp.remove(&"nobody");
        assert_eq!(sim.tick(), None);
    }
}
