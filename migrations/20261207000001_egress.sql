-- Every livestream is also a LiveKit egress: an `EG_…` id, the API key that
-- started it (ListEgress shows a key its own), what it composes, and the
-- encoding options LiveKit's EncodingOptions carry beyond the preset.
ALTER TABLE livestreams
    ADD COLUMN egress_id text,
    ADD COLUMN api_key text,
    ADD COLUMN source_type text NOT NULL DEFAULT 'room_composite'
        CHECK (source_type IN ('room_composite', 'participant', 'track_composite', 'track')),
    ADD COLUMN audio_bitrate_kbps integer NOT NULL DEFAULT 128 CHECK (audio_bitrate_kbps > 0),
    ADD COLUMN keyframe_interval_secs double precision NOT NULL DEFAULT 2
        CHECK (keyframe_interval_secs > 0);

-- Earlier rows get an id of the same shape (hex digits are base62 digits).
UPDATE livestreams SET egress_id = 'EG_' || substr(md5(id::text), 1, 12) WHERE egress_id IS NULL;
ALTER TABLE livestreams ALTER COLUMN egress_id SET NOT NULL;
CREATE UNIQUE INDEX livestreams_egress_id ON livestreams (egress_id);
CREATE INDEX livestreams_api_key_created ON livestreams (api_key, created_at DESC);
