-- 010: the payment page's funnel (SPEC §10). A link is opened (first time and count), spent by the
-- page's own button (the checkout: payment_tokens.redeemed_at), and ARO's portal reports the payment.
-- A `paid` result stops reminders for its due row at once, before billing settles it.
ALTER TABLE payremind.payment_tokens
	ADD COLUMN first_opened_at timestamptz,
	ADD COLUMN open_count integer NOT NULL DEFAULT 0;
-- Counting an opening touches no indexed column: with room on the page it is a HOT update.
ALTER TABLE payremind.payment_tokens SET (fillfactor = 70);

-- Owned by payremind, like next_at and the lease: set by payment_record on a `paid` result.
ALTER TABLE payremind.due_accounts ADD COLUMN paid_at timestamptz;

-- One row per portal payment id; a repeated id changes nothing.
CREATE TABLE payremind.payments (
	id             text PRIMARY KEY CONSTRAINT payments_id_check CHECK (id <> '' AND length(id) <= 200),
	reminder_id    uuid NOT NULL,
	due_account_id bigint NOT NULL,
	status         text NOT NULL CONSTRAINT payments_status_check CHECK (status IN ('paid', 'failed', 'cancelled')),
	amount_cents   bigint NOT NULL CONSTRAINT payments_amount_cents_check CHECK (amount_cents >= 0),
	received_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_reminder_id_idx ON payremind.payments (reminder_id);
CREATE INDEX payments_due_account_id_idx ON payremind.payments (due_account_id);
CREATE INDEX payments_received_at_idx ON payremind.payments (received_at);

-- What a link leads to, for the page: `valid`, `spent` (already used or expired) or `nothing` (the due
-- row is settled or paid); no row for an unknown token. It reads only: a page view writes nothing on
-- its way (previews, scanners and people opening a link cost the database a lookup). PL/pgSQL keeps the
-- query's plan between calls (a SQL function in FROM would be planned again at every page view).
CREATE FUNCTION payremind.link_open(p_token text)
RETURNS TABLE (view text, reminder_id uuid, language text, account_ref text, amount_cents bigint,
               currency text, due_date date)
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN QUERY
	SELECT CASE WHEN d.settled_at IS NOT NULL OR d.paid_at IS NOT NULL THEN 'nothing'
	            WHEN t.redeemed_at IS NOT NULL OR t.expires_at <= now() THEN 'spent'
	            ELSE 'valid' END,
	       r.id, r.language, d.account_ref, d.amount_cents, d.currency, d.due_date
	  FROM payremind.payment_tokens t
	  JOIN payremind.reminders r ON r.id = t.reminder_id
	  JOIN payremind.due_accounts d ON d.id = r.due_account_id
	 WHERE t.token_hash = sha256(convert_to(p_token, 'UTF8'));
END $$;

-- The openings the listener counted since its last call (it calls about once a second): one element per
-- GET, the token's SHA-256 in hex and its Unix time. An opening is a figure, not a promise: the commit need
-- not wait for the disk (a crash may lose the last second's counts, never a payment or a spent link),
-- and the update touches no indexed column (HOT, with the room fillfactor leaves).
CREATE FUNCTION payremind.link_opened(p_hashes text[], p_at float8[])
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_n bigint;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	UPDATE payremind.payment_tokens t
	   SET open_count = t.open_count + o.n, first_opened_at = coalesce(t.first_opened_at, o.first_at)
	  FROM (SELECT decode(h, 'hex') AS h, count(*) AS n, to_timestamp(min(at)) AS first_at
	          FROM unnest(p_hashes, p_at) AS u(h, at) GROUP BY 1) o
	 WHERE t.token_hash = o.h;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END $$;

-- The page's button: spend the link exactly once (like token_redeem; concurrent callers wait on the
-- row lock and find it spent) and answer `checkout` with what the portal needs; otherwise what the link
-- now leads to (`spent`, `nothing`), or no row for an unknown token.
CREATE FUNCTION payremind.link_checkout(p_token text)
RETURNS TABLE (view text, reminder_id uuid, language text, account_ref text, amount_cents bigint,
               currency text, due_date date)
LANGUAGE plpgsql AS $$
DECLARE
	v_hash bytea := sha256(convert_to(p_token, 'UTF8'));
BEGIN
	RETURN QUERY
	UPDATE payremind.payment_tokens t SET redeemed_at = now()
	  FROM payremind.reminders r, payremind.due_accounts d
	 WHERE t.token_hash = v_hash AND r.id = t.reminder_id AND d.id = r.due_account_id
	   AND t.redeemed_at IS NULL AND t.expires_at > now() AND d.settled_at IS NULL AND d.paid_at IS NULL
	RETURNING 'checkout'::text, r.id, r.language, d.account_ref, d.amount_cents, d.currency, d.due_date;
	IF NOT FOUND THEN
		RETURN QUERY SELECT * FROM payremind.link_open(p_token);
	END IF;
END $$;

-- A result from the portal: `recorded`, `repeat` (that payment id is known: nothing changes) or
-- `unknown` (no such reminder). A `paid` result stops the due row's reminders: no further step, and a
-- reminder still queued (not held by a daemon about to send it) is cancelled.
CREATE FUNCTION payremind.payment_record(p_id text, p_reference uuid, p_status text, p_amount_cents bigint)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_due bigint;
BEGIN
	SELECT r.due_account_id INTO v_due FROM payremind.reminders r WHERE r.id = p_reference;
	IF NOT FOUND THEN
		RETURN 'unknown';
	END IF;
	INSERT INTO payremind.payments (id, reminder_id, due_account_id, status, amount_cents)
	VALUES (p_id, p_reference, v_due, p_status, p_amount_cents)
	ON CONFLICT (id) DO NOTHING;
	IF NOT FOUND THEN
		RETURN 'repeat';
	END IF;
	IF p_status = 'paid' THEN
		UPDATE payremind.due_accounts SET paid_at = coalesce(paid_at, now()) WHERE id = v_due;
		UPDATE payremind.reminders
		   SET state = 'cancelled', next_attempt_at = NULL, last_error = 'paid', updated_at = now()
		 WHERE due_account_id = v_due AND state = 'queued' AND lease_owner IS NULL;
	END IF;
	RETURN 'recorded';
END $$;
