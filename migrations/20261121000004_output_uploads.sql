-- Where an output's file ended up in object storage (an uploaded MP4), once
-- the store confirmed it.
ALTER TABLE livestream_outputs ADD COLUMN uploaded_to text;
