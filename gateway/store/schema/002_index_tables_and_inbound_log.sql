-- 2: index tables keyed by (rid, param, value) without a rowid, so each index row is two B-tree
-- entries instead of three and an update can delete exactly the rows that changed; the inbound
-- message log (dedupe of re-sent messages, failed messages kept for operators).
DROP TABLE idx_string;
DROP TABLE idx_token;
DROP TABLE idx_date;
DROP TABLE idx_reference;
DROP TABLE idx_uri;
CREATE TABLE idx_string (rid INTEGER NOT NULL, param INTEGER NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL,
                         PRIMARY KEY (rid, param, norm, exact)) WITHOUT ROWID;
CREATE INDEX idx_string_value ON idx_string (param, norm);
CREATE TABLE idx_token (rid INTEGER NOT NULL, param INTEGER NOT NULL, code TEXT NOT NULL, system TEXT NOT NULL,
                        PRIMARY KEY (rid, param, code, system)) WITHOUT ROWID;
CREATE INDEX idx_token_value ON idx_token (param, code, system);
CREATE TABLE idx_date (rid INTEGER NOT NULL, param INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
                       PRIMARY KEY (rid, param, lo, hi)) WITHOUT ROWID;
CREATE INDEX idx_date_value ON idx_date (param, lo, hi);
CREATE TABLE idx_reference (rid INTEGER NOT NULL, param INTEGER NOT NULL, target_id TEXT NOT NULL,
                            target_type TEXT NOT NULL,
                            PRIMARY KEY (rid, param, target_id, target_type)) WITHOUT ROWID;
CREATE INDEX idx_reference_value ON idx_reference (param, target_id, target_type);
CREATE TABLE idx_uri (rid INTEGER NOT NULL, param INTEGER NOT NULL, value TEXT NOT NULL,
                      PRIMARY KEY (rid, param, value)) WITHOUT ROWID;
CREATE INDEX idx_uri_value ON idx_uri (param, value);
DELETE FROM store_meta WHERE key = 'index_signature';
CREATE TABLE inbound_message (
  mid INTEGER PRIMARY KEY,
  received INTEGER NOT NULL,          -- ms since epoch
  partner TEXT NOT NULL,              -- partner id
  channel TEXT NOT NULL,              -- mllp, http
  format TEXT NOT NULL,               -- hl7v2, csv, xml
  sender TEXT NOT NULL,               -- HL7 v2 MSH-4 (sending facility)
  control_id TEXT NOT NULL,           -- HL7 v2 MSH-10
  message_type TEXT NOT NULL,         -- e.g. ADT^A01
  status TEXT NOT NULL,               -- applied, failed, rejected
  detail TEXT NOT NULL,               -- applied: JSON array of the resources written; else the error
  body TEXT NOT NULL                  -- the message as received
);
CREATE UNIQUE INDEX inbound_message_applied ON inbound_message (partner, sender, control_id)
  WHERE status = 'applied';
CREATE INDEX inbound_message_problems ON inbound_message (mid) WHERE status <> 'applied';
