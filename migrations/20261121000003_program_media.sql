-- What a program carries: LiveKit's audio_only / video_only room composites.
ALTER TABLE livestreams
    ADD COLUMN media text NOT NULL DEFAULT 'audio_video'
        CHECK (media IN ('audio_video', 'audio_only', 'video_only'));
