//! Rooms and participants as LiveKit models them. Pure state: no I/O, no
//! WebRTC, so the rules (identity takeover, capacity, closing) are testable alone.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use super::events::{ParticipantInfo, ParticipantSid, TrackInfo, TrackSid, TrackSource};
use super::ids::new_sid;
use crate::auth::VideoGrant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomSettings {
    /// How long a room nobody joined stays open.
    pub empty_timeout: Duration,
    /// How long a room stays open after its last participant left.
    pub departure_timeout: Duration,
    /// 0 = unlimited. Hidden participants do not count.
    pub max_participants: u32,
}

/// What a participant may do, from its token's `video` grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub can_publish: bool,
    pub can_subscribe: bool,
    pub can_publish_data: bool,
    /// Empty = every source.
    pub publish_sources: Vec<TrackSource>,
    pub hidden: bool,
    pub recorder: bool,
    /// May change its own name, metadata and attributes (client protocol).
    pub can_update_metadata: bool,
    /// Joins as an agent (the `agent` grant, or a token of kind `agent`).
    pub agent: bool,
}

impl Permissions {
    pub fn from_grant(grant: &VideoGrant) -> Permissions {
        Permissions {
            can_publish: grant.can_publish(),
            can_subscribe: grant.can_subscribe(),
            can_publish_data: grant.can_publish_data(),
            publish_sources: grant
                .can_publish_sources
                .iter()
                .map(|s| TrackSource::from_name(s))
                .collect(),
            hidden: grant.hidden,
            recorder: grant.recorder,
            can_update_metadata: grant.can_update_own_metadata,
            agent: grant.agent,
        }
    }

    pub fn may_publish(&self, source: TrackSource) -> bool {
        self.can_publish
            && (self.publish_sources.is_empty() || self.publish_sources.contains(&source))
    }
}

#[derive(Debug, Clone)]
pub struct Participant {
    pub info: ParticipantInfo,
    pub permissions: Permissions,
    pub joined_at: SystemTime,
    pub tracks: BTreeMap<TrackSid, TrackInfo>,
    /// Key–value pairs apps set (token `attributes`, UpdateParticipant).
    pub attributes: BTreeMap<String, String>,
    /// Bumped on every change of name, metadata, attributes or permissions.
    pub version: u32,
    /// Join order within the room: layouts place people in it.
    join_order: u64,
}

impl Participant {
    pub fn new(
        identity: &str,
        name: &str,
        metadata: &str,
        permissions: Permissions,
    ) -> Participant {
        Participant {
            info: ParticipantInfo {
                sid: ParticipantSid(new_sid("PA_")),
                identity: identity.to_string(),
                name: name.to_string(),
                metadata: metadata.to_string(),
                agent: permissions.agent,
            },
            permissions,
            joined_at: SystemTime::now(),
            tracks: BTreeMap::new(),
            attributes: BTreeMap::new(),
            version: 0,
            join_order: 0,
        }
    }

    pub fn sid(&self) -> &ParticipantSid {
        &self.info.sid
    }

    pub fn hidden(&self) -> bool {
        self.permissions.hidden
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("room {room} is full ({max} participants)")]
    Full { room: String, max: u32 },
}

#[derive(Debug)]
pub struct Room {
    pub name: String,
    pub sid: String,
    pub metadata: String,
    pub created_at: SystemTime,
    pub settings: RoomSettings,
    created: Instant,
    participants: BTreeMap<ParticipantSid, Participant>,
    last_left: Option<Instant>,
    joins: u64,
}

impl Room {
    pub fn new(name: &str, settings: RoomSettings, now: Instant) -> Room {
        Room {
            name: name.to_string(),
            sid: new_sid("RM_"),
            metadata: String::new(),
            created_at: SystemTime::now(),
            settings,
            created: now,
            participants: BTreeMap::new(),
            last_left: None,
            joins: 0,
        }
    }

    /// Adds `participant`. A participant already here with the same identity
    /// is removed and returned: the caller disconnects its session.
    pub fn join(
        &mut self,
        mut participant: Participant,
        now: Instant,
    ) -> Result<Option<Participant>, JoinError> {
        let replaced_sid = self
            .participants
            .values()
            .find(|p| p.info.identity == participant.info.identity)
            .map(|p| p.sid().clone());
        let max = self.settings.max_participants;
        let counted = self
            .visible()
            .filter(|p| Some(p.sid()) != replaced_sid.as_ref())
            .count();
        if max > 0 && !participant.hidden() && counted >= max as usize {
            return Err(JoinError::Full {
                room: self.name.clone(),
                max,
            });
        }
        let replaced = replaced_sid.and_then(|sid| self.leave(&sid, now));
        self.joins += 1;
        participant.join_order = self.joins;
        self.participants
            .insert(participant.sid().clone(), participant);
        Ok(replaced)
    }

    pub fn leave(&mut self, sid: &ParticipantSid, now: Instant) -> Option<Participant> {
        let left = self.participants.remove(sid)?;
        if !left.hidden() {
            self.last_left = Some(now);
        }
        Some(left)
    }

    pub fn participant(&self, sid: &ParticipantSid) -> Option<&Participant> {
        self.participants.get(sid)
    }

    pub fn participant_mut(&mut self, sid: &ParticipantSid) -> Option<&mut Participant> {
        self.participants.get_mut(sid)
    }

    pub fn by_identity(&self, identity: &str) -> Option<&Participant> {
        self.participants
            .values()
            .find(|p| p.info.identity == identity)
    }

    /// Participants others may see (hidden ones are never announced), in join order.
    pub fn visible(&self) -> impl Iterator<Item = &Participant> {
        let mut visible: Vec<&Participant> =
            self.participants.values().filter(|p| !p.hidden()).collect();
        visible.sort_by_key(|p| p.join_order);
        visible.into_iter()
    }

    /// The participant that publishes `track`.
    pub fn track_owner(&self, track: &TrackSid) -> Option<&Participant> {
        self.participants
            .values()
            .find(|p| p.tracks.contains_key(track))
    }

    /// LiveKit's rule: after someone has left, `departure_timeout` after the
    /// last departure; a room nobody ever left closes `empty_timeout` after creation.
    pub fn is_due_to_close(&self, now: Instant) -> bool {
        if self.visible().next().is_some() {
            return false;
        }
        match self.last_left {
            Some(left) => now.duration_since(left) >= self.settings.departure_timeout,
            None => now.duration_since(self.created) >= self.settings.empty_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max: u32) -> RoomSettings {
        RoomSettings {
            empty_timeout: Duration::from_secs(300),
            departure_timeout: Duration::from_secs(20),
            max_participants: max,
        }
    }

    fn person(identity: &str, hidden: bool) -> Participant {
        let permissions = Permissions {
            can_publish: true,
            can_subscribe: true,
            can_publish_data: true,
            publish_sources: vec![],
            hidden,
            recorder: false,
            can_update_metadata: false,
            agent: false,
        };
        Participant::new(identity, identity, "", permissions)
    }

    #[test]
    fn same_identity_replaces_the_older_session() {
        let now = Instant::now();
        let mut room = Room::new("r", settings(0), now);
        let first = person("alice", false);
        let first_sid = first.sid().clone();
        assert!(room.join(first, now).unwrap().is_none());
        let replaced = room.join(person("alice", false), now).unwrap().unwrap();
        assert_eq!(replaced.sid(), &first_sid);
        assert_eq!(room.visible().count(), 1);
        assert_ne!(room.by_identity("alice").unwrap().sid(), &first_sid);
    }

    #[test]
    fn visible_participants_come_in_join_order() {
        let now = Instant::now();
        let mut room = Room::new("r", settings(0), now);
        for name in ["zoe", "adam", "mia", "bob"] {
            room.join(person(name, false), now).unwrap();
        }
        room.join(person("adam", false), now).unwrap();
        let order: Vec<&str> = room.visible().map(|p| p.info.identity.as_str()).collect();
        assert_eq!(order, ["zoe", "mia", "bob", "adam"]);
    }

    #[test]
    fn capacity_counts_visible_participants_and_allows_takeover() {
        let now = Instant::now();
        let mut room = Room::new("r", settings(2), now);
        room.join(person("a", false), now).unwrap();
        room.join(person("b", false), now).unwrap();
        assert_eq!(
            room.join(person("c", false), now).unwrap_err(),
            JoinError::Full {
                room: "r".into(),
                max: 2
            }
        );
        assert!(room.join(person("hidden", true), now).is_ok());
        assert!(room.join(person("b", false), now).unwrap().is_some());
    }

    #[test]
    fn closing_follows_empty_and_departure_timeouts() {
        let start = Instant::now();
        let mut room = Room::new("r", settings(0), start);
        assert!(!room.is_due_to_close(start + Duration::from_secs(299)));
        assert!(room.is_due_to_close(start + Duration::from_secs(300)));

        let joined = start + Duration::from_secs(10);
        let p = person("a", false);
        let sid = p.sid().clone();
        room.join(p, joined).unwrap();
        room.join(person("rec", true), joined).unwrap();
        assert!(!room.is_due_to_close(start + Duration::from_secs(400)));
        let left = start + Duration::from_secs(500);
        room.leave(&sid, left);
        // A hidden participant (a recorder) never keeps the room open.
        assert!(!room.is_due_to_close(left + Duration::from_secs(19)));
        assert!(room.is_due_to_close(left + Duration::from_secs(20)));
    }

    #[test]
    fn publish_sources_restrict_publishing() {
        let mut grant = VideoGrant {
            room_join: true,
            room: "r".into(),
            can_publish_sources: vec!["microphone".into()],
            ..VideoGrant::default()
        };
        let permissions = Permissions::from_grant(&grant);
        assert!(permissions.may_publish(TrackSource::Microphone));
        assert!(!permissions.may_publish(TrackSource::Camera));
        grant.can_publish = Some(false);
        assert!(!Permissions::from_grant(&grant).may_publish(TrackSource::Microphone));
    }
}
