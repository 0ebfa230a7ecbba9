-- 4: the outbox of deliveries to partners (outbox.hpp).
CREATE TABLE delivery (
  id INTEGER PRIMARY KEY,             -- creation order
  created INTEGER NOT NULL,
  route TEXT NOT NULL,
  destination TEXT NOT NULL,          -- receiving partner
  format TEXT NOT NULL,               -- fhir-rest
  type TEXT NOT NULL,
  resource_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  patient TEXT NOT NULL,              -- Patient/<id> or ''
  status TEXT NOT NULL,               -- pending delivered withheld dead discarded
  attempts INTEGER NOT NULL,
  next_attempt INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  updated INTEGER NOT NULL
);
CREATE INDEX delivery_due ON delivery (destination, id) WHERE status = 'pending';
CREATE INDEX delivery_order ON delivery (destination, patient, id) WHERE status = 'pending';
