-- 004: the contact ledger: one row per phone number with its last new reminder. The statement that
-- creates reminders takes the number's row (INSERT .. ON CONFLICT DO UPDATE locks it), so two daemons
-- racing to remind one number through two due rows are serialised, and the second sees the first's
-- contact: schedule.min_gap_hours holds across daemons, not only within one.
CREATE TABLE payremind.contacts (
	msisdn  text PRIMARY KEY,
	last_at timestamptz NOT NULL
);
