//! The livestream state machine against a real Postgres.

use onair::livestream::{Status, TransitionError, transition};
use onair::store::{MIGRATOR, NewLivestream, NewOutput, Store, StoreError};
use sqlx::PgPool;
use uuid::Uuid;

fn new_livestream(room: &str) -> NewLivestream {
    NewLivestream {
        id: Uuid::new_v4(),
        user_id: "alice".into(),
        room_name: room.into(),
        layout: "gallery".into(),
        preset: "H264_720P_30".into(),
        width: 1280,
        height: 720,
        fps: 30,
        video_bitrate_kbps: 3000,
        latency_mode: "standard".into(),
        max_duration_secs: None,
        owner_node: "node-a".into(),
        media: "audio_video".into(),
        egress_id: onair::livestream::egress::new_egress_id(),
        api_key: "APIkey".into(),
        source_type: "room_composite".into(),
        audio_bitrate_kbps: 128,
        keyframe_interval_secs: 2.0,
        source_identity: None,
        source_screen_share: false,
        source_audio_track: None,
        source_video_track: None,
        room_sid: None,
    }
}

async fn create(store: &Store, room: &str) -> Uuid {
    let new = new_livestream(room);
    store.create_livestream(&new, &[]).await.unwrap();
    new.id
}

/// Walks a fresh livestream along `path` (each step must succeed).
async fn walk(store: &Store, id: Uuid, path: &[Status]) {
    for &to in path {
        transition(store, id, to, "test", None)
            .await
            .unwrap_or_else(|e| panic!("→ {to}: {e}"));
    }
}

async fn history(store: &Store, id: Uuid) -> Vec<(Option<String>, String)> {
    store
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.from_status, e.to_status))
        .collect()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_happy_path_is_logged_and_stamped(pool: PgPool) {
    use Status::*;
    let store = Store::from_pool(pool);
    let id = create(&store, "room-1").await;
    walk(&store, id, &[Starting, Active, Stopping, Completed]).await;
    let row = store.livestream(id).await.unwrap().unwrap();
    assert_eq!(row.status, "completed");
    assert!(row.started_at.is_some() && row.ended_at.is_some());
    assert!(row.ended_at >= row.started_at);
    let expected: Vec<(Option<String>, String)> = [
        (None, "idle"),
        (Some("idle"), "starting"),
        (Some("starting"), "active"),
        (Some("active"), "stopping"),
        (Some("stopping"), "completed"),
    ]
    .iter()
    .map(|(f, t)| (f.map(String::from), t.to_string()))
    .collect();
    assert_eq!(history(&store, id).await, expected);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn every_allowed_transition_applies(pool: PgPool) {
    use Status::*;
    let store = Store::from_pool(pool);
    // (path to reach the source state, the transition under test)
    let cases: [(&[Status], Status); 8] = [
        (&[], Starting),
        (&[Starting], Active),
        (&[Starting], Stopping),
        (&[Starting, Active], Stopping),
        (&[Starting, Active, Stopping], Completed),
        (&[Starting], Failed),
        (&[Starting, Active], Failed),
        (&[Starting, Active, Stopping], Failed),
    ];
    for (n, (path, to)) in cases.iter().enumerate() {
        let id = create(&store, &format!("allowed-{n}")).await;
        walk(&store, id, path).await;
        let from = path.last().copied().unwrap_or(Idle);
        let done = transition(&store, id, *to, "under test", Some("why"))
            .await
            .unwrap();
        assert_eq!((done.from, done.to), (from, *to));
        assert_eq!(done.row.status, to.as_str());
        if *to == Failed {
            assert_eq!(done.row.error.as_deref(), Some("why"));
            assert!(done.row.ended_at.is_some());
        }
        let last = history(&store, id).await.pop().unwrap();
        assert_eq!(last, (Some(from.to_string()), to.to_string()));
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn illegal_transitions_change_nothing(pool: PgPool) {
    use Status::*;
    let store = Store::from_pool(pool);
    let cases: [(&[Status], Status); 9] = [
        (&[], Active),
        (&[], Completed),
        (&[], Failed),
        (&[], Stopping),
        (&[Starting], Completed),
        (&[Starting, Active], Starting),
        (&[Starting, Active, Stopping], Active),
        (&[Starting, Active, Stopping, Completed], Failed),
        (&[Starting, Failed], Starting),
    ];
    for (n, (path, to)) in cases.iter().enumerate() {
        let id = create(&store, &format!("illegal-{n}")).await;
        walk(&store, id, path).await;
        let before = store.livestream(id).await.unwrap().unwrap();
        let events_before = history(&store, id).await;
        let from = path.last().copied().unwrap_or(Idle);
        match transition(&store, id, *to, "should not happen", Some("nope")).await {
            Err(TransitionError::Illegal { from: f, to: t }) => assert_eq!((f, t), (from, *to)),
            other => panic!("{from} → {to}: expected Illegal, got {other:?}"),
        }
        let after = store.livestream(id).await.unwrap().unwrap();
        assert_eq!(after.status, before.status);
        assert_eq!(after.error, before.error);
        assert_eq!(after.updated_at, before.updated_at);
        assert_eq!(history(&store, id).await, events_before);
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn unknown_livestream_is_not_found(pool: PgPool) {
    let store = Store::from_pool(pool);
    let missing = Uuid::new_v4();
    assert!(matches!(
        transition(&store, missing, Status::Starting, "x", None).await,
        Err(TransitionError::NotFound(id)) if id == missing
    ));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn racing_the_same_transition_exactly_one_wins(pool: PgPool) {
    use Status::*;
    let store = Store::from_pool(pool);
    for round in 0..10 {
        let id = create(&store, &format!("race-{round}")).await;
        walk(&store, id, &[Starting, Active]).await;
        // Eight tasks race active → stopping; then eight race to end it, half
        // wanting completed and half failed.
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { transition(&store, id, Stopping, "race", None).await })
            })
            .collect();
        let mut wins = 0;
        for racer in racers {
            match racer.await.unwrap() {
                Ok(_) => wins += 1,
                Err(TransitionError::Illegal {
                    from: Stopping,
                    to: Stopping,
                }) => {}
                Err(other) => panic!("unexpected: {other}"),
            }
        }
        assert_eq!(wins, 1, "round {round}");
        let enders: Vec<_> = (0..8)
            .map(|n| {
                let store = store.clone();
                let to = if n % 2 == 0 { Completed } else { Failed };
                tokio::spawn(async move { transition(&store, id, to, "race", None).await })
            })
            .collect();
        let mut ended = 0;
        for ender in enders {
            ended += ender.await.unwrap().is_ok() as usize;
        }
        assert_eq!(ended, 1, "round {round}");
        let events = history(&store, id).await;
        assert_eq!(
            events.len(),
            5,
            "one event per applied transition: {events:?}"
        );
    }
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn one_open_livestream_per_room(pool: PgPool) {
    use Status::*;
    let store = Store::from_pool(pool);
    let first = create(&store, "shared-room").await;
    let second = new_livestream("shared-room");
    match store.create_livestream(&second, &[]).await {
        Err(StoreError::Conflict(constraint)) => {
            assert_eq!(constraint, "livestreams_one_live_per_room")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Nothing of the refused livestream was stored.
    assert!(store.livestream(second.id).await.unwrap().is_none());
    // Once the first has ended, the room can go live again.
    walk(&store, first, &[Starting, Failed]).await;
    store.create_livestream(&second, &[]).await.unwrap();
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn outputs_are_stored_with_keys_apart(pool: PgPool) {
    let store = Store::from_pool(pool);
    let new = new_livestream("outputs-room");
    let output = NewOutput {
        object_key: None,
        id: Uuid::new_v4(),
        kind: "rtmp".into(),
        destination_type: Some("youtube".into()),
        name: "yt".into(),
        url: "rtmp://a.rtmp.youtube.com/live2/****".into(),
        stream_key: Some("sekrit".into()),
    };
    store
        .create_livestream(&new, std::slice::from_ref(&output))
        .await
        .unwrap();
    let rows = store.outputs_of(&[new.id]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "pending");
    assert!(!rows[0].url.contains("sekrit"));
    assert_eq!(rows[0].stream_key.as_deref(), Some("sekrit"));
}

#[sqlx::test(migrations = false)]
async fn migrations_apply_to_an_empty_database_and_rerun_cleanly(pool: PgPool) {
    let tables = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' AND table_name LIKE 'livestream%' ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    assert!(tables().await.is_empty());
    MIGRATOR.run(&pool).await.unwrap();
    assert_eq!(
        tables().await,
        ["livestream_events", "livestream_outputs", "livestreams"]
    );
    MIGRATOR.run(&pool).await.unwrap();
    let index: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'livestreams_one_live_per_room')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(index);
}
