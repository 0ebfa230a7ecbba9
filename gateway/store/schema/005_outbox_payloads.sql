-- 5: deliveries of what is not stored: FHIR messages and resources of types not held.
ALTER TABLE delivery ADD COLUMN event TEXT NOT NULL DEFAULT '';
ALTER TABLE delivery ADD COLUMN payload TEXT NOT NULL DEFAULT '';
