-- 3: bearer token hashes and the chained audit trail (audit_log.hpp).
CREATE TABLE credential (
  token_id TEXT PRIMARY KEY,          -- the token's public part
  holder TEXT NOT NULL,               -- partner or role id
  salt BLOB NOT NULL,
  hash BLOB NOT NULL,                 -- SHA-256(salt || secret)
  created INTEGER NOT NULL
);
CREATE TABLE audit_event (
  seq INTEGER PRIMARY KEY,            -- chain order; the AuditEvent's id
  recorded INTEGER NOT NULL,          -- ms since epoch
  agent TEXT NOT NULL,                -- requesting partner or role id, or ''
  entity TEXT NOT NULL,               -- Type/id of the data entity, or ''
  action TEXT NOT NULL,               -- C R U D E
  outcome TEXT NOT NULL,              -- 0 4 8 12
  format TEXT NOT NULL,               -- record (the gateway's own, rendered when read) or resource (POSTed)
  body TEXT NOT NULL,
  chain BLOB NOT NULL                 -- HMAC-SHA256(key, previous chain || seq || recorded || format || body)
);
CREATE INDEX audit_event_agent ON audit_event (agent, seq);
CREATE TABLE audit_patient (           -- the patients whose data each AuditEvent touched
  patient TEXT NOT NULL,              -- Patient/<id>
  seq INTEGER NOT NULL,
  PRIMARY KEY (patient, seq)
) WITHOUT ROWID;
