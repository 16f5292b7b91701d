-- The image page's provenance and the overview's trend (issue 15). The
-- SQLite file of the same version makes the same changes. Additive:
-- two new tables, nothing else changes.

-- +goose Up
-- A scan's base image (detection and recommendation) and signature
-- status, as JSON (store.BaseImage, store.SignatureStatus; '' when the scan
-- has none), written with the scan in PutScan's transaction.
CREATE TABLE scan_provenance (
    scan_id   BIGINT PRIMARY KEY REFERENCES scans (id),
    base      TEXT    NOT NULL DEFAULT '',
    signature TEXT    NOT NULL DEFAULT ''
);

-- The fleet's open (unsuppressed) findings by severity, one row per UTC
-- day (day: Unix microseconds of its midnight), replaced by each snapshot
-- that day (SnapshotFleet, after scans, uploads and re-evaluations).
CREATE TABLE fleet_trend (
    day      BIGINT PRIMARY KEY,
    at       BIGINT  NOT NULL,
    images   BIGINT  NOT NULL,
    unknown  BIGINT  NOT NULL,
    low      BIGINT  NOT NULL,
    medium   BIGINT  NOT NULL,
    high     BIGINT  NOT NULL,
    critical BIGINT  NOT NULL
);

-- +goose Down
DROP TABLE fleet_trend;
DROP TABLE scan_provenance;
