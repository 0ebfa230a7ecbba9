-- 8: one identity rule, re-sends and what operators may read (issue 17).
-- An HL7 v2 re-send is recognised by its content too (a hash of the message without MSH-7 and MSH-10).
ALTER TABLE inbound_message ADD COLUMN content_hash TEXT NOT NULL DEFAULT '';
-- A journal entry's `error` names the field and the problem only (it is shown in lists, stats and
-- logs); `detail` keeps the whole error for the entry's own, audited, view; `patients` are the patients
-- it was about, against whom opening its payload is audited.
ALTER TABLE journal ADD COLUMN detail TEXT NOT NULL DEFAULT '';
ALTER TABLE journal ADD COLUMN patients TEXT NOT NULL DEFAULT '[]';
-- Writes whose identity match the writer may not see, held for a registrar or the privacy officer.
CREATE TABLE held_write (
  id INTEGER PRIMARY KEY,             -- creation order
  created INTEGER NOT NULL,           -- ms since the epoch
  correlation TEXT NOT NULL,          -- of the exchange that was held
  partner TEXT NOT NULL,              -- who wrote
  entry TEXT NOT NULL,                -- rest, hl7v2, feed
  type TEXT NOT NULL,                 -- the resource type written
  target TEXT NOT NULL,               -- Type/id of the held record it matched
  patient TEXT NOT NULL,              -- Patient/<id> of that record
  merge TEXT NOT NULL,                -- how it applies to the target once released: replace, hl7v2, feed, link
  resource TEXT NOT NULL,             -- the incoming resource (JSON)
  context TEXT NOT NULL,              -- what applying it needs besides (the HL7 v2 message; the merge's records)
  status TEXT NOT NULL,               -- held, released, rejected
  decided_by TEXT NOT NULL DEFAULT '',
  decided INTEGER NOT NULL DEFAULT 0,
  journal INTEGER                     -- journal.id of the exchange, when it has one
);
CREATE INDEX held_write_status ON held_write (status, id);
