//! LiveKit's auto egress: a room created with `egress` (RoomService
//! CreateRoom, or an access token's `roomConfig`) starts a room composite
//! when its first participant joins, a participant egress for every
//! participant who joins and a track egress for every track published,
//! owned by the API key that asked for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use livekit_protocol as proto;
use tokio::sync::broadcast::{self, error::RecvError};

use super::egress::{EgressContext, TrackFacts, participant, room_composite, track};
use super::request::{GoLive, ValidationError};
use super::service::LivestreamService;
use crate::auth::{Caller, Credentials, KeyRing};
use crate::sfu::{Codec, ParticipantSummary, RoomNotice, RoomSummary, TrackInfo, TrackKind};

struct Pending {
    caller: Caller,
    egress: proto::RoomEgress,
    /// The room composite has been started (once per room).
    room_started: bool,
}

/// The file extension a codec is recorded in without transcoding (None:
/// it cannot be); the media engine knows.
pub type TrackContainer = fn(Codec) -> Option<&'static str>;

pub struct AutoEgress {
    service: Arc<LivestreamService>,
    keys: KeyRing,
    track_container: TrackContainer,
    rooms: Mutex<HashMap<String, Pending>>,
}

impl AutoEgress {
    pub fn new(
        service: Arc<LivestreamService>,
        keys: KeyRing,
        track_container: TrackContainer,
    ) -> Arc<AutoEgress> {
        Arc::new(AutoEgress {
            service,
            keys,
            track_container,
            rooms: Mutex::new(HashMap::new()),
        })
    }

    /// Remembers what `room` starts when people join; a request that could
    /// never start is refused now rather than when someone joins.
    pub fn register(
        &self,
        room: &str,
        caller: &Caller,
        egress: proto::RoomEgress,
    ) -> Result<(), ValidationError> {
        // Checked with a stand-in room id and identity; the real ones come later.
        if let Some(request) = self.room_request(room, &egress) {
            self.translate(String::new(), |c| room_composite(request, c))?;
        }
        if let Some(request) = participant_request(room, "someone", &egress) {
            self.translate(String::new(), |c| participant(request, c))?;
        }
        if let Some(request) = track_request(room, "TR_check", &egress) {
            let facts = TrackFacts {
                sid: "TR_check".into(),
                audio: false,
                source: "camera".into(),
                publisher_identity: "someone".into(),
                extension: "webm",
            };
            self.translate(String::new(), |c| track(request, &facts, c))?;
        }
        if egress.room.is_none() && egress.participant.is_none() && egress.tracks.is_none() {
            return Ok(());
        }
        // The egress is the server's doing for the API key (a joining
        // participant's token may not record): it belongs to the key.
        let owner = Caller {
            api_key: caller.api_key.clone(),
            user_id: caller.api_key.clone(),
            credentials: Credentials::ApiSecret,
        };
        let pending = Pending {
            caller: owner,
            egress,
            room_started: false,
        };
        self.rooms
            .lock()
            .expect("auto egress lock")
            .insert(room.to_string(), pending);
        tracing::info!(room, "auto egress registered");
        Ok(())
    }

    /// Follows the rooms' notices until the bus closes.
    pub fn follow(self: Arc<Self>, mut notices: broadcast::Receiver<RoomNotice>) {
        tokio::spawn(async move {
            loop {
                match notices.recv().await {
                    Ok(RoomNotice::ParticipantJoined(room, participant)) => {
                        self.joined(&room, &participant).await
                    }
                    Ok(RoomNotice::TrackPublished(room, participant, published)) => {
                        self.published(&room, &participant, &published).await
                    }
                    Ok(RoomNotice::RoomFinished(room)) => {
                        self.rooms
                            .lock()
                            .expect("auto egress lock")
                            .remove(&room.name);
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "auto egress fell behind on room events")
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    async fn joined(&self, room: &RoomSummary, joined: &ParticipantSummary) {
        let (caller, room_request, participant_request) = {
            let mut rooms = self.rooms.lock().expect("auto egress lock");
            let Some(pending) = rooms.get_mut(&room.name) else {
                return;
            };
            let room_request = if pending.room_started {
                None
            } else {
                pending.room_started = true;
                self.room_request(&room.name, &pending.egress)
            };
            let identity = &joined.info.identity;
            (
                pending.caller.clone(),
                room_request,
                participant_request(&room.name, identity, &pending.egress),
            )
        };
        if let Some(request) = room_request {
            let go_live = self.translate(room.sid.clone(), |c| room_composite(request, c));
            self.start(&caller, &room.name, go_live).await;
        }
        if let Some(request) = participant_request {
            let go_live = self.translate(room.sid.clone(), |c| participant(request, c));
            self.start(&caller, &room.name, go_live).await;
        }
    }

    /// A track egress of each track published, when the room asked for it.
    async fn published(
        &self,
        room: &RoomSummary,
        owner: &ParticipantSummary,
        published: &TrackInfo,
    ) {
        let (caller, request) = {
            let rooms = self.rooms.lock().expect("auto egress lock");
            let Some(pending) = rooms.get(&room.name) else {
                return;
            };
            let Some(request) = track_request(&room.name, published.sid.as_str(), &pending.egress)
            else {
                return;
            };
            (pending.caller.clone(), request)
        };
        let Some(extension) = (self.track_container)(published.codec) else {
            tracing::warn!(room = %room.name, track = %published.sid, codec = ?published.codec, "auto track egress: this codec cannot be recorded as it is");
            return;
        };
        let facts = TrackFacts {
            sid: published.sid.to_string(),
            audio: published.kind == TrackKind::Audio,
            source: published.source.name().to_string(),
            publisher_identity: owner.info.identity.clone(),
            extension,
        };
        let go_live = self.translate(room.sid.clone(), |c| track(request, &facts, c));
        self.start(&caller, &room.name, go_live).await;
    }

    fn room_request(
        &self,
        room: &str,
        egress: &proto::RoomEgress,
    ) -> Option<proto::RoomCompositeEgressRequest> {
        egress
            .room
            .clone()
            .map(|request| proto::RoomCompositeEgressRequest {
                room_name: room.to_string(),
                ..request
            })
    }

    fn translate(
        &self,
        room_id: String,
        translate: impl FnOnce(&EgressContext) -> Result<GoLive, ValidationError>,
    ) -> Result<GoLive, ValidationError> {
        let settings = self.service.settings();
        translate(&EgressContext {
            limits: &settings.limits,
            capabilities: settings.capabilities,
            layouts: &settings.layouts,
            room_id,
            now: chrono::Utc::now(),
            keys: &self.keys,
        })
    }

    async fn start(&self, caller: &Caller, room: &str, go_live: Result<GoLive, ValidationError>) {
        let result = match go_live {
            Ok(go_live) => self
                .service
                .start(caller, go_live)
                .await
                .map_err(|e| e.to_string()),
            Err(error) => Err(error.message),
        };
        match result {
            Ok(details) => {
                tracing::info!(room, egress = %details.row.egress_id, "auto egress started")
            }
            Err(error) => tracing::warn!(room, %error, "auto egress did not start"),
        }
    }
}

/// A track egress of `track` with the auto egress's file settings.
fn track_request(
    room: &str,
    track: &str,
    egress: &proto::RoomEgress,
) -> Option<proto::TrackEgressRequest> {
    use proto::auto_track_egress::Output as Auto;
    use proto::direct_file_output::Output;
    let auto = egress.tracks.as_ref()?;
    let output = auto.output.clone().map(|output| match output {
        Auto::S3(s3) => Output::S3(s3),
        Auto::Gcp(gcp) => Output::Gcp(gcp),
        Auto::Azure(azure) => Output::Azure(azure),
        Auto::AliOss(oss) => Output::AliOss(oss),
    });
    Some(proto::TrackEgressRequest {
        room_name: room.to_string(),
        track_id: track.to_string(),
        output: Some(proto::track_egress_request::Output::File(
            proto::DirectFileOutput {
                filepath: auto.filepath.clone(),
                output,
                ..Default::default()
            },
        )),
        ..Default::default()
    })
}

/// A participant egress of `identity` with the auto egress's options.
fn participant_request(
    room: &str,
    identity: &str,
    egress: &proto::RoomEgress,
) -> Option<proto::ParticipantEgressRequest> {
    use proto::auto_participant_egress::Options as Auto;
    use proto::participant_egress_request::Options;
    let auto = egress.participant.as_ref()?;
    Some(proto::ParticipantEgressRequest {
        room_name: room.to_string(),
        identity: identity.to_string(),
        file_outputs: auto.file_outputs.clone(),
        segment_outputs: auto.segment_outputs.clone(),
        options: auto.options.map(|options| match options {
            Auto::Preset(preset) => Options::Preset(preset),
            Auto::Advanced(advanced) => Options::Advanced(advanced),
        }),
        ..Default::default()
    })
}
