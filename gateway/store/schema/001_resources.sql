-- 1: resources, their versions, search parameter ids and index tables.
CREATE TABLE resource (
  rid INTEGER PRIMARY KEY,            -- stable internal key: index rows and paging refer to it
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,           -- current version number
  vid INTEGER NOT NULL,               -- resource_version row of the current version
  last_updated INTEGER NOT NULL,      -- ms since epoch
  deleted INTEGER NOT NULL DEFAULT 0,
  UNIQUE (type, id)
);
CREATE TABLE resource_version (
  vid INTEGER PRIMARY KEY,            -- global write order
  rid INTEGER NOT NULL,
  type TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated INTEGER NOT NULL,
  method TEXT NOT NULL,               -- POST, PUT or DELETE
  body TEXT,                          -- NULL for a deletion
  UNIQUE (rid, version)
);
CREATE INDEX resource_version_type ON resource_version (type, vid);
CREATE TABLE search_param (
  id INTEGER PRIMARY KEY,
  resource_type TEXT NOT NULL,
  code TEXT NOT NULL,
  UNIQUE (resource_type, code)
);
CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE idx_string (param INTEGER NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL, rid INTEGER NOT NULL);
CREATE INDEX idx_string_value ON idx_string (param, norm, rid);
CREATE INDEX idx_string_rid ON idx_string (rid);
CREATE TABLE idx_token (param INTEGER NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL, rid INTEGER NOT NULL);
CREATE INDEX idx_token_value ON idx_token (param, code, system, rid);
CREATE INDEX idx_token_rid ON idx_token (rid);
CREATE TABLE idx_date (param INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL, rid INTEGER NOT NULL);
CREATE INDEX idx_date_value ON idx_date (param, lo, hi, rid);
CREATE INDEX idx_date_rid ON idx_date (rid);
CREATE TABLE idx_reference (param INTEGER NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
                            rid INTEGER NOT NULL);
CREATE INDEX idx_reference_value ON idx_reference (param, target_id, target_type, rid);
CREATE INDEX idx_reference_rid ON idx_reference (rid);
CREATE TABLE idx_uri (param INTEGER NOT NULL, value TEXT NOT NULL, rid INTEGER NOT NULL);
CREATE INDEX idx_uri_value ON idx_uri (param, value, rid);
CREATE INDEX idx_uri_rid ON idx_uri (rid);
