-- 016: a reminder's payment link lives in its own row (issue 13). Creating a reminder wrote a second
-- row beside it, in payment_tokens, with two index entries: one heap row and one index entry fewer
-- per reminder now. The link's columns are the reminder's token_* columns; a link that an operator's
-- `resolve --as retry` replaced (the only way a reminder gets a second one) moves to earlier_tokens
-- and stays valid until it expires, as before. `payment_tokens` is now a view over both, with the
-- columns it always had (SPEC §2), so operators' queries, reports and grants keep working; writes
-- through it (an operator correcting a link) go to the right table by a trigger. The portal's
-- functions write the tables themselves.
ALTER TABLE payremind.reminders
	ADD COLUMN token_hash bytea CONSTRAINT reminders_token_hash_check CHECK (octet_length(token_hash) = 32),
	ADD COLUMN token_created_at timestamptz,  -- NULL: created with the reminder (created_at)
	ADD COLUMN token_expires_at timestamptz,
	ADD COLUMN token_redeemed_at timestamptz,
	ADD COLUMN token_first_opened_at timestamptz,
	ADD COLUMN token_open_count integer NOT NULL DEFAULT 0;

ALTER TABLE payremind.payment_tokens RENAME TO earlier_tokens;
ALTER TABLE payremind.earlier_tokens RENAME CONSTRAINT payment_tokens_token_hash_check TO earlier_tokens_token_hash_check;
ALTER INDEX payremind.payment_tokens_pkey RENAME TO earlier_tokens_pkey;
ALTER INDEX payremind.payment_tokens_reminder_id_idx RENAME TO earlier_tokens_reminder_id_idx;

-- Each reminder's newest link moves onto it; older ones (and any whose reminder is gone) stay.
WITH cur AS (
	DELETE FROM payremind.earlier_tokens t
	 WHERE t.token_hash IN (SELECT DISTINCT ON (e.reminder_id) e.token_hash
	                          FROM payremind.earlier_tokens e
	                         WHERE EXISTS (SELECT 1 FROM payremind.reminders r WHERE r.id = e.reminder_id)
	                         ORDER BY e.reminder_id, e.created_at DESC, e.expires_at DESC)
	RETURNING t.*)
UPDATE payremind.reminders r
   SET token_hash = cur.token_hash, token_expires_at = cur.expires_at, token_redeemed_at = cur.redeemed_at,
       token_created_at = CASE WHEN cur.created_at <> r.created_at THEN cur.created_at END,
       token_first_opened_at = cur.first_opened_at, token_open_count = cur.open_count
  FROM cur WHERE r.id = cur.reminder_id;
-- After the move, in one pass. Opening, spending and recording an outcome change no indexed column:
-- still HOT.
CREATE UNIQUE INDEX reminders_token_hash_idx ON payremind.reminders (token_hash);

CREATE VIEW payremind.payment_tokens AS
SELECT r.token_hash, r.id AS reminder_id, coalesce(r.token_created_at, r.created_at) AS created_at,
       r.token_expires_at AS expires_at, r.token_redeemed_at AS redeemed_at,
       r.token_first_opened_at AS first_opened_at, r.token_open_count AS open_count
  FROM payremind.reminders r
 WHERE r.token_hash IS NOT NULL
UNION ALL
SELECT e.token_hash, e.reminder_id, e.created_at, e.expires_at, e.redeemed_at, e.first_opened_at, e.open_count
  FROM payremind.earlier_tokens e;
ALTER VIEW payremind.payment_tokens ALTER COLUMN created_at SET DEFAULT now();
ALTER VIEW payremind.payment_tokens ALTER COLUMN open_count SET DEFAULT 0;

-- A write through the view. INSERT gives the reminder a new link (its current one becomes an earlier
-- one); UPDATE and DELETE change the link wherever it is. The row locks are taken here, on the tables.
CREATE FUNCTION payremind.payment_tokens_write() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		WITH o AS (SELECT id, token_hash, coalesce(token_created_at, created_at) AS created_at, token_expires_at,
		                  token_redeemed_at, token_first_opened_at, token_open_count
		             FROM payremind.reminders WHERE id = NEW.reminder_id FOR UPDATE),
		     u AS (UPDATE payremind.reminders r
		              SET token_hash = NEW.token_hash, token_created_at = NEW.created_at,
		                  token_expires_at = NEW.expires_at, token_redeemed_at = NEW.redeemed_at,
		                  token_first_opened_at = NEW.first_opened_at, token_open_count = NEW.open_count
		             FROM o WHERE r.id = o.id RETURNING r.id)
		INSERT INTO payremind.earlier_tokens (token_hash, reminder_id, created_at, expires_at, redeemed_at,
		                                      first_opened_at, open_count)
		SELECT o.token_hash, o.id, o.created_at, o.token_expires_at, o.token_redeemed_at, o.token_first_opened_at,
		       o.token_open_count
		  FROM o JOIN u ON u.id = o.id WHERE o.token_hash IS NOT NULL;
		IF NOT EXISTS (SELECT 1 FROM payremind.reminders WHERE id = NEW.reminder_id) THEN
			INSERT INTO payremind.earlier_tokens (token_hash, reminder_id, created_at, expires_at, redeemed_at,
			                                      first_opened_at, open_count)
			VALUES (NEW.token_hash, NEW.reminder_id, NEW.created_at, NEW.expires_at, NEW.redeemed_at,
			        NEW.first_opened_at, NEW.open_count);
		END IF;
		RETURN NEW;
	ELSIF TG_OP = 'DELETE' THEN
		UPDATE payremind.reminders
		   SET token_hash = NULL, token_created_at = NULL, token_expires_at = NULL, token_redeemed_at = NULL,
		       token_first_opened_at = NULL, token_open_count = 0
		 WHERE id = OLD.reminder_id AND token_hash = OLD.token_hash;
		IF NOT FOUND THEN
			DELETE FROM payremind.earlier_tokens WHERE token_hash = OLD.token_hash;
		END IF;
		RETURN CASE WHEN FOUND THEN OLD END;
	END IF;
	IF NEW.reminder_id IS DISTINCT FROM OLD.reminder_id THEN
		RAISE EXCEPTION 'payment_tokens.reminder_id cannot change' USING ERRCODE = 'check_violation',
		      COLUMN = 'reminder_id';
	END IF;
	UPDATE payremind.reminders
	   SET token_hash = NEW.token_hash, token_created_at = CASE WHEN NEW.created_at <> created_at THEN NEW.created_at END,
	       token_expires_at = NEW.expires_at, token_redeemed_at = NEW.redeemed_at,
	       token_first_opened_at = NEW.first_opened_at, token_open_count = NEW.open_count
	 WHERE id = OLD.reminder_id AND token_hash = OLD.token_hash;
	IF NOT FOUND THEN
		UPDATE payremind.earlier_tokens
		   SET token_hash = NEW.token_hash, created_at = NEW.created_at, expires_at = NEW.expires_at,
		       redeemed_at = NEW.redeemed_at, first_opened_at = NEW.first_opened_at, open_count = NEW.open_count
		 WHERE token_hash = OLD.token_hash;
	END IF;
	RETURN CASE WHEN FOUND THEN NEW END;
END $$;

CREATE TRIGGER payment_tokens_write INSTEAD OF INSERT OR UPDATE OR DELETE ON payremind.payment_tokens
	FOR EACH ROW EXECUTE FUNCTION payremind.payment_tokens_write();

-- The portal's functions (SPEC §4) and the page's: a hash is on a reminder or among the earlier links.
-- Exactly once still comes from the UPDATE's row lock (READ COMMITTED re-checks redeemed_at).
CREATE OR REPLACE FUNCTION payremind.token_redeem(token text)
RETURNS TABLE (account_ref text, amount_cents bigint, currency text, due_date date, expires_at timestamptz)
LANGUAGE sql VOLATILE AS $$
	WITH h AS (SELECT sha256(convert_to(token, 'UTF8')) AS h),
	cur AS (
		UPDATE payremind.reminders r SET token_redeemed_at = now()
		  FROM h, payremind.due_accounts d
		 WHERE r.token_hash = h.h AND d.id = r.due_account_id
		   AND r.token_redeemed_at IS NULL AND r.token_expires_at > now() AND d.settled_at IS NULL
		   AND d.paid_at IS NULL
		RETURNING d.account_ref, d.amount_cents, d.currency, d.due_date, r.token_expires_at),
	earlier AS (
		UPDATE payremind.earlier_tokens t SET redeemed_at = now()
		  FROM h, payremind.reminders r, payremind.due_accounts d
		 WHERE t.token_hash = h.h AND r.id = t.reminder_id AND d.id = r.due_account_id
		   AND t.redeemed_at IS NULL AND t.expires_at > now() AND d.settled_at IS NULL AND d.paid_at IS NULL
		RETURNING d.account_ref, d.amount_cents, d.currency, d.due_date, t.expires_at)
	SELECT * FROM cur UNION ALL SELECT * FROM earlier
$$;

CREATE OR REPLACE FUNCTION payremind.link_opened(p_hashes text[], p_at float8[])
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_n bigint;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	WITH o AS (SELECT decode(h, 'hex') AS h, count(*) AS n, to_timestamp(min(at)) AS first_at
	             FROM unnest(p_hashes, p_at) AS u(h, at) GROUP BY 1),
	     cur AS (UPDATE payremind.reminders r
	                SET token_open_count = r.token_open_count + o.n,
	                    token_first_opened_at = coalesce(r.token_first_opened_at, o.first_at)
	               FROM o WHERE r.token_hash = o.h RETURNING 1),
	     earlier AS (UPDATE payremind.earlier_tokens t
	                    SET open_count = t.open_count + o.n, first_opened_at = coalesce(t.first_opened_at, o.first_at)
	                   FROM o WHERE t.token_hash = o.h RETURNING 1)
	SELECT (SELECT count(*) FROM cur) + (SELECT count(*) FROM earlier) INTO v_n;
	RETURN v_n;
END $$;

CREATE OR REPLACE FUNCTION payremind.link_checkout(p_token text)
RETURNS TABLE (view text, reminder_id uuid, language text, account_ref text, amount_cents bigint,
               currency text, due_date date)
LANGUAGE plpgsql AS $$
DECLARE
	v_hash bytea := sha256(convert_to(p_token, 'UTF8'));
BEGIN
	RETURN QUERY
	UPDATE payremind.reminders r SET token_redeemed_at = now()
	  FROM payremind.due_accounts d
	 WHERE r.token_hash = v_hash AND d.id = r.due_account_id
	   AND r.token_redeemed_at IS NULL AND r.token_expires_at > now() AND d.settled_at IS NULL AND d.paid_at IS NULL
	RETURNING 'checkout'::text, r.id, r.language, d.account_ref, d.amount_cents, d.currency, d.due_date;
	IF NOT FOUND THEN
		RETURN QUERY
		UPDATE payremind.earlier_tokens t SET redeemed_at = now()
		  FROM payremind.reminders r, payremind.due_accounts d
		 WHERE t.token_hash = v_hash AND r.id = t.reminder_id AND d.id = r.due_account_id
		   AND t.redeemed_at IS NULL AND t.expires_at > now() AND d.settled_at IS NULL AND d.paid_at IS NULL
		RETURNING 'checkout'::text, r.id, r.language, d.account_ref, d.amount_cents, d.currency, d.due_date;
	END IF;
	IF NOT FOUND THEN
		RETURN QUERY SELECT * FROM payremind.link_open(p_token);
	END IF;
END $$;

-- Billing deleting due rows deletes their reminders (with their links), earlier links and attempts.
CREATE OR REPLACE FUNCTION payremind.due_accounts_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM payremind.earlier_tokens t USING payremind.reminders r, gone g
	 WHERE t.reminder_id = r.id AND r.due_account_id = g.id;
	DELETE FROM payremind.attempts a USING payremind.reminders r, gone g
	 WHERE a.reminder_id = r.id AND r.due_account_id = g.id;
	DELETE FROM payremind.reminders r USING gone g WHERE r.due_account_id = g.id;
	RETURN NULL;
END $$;
