-- Livestreams, their outputs and the audit log of every state transition.
-- Statuses are text with CHECK constraints (not enum types) so adding a state
-- is a plain migration and sqlx maps them without custom type glue.

CREATE TABLE livestreams (
    id                  uuid PRIMARY KEY,
    user_id             text        NOT NULL,
    room_name           text        NOT NULL,
    status              text        NOT NULL DEFAULT 'idle'
                        CHECK (status IN ('idle', 'starting', 'active', 'stopping', 'completed', 'failed')),
    layout              text        NOT NULL,
    preset              text        NOT NULL,
    width               integer     NOT NULL CHECK (width > 0),
    height              integer     NOT NULL CHECK (height > 0),
    fps                 integer     NOT NULL CHECK (fps > 0),
    video_bitrate_kbps  integer     NOT NULL CHECK (video_bitrate_kbps > 0),
    latency_mode        text        NOT NULL CHECK (latency_mode IN ('low', 'reduced', 'standard')),
    max_duration_secs   integer     CHECK (max_duration_secs > 0),
    mux_live_stream_id  text,
    mux_playback_id     text,
    mux_stream_key      text,
    mux_asset_id        text,
    vod_playback_id     text,
    error               text,
    owner_node          text,
    started_at          timestamptz,
    ended_at            timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- At most one non-terminal livestream per room: a second go-live is a conflict.
CREATE UNIQUE INDEX livestreams_one_live_per_room
    ON livestreams (room_name)
    WHERE status IN ('idle', 'starting', 'active', 'stopping');

CREATE INDEX livestreams_user_created ON livestreams (user_id, created_at DESC);
CREATE INDEX livestreams_owner_open ON livestreams (owner_node)
    WHERE status IN ('idle', 'starting', 'active', 'stopping');

CREATE TABLE livestream_outputs (
    id                uuid PRIMARY KEY,
    -- Insertion order, so outputs list in the order they were asked for.
    seq               bigserial   NOT NULL,
    livestream_id     uuid        NOT NULL REFERENCES livestreams (id) ON DELETE CASCADE,
    kind              text        NOT NULL CHECK (kind IN ('rtmp', 'hls', 'mp4')),
    destination_type  text        CHECK (destination_type IN ('mux', 'youtube', 'twitch', 'custom')),
    name              text        NOT NULL,
    -- Where the output goes with any secret part replaced; safe to show and log.
    url               text        NOT NULL,
    -- The secret part (stream key), kept apart so it never leaks with the URL.
    stream_key        text,
    status            text        NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'connecting', 'live', 'retrying', 'failed', 'stopped', 'removed')),
    last_error        text,
    retries           integer     NOT NULL DEFAULT 0,
    bytes_sent        bigint      NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'rtmp') = (destination_type IS NOT NULL))
);

CREATE INDEX livestream_outputs_livestream ON livestream_outputs (livestream_id, seq);

CREATE TABLE livestream_events (
    id             bigserial PRIMARY KEY,
    livestream_id  uuid        NOT NULL REFERENCES livestreams (id) ON DELETE CASCADE,
    -- NULL for the row's creation (→ idle).
    from_status    text,
    to_status      text        NOT NULL,
    reason         text        NOT NULL,
    at             timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX livestream_events_livestream ON livestream_events (livestream_id, id);
