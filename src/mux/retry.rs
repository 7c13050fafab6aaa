//! Retry policy: which outcomes are retried and how long to wait.
//!
//! At most [`MAX_ATTEMPTS`] requests are made for one call. Retried: HTTP 408,
//! 429 and 5xx, request timeouts and failed connections. Never retried: any
//! other 4xx (401 included). The wait is the server's `Retry-After` (seconds
//! or an HTTP date) when present, else exponential backoff with jitter.

use std::time::{Duration, SystemTime};

/// Requests made for one call, first attempt included.
pub const MAX_ATTEMPTS: u32 = 3;

/// Delay before the first retry; doubles for each further retry.
const BASE_DELAY: Duration = Duration::from_millis(500);

/// Upper bound of the computed backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Longest `Retry-After` this client will sleep for; a longer one ends the
/// call with the error instead of retrying early against the server's wish.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Whether a response status is worth another attempt.
pub(crate) fn retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// Whether a retryable status may mean the request took effect on the server
/// (so a create must look for its result before trying again). 408 and 429
/// mean the server refused the request without processing it.
pub(crate) fn status_may_have_applied(status: u16) -> bool {
    (500..=599).contains(&status)
}

/// Exponential backoff for the wait after failed attempt `attempt` (1-based):
/// 500 ms, 1 s, 2 s … capped at 8 s, less up to 25 % jitter.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(16);
    let full = BASE_DELAY.saturating_mul(1u32 << exp).min(MAX_BACKOFF);
    // Jitter factor in [0.75, 1.0].
    let jitter = 0.75 + 0.25 * random_unit();
    full.mul_f64(jitter)
}

/// A value in [0, 1) from the standard library's per-process random hash keys.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses a `Retry-After` value: delay-seconds (`"120"`, also `"1.5"`) or an
/// HTTP date (`"Wed, 21 Oct 2015 07:28:00 GMT"`, a past date meaning now).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::try_from_secs_f64(seconds).ok())
            .flatten();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409, 422] {
            assert!(!retryable_status(s), "{s}");
        }
        assert!(!status_may_have_applied(429));
        assert!(!status_may_have_applied(408));
        assert!(status_may_have_applied(503));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for _ in 0..50 {
            let first = backoff(1);
            assert!(
                first >= Duration::from_millis(375) && first <= BASE_DELAY,
                "{first:?}"
            );
            let second = backoff(2);
            assert!(second >= Duration::from_millis(750) && second <= Duration::from_secs(1));
            assert!(backoff(30) <= MAX_BACKOFF);
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21T07:28:00Z
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
