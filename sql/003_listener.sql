-- 003: the webhook listener: messages from phones, delivery reports (DLRs), and the outbox of keyword
-- replies that the daemon's scheduler sends. The listener calls inbound_record() and dlr_record() once
-- per webhook: each is one transaction, idempotent on the gateway's ids.

-- The DLR vocabulary (the listener maps each gateway's statuses onto it) and the one place saying what
-- a status does to a message: 'delivered', 'failed', or nothing (NULL: an intermediate report).
CREATE FUNCTION payremind.dlr_effect(status text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN status = 'delivered' THEN 'delivered'
	            WHEN status IN ('undelivered', 'failed', 'smsc_reject') THEN 'failed' END
$$;

-- last_error of a message that a DLR failed: the status and the gateway's code, never a text.
CREATE FUNCTION payremind.dlr_error(status text, code text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT 'dlr ' || status || coalesce(' code=' || nullif(code, ''), '')
$$;

-- The latest report on a reminder (a final one is never overwritten), kept apart from state so that a
-- report arriving while the reminder is still 'sending' can be applied when the send is recorded.
ALTER TABLE payremind.reminders
	ADD COLUMN dlr_status text CONSTRAINT reminders_dlr_status_check CHECK (dlr_status IN
		('accepted', 'buffered', 'smsc_ack', 'sent', 'delivered', 'undelivered', 'failed', 'smsc_reject', 'other')),
	ADD COLUMN dlr_code text,
	ADD COLUMN dlr_at timestamptz;

-- Every message a phone sent to one of our short codes, once per gateway id.
CREATE TABLE payremind.inbound_messages (
	id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	gateway     text NOT NULL CONSTRAINT inbound_messages_gateway_check CHECK (gateway IN ('json', 'kannel', 'twilio')),
	gateway_id  text NOT NULL CONSTRAINT inbound_messages_gateway_id_check CHECK (gateway_id <> ''),
	msisdn      text NOT NULL CONSTRAINT inbound_messages_msisdn_check CHECK (msisdn ~ '^\+1[2-9][0-9]{2}[2-9][0-9]{6}$'),
	short_code  text NOT NULL CONSTRAINT inbound_messages_short_code_check CHECK (short_code IN ('27022', '270282')),
	text        text NOT NULL,
	keyword     text,  -- the canonical keyword (STOP, ARRET, …), NULL when the text is none
	action      text NOT NULL CONSTRAINT inbound_messages_action_check CHECK (action IN ('none', 'opt_out', 'help', 'opt_in')),
	received_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT inbound_messages_gateway_gateway_id_key UNIQUE (gateway, gateway_id)
);
CREATE INDEX inbound_messages_msisdn_idx ON payremind.inbound_messages (msisdn, received_at);

-- Keyword replies to send, from the short code the phone wrote to. The scheduler claims 'queued' rows
-- whose next_attempt_at has come (NOTIFY payremind_replies announces new ones), leases them like
-- reminders, and sends them whatever the opt-outs say (an opt-out is confirmed to an opted-out number).
CREATE TABLE payremind.replies (
	id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	inbound_id         uuid REFERENCES payremind.inbound_messages (id) ON DELETE SET NULL,
	msisdn             text NOT NULL CONSTRAINT replies_msisdn_check CHECK (msisdn ~ '^\+1[2-9][0-9]{2}[2-9][0-9]{6}$'),
	short_code         text NOT NULL CONSTRAINT replies_short_code_check CHECK (short_code IN ('27022', '270282')),
	kind               text NOT NULL CONSTRAINT replies_kind_check CHECK (kind IN ('opt_out', 'help', 'opt_in')),
	language           text NOT NULL CONSTRAINT replies_language_check CHECK (language IN ('fr', 'en')),
	text               text NOT NULL CONSTRAINT replies_text_check CHECK (text <> ''),
	state              text NOT NULL DEFAULT 'queued' CONSTRAINT replies_state_check CHECK (state IN
		('queued', 'sending', 'sent', 'failed', 'unknown', 'delivered')),
	attempts           integer NOT NULL DEFAULT 0,
	next_attempt_at    timestamptz DEFAULT now(),
	lease_owner        uuid,
	lease_until        timestamptz,
	gateway_message_id text,
	last_error         text,
	dlr_status         text CONSTRAINT replies_dlr_status_check CHECK (dlr_status IN
		('accepted', 'buffered', 'smsc_ack', 'sent', 'delivered', 'undelivered', 'failed', 'smsc_reject', 'other')),
	dlr_code           text,
	dlr_at             timestamptz,
	created_at         timestamptz NOT NULL DEFAULT now(),
	updated_at         timestamptz NOT NULL DEFAULT now(),
	sent_at            timestamptz,
	delivered_at       timestamptz
);
CREATE INDEX replies_queued_idx ON payremind.replies (next_attempt_at) WHERE state = 'queued';
CREATE INDEX replies_sending_idx ON payremind.replies (lease_until) WHERE state = 'sending';
CREATE INDEX replies_gateway_message_id_idx ON payremind.replies (gateway_message_id)
	WHERE gateway_message_id IS NOT NULL;
CREATE INDEX replies_inbound_id_idx ON payremind.replies (inbound_id);

-- Each delivery report once per (gateway, message, status): a replayed callback changes nothing.
CREATE TABLE payremind.dlr_events (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	gateway     text NOT NULL CONSTRAINT dlr_events_gateway_check CHECK (gateway IN ('json', 'kannel', 'twilio')),
	message_ref text NOT NULL,  -- reminder or reply id (json, kannel), MessageSid (twilio)
	gateway_id  text,           -- the gateway's message id when it gives one
	status      text NOT NULL CONSTRAINT dlr_events_status_check CHECK (status IN
		('accepted', 'buffered', 'smsc_ack', 'sent', 'delivered', 'undelivered', 'failed', 'smsc_reject', 'other')),
	raw_status  text NOT NULL,  -- the gateway's own status text (Kannel's number, Twilio's word)
	code        text,
	reminder_id uuid REFERENCES payremind.reminders (id) ON DELETE CASCADE,
	reply_id    uuid REFERENCES payremind.replies (id) ON DELETE CASCADE,
	received_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT dlr_events_gateway_message_ref_status_key UNIQUE (gateway, message_ref, status),
	CONSTRAINT dlr_events_target_check CHECK ((reminder_id IS NULL) <> (reply_id IS NULL))
);
CREATE INDEX dlr_events_reminder_id_idx ON payremind.dlr_events (reminder_id) WHERE reminder_id IS NOT NULL;
CREATE INDEX dlr_events_reply_id_idx ON payremind.dlr_events (reply_id) WHERE reply_id IS NOT NULL;

-- Opt a number out (both short codes: the table is per number) and cancel its queued reminders at
-- once, wiping their plaintext tokens. A reminder being sent right now is left to its daemon, which
-- sees the opt-out when it claims the row again. Returns the number of reminders cancelled.
CREATE FUNCTION payremind.opt_out_apply(p_msisdn text, p_source text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	INSERT INTO payremind.opt_outs (msisdn, source) VALUES (p_msisdn, p_source) ON CONFLICT (msisdn) DO NOTHING;
	UPDATE payremind.reminders SET state = 'cancelled', link_token = NULL, next_attempt_at = NULL,
	       last_error = 'opted_out', updated_at = now()
	 WHERE msisdn = p_msisdn AND state = 'queued';
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

-- One inbound message: recorded once per (gateway, gateway_id); the first time only, its keyword is
-- acted on (opt out, opt back in) and its reply queued. duplicate is true for a replay.
CREATE FUNCTION payremind.inbound_record(p_gateway text, p_gateway_id text, p_msisdn text, p_short_code text,
	p_text text, p_keyword text, p_action text, p_language text, p_reply text)
RETURNS TABLE (inbound_id uuid, duplicate boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_id uuid;
BEGIN
	INSERT INTO payremind.inbound_messages (gateway, gateway_id, msisdn, short_code, text, keyword, action)
	VALUES (p_gateway, p_gateway_id, p_msisdn, p_short_code, p_text, p_keyword, p_action)
	ON CONFLICT (gateway, gateway_id) DO NOTHING
	RETURNING id INTO v_id;
	IF v_id IS NULL THEN
		RETURN QUERY SELECT i.id, true FROM payremind.inbound_messages i
		              WHERE i.gateway = p_gateway AND i.gateway_id = p_gateway_id;
		RETURN;
	END IF;
	IF p_action = 'opt_out' THEN
		PERFORM payremind.opt_out_apply(p_msisdn, 'keyword');
	ELSIF p_action = 'opt_in' THEN
		DELETE FROM payremind.opt_outs WHERE msisdn = p_msisdn;  -- opt_outs_wake wakes parked rows
	END IF;
	IF p_reply IS NOT NULL THEN
		INSERT INTO payremind.replies (inbound_id, msisdn, short_code, kind, language, text)
		VALUES (v_id, p_msisdn, p_short_code, p_action, p_language, p_reply);
		PERFORM pg_notify('payremind_replies', '');
	END IF;
	RETURN QUERY SELECT v_id, false;
END $$;

-- One delivery report. The message is a reminder or a reply, found by id (p_by_sid false: json and
-- kannel put our id in the callback) or by the gateway's message id (twilio). Returns:
--   unknown    no such message: nothing recorded
--   duplicate  this (gateway, message, status) was recorded before: nothing changes
--   delivered / failed   the message moved to that state
--   deferred   the message is still 'sending': the report waits in dlr_status for its record
--   noted      an intermediate report (accepted, buffered, …): no state change
--   kept       the message is final already (or a final report came first): not moved again
-- p_opt_out (Twilio 21610) also opts the number out, with source 'gateway'.
CREATE FUNCTION payremind.dlr_record(p_gateway text, p_ref text, p_by_sid boolean, p_gateway_id text,
	p_status text, p_raw_status text, p_code text, p_opt_out boolean)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_effect text := payremind.dlr_effect(p_status);
	v_code text := nullif(p_code, '');
	v_rem payremind.reminders%ROWTYPE;
	v_rep payremind.replies%ROWTYPE;
	v_state text;
	v_prev text;
	v_result text;
BEGIN
	IF p_by_sid THEN
		SELECT * INTO v_rem FROM payremind.reminders WHERE gateway_message_id = p_ref
		 ORDER BY created_at DESC LIMIT 1 FOR UPDATE;
		IF v_rem.id IS NULL THEN
			SELECT * INTO v_rep FROM payremind.replies WHERE gateway_message_id = p_ref
			 ORDER BY created_at DESC LIMIT 1 FOR UPDATE;
		END IF;
	ELSIF p_ref ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
		SELECT * INTO v_rem FROM payremind.reminders WHERE id = p_ref::uuid FOR UPDATE;
		IF v_rem.id IS NULL THEN
			SELECT * INTO v_rep FROM payremind.replies WHERE id = p_ref::uuid FOR UPDATE;
		END IF;
	END IF;
	IF v_rem.id IS NULL AND v_rep.id IS NULL THEN
		RETURN 'unknown';
	END IF;

	INSERT INTO payremind.dlr_events (gateway, message_ref, gateway_id, status, raw_status, code, reminder_id, reply_id)
	VALUES (p_gateway, p_ref, nullif(p_gateway_id, ''), p_status, p_raw_status, v_code, v_rem.id, v_rep.id)
	ON CONFLICT (gateway, message_ref, status) DO NOTHING;
	IF NOT FOUND THEN
		RETURN 'duplicate';
	END IF;

	v_state := coalesce(v_rem.state, v_rep.state);
	v_prev := coalesce(v_rem.dlr_status, v_rep.dlr_status);
	IF v_state IN ('delivered', 'failed', 'cancelled', 'expired') OR payremind.dlr_effect(v_prev) IS NOT NULL THEN
		v_result := 'kept';
	ELSIF v_effect IS NULL THEN
		v_result := 'noted';
	ELSIF v_state = 'sending' THEN
		v_result := 'deferred';
	ELSE
		v_result := v_effect;
	END IF;

	IF v_result <> 'kept' AND v_rem.id IS NOT NULL THEN
		UPDATE payremind.reminders
		   SET dlr_status = p_status, dlr_code = v_code, dlr_at = now(), updated_at = now(),
		       state = CASE WHEN v_result IN ('delivered', 'failed') THEN v_result ELSE state END,
		       delivered_at = CASE WHEN v_result = 'delivered' THEN now() ELSE delivered_at END,
		       sent_at = CASE WHEN v_result IN ('delivered', 'failed') THEN coalesce(sent_at, now()) ELSE sent_at END,
		       last_error = CASE WHEN v_result = 'failed' THEN payremind.dlr_error(p_status, v_code) ELSE last_error END,
		       link_token = CASE WHEN v_result IN ('delivered', 'failed') THEN NULL ELSE link_token END,
		       next_attempt_at = CASE WHEN v_result IN ('delivered', 'failed') THEN NULL ELSE next_attempt_at END
		 WHERE id = v_rem.id;
	ELSIF v_result <> 'kept' THEN
		UPDATE payremind.replies
		   SET dlr_status = p_status, dlr_code = v_code, dlr_at = now(), updated_at = now(),
		       state = CASE WHEN v_result IN ('delivered', 'failed') THEN v_result ELSE state END,
		       delivered_at = CASE WHEN v_result = 'delivered' THEN now() ELSE delivered_at END,
		       sent_at = CASE WHEN v_result IN ('delivered', 'failed') THEN coalesce(sent_at, now()) ELSE sent_at END,
		       last_error = CASE WHEN v_result = 'failed' THEN payremind.dlr_error(p_status, v_code) ELSE last_error END,
		       next_attempt_at = CASE WHEN v_result IN ('delivered', 'failed') THEN NULL ELSE next_attempt_at END
		 WHERE id = v_rep.id;
	END IF;

	IF p_opt_out THEN
		PERFORM payremind.opt_out_apply(coalesce(v_rem.msisdn, v_rep.msisdn), 'gateway');
	END IF;
	RETURN v_result;
END $$;

-- A final report that arrived while the message was 'sending' takes effect when the daemon records
-- the send (sent, unknown, queued for a retry, or the lease rescue): the gateway has had its say.
-- Shared by reminders and replies (PL/pgSQL plans each statement on first use, per table, so the
-- reminders-only branch is never planned for replies).
CREATE FUNCTION payremind.dlr_settle() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.state := payremind.dlr_effect(NEW.dlr_status);
	IF NEW.state = 'delivered' THEN
		NEW.delivered_at := NEW.dlr_at;
	ELSE
		NEW.last_error := payremind.dlr_error(NEW.dlr_status, NEW.dlr_code);
	END IF;
	NEW.sent_at := coalesce(NEW.sent_at, NEW.dlr_at);
	NEW.next_attempt_at := NULL;
	IF TG_TABLE_NAME = 'reminders' THEN
		NEW.link_token := NULL;
	END IF;
	RETURN NEW;
END $$;

CREATE TRIGGER reminders_dlr_settle BEFORE UPDATE OF state ON payremind.reminders FOR EACH ROW
	WHEN (OLD.state = 'sending' AND NEW.state IN ('sent', 'unknown', 'queued')
	      AND payremind.dlr_effect(NEW.dlr_status) IS NOT NULL)
	EXECUTE FUNCTION payremind.dlr_settle();

CREATE TRIGGER replies_dlr_settle BEFORE UPDATE OF state ON payremind.replies FOR EACH ROW
	WHEN (OLD.state = 'sending' AND NEW.state IN ('sent', 'unknown', 'queued')
	      AND payremind.dlr_effect(NEW.dlr_status) IS NOT NULL)
	EXECUTE FUNCTION payremind.dlr_settle();
