-- 009: what a crash and a new configuration can no longer do.
--
-- A reminder is 'sending' only once its request may have left the daemon. With a dialect that has no
-- idempotency key (kannel, twilio) the daemon creates it 'queued' under its lease, and marks it
-- 'sending' in one statement per group just before handing the group to the HTTP client; a crash
-- before that leaves a 'queued' reminder whose lease expires, which the rescue gives back untouched
-- (its attempt not counted) instead of turning it into 'unknown'.
--
-- The text of a reminder is rendered once, when the reminder is created, and kept in `body` while the
-- reminder may still be (re)sent: a retry carries byte-identical text, whatever the templates, the base
-- URL or the due row have become since. Like link_token, it is wiped in every final state: the
-- statements of the daemon clear it themselves, and a trigger clears it after whatever else (the SQL
-- functions of the listener, an operator's UPDATE) makes a reminder final.
ALTER TABLE payremind.reminders ADD COLUMN body text;
ALTER TABLE payremind.reminders ADD CONSTRAINT reminders_body_check
	CHECK (body IS NULL OR state IN ('queued', 'sending'));

CREATE FUNCTION payremind.reminders_wipe_body() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.body := NULL;
	NEW.link_token := NULL;
	RETURN NEW;
END $$;

-- Named to fire after reminders_dlr_settle (BEFORE triggers fire in name order), which may itself turn
-- a recorded send into a final state.
CREATE TRIGGER reminders_wipe_body BEFORE UPDATE OF state ON payremind.reminders FOR EACH ROW
	WHEN ((NEW.body IS NOT NULL OR NEW.link_token IS NOT NULL) AND NEW.state NOT IN ('queued', 'sending'))
	EXECUTE FUNCTION payremind.reminders_wipe_body();
