-- What Mux tells us about a livestream's Mux side, and every webhook received.

ALTER TABLE livestreams
    ADD COLUMN mux_status        text,
    -- When Mux said so; older events never overwrite newer ones.
    ADD COLUMN mux_status_at     timestamptz,
    ADD COLUMN mux_asset_status  text,
    ADD COLUMN mux_asset_error   text,
    ADD COLUMN vod_duration_secs double precision;

CREATE INDEX livestreams_mux_live_stream ON livestreams (mux_live_stream_id)
    WHERE mux_live_stream_id IS NOT NULL;

CREATE TABLE webhook_events (
    source         text        NOT NULL CHECK (source IN ('mux', 'livekit')),
    -- The sender's event id: a redelivery has the same one and changes nothing.
    id             text        NOT NULL,
    event_type     text        NOT NULL,
    object_id      text,
    livestream_id  uuid        REFERENCES livestreams (id) ON DELETE SET NULL,
    -- The body as received, with stream keys removed.
    payload        jsonb       NOT NULL,
    occurred_at    timestamptz,
    received_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id)
);

CREATE INDEX webhook_events_livestream ON webhook_events (livestream_id, received_at);
