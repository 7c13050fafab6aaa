//! LiveKit's RoomService through its official server SDKs — Python's
//! `livekit-api` (binary protobuf) and Node's `livekit-server-sdk` (JSON) —
//! against a room with a real WebRTC publisher: every method gives LiveKit's
//! answer, and unknown rooms, missing grants and malformed bodies come back
//! as Twirp errors the SDKs read.

mod common;

use std::time::Duration;

use common::lk_sdk::SdkDriver;
use common::sfu::{Peer, SfuOptions, SfuServer, join_token, publisher};
use common::{KEY, SECRET};
use onair::sfu::{RoomEvent, RoomNotice};
use serde_json::{Value, json};

const CONNECT: Duration = Duration::from_secs(20);

async fn room_with_publisher(room: &str) -> (SfuServer, Peer) {
    let server = SfuServer::start(SfuOptions::default()).await;
    let mut peer = publisher(&server, room, "alice", 120, "200,30,30", 440);
    peer.event("connected", CONNECT).await;
    (server, peer)
}

/// The first event `pick` accepts, within `within`.
async fn next_event<T>(
    events: &mut tokio::sync::mpsc::Receiver<RoomEvent>,
    within: Duration,
    mut pick: impl FnMut(&RoomEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(within, async {
        loop {
            let event = events.recv().await.expect("subscription open");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .expect("the event arrives in time")
}

/// The names of a list of objects, whichever casing the SDK returns.
fn field<'a>(value: &'a Value, camel: &str, snake: &str) -> &'a Value {
    value
        .get(camel)
        .or_else(|| value.get(snake))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn python_sdk_calls_every_room_service_method() {
    let room = "py-rooms";
    let (server, _alice) = room_with_publisher(room).await;
    let mut subscription = server.sfu.subscribe_room(room).await.unwrap();
    let mut notices = server.sfu.notices();
    let mut py = SdkDriver::python(&server.base, KEY, SECRET);

    let created = py
        .call(
            "room",
            "create_room",
            json!([{"name": "py-made", "empty_timeout": 120, "max_participants": 7, "metadata": "m0"}]),
        )
        .await
        .expect("create_room");
    assert_eq!(created["name"], "py-made");
    assert_eq!(
        (
            created["empty_timeout"].as_u64(),
            created["max_participants"].as_u64()
        ),
        (Some(120), Some(7))
    );
    assert!(created["sid"].as_str().unwrap().starts_with("RM_"));

    let rooms = py
        .call("room", "list_rooms", json!([{}]))
        .await
        .expect("list_rooms");
    let names: Vec<&str> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&room) && names.contains(&"py-made"),
        "{names:?}"
    );
    let only = py
        .call("room", "list_rooms", json!([{"names": [room]}]))
        .await
        .unwrap();
    assert_eq!(only["rooms"].as_array().unwrap().len(), 1);
    assert_eq!(only["rooms"][0]["num_participants"], 1);

    let listed = py
        .call("room", "list_participants", json!([{"room": room}]))
        .await
        .unwrap();
    let alice = &listed["participants"][0];
    assert_eq!(alice["identity"], "alice");
    assert!(alice["sid"].as_str().unwrap().starts_with("PA_"));
    let tracks = alice["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 2, "{alice}");
    let video = tracks.iter().find(|t| t["type"] == "VIDEO").unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let audio = tracks.iter().find(|t| t["type"] == "AUDIO").unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_string();

    let got = py
        .call(
            "room",
            "get_participant",
            json!([{"room": room, "identity": "alice"}]),
        )
        .await
        .unwrap();
    assert_eq!(got["sid"], alice["sid"]);
    assert_eq!(got["state"], "ACTIVE");

    // UpdateParticipant: applied at once, and programs hear about it.
    let updated = py
        .call(
            "room",
            "update_participant",
            json!([{"room": room, "identity": "alice", "name": "Alice A.", "metadata": "{\"role\":\"host\"}",
                    "attributes": {"onair.stage": "featured", "team": "red"}}]),
        )
        .await
        .expect("update_participant");
    assert_eq!(updated["name"], "Alice A.");
    assert_eq!(updated["metadata"], "{\"role\":\"host\"}");
    assert_eq!(updated["attributes"]["team"], "red");
    let renamed = next_event(&mut subscription.events, CONNECT, |e| match e {
        RoomEvent::ParticipantUpdated(info) => Some(info.name.clone()),
        _ => None,
    })
    .await;
    assert_eq!(renamed, "Alice A.");
    // An empty value removes an attribute; others stay.
    let updated = py
        .call(
            "room",
            "update_participant",
            json!([{"room": room, "identity": "alice", "attributes": {"team": ""}}]),
        )
        .await
        .unwrap();
    assert_eq!(updated["attributes"], json!({"onair.stage": "featured"}));
    assert_eq!(updated["name"], "Alice A.", "an empty name leaves it");
    let updated = py
        .call(
            "room",
            "update_participant",
            json!([{"room": room, "identity": "alice",
                    "permission": {"can_subscribe": true, "can_publish": true, "can_publish_data": false}}]),
        )
        .await
        .unwrap();
    assert_eq!(updated["permission"]["can_publish_data"], false);

    let muted = py
        .call(
            "room",
            "mute_published_track",
            json!([{"room": room, "identity": "alice", "track_sid": video, "muted": true}]),
        )
        .await
        .expect("mute_published_track");
    assert_eq!(muted["track"]["muted"], true);
    next_event(&mut subscription.events, CONNECT, |e| match e {
        RoomEvent::TrackMuted { track, muted: true } if track.as_str() == video => Some(()),
        _ => None,
    })
    .await;

    let subscribed = py
        .call(
            "room",
            "update_subscriptions",
            json!([{"room": room, "identity": "alice", "track_sids": [audio], "subscribe": true}]),
        )
        .await;
    assert!(subscribed.is_ok(), "{subscribed:?}");
    let unknown_track = py
        .call("room", "update_subscriptions", json!([{"room": room, "identity": "alice", "track_sids": ["TR_nope"], "subscribe": true}]))
        .await
        .unwrap_err();
    assert_eq!(
        unknown_track.code.as_deref(),
        Some("not_found"),
        "{unknown_track}"
    );

    let sent = py
        .call(
            "room",
            "send_data",
            json!([{"room": room, "data": "aGVsbG8=", "kind": "RELIABLE", "topic": "chat"}]),
        )
        .await;
    assert!(sent.is_ok(), "{sent:?}");

    let metadata = py
        .call(
            "room",
            "update_room_metadata",
            json!([{"room": room, "metadata": "{\"title\":\"Live\"}"}]),
        )
        .await
        .expect("update_room_metadata");
    assert_eq!(metadata["metadata"], "{\"title\":\"Live\"}");
    let rooms = py
        .call("room", "list_rooms", json!([{"names": [room]}]))
        .await
        .unwrap();
    assert_eq!(rooms["rooms"][0]["metadata"], "{\"title\":\"Live\"}");

    // Unknown rooms and participants are the SDK's own not-found errors.
    let error = py
        .call("room", "list_participants", json!([{"room": "never"}]))
        .await
        .unwrap_err();
    assert_eq!(
        (error.status, error.code.as_deref()),
        (Some(404), Some("not_found")),
        "{error}"
    );
    assert!(error.message.contains("never"), "{error}");
    let error = py
        .call(
            "room",
            "get_participant",
            json!([{"room": room, "identity": "ghost"}]),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code.as_deref(), Some("not_found"), "{error}");

    py.call(
        "room",
        "remove_participant",
        json!([{"room": room, "identity": "alice"}]),
    )
    .await
    .expect("remove_participant");
    let left = tokio::time::timeout(CONNECT, async {
        loop {
            if let Ok(RoomNotice::ParticipantLeft(_, p)) = notices.recv().await {
                return p.info.identity;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(left, "alice");
    py.call("room", "delete_room", json!([{"room": "py-made"}]))
        .await
        .expect("delete_room");
    let error = py
        .call("room", "delete_room", json!([{"room": "py-made"}]))
        .await
        .unwrap_err();
    assert_eq!(error.code.as_deref(), Some("not_found"));
}

#[tokio::test]
async fn node_sdk_calls_every_room_service_method() {
    let room = "node-rooms";
    let (server, _alice) = room_with_publisher(room).await;
    let mut node = SdkDriver::node(&server.base, KEY, SECRET);

    let created = node
        .call(
            "room",
            "createRoom",
            json!([{"name": "node-made", "emptyTimeout": 60, "metadata": "m"}]),
        )
        .await
        .expect("createRoom");
    assert_eq!(created["emptyTimeout"], 60);
    let rooms = node
        .call("room", "listRooms", json!([[room]]))
        .await
        .unwrap();
    assert_eq!(rooms.as_array().unwrap().len(), 1);
    let participants = node
        .call("room", "listParticipants", json!([room]))
        .await
        .unwrap();
    let alice = &participants[0];
    let video = alice["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "VIDEO")
        .unwrap()["sid"]
        .clone();
    let got = node
        .call("room", "getParticipant", json!([room, "alice"]))
        .await
        .unwrap();
    assert_eq!(field(&got, "identity", "identity"), "alice");
    let updated = node
        .call(
            "room",
            "updateParticipant",
            json!([room, "alice", {"name": "Alice", "attributes": {"k": "v"}}]),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            updated["name"].as_str(),
            updated["attributes"]["k"].as_str()
        ),
        (Some("Alice"), Some("v"))
    );
    let muted = node
        .call(
            "room",
            "mutePublishedTrack",
            json!([room, "alice", video, true]),
        )
        .await
        .unwrap();
    assert_eq!(muted["muted"], true, "{muted}");
    node.call(
        "room",
        "updateSubscriptions",
        json!([room, "alice", [], true]),
    )
    .await
    .expect("updateSubscriptions");
    node.call(
        "room",
        "sendData",
        json!([room, "hello", "RELIABLE", {"topic": "chat"}]),
    )
    .await
    .expect("sendData");
    let metadata = node
        .call("room", "updateRoomMetadata", json!([room, "new"]))
        .await
        .unwrap();
    assert_eq!(metadata["metadata"], "new");

    let error = node
        .call("room", "listParticipants", json!(["never"]))
        .await
        .unwrap_err();
    assert_eq!(
        (error.status, error.code.as_deref()),
        (Some(404), Some("not_found")),
        "{error}"
    );
    assert!(error.message.contains("never"), "{error}");
    node.call("room", "removeParticipant", json!([room, "alice"]))
        .await
        .expect("removeParticipant");
    node.call("room", "deleteRoom", json!(["node-made"]))
        .await
        .expect("deleteRoom");
}

/// What an SDK cannot be made to send: a token without the grant, a body
/// that does not decode. Both are Twirp errors with exactly
/// `application/json`, which is what the SDKs parse.
#[tokio::test]
async fn missing_grants_and_malformed_bodies_are_twirp_errors() {
    let room = "grants";
    let (server, _alice) = room_with_publisher(room).await;
    let client = reqwest::Client::new();
    let call = |method: &str, token: String, content_type: &str, body: Vec<u8>| {
        client
            .post(format!(
                "{}/twirp/livekit.RoomService/{method}",
                server.base
            ))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let participant = join_token(room, "bob", |_| {});
    let response = call(
        "ListParticipants",
        participant,
        "application/json",
        b"{\"room\":\"grants\"}".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "permission_denied");
    assert!(
        body["msg"].as_str().unwrap().contains("roomAdmin"),
        "{body}"
    );

    // roomAdmin for another room does not reach this one.
    let other = join_token("elsewhere", "ops", |g| g.room_admin = true);
    let response = call(
        "ListParticipants",
        other,
        "application/protobuf",
        vec![0x0a, 6, b'g', b'r', b'a', b'n', b't', b's'],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 403);

    let admin = join_token(room, "ops", |g| g.room_admin = true);
    for (content_type, body) in [
        ("application/json", b"{\"room\": 5".to_vec()),
        ("application/protobuf", vec![0xff, 0xff, 0xff, 0xff]),
    ] {
        let response = call("ListParticipants", admin.clone(), content_type, body)
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{content_type}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "malformed", "{body}");
        assert!(!body["msg"].as_str().unwrap().is_empty());
    }
    // The binary form answers in binary.
    let response = call(
        "ListParticipants",
        admin,
        "application/protobuf",
        vec![0x0a, 6, b'g', b'r', b'a', b'n', b't', b's'],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/protobuf");
    let decoded = <livekit_protocol::ListParticipantsResponse as prost::Message>::decode(
        response.bytes().await.unwrap(),
    )
    .unwrap();
    assert_eq!(decoded.participants[0].identity, "alice");

    // Unknown services and methods are Twirp's bad_route.
    let response = client
        .post(format!(
            "{}/twirp/livekit.Ingress/CreateIngress",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "bad_route");
}
