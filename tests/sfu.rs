//! The SFU with real peers from another stack (Python aiortc) over real
//! UDP on 127.0.0.1: WHIP publishing, WHEP viewing, the in-process
//! subscription, identity takeover, signaling errors, room closing and the
//! LiveKit-format webhooks.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::sfu::{Peer, SfuOptions, SfuServer, join_token, publisher, webhook_receiver};
use common::{KEY, SECRET};
use onair::auth::{AccessToken, KeyRing, VideoGrant};
use onair::config::Secret;
use onair::sfu::{RoomEvent, RoomNotice, RoomSettings, TrackInfo, TrackKind, TrackSid};
use serde_json::Value;
use tokio::sync::mpsc;

const ROOM: &str = "sfu-room";
/// Enough for ICE, DTLS and a first keyframe on a busy 2-core machine.
const CONNECT: Duration = Duration::from_secs(20);

/// Reads room events until `want` matches one (returned) or time runs out.
async fn next_matching<T>(
    events: &mut mpsc::Receiver<RoomEvent>,
    within: Duration,
    mut want: impl FnMut(&RoomEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the expected room event in time")
            .expect("subscription open");
        if let Some(found) = want(&event) {
            return found;
        }
    }
}

async fn next_notice<T>(
    notices: &mut tokio::sync::broadcast::Receiver<RoomNotice>,
    within: Duration,
    mut want: impl FnMut(&RoomNotice) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let notice = tokio::time::timeout_at(deadline, notices.recv())
            .await
            .expect("the expected room notice in time")
            .expect("bus open");
        if let Some(found) = want(&notice) {
            return found;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiortc_publisher_reaches_a_whep_viewer_and_an_in_process_subscriber() {
    let server = SfuServer::start(SfuOptions::default()).await;
    let mut room = server.sfu.subscribe_room(ROOM).await.unwrap();
    let mut publisher = publisher(&server, ROOM, "alice", 14, "200,30,30", 440);
    publisher.event("connected", CONNECT).await;

    // The in-process subscriber learns the participant and both tracks…
    let alice = next_matching(&mut room.events, CONNECT, |e| match e {
        RoomEvent::ParticipantJoined(p) if p.identity == "alice" => Some(p.sid.clone()),
        _ => None,
    })
    .await;
    let mut tracks: HashMap<TrackKind, TrackInfo> = HashMap::new();
    while tracks.len() < 2 {
        let track = next_matching(&mut room.events, CONNECT, |e| match e {
            RoomEvent::TrackPublished(t) => Some(t.clone()),
            _ => None,
        })
        .await;
        assert_eq!(track.participant, alice);
        tracks.insert(track.kind, track);
    }
    assert_eq!(tracks[&TrackKind::Video].codec, onair::sfu::Codec::Vp8);
    assert_eq!(tracks[&TrackKind::Audio].codec, onair::sfu::Codec::Opus);

    // …then RTP of both, sender reports, and alice as the active speaker
    // (aiortc sends real RFC 6464 levels; its 440 Hz tone is loud).
    let (mut video, mut audio, mut reports, mut speaking) = (0, 0, 0, false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while (video < 100 || audio < 100 || reports == 0 || !speaking) && Instant::now() < deadline {
        let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_secs(5), room.events.recv()).await
        else {
            break;
        };
        match event {
            RoomEvent::Rtp { track, .. } if track == tracks[&TrackKind::Video].sid => video += 1,
            RoomEvent::Rtp { track, .. } if track == tracks[&TrackKind::Audio].sid => audio += 1,
            RoomEvent::SenderReport { .. } => reports += 1,
            RoomEvent::ActiveSpeakers(list) => speaking |= list.first() == Some(&alice),
            _ => {}
        }
    }
    assert!(
        video >= 100 && audio >= 100,
        "RTP: {video} video, {audio} audio packets"
    );
    assert!(reports > 0, "no sender reports");
    assert!(speaking, "alice never became the active speaker");

    // A WHEP viewer decodes alice's picture and tone.
    let viewer_token = join_token(ROOM, "viewer", |_| {});
    let mut viewer = Peer::python(
        "whep_subscribe.py",
        &[
            "--url",
            &server.whep_url(ROOM, "alice"),
            "--token",
            &viewer_token,
            "--seconds",
            "4",
            "--expect-video",
            "--expect-audio",
        ],
    );
    let summary = viewer.event("summary", Duration::from_secs(40)).await;
    assert_eq!(viewer.exit_code(Duration::from_secs(10)).await, 0);
    assert!(summary["video_frames"].as_u64().unwrap() >= 30, "{summary}");
    assert_eq!(summary["video_size"], serde_json::json!([640, 360]));
    let rgb: Vec<f64> = summary["video_mean_rgb"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (got, want) in rgb.iter().zip([200.0, 30.0, 30.0]) {
        assert!(
            (got - want).abs() < 25.0,
            "colour {rgb:?} is not alice's red"
        );
    }
    assert!(summary["audio_rms"].as_f64().unwrap() > 0.02, "{summary}");
    assert_eq!(summary["delete_status"], 200);
    publisher.child.kill().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_session_with_the_same_identity_disconnects_the_first() {
    let server = SfuServer::start(SfuOptions::default()).await;
    let mut notices = server.sfu.notices();
    let mut first = publisher(&server, ROOM, "bob", 30, "30,200,30", 440);
    first.event("connected", CONNECT).await;
    let first_sid = next_notice(&mut notices, CONNECT, |n| match n {
        RoomNotice::ParticipantJoined(_, p) => Some(p.info.sid.clone()),
        _ => None,
    })
    .await;

    let mut second = publisher(&server, ROOM, "bob", 30, "30,30,200", 440);
    second.event("connected", CONNECT).await;
    let left = next_notice(&mut notices, CONNECT, |n| match n {
        RoomNotice::ParticipantLeft(_, p) => Some(p.info.sid.clone()),
        _ => None,
    })
    .await;
    assert_eq!(left, first_sid);
    let snapshot = server.sfu.room(ROOM).await.unwrap();
    assert_eq!(snapshot.participants.len(), 1);
    assert_eq!(snapshot.participants[0].info.identity, "bob");
    assert_ne!(snapshot.participants[0].info.sid, first_sid);

    first.child.kill().await.ok();
    second.child.kill().await.ok();
}

/// A minimal offer: enough for the checks that run before SDP negotiation.
const SENDING_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
    a=rtpmap:96 VP8/90000\r\n";

async fn post(url: &str, token: Option<&str>, content_type: &str, body: &str) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signaling_errors_have_clear_statuses() {
    let server = SfuServer::start(SfuOptions::default()).await;
    let whip = server.whip_url();
    let good = join_token(ROOM, "carol", |_| {});

    let no_publish = join_token(ROOM, "carol", |g| g.can_publish = Some(false));
    let (status, body) = post(&whip, Some(&no_publish), "application/sdp", SENDING_OFFER).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("permission_denied")),
        "{body}"
    );

    let mic_only = join_token(ROOM, "carol", |g| {
        g.can_publish_sources = vec!["microphone".into()]
    });
    let (status, body) = post(&whip, Some(&mic_only), "application/sdp", SENDING_OFFER).await;
    assert_eq!(status, 403);
    assert!(body["error"].as_str().unwrap().contains("camera"), "{body}");

    let mut expired =
        AccessToken::new(KEY, "carol", Duration::from_secs(600)).with_grant(VideoGrant {
            room_join: true,
            room: ROOM.into(),
            ..VideoGrant::default()
        });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    expired.claims.nbf = Some(now - 7200);
    expired.claims.exp = now - 3600;
    let expired = expired.sign(SECRET).unwrap();
    let (status, _) = post(&whip, Some(&expired), "application/sdp", SENDING_OFFER).await;
    assert_eq!(status, 401);
    let (status, _) = post(&whip, None, "application/sdp", SENDING_OFFER).await;
    assert_eq!(status, 401);

    let no_join = join_token(ROOM, "carol", |g| g.room_join = false);
    let (status, _) = post(&whip, Some(&no_join), "application/sdp", SENDING_OFFER).await;
    assert_eq!(status, 403);

    let (status, body) = post(&whip, Some(&good), "application/json", "{}").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    for malformed in [
        "hello",
        "v=0\r\nnothing else",
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n",
    ] {
        let (status, body) = post(&whip, Some(&good), "application/sdp", malformed).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad_sdp")),
            "{malformed:?}: {body}"
        );
    }
    // Nothing was created by the failures.
    assert!(server.sfu.rooms().await.unwrap().is_empty());

    let viewer = join_token(ROOM, "dave", |g| g.can_subscribe = Some(false));
    let whep = server.whep_url(ROOM, "carol");
    let (status, _) = post(&whep, Some(&viewer), "application/sdp", SENDING_OFFER).await;
    assert_eq!(status, 403);
    let viewer = join_token(ROOM, "dave", |_| {});
    let receiving = SENDING_OFFER.replace("a=sendonly", "a=recvonly");
    let (status, body) = post(&whep, Some(&viewer), "application/sdp", &receiving).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );

    let client = reqwest::Client::new();
    let session = format!("{}/whip/v1/sessions/nosuchsession", server.base);
    let response = client.delete(&session).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let response = client
        .patch(&session)
        .header("content-type", "application/trickle-ice-sdpfrag")
        .body("a=end-of-candidates\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let response = client
        .patch(&session)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);

    // Browsers may call WHIP from another origin.
    let response = client
        .request(reqwest::Method::OPTIONS, &whip)
        .header("origin", "https://example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_session_supports_trickle_ice_restart_and_delete() {
    let server = SfuServer::start(SfuOptions::default()).await;
    let mut notices = server.sfu.notices();
    let mut publisher = publisher(&server, ROOM, "erin", 30, "90,90,90", 440);
    let created = publisher.event("created", CONNECT).await;
    publisher.event("connected", CONNECT).await;
    let location = created["location"].as_str().unwrap().to_string();
    let client = reqwest::Client::new();

    // Trickle: 204.
    let response = client
        .patch(&location)
        .header("content-type", "application/trickle-ice-sdpfrag")
        .body("a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\na=end-of-candidates\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    // New credentials: an ICE restart, answered with ours and a new ETag.
    let response = client
        .patch(&location)
        .header("content-type", "application/trickle-ice-sdpfrag")
        .header("if-match", "*")
        .body("a=ice-ufrag:newU\r\na=ice-pwd:aNewPasswordOfEnoughLength22\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().contains_key("etag"));
    let frag = response.text().await.unwrap();
    assert!(
        frag.contains("a=ice-ufrag:")
            && frag.contains("a=ice-pwd:")
            && frag.contains("a=candidate:"),
        "{frag}"
    );

    // DELETE ends the session: the participant leaves.
    let response = client.delete(&location).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let left = next_notice(&mut notices, CONNECT, |n| match n {
        RoomNotice::ParticipantLeft(_, p) => Some(p.info.identity.clone()),
        _ => None,
    })
    .await;
    assert_eq!(left, "erin");
    let response = client.delete(&location).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    publisher.child.kill().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_and_closing_send_signed_livekit_webhooks() {
    let (url, received) = webhook_receiver().await;
    let server = SfuServer::start(SfuOptions {
        rooms: RoomSettings {
            empty_timeout: Duration::from_secs(2),
            departure_timeout: Duration::from_secs(2),
            max_participants: 0,
        },
        webhook_urls: vec![url],
        ..SfuOptions::default()
    })
    .await;
    let mut notices = server.sfu.notices();
    let mut publisher = publisher(&server, ROOM, "frank", 4, "10,10,10", 440);
    publisher.event("done", Duration::from_secs(40)).await;
    next_notice(&mut notices, Duration::from_secs(20), |n| match n {
        RoomNotice::RoomFinished(room) => Some(room.name.clone()),
        _ => None,
    })
    .await;

    // Webhooks go out asynchronously: wait for room_finished to arrive.
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events: Vec<Value> = received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| serde_json::from_slice(body).unwrap())
            .collect();
        if events.iter().any(|e| e["event"] == "room_finished") || Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "room_started",
            "participant_joined",
            "track_published",
            "track_published",
            "track_unpublished",
            "track_unpublished",
            "participant_left",
            "room_finished"
        ],
        "{events:#?}"
    );
    let joined = &events[1];
    assert_eq!(joined["room"]["name"], ROOM);
    assert!(joined["room"]["sid"].as_str().unwrap().starts_with("RM_"));
    assert_eq!(joined["participant"]["identity"], "frank");
    assert!(
        joined["participant"]["sid"]
            .as_str()
            .unwrap()
            .starts_with("PA_")
    );
    assert!(
        events[2]["track"]["sid"]
            .as_str()
            .unwrap()
            .starts_with("TR_")
    );
    assert!(
        events
            .iter()
            .all(|e| e["id"].as_str().unwrap().starts_with("EV_"))
    );

    // Each verifies with the API secret, as LiveKit's receivers check it.
    let mut keys = std::collections::BTreeMap::new();
    keys.insert(KEY.to_string(), Secret::new(SECRET));
    let ring = KeyRing::new(keys);
    for (headers, body) in received.lock().unwrap().iter() {
        assert_eq!(headers["content-type"], "application/webhook+json");
        let authorization = headers["authorization"].to_str().unwrap();
        ring.verify_webhook(Some(authorization), body)
            .expect("webhook verifies");
        let mut tampered = body.to_vec();
        tampered.push(b' ');
        assert!(ring.verify_webhook(Some(authorization), &tampered).is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_in_process_subscriber_does_not_delay_another() {
    let server = SfuServer::start(SfuOptions::default()).await;
    // One subscriber never reads (a tiny queue fills at once); one reads.
    let mut stalled = server
        .sfu
        .subscribe_room_with_capacity(ROOM, 32)
        .await
        .unwrap();
    let mut live = server.sfu.subscribe_room(ROOM).await.unwrap();
    let mut publisher = publisher(&server, ROOM, "gina", 20, "50,50,200", 440);
    publisher.event("connected", CONNECT).await;
    let video: TrackSid = next_matching(&mut live.events, CONNECT, |e| match e {
        RoomEvent::TrackPublished(t) if t.kind == TrackKind::Video => Some(t.sid.clone()),
        _ => None,
    })
    .await;

    // Over 4 s the reading subscriber gets every video packet, in order,
    // promptly, while the stalled one's queue stays full.
    let mut sequence: Vec<u16> = Vec::new();
    let mut worst_delay = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_secs(2), live.events.recv()).await
        else {
            panic!("the reading subscriber stopped receiving");
        };
        if let RoomEvent::Rtp { track, packet } = event
            && track == video
        {
            worst_delay = worst_delay.max(packet.arrival.elapsed());
            sequence.push(packet.sequence_number);
        }
    }
    assert!(
        sequence.len() > 100,
        "only {} video packets",
        sequence.len()
    );
    let gaps = sequence
        .windows(2)
        .filter(|w| w[1] != w[0].wrapping_add(1))
        .count();
    assert_eq!(gaps, 0, "the reading subscriber lost packets");
    assert!(
        worst_delay < Duration::from_millis(250),
        "a packet waited {worst_delay:?}"
    );

    // The stalled subscriber holds exactly its queue; what followed was
    // dropped, and after the drop it sees a gap (and the SFU asks for a keyframe).
    let mut held = Vec::new();
    while let Ok(event) = stalled.events.try_recv() {
        held.push(event);
    }
    assert_eq!(held.len(), 32);
    let next = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Some(RoomEvent::Rtp { track, packet }) = stalled.events.recv().await
                && track == video
            {
                return packet.sequence_number;
            }
        }
    })
    .await
    .expect("the stalled subscriber resumes");
    let last_held = held
        .iter()
        .rev()
        .find_map(|e| match e {
            RoomEvent::Rtp { track, packet } if *track == video => Some(packet.sequence_number),
            _ => None,
        })
        .unwrap_or(next);
    assert!(next.wrapping_sub(last_held) > 1, "no packets were dropped");
    publisher.child.kill().await.ok();
}

async fn twirp(server: &SfuServer, method: &str, token: &str, body: Value) -> (u16, Value) {
    let url = format!("{}/twirp/livekit.RoomService/{method}", server.base);
    post(&url, Some(token), "application/json", &body.to_string()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_service_lists_mutes_and_removes_over_twirp_json() {
    let server = SfuServer::start(SfuOptions::default()).await;
    let mut room = server.sfu.subscribe_room(ROOM).await.unwrap();
    let mut notices = server.sfu.notices();
    let mut publisher = publisher(&server, ROOM, "hank", 30, "120,60,0", 440);
    publisher.event("connected", CONNECT).await;
    // Both tracks are announced (each on its first packet) before listing.
    let mut published = HashMap::new();
    while published.len() < 2 {
        let track = next_matching(&mut room.events, CONNECT, |e| match e {
            RoomEvent::TrackPublished(t) => Some(t.clone()),
            _ => None,
        })
        .await;
        published.insert(track.kind, track.sid);
    }
    let video = published[&TrackKind::Video].clone();

    let lister = join_token("", "ops", |g| {
        g.room_join = false;
        g.room_list = true;
    });
    let (status, body) = twirp(&server, "ListRooms", &lister, serde_json::json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rooms"][0]["name"], ROOM);
    assert_eq!(body["rooms"][0]["numParticipants"], 1);

    let admin = join_token(ROOM, "ops", |g| {
        g.room_join = false;
        g.room_admin = true;
    });
    let (status, body) = twirp(
        &server,
        "ListParticipants",
        &lister,
        serde_json::json!({ "room": ROOM }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("permission_denied")),
        "{body}"
    );
    let (status, body) = twirp(
        &server,
        "ListParticipants",
        &admin,
        serde_json::json!({ "room": ROOM }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["participants"][0]["identity"], "hank");
    assert_eq!(
        body["participants"][0]["tracks"].as_array().unwrap().len(),
        2
    );

    // The same state as Prometheus metrics.
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "onair_sfu_rooms 1",
        "onair_sfu_participants 1",
        "onair_sfu_tracks 2",
        "route=\"/twirp/livekit.RoomService/{method}\",method=\"POST\",status=\"200\"",
    ] {
        assert!(metrics.contains(line), "`{line}` missing from:\n{metrics}");
    }
    let forwarded: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("onair_sfu_packets_total{event=\"received\"} "))
        .and_then(|v| v.parse().ok())
        .expect("a received-packets counter");
    assert!(forwarded > 0);

    let mute = serde_json::json!({ "room": ROOM, "identity": "hank", "trackSid": video.as_str(), "muted": true });
    let (status, body) = twirp(&server, "MutePublishedTrack", &admin, mute).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["track"]["muted"], true);
    next_matching(&mut room.events, CONNECT, |e| match e {
        RoomEvent::TrackMuted { track, muted: true } if *track == video => Some(()),
        _ => None,
    })
    .await;

    let (status, body) = twirp(&server, "NoSuchMethod", &admin, serde_json::json!({})).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("bad_route")));
    let url = format!("{}/twirp/livekit.RoomService/ListRooms", server.base);
    // An empty protobuf body is the default request, answered in protobuf.
    let (status, _) = post(&url, Some(&lister), "application/protobuf", "").await;
    assert_eq!(status, 200);
    let (status, body) = post(&url, Some(&lister), "text/plain", "").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("bad_route")));

    let remove = serde_json::json!({ "room": ROOM, "identity": "hank" });
    let (status, body) = twirp(&server, "RemoveParticipant", &admin, remove.clone()).await;
    assert_eq!(status, 200, "{body}");
    let left = next_notice(&mut notices, CONNECT, |n| match n {
        RoomNotice::ParticipantLeft(_, p) => Some(p.info.identity.clone()),
        _ => None,
    })
    .await;
    assert_eq!(left, "hank");
    let (status, body) = twirp(&server, "RemoveParticipant", &admin, remove).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

    // Rooms made by the API keep their own settings and close on their own…
    let creator = join_token("", "ops", |g| {
        g.room_join = false;
        g.room_create = true;
    });
    let create =
        serde_json::json!({ "name": "made-by-api", "emptyTimeout": 1, "maxParticipants": 5 });
    let (status, body) = twirp(&server, "CreateRoom", &admin, create.clone()).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = twirp(&server, "CreateRoom", &creator, create).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["name"].as_str(), body["emptyTimeout"].as_u64()),
        (Some("made-by-api"), Some(1))
    );
    assert_eq!(body["maxParticipants"], 5);
    let finished = next_notice(&mut notices, Duration::from_secs(10), |n| match n {
        RoomNotice::RoomFinished(room) => Some(room.name.clone()),
        _ => None,
    })
    .await;
    assert_eq!(finished, "made-by-api");
    // …and DeleteRoom closes one at once.
    let (status, _) = twirp(
        &server,
        "DeleteRoom",
        &creator,
        serde_json::json!({ "room": ROOM }),
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = twirp(&server, "ListRooms", &lister, serde_json::json!({})).await;
    // protojson leaves an empty list out.
    assert!(body.get("rooms").is_none(), "{body}");
    let (status, _) = twirp(
        &server,
        "DeleteRoom",
        &creator,
        serde_json::json!({ "room": ROOM }),
    )
    .await;
    assert_eq!(status, 404);
    publisher.child.kill().await.ok();
}
