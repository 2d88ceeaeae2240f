-- 011: operators steer and look back. A pause every daemon obeys, the record of what operators did,
-- the attempts that did not end a reminder, and the opt-outs' history (opt_outs keeps only the present).

-- One row: sending is paused while paused_at is set. Every daemon reads it each second; keyword replies
-- still go out while paused.
CREATE TABLE payremind.control (
	id           boolean PRIMARY KEY DEFAULT true CONSTRAINT control_id_check CHECK (id),
	paused_at    timestamptz,
	paused_by    text,
	pause_reason text,
	CONSTRAINT control_paused_check CHECK ((paused_at IS NULL) = (paused_by IS NULL))
);
INSERT INTO payremind.control (id) VALUES (true);

-- What operators did with payremindctl: who (the OS user, and the database role), why, to what.
CREATE TABLE payremind.operator_actions (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at          timestamptz NOT NULL DEFAULT now(),
	actor       text NOT NULL CONSTRAINT operator_actions_actor_check CHECK (actor <> ''),
	db_user     text NOT NULL DEFAULT current_user,
	action      text NOT NULL CONSTRAINT operator_actions_action_check CHECK (action IN
		('pause', 'resume', 'resolve', 'opt_out', 'opt_in', 'batch')),
	reminder_id uuid,
	msisdn      text,
	account_ref text,
	detail      text,  -- resolve: sent | failed | retry; resume: since when and by whom it was paused;
	                   -- opt_in: the source of the opt-out removed
	reason      text
);
CREATE INDEX operator_actions_reminder_id_idx ON payremind.operator_actions (reminder_id)
	WHERE reminder_id IS NOT NULL;
CREATE INDEX operator_actions_msisdn_idx ON payremind.operator_actions (msisdn) WHERE msisdn IS NOT NULL;
CREATE INDEX operator_actions_account_ref_idx ON payremind.operator_actions (account_ref)
	WHERE account_ref IS NOT NULL;

-- Attempts that did not end their reminder (a retry, or a lease lost while sending under an
-- idempotency key); the last attempt is the reminder row itself. Written by a trigger whose condition
-- is false on the hot path (a first attempt that is recorded sent, failed or unknown).
CREATE TABLE payremind.attempts (
	reminder_id     uuid NOT NULL,
	attempt         integer NOT NULL,
	ended_at        timestamptz NOT NULL DEFAULT now(),
	outcome         text NOT NULL DEFAULT 'retry' CONSTRAINT attempts_outcome_check CHECK (outcome IN ('retry', 'unknown')),
	error           text,
	next_attempt_at timestamptz,
	CONSTRAINT attempts_pkey PRIMARY KEY (reminder_id, attempt)
);
CREATE INDEX attempts_ended_at_idx ON payremind.attempts (ended_at);

CREATE FUNCTION payremind.reminders_attempt() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO payremind.attempts (reminder_id, attempt, outcome, error, next_attempt_at)
	VALUES (NEW.id, OLD.attempts, CASE WHEN OLD.state = 'unknown' THEN 'unknown' ELSE 'retry' END, NEW.last_error,
	        NEW.next_attempt_at)
	ON CONFLICT (reminder_id, attempt) DO NOTHING;
	RETURN NULL;
END $$;

-- sending -> queued with the attempt kept is a retry (one handed back unsent, attempts - 1, is not);
-- unknown -> queued is an operator's `resolve --as retry`: the unknown attempt is kept too.
CREATE TRIGGER reminders_attempt AFTER UPDATE OF state ON payremind.reminders FOR EACH ROW
	WHEN (OLD.state IN ('sending', 'unknown') AND NEW.state = 'queued' AND NEW.attempts = OLD.attempts)
	EXECUTE FUNCTION payremind.reminders_attempt();

-- Billing deleting due rows deletes their reminders, tokens and attempts.
CREATE OR REPLACE FUNCTION payremind.due_accounts_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM payremind.payment_tokens t USING payremind.reminders r, gone g
	 WHERE t.reminder_id = r.id AND r.due_account_id = g.id;
	DELETE FROM payremind.attempts a USING payremind.reminders r, gone g
	 WHERE a.reminder_id = r.id AND r.due_account_id = g.id;
	DELETE FROM payremind.reminders r USING gone g WHERE r.due_account_id = g.id;
	RETURN NULL;
END $$;

-- Every opt-out and opt-in, whatever made it (a keyword, an operator, the gateway).
CREATE TABLE payremind.opt_out_events (
	id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	msisdn text NOT NULL,
	event  text NOT NULL CONSTRAINT opt_out_events_event_check CHECK (event IN ('opt_out', 'opt_in')),
	source text,  -- the opt-out's source; an opt-in's comes from the inbound text or operator action beside it
	at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX opt_out_events_msisdn_idx ON payremind.opt_out_events (msisdn, at);
CREATE INDEX opt_out_events_at_idx ON payremind.opt_out_events (at);
INSERT INTO payremind.opt_out_events (msisdn, event, source, at)
SELECT msisdn, 'opt_out', source, created_at FROM payremind.opt_outs;

CREATE FUNCTION payremind.opt_outs_log() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO payremind.opt_out_events (msisdn, event, source, at)
		VALUES (NEW.msisdn, 'opt_out', NEW.source, NEW.created_at);
	ELSE
		INSERT INTO payremind.opt_out_events (msisdn, event) VALUES (OLD.msisdn, 'opt_in');
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER opt_outs_log AFTER INSERT OR DELETE ON payremind.opt_outs
	FOR EACH ROW EXECUTE FUNCTION payremind.opt_outs_log();

-- Each daemon's circuit breaker, for `payremindctl status` (the listener's /healthz shows its own).
ALTER TABLE payremind.instances
	ADD COLUMN circuit text NOT NULL DEFAULT 'closed'
		CONSTRAINT instances_circuit_check CHECK (circuit IN ('closed', 'open', 'half_open')),
	ADD COLUMN circuit_since timestamptz;

-- A batch's figures: sent, failed, retried and unknown count reminders; these two count due rows
-- (put off by a rule, or closed: settled, paid, held or opted out). "cancelled" read like the state.
ALTER TABLE payremind.batch_requests RENAME COLUMN skipped TO rows_skipped;
ALTER TABLE payremind.batch_requests RENAME COLUMN cancelled TO rows_closed;
ALTER TABLE payremind.batch_requests ADD COLUMN account_ref text;  -- batch --account: the rows woken

-- A due row the portal reported paid has nothing left to pay, as on the payment page: the portal's
-- token functions treat it like a settled one (no row), so a link cannot be paid twice.
CREATE OR REPLACE FUNCTION payremind.token_peek(token text)
RETURNS TABLE (account_ref text, amount_cents bigint, currency text, due_date date, expires_at timestamptz)
LANGUAGE sql STABLE AS $$
	SELECT d.account_ref, d.amount_cents, d.currency, d.due_date, t.expires_at
	  FROM payremind.payment_tokens t
	  JOIN payremind.reminders r ON r.id = t.reminder_id
	  JOIN payremind.due_accounts d ON d.id = r.due_account_id
	 WHERE t.token_hash = sha256(convert_to(token, 'UTF8'))
	   AND t.redeemed_at IS NULL AND t.expires_at > now() AND d.settled_at IS NULL AND d.paid_at IS NULL
$$;

CREATE OR REPLACE FUNCTION payremind.token_redeem(token text)
RETURNS TABLE (account_ref text, amount_cents bigint, currency text, due_date date, expires_at timestamptz)
LANGUAGE sql VOLATILE AS $$
	UPDATE payremind.payment_tokens t SET redeemed_at = now()
	  FROM payremind.reminders r, payremind.due_accounts d
	 WHERE t.token_hash = sha256(convert_to(token, 'UTF8'))
	   AND r.id = t.reminder_id AND d.id = r.due_account_id
	   AND t.redeemed_at IS NULL AND t.expires_at > now() AND d.settled_at IS NULL AND d.paid_at IS NULL
	RETURNING d.account_ref, d.amount_cents, d.currency, d.due_date, t.expires_at
$$;
