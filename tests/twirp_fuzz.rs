//! Every Twirp method fed random protobuf bytes and random JSON (bounded,
//! seeded, reproducible): answers are 200 or Twirp 4xx errors in the right
//! format — never a 5xx, never a panic — and nothing is started.

mod common;

use std::time::Duration;

use common::sfu::{LiveOptions, SfuOptions, SfuServer};
use common::{KEY, SECRET};
use serde_json::{Map, Value};
use sqlx::PgPool;

const ROOM_SERVICE: [&str; 11] = [
    "CreateRoom",
    "ListRooms",
    "DeleteRoom",
    "ListParticipants",
    "GetParticipant",
    "RemoveParticipant",
    "MutePublishedTrack",
    "UpdateParticipant",
    "UpdateSubscriptions",
    "SendData",
    "UpdateRoomMetadata",
];
const EGRESS: [&str; 10] = [
    "StartRoomCompositeEgress",
    "StartParticipantEgress",
    "StartTrackCompositeEgress",
    "StartTrackEgress",
    "StartWebEgress",
    "StartEgress",
    "UpdateLayout",
    "UpdateStream",
    "ListEgress",
    "StopEgress",
];
/// Bodies per method and encoding.
const ROUNDS: usize = 40;

/// Field names LiveKit's requests use, so random JSON reaches past the parser.
const FIELDS: [&str; 40] = [
    "name",
    "room",
    "room_name",
    "roomName",
    "identity",
    "egress_id",
    "egressId",
    "layout",
    "metadata",
    "attributes",
    "permission",
    "track_sid",
    "trackSid",
    "muted",
    "names",
    "empty_timeout",
    "max_participants",
    "egress",
    "file_outputs",
    "fileOutputs",
    "stream_outputs",
    "streamOutputs",
    "segment_outputs",
    "image_outputs",
    "urls",
    "protocol",
    "preset",
    "advanced",
    "width",
    "height",
    "framerate",
    "video_bitrate",
    "filepath",
    "filename_prefix",
    "segment_duration",
    "webhooks",
    "audio_only",
    "video_only",
    "data",
    "custom_base_url",
];

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn bytes(&mut self, max: u64) -> Vec<u8> {
        let len = self.below(max);
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn string(&mut self) -> String {
        match self.below(6) {
            0 => String::new(),
            1 => "x".repeat(self.below(3000) as usize),
            2 => "rtmp://127.0.0.1:1/live/k".into(),
            3 => "ü🎥\u{0}\u{202e}../../etc".into(),
            4 => "H264_1080P_30".into(),
            _ => (0..self.below(12))
                .map(|_| char::from(b'a' + self.below(26) as u8))
                .collect(),
        }
    }

    fn json(&mut self, depth: u32) -> Value {
        let pick = if depth == 0 {
            self.below(5)
        } else {
            self.below(8)
        };
        match pick {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 1),
            2 => match self.below(4) {
                0 => Value::from(self.next() as i64),
                1 => Value::from(-1),
                2 => serde_json::json!(1e308),
                _ => Value::from(self.below(100)),
            },
            3 | 4 => Value::String(self.string()),
            5 => Value::Array((0..self.below(4)).map(|_| self.json(depth - 1)).collect()),
            _ => {
                let mut object = Map::new();
                for _ in 0..self.below(6) {
                    let key = FIELDS[self.below(FIELDS.len() as u64) as usize].to_string();
                    object.insert(key, self.json(depth - 1));
                }
                Value::Object(object)
            }
        }
    }
}

#[sqlx::test(migrator = "onair::store::MIGRATOR")]
async fn random_bodies_get_twirp_4xx_errors_and_start_nothing(pool: PgPool) {
    let recordings = tempfile::tempdir().unwrap();
    let server = SfuServer::start(SfuOptions {
        live: Some(LiveOptions {
            pool: pool.clone(),
            recordings_dir: recordings.path().to_path_buf(),
            mux: None,
            storage: None,
        }),
        ..SfuOptions::default()
    })
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let seed = 0x0a1b_2c3d_4e5f_6071;
    let mut rng = Rng(seed);
    let methods = ROOM_SERVICE
        .iter()
        .map(|m| ("livekit.RoomService", *m))
        .chain(EGRESS.iter().map(|m| ("livekit.Egress", *m)));
    let mut answered = 0;
    for (service, method) in methods {
        for round in 0..ROUNDS * 2 {
            let (content_type, body) = if round % 2 == 0 {
                ("application/protobuf", rng.bytes(300))
            } else {
                ("application/json", rng.json(4).to_string().into_bytes())
            };
            let response = client
                .post(format!("{}/twirp/{service}/{method}", server.base))
                .basic_auth(KEY, Some(SECRET))
                .header("content-type", content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("{service}/{method} ({content_type}, seed {seed:#x}): {e}")
                });
            let status = response.status();
            let what = format!(
                "{service}/{method} {content_type} {:?} (seed {seed:#x}, round {round})",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            );
            assert!(!status.is_server_error(), "{status} for {what}");
            if status.is_success() {
                answered += 1;
                continue;
            }
            assert!(status.is_client_error(), "{status} for {what}");
            assert_eq!(
                response.headers()["content-type"],
                "application/json",
                "{what}"
            );
            let error: Value = response.json().await.unwrap();
            assert!(
                error["code"].is_string() && error["msg"].is_string(),
                "{error} for {what}"
            );
        }
    }
    // Some bodies are valid (an empty ListRooms, say); none started anything.
    assert!(answered > 0);
    let livestreams: i64 = sqlx::query_scalar("SELECT count(*) FROM livestreams")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(livestreams, 0);
    let health = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
}
