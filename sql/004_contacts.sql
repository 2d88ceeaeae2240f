-- 004: the contact ledger: one row per phone number with its last new reminder. The statement that
-- creates reminders takes the number's row (INSERT .. ON CONFLICT DO UPDATE locks it), so two daemons
-- racing to remind one number through two due rows are serialised, and the second sees the first's
-- contact: schedule.min_gap_hours holds across daemons, not only within one.
CREATE TABLE payremind.contacts (
	msisdn  text PRIMARY KEY,
	last_at timestamptz NOT NULL
);

-- The claim reads each number's contacts: those sent in the last 7 days and those in progress (queued
-- or sending, which may go out at any moment), so an index on the number over all its reminders.
DROP INDEX payremind.reminders_msisdn_sent_at_idx;
CREATE INDEX reminders_msisdn_idx ON payremind.reminders (msisdn);
