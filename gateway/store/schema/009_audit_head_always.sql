-- 9: every database has an audit chain head (audit_log.cpp), from its creation: "<seq>:<chain hex>" of the
-- trail's newest event, "0:" while the trail is empty. A missing head is then never a new database, only
-- one whose head (and perhaps its whole trail) was deleted: `audit verify` reports it and the gateway
-- will not start on it. A database from before heads were kept gets its head from its newest row here.
INSERT OR IGNORE INTO store_meta (key, value)
VALUES ('audit_head',
        COALESCE((SELECT seq || ':' || lower(hex(chain)) FROM audit_event ORDER BY seq DESC LIMIT 1), '0:'));
