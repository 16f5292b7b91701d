-- Learned runtime behaviour profiles and image file lists, by image id
-- (issue 19). The other dialect's file of the same version makes the same
-- changes.

-- +goose Up
CREATE TABLE runtime_profiles (
    image_id   TEXT    PRIMARY KEY,   -- sha256:<hex>
    state      TEXT    NOT NULL,      -- learning, enforcing
    names      TEXT    NOT NULL,      -- JSON array
    entries    BIGINT NOT NULL,
    document   BYTEA    NOT NULL,      -- the profile, YAML
    updated_at BIGINT  NOT NULL       -- Unix microseconds
);

CREATE TABLE image_filelists (
    image_id   TEXT    PRIMARY KEY,   -- sha256:<hex>
    files      BIGINT NOT NULL,
    body       BYTEA    NOT NULL,      -- gzip JSON, as sent
    updated_at BIGINT  NOT NULL
);

-- +goose Down
DROP TABLE image_filelists;
DROP TABLE runtime_profiles;
