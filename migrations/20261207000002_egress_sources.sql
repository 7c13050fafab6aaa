-- What a participant or track composite egress shows, and several egresses
-- per room: the one-open-livestream-per-room rule now holds for room
-- composites only (a participant or track egress may run beside one).
ALTER TABLE livestreams
    ADD COLUMN source_identity text,
    ADD COLUMN source_screen_share boolean NOT NULL DEFAULT false,
    ADD COLUMN source_audio_track text,
    ADD COLUMN source_video_track text,
    -- Why the program was stopped (the reason of the move to `stopping`):
    -- LiveKit tells a limit or a closed room apart from a stop.
    ADD COLUMN stop_reason text,
    -- The room's sid when the egress started (`EgressInfo.room_id`).
    ADD COLUMN room_sid text;

-- The object key an egress request named for a recording's upload
-- (`filepath`); NULL = the server's storage.mp4_path template.
ALTER TABLE livestream_outputs ADD COLUMN object_key text;

-- SRT destinations, files in Ogg (audio-only egresses) and WebM (track egresses), image
-- outputs (stills of the program), and how many images or HLS
-- segments an output has made.
ALTER TABLE livestream_outputs DROP CONSTRAINT livestream_outputs_kind_check;
ALTER TABLE livestream_outputs
    ADD CONSTRAINT livestream_outputs_kind_check
        CHECK (kind IN ('rtmp', 'srt', 'hls', 'mp4', 'ogg', 'webm', 'images')),
    ADD COLUMN items bigint NOT NULL DEFAULT 0;

DROP INDEX livestreams_one_live_per_room;
CREATE UNIQUE INDEX livestreams_one_live_per_room
    ON livestreams (room_name)
    WHERE status IN ('idle', 'starting', 'active', 'stopping') AND source_type = 'room_composite';
