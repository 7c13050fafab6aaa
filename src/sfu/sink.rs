//! An in-process room subscriber (the composer): a bounded channel it reads
//! at its own pace. Room changes are never lost (they wait in a backlog, in
//! order); media is dropped while the subscriber is behind, and the track
//! gets a keyframe request once it catches up.

use std::collections::{HashSet, VecDeque};

use tokio::sync::mpsc::{self, error::TrySendError};

use super::events::{RoomEvent, TrackSid};

pub struct Sink {
    pub room: String,
    tx: mpsc::Sender<RoomEvent>,
    backlog: VecDeque<RoomEvent>,
    /// Tracks whose packets were dropped: the decoder needs a keyframe.
    starved: HashSet<TrackSid>,
    pub dropped_packets: u64,
}

/// What happened to one media event.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Sent, and the first after drops on this track: ask for a keyframe.
    Resumed,
    Dropped,
    Closed,
}

impl Sink {
    pub fn new(room: &str, tx: mpsc::Sender<RoomEvent>) -> Sink {
        Sink {
            room: room.to_string(),
            tx,
            backlog: VecDeque::new(),
            starved: HashSet::new(),
            dropped_packets: 0,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// A room change: queued behind earlier ones, never dropped.
    pub fn control(&mut self, event: RoomEvent) {
        self.backlog.push_back(event);
        self.flush();
    }

    /// Sends what waits in the backlog; true when it is empty.
    pub fn flush(&mut self) -> bool {
        while let Some(event) = self.backlog.pop_front() {
            match self.tx.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    self.backlog.push_front(event);
                    return false;
                }
                Err(TrySendError::Closed(_)) => {
                    self.backlog.clear();
                    return false;
                }
            }
        }
        true
    }

    /// A packet or sender report of `track`: sent only when nothing waits
    /// before it, dropped (never queued) when the subscriber is behind.
    pub fn media(&mut self, track: &TrackSid, event: RoomEvent) -> Delivery {
        if !self.flush() {
            return self.drop_for(track);
        }
        match self.tx.try_send(event) {
            Ok(()) if self.starved.remove(track) => Delivery::Resumed,
            Ok(()) => Delivery::Sent,
            Err(TrySendError::Full(_)) => self.drop_for(track),
            Err(TrySendError::Closed(_)) => Delivery::Closed,
        }
    }

    fn drop_for(&mut self, track: &TrackSid) -> Delivery {
        if self.is_closed() {
            return Delivery::Closed;
        }
        self.dropped_packets += 1;
        self.starved.insert(track.clone());
        Delivery::Dropped
    }

    pub fn forget_track(&mut self, track: &TrackSid) {
        self.starved.remove(track);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sfu::events::ParticipantSid;

    fn left(n: u8) -> RoomEvent {
        RoomEvent::ParticipantLeft {
            participant: ParticipantSid(format!("PA_{n}")),
        }
    }

    fn sr() -> RoomEvent {
        RoomEvent::SenderReport {
            track: TrackSid::from("TR_a"),
            ntp: crate::sfu::NtpTime(0),
            rtp_time: 0,
        }
    }

    #[test]
    fn media_is_dropped_when_full_and_resumes_with_a_keyframe_request() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut sink = Sink::new("r", tx);
        let track = TrackSid::from("TR_a");
        assert_eq!(sink.media(&track, sr()), Delivery::Sent);
        assert_eq!(sink.media(&track, sr()), Delivery::Sent);
        assert_eq!(sink.media(&track, sr()), Delivery::Dropped);
        rx.try_recv().unwrap();
        assert_eq!(sink.media(&track, sr()), Delivery::Resumed);
        assert_eq!(sink.dropped_packets, 1);
    }

    #[test]
    fn control_events_wait_in_order_and_hold_back_media() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut sink = Sink::new("r", tx);
        let track = TrackSid::from("TR_a");
        sink.control(left(1));
        sink.control(left(2));
        sink.control(left(3));
        assert_eq!(sink.media(&track, sr()), Delivery::Dropped);
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(rx.try_recv().unwrap());
            sink.flush();
        }
        assert_eq!(got, vec![left(1), left(2), left(3)]);
        assert_eq!(sink.media(&track, sr()), Delivery::Resumed);
    }

    #[test]
    fn closed_receiver_is_reported() {
        let (tx, rx) = mpsc::channel(1);
        let mut sink = Sink::new("r", tx);
        drop(rx);
        assert!(sink.is_closed());
        assert_eq!(sink.media(&TrackSid::from("TR_a"), sr()), Delivery::Closed);
    }
}
