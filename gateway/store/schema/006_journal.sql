-- 6: the message journal (journal.hpp), and the correlation id a delivery inherits.
CREATE TABLE journal (
  id INTEGER PRIMARY KEY,             -- creation order
  correlation TEXT NOT NULL,
  received INTEGER NOT NULL,          -- ms since the epoch
  partner TEXT NOT NULL,
  direction TEXT NOT NULL,            -- in out
  transport TEXT NOT NULL,
  format TEXT NOT NULL,
  type TEXT NOT NULL,
  size INTEGER NOT NULL,
  status TEXT NOT NULL,
  stages TEXT NOT NULL,               -- JSON array
  error TEXT NOT NULL,
  resources TEXT NOT NULL,            -- JSON array
  delivery INTEGER,                   -- outbound: delivery.id
  retry_of INTEGER,                   -- journal.id this entry retried
  payload TEXT,                       -- NULL once purged
  updated INTEGER NOT NULL
);
CREATE INDEX journal_received ON journal (received);
CREATE INDEX journal_correlation ON journal (correlation);
CREATE UNIQUE INDEX journal_delivery ON journal (delivery) WHERE delivery IS NOT NULL;
ALTER TABLE delivery ADD COLUMN correlation TEXT NOT NULL DEFAULT '';
