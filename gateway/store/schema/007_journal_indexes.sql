-- 7: indexes for the operators' journal filters (list_journal), newest first within each; the
-- problems (the dashboard's latest failures) in a partial index of their own; journal_received covers
-- what the counts of a time window need (count_journal).
DROP INDEX journal_received;
CREATE INDEX journal_received ON journal (received, partner, direction, status);
CREATE INDEX journal_partner ON journal (partner, id);
CREATE INDEX journal_status ON journal (status, id);
CREATE INDEX journal_type ON journal (type, id);
CREATE INDEX journal_problems ON journal (id) WHERE status IN ('rejected', 'failed', 'dead-letter');
