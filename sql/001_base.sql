-- 001: the billing interface (due_accounts), the outbox (reminders), payment tokens and opt-outs.
-- Applied by `payremindctl migrate` in one transaction. Names are fixed by SPEC §2 and §4.

CREATE SCHEMA IF NOT EXISTS payremind;

-- Time zones PostgreSQL knows, cached: pg_timezone_names reads the whole tzdata directory on every
-- call, far too slow for a trigger that billing fires on every insert. A miss falls back to the view.
CREATE TABLE payremind.time_zones (name text PRIMARY KEY);
INSERT INTO payremind.time_zones SELECT name FROM pg_timezone_names ON CONFLICT DO NOTHING;

CREATE FUNCTION payremind.is_time_zone(tz text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM payremind.time_zones WHERE name = tz) THEN
		RETURN true;
	END IF;
	RETURN EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = tz);
END $$;

CREATE TABLE payremind.due_accounts (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_ref    text NOT NULL,
	msisdn         text NOT NULL,
	amount_cents   bigint NOT NULL,
	currency       text NOT NULL DEFAULT 'CAD',
	due_date       date NOT NULL,
	language       text NOT NULL DEFAULT 'fr',
	region         text NOT NULL DEFAULT 'QC',
	time_zone      text NOT NULL DEFAULT 'America/Toronto',
	notice_sent_on date,
	contact_hold   text,
	settled_at     timestamptz,
	created_at     timestamptz NOT NULL DEFAULT now(),
	-- Owned by payremind: the work queue. next_step is the reminder number k to send next; next_at is
	-- when the row should be looked at again (NULL: nothing to do until something changes). While a
	-- daemon holds the row, next_at is its lease expiry and lease_owner its instance id.
	next_step      smallint NOT NULL DEFAULT 0,
	next_at        timestamptz DEFAULT '-infinity',
	lease_owner    uuid,
	CONSTRAINT due_accounts_account_ref_due_date_key UNIQUE (account_ref, due_date),
	CONSTRAINT due_accounts_account_ref_check CHECK (account_ref <> ''),
	CONSTRAINT due_accounts_msisdn_check CHECK (msisdn ~ '^\+1[2-9][0-9]{2}[2-9][0-9]{6}$'),
	CONSTRAINT due_accounts_amount_cents_check CHECK (amount_cents > 0),
	CONSTRAINT due_accounts_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
	CONSTRAINT due_accounts_language_check CHECK (language IN ('fr', 'en')),
	CONSTRAINT due_accounts_region_check CHECK (region ~ '^[A-Z]{2}$'),
	CONSTRAINT due_accounts_next_step_check CHECK (next_step >= 0)
);

-- The claimable rows only: without this partial index every claim walks past all finished rows.
CREATE INDEX due_accounts_next_at_idx ON payremind.due_accounts (next_at) WHERE next_at IS NOT NULL;
CREATE INDEX due_accounts_msisdn_idx ON payremind.due_accounts (msisdn);

-- Reject a bad billing row with an error that names the column (the CHECKs above stay as the
-- guarantee; this gives billing a readable message, the column in the error's COLUMN field, and
-- checks the time zone, which a CHECK cannot).
CREATE FUNCTION payremind.due_accounts_validate() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	col text;
	msg text;
BEGIN
	IF NEW.account_ref IS NULL OR NEW.account_ref = '' THEN
		col := 'account_ref'; msg := 'must be a non-empty text';
	ELSIF NEW.msisdn IS NULL OR NEW.msisdn !~ '^\+1[2-9][0-9]{2}[2-9][0-9]{6}$' THEN
		col := 'msisdn'; msg := format('%L is not an E.164 North-American number (+1NPANXXXXXX)', NEW.msisdn);
	ELSIF NEW.amount_cents IS NULL OR NEW.amount_cents <= 0 THEN
		col := 'amount_cents'; msg := format('%s must be a whole number of cents greater than 0', coalesce(NEW.amount_cents::text, 'NULL'));
	ELSIF NEW.currency IS NULL OR NEW.currency !~ '^[A-Z]{3}$' THEN
		col := 'currency'; msg := format('%L is not 3 upper-case letters (e.g. CAD)', NEW.currency);
	ELSIF NEW.due_date IS NULL THEN
		col := 'due_date'; msg := 'must be a date';
	ELSIF NEW.language IS NULL OR NEW.language NOT IN ('fr', 'en') THEN
		col := 'language'; msg := format('%L is not fr or en', NEW.language);
	ELSIF NEW.region IS NULL OR NEW.region !~ '^[A-Z]{2}$' THEN
		col := 'region'; msg := format('%L is not a province code such as QC, ON or BC', NEW.region);
	ELSIF NEW.time_zone IS NULL OR NOT payremind.is_time_zone(NEW.time_zone) THEN
		col := 'time_zone'; msg := format('%L is not a time zone PostgreSQL knows (e.g. America/Toronto)', NEW.time_zone);
	ELSE
		RETURN NEW;
	END IF;
	RAISE EXCEPTION 'due_accounts.%: %', col, msg
		USING ERRCODE = 'check_violation', SCHEMA = 'payremind', TABLE = 'due_accounts', COLUMN = col;
END $$;

CREATE TRIGGER due_accounts_validate
	BEFORE INSERT OR UPDATE OF account_ref, msisdn, amount_cents, currency, due_date, language, region, time_zone
	ON payremind.due_accounts FOR EACH ROW EXECUTE FUNCTION payremind.due_accounts_validate();

-- The outbox: one row per (due row, step), whatever number of daemons run.
CREATE TABLE payremind.reminders (
	id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	due_account_id     bigint NOT NULL REFERENCES payremind.due_accounts (id) ON DELETE CASCADE,
	step               smallint NOT NULL,
	msisdn             text NOT NULL,
	short_code         text NOT NULL,
	language           text NOT NULL,
	state              text NOT NULL DEFAULT 'queued',
	attempts           integer NOT NULL DEFAULT 0,
	next_attempt_at    timestamptz,
	lease_owner        uuid,
	lease_until        timestamptz,
	gateway_message_id text,
	last_error         text,
	-- The plaintext token, kept only while the reminder may still be (re)sent: a retry with the same
	-- Idempotency-Key must carry the very same text. Wiped when the reminder leaves queued/sending.
	link_token         text,
	created_at         timestamptz NOT NULL DEFAULT now(),
	updated_at         timestamptz NOT NULL DEFAULT now(),
	sent_at            timestamptz,
	delivered_at       timestamptz,
	CONSTRAINT reminders_due_account_id_step_key UNIQUE (due_account_id, step),
	CONSTRAINT reminders_short_code_check CHECK (short_code IN ('27022', '270282')),
	CONSTRAINT reminders_state_check CHECK (state IN
		('queued', 'sending', 'sent', 'delivered', 'failed', 'expired', 'cancelled', 'unknown')),
	CONSTRAINT reminders_step_check CHECK (step >= 0),
	CONSTRAINT reminders_link_token_check CHECK (link_token IS NULL OR state IN ('queued', 'sending'))
);

CREATE INDEX reminders_msisdn_sent_at_idx ON payremind.reminders (msisdn, sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX reminders_sending_idx ON payremind.reminders (lease_until) WHERE state = 'sending';
CREATE INDEX reminders_open_idx ON payremind.reminders (state) WHERE state IN ('queued', 'sending', 'unknown');
CREATE INDEX reminders_gateway_message_id_idx ON payremind.reminders (gateway_message_id)
	WHERE gateway_message_id IS NOT NULL;

-- Single-use payment tokens: only the SHA-256 of the token is stored.
CREATE TABLE payremind.payment_tokens (
	token_hash  bytea PRIMARY KEY CONSTRAINT payment_tokens_token_hash_check CHECK (octet_length(token_hash) = 32),
	reminder_id uuid NOT NULL REFERENCES payremind.reminders (id) ON DELETE CASCADE,
	created_at  timestamptz NOT NULL DEFAULT now(),
	expires_at  timestamptz NOT NULL,
	redeemed_at timestamptz
);
CREATE INDEX payment_tokens_reminder_id_idx ON payremind.payment_tokens (reminder_id);

CREATE TABLE payremind.opt_outs (
	msisdn     text PRIMARY KEY CONSTRAINT opt_outs_msisdn_check CHECK (msisdn ~ '^\+1[2-9][0-9]{2}[2-9][0-9]{6}$'),
	source     text NOT NULL CONSTRAINT opt_outs_source_check CHECK (source IN ('keyword', 'operator', 'gateway')),
	created_at timestamptz NOT NULL DEFAULT now()
);

-- A row that was parked (held, settled) becomes claimable again when billing lifts what parked it.
CREATE FUNCTION payremind.due_accounts_wake() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.settled_at IS NULL AND NEW.contact_hold IS NULL AND NEW.next_at IS NULL THEN
		NEW.next_at := now();
	END IF;
	RETURN NEW;
END $$;

CREATE TRIGGER due_accounts_wake
	BEFORE UPDATE OF settled_at, contact_hold, notice_sent_on ON payremind.due_accounts
	FOR EACH ROW EXECUTE FUNCTION payremind.due_accounts_wake();

-- Settling or holding a row cancels its queued retry at once (a reminder being sent right now is
-- left to its daemon, which re-checks the row when it records the outcome).
CREATE FUNCTION payremind.due_accounts_cancel() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE payremind.reminders SET state = 'cancelled', link_token = NULL, next_attempt_at = NULL,
	       last_error = CASE WHEN NEW.settled_at IS NOT NULL THEN 'settled' ELSE 'held' END, updated_at = now()
	 WHERE due_account_id = NEW.id AND state = 'queued';
	RETURN NULL;
END $$;

CREATE TRIGGER due_accounts_cancel
	AFTER UPDATE OF settled_at, contact_hold ON payremind.due_accounts
	FOR EACH ROW WHEN (NEW.settled_at IS NOT NULL OR NEW.contact_hold IS NOT NULL)
	EXECUTE FUNCTION payremind.due_accounts_cancel();

-- Opting back in wakes the number's parked rows.
CREATE FUNCTION payremind.opt_outs_wake() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE payremind.due_accounts SET next_at = now()
	 WHERE msisdn = OLD.msisdn AND next_at IS NULL AND settled_at IS NULL;
	RETURN OLD;
END $$;

CREATE TRIGGER opt_outs_wake AFTER DELETE ON payremind.opt_outs
	FOR EACH ROW EXECUTE FUNCTION payremind.opt_outs_wake();

-- Payment portal: SPEC §4. A token is valid while unredeemed, unexpired and its due row unsettled.
CREATE FUNCTION payremind.token_peek(token text)
RETURNS TABLE (account_ref text, amount_cents bigint, currency text, due_date date, expires_at timestamptz)
LANGUAGE sql STABLE AS $$
	SELECT d.account_ref, d.amount_cents, d.currency, d.due_date, t.expires_at
	  FROM payremind.payment_tokens t
	  JOIN payremind.reminders r ON r.id = t.reminder_id
	  JOIN payremind.due_accounts d ON d.id = r.due_account_id
	 WHERE t.token_hash = sha256(convert_to(token, 'UTF8'))
	   AND t.redeemed_at IS NULL AND t.expires_at > now() AND d.settled_at IS NULL
$$;

-- Exactly once: the UPDATE's row lock makes a concurrent caller wait, then re-check redeemed_at
-- (READ COMMITTED re-evaluates the WHERE on the new row version) and find nothing.
CREATE FUNCTION payremind.token_redeem(token text)
RETURNS TABLE (account_ref text, amount_cents bigint, currency text, due_date date, expires_at timestamptz)
LANGUAGE sql VOLATILE AS $$
	UPDATE payremind.payment_tokens t SET redeemed_at = now()
	  FROM payremind.reminders r, payremind.due_accounts d
	 WHERE t.token_hash = sha256(convert_to(token, 'UTF8'))
	   AND r.id = t.reminder_id AND d.id = r.due_account_id
	   AND t.redeemed_at IS NULL AND t.expires_at > now() AND d.settled_at IS NULL
	RETURNING d.account_ref, d.amount_cents, d.currency, d.due_date, t.expires_at
$$;
