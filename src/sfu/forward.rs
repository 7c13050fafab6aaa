//! Per-subscriber forwarding state: sequence-number rewriting and the
//! throttle on keyframe requests sent upstream.

use std::time::{Duration, Instant};

/// Maps a publisher's extended sequence numbers onto a subscriber's own
/// numbering. The first packet a subscriber gets becomes `start`, so a
/// late joiner's stream begins below 65 536 (no rollover counter to signal).
/// Packets the subscriber did not get (dropped while it was slow) stay gaps,
/// which its receiver reports as loss: that is what makes it ask for a keyframe.
#[derive(Debug, Clone)]
pub struct SeqRewriter {
    start: u64,
    /// `out = in + offset` (wrapping in u64 space); None before the first packet.
    offset: Option<u64>,
}

impl SeqRewriter {
    pub fn new(start: u16) -> SeqRewriter {
        SeqRewriter {
            start: u64::from(start),
            offset: None,
        }
    }

    /// The outgoing number for incoming `seq`, or None for a packet older
    /// than where this subscriber started (it would confuse its receiver).
    pub fn rewrite(&mut self, seq: u64) -> Option<u64> {
        let offset = *self
            .offset
            .get_or_insert_with(|| self.start.wrapping_sub(seq));
        let out = seq.wrapping_add(offset);
        if out < self.start || out > u64::MAX / 2 {
            return None;
        }
        Some(out)
    }
}

/// At most one keyframe request per `interval`: many subscribers asking at
/// once must not make the publisher send a stream of keyframes. A request
/// that comes too soon is not lost: it is remembered and sent when the
/// interval is up (subscribers joining together all need that keyframe).
#[derive(Debug, Clone)]
pub struct KeyframeThrottle {
    interval: Duration,
    last: Option<Instant>,
    deferred: bool,
}

impl KeyframeThrottle {
    pub fn new(interval: Duration) -> KeyframeThrottle {
        KeyframeThrottle {
            interval,
            last: None,
            deferred: false,
        }
    }

    /// Whether to send a request now; if not, one is deferred.
    pub fn allow(&mut self, now: Instant) -> bool {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.interval)
        {
            self.deferred = true;
            return false;
        }
        self.last = Some(now);
        self.deferred = false;
        true
    }

    /// Whether a deferred request is due now (it is then sent).
    pub fn deferred_due(&mut self, now: Instant) -> bool {
        self.deferred && self.allow(now)
    }
}

/// Ranks a simulcast rid, higher = better quality. Understands LiveKit's
/// and Chrome's usual names (`q`/`h`/`f`, `low`/`mid`/`high`, `0`/`1`/`2`).
pub fn layer_rank(rid: &str) -> u8 {
    match rid {
        "f" | "high" | "hi" | "2" => 2,
        "h" | "mid" | "medium" | "1" => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_from_start_and_keeps_gaps() {
        let mut seq = SeqRewriter::new(1000);
        assert_eq!(seq.rewrite(70_000), Some(1000));
        assert_eq!(seq.rewrite(70_001), Some(1001));
        assert_eq!(seq.rewrite(70_005), Some(1005));
        // Older than the subscriber's first packet: not forwarded.
        assert_eq!(seq.rewrite(69_999), None);
        // A retransmitted older packet after the start is fine.
        assert_eq!(seq.rewrite(70_003), Some(1003));
    }

    #[test]
    fn throttle_allows_one_request_per_interval() {
        let now = Instant::now();
        let mut throttle = KeyframeThrottle::new(Duration::from_millis(500));
        assert!(throttle.allow(now));
        assert!(!throttle.allow(now + Duration::from_millis(499)));
        assert!(throttle.allow(now + Duration::from_millis(500)));
    }

    #[test]
    fn a_throttled_request_is_sent_when_the_interval_is_up() {
        let now = Instant::now();
        let mut throttle = KeyframeThrottle::new(Duration::from_millis(500));
        assert!(!throttle.deferred_due(now));
        assert!(throttle.allow(now));
        assert!(!throttle.allow(now + Duration::from_millis(100)));
        assert!(!throttle.deferred_due(now + Duration::from_millis(400)));
        assert!(throttle.deferred_due(now + Duration::from_millis(500)));
        assert!(!throttle.deferred_due(now + Duration::from_millis(1500)));
    }

    #[test]
    fn layer_ranks() {
        assert!(layer_rank("f") > layer_rank("h"));
        assert!(layer_rank("h") > layer_rank("q"));
        assert!(layer_rank("2") > layer_rank("0"));
    }
}
