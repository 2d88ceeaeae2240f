/* Every SQL statement of the daemon, batched with unnest() arrays and fenced on id + attempt + owner. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payremind/log.h"
#include "payremind/store.h"

/* The last_error a rescue leaves on a reminder or reply whose lease ran out while it was `sending`. */
#define STORE_RESCUED "lease expired while sending: its daemon stopped or lost the database"

/* Claim, inside the claim transaction (store_begin): lock up to $1 rows due by $2 that nobody holds and
 * return what the policy and the template need, with the number's contacts (sent in the last 7 days, or
 * in progress: a queued retry may go out at any moment) and the step's existing reminder. The row lock
 * is the lease: nothing is written until the creation, and a daemon that dies mid-transaction loses its
 * locks with its session; one that hangs loses them after $3 (idle_in_transaction_session_timeout, for
 * this transaction only). A row an older daemon leased (lease_until) is left to it.
 * The rows come slice by slice ($4..$6: claim group, next_at from, next_at before), in the slices'
 * order (SPEC §11: the earliest-closing window first, earlier days before the current one), and within
 * a slice by next_at, the oldest due date, the lowest id. Each slice is a range of due_accounts_claim_idx, walked only as far as the limit
 * needs. The batch then goes out in slice order, oldest first within a slice: it wins a gap against a
 * twin on one number. */
static const char store_sql_claim[] =
    "SELECT * FROM ("
    " SELECT c.*, g.ord FROM unnest($4::int[], $5::float8[], $6::float8[]) WITH ORDINALITY"
    "   AS g(grp, lo, hi, ord)"
    " CROSS JOIN LATERAL ("
    "  SELECT d.id, d.next_step, d.msisdn, d.language, d.region, d.time_zone,"
    "   d.due_date - DATE '1970-01-01', coalesce(d.notice_sent_on - DATE '1970-01-01', -2147483648),"
    "   d.settled_at IS NOT NULL, d.contact_hold IS NOT NULL,"
    "   EXISTS (SELECT 1 FROM payremind.opt_outs o WHERE o.msisdn = d.msisdn),"
    "   d.amount_cents, d.currency,"
    "   coalesce((SELECT r.state FROM payremind.reminders r WHERE r.due_account_id = d.id AND r.step = d.next_step), ''),"
    "   ARRAY(SELECT floor(extract(epoch FROM coalesce(s.sent_at, s.created_at)))::bigint"
    "           FROM payremind.reminders s WHERE s.msisdn = d.msisdn"
    "            AND (s.sent_at > now() - interval '7 days' OR s.state IN ('queued', 'sending'))"
    "            AND NOT (s.due_account_id = d.id AND s.step = d.next_step) LIMIT 64),"
    "   d.paid_at IS NOT NULL, d.account_ref, d.next_at AS was_due, d.ctid"
    "   FROM payremind.due_accounts d"
    "  WHERE d.claim_group = g.grp AND d.next_at >= to_timestamp(g.lo) AND d.next_at < to_timestamp(g.hi)"
    "    AND d.next_at <= to_timestamp($2::float8) AND (d.lease_until IS NULL OR d.lease_until < now())"
    "    AND (SELECT set_config('idle_in_transaction_session_timeout', $3::text, true)) IS NOT NULL"
    "  ORDER BY d.next_at, d.due_date, d.id LIMIT $1 FOR UPDATE OF d SKIP LOCKED) c"
    " LIMIT $1) x"
    " ORDER BY ord, was_due, id";

/* The claim groups that have rows with a next look (one index probe each), at most $1. */
static const char store_sql_groups[] =
    "SELECT g.id, g.region, g.time_zone FROM payremind.claim_groups g"
    " WHERE EXISTS (SELECT 1 FROM payremind.due_accounts d WHERE d.claim_group = g.id AND d.next_at IS NOT NULL)"
    " ORDER BY g.id LIMIT $1";

/* Create the reminder with its payment link (the token's SHA-256 and expiry, columns of the reminder),
 * in the claim transaction; a queued retry of the same step is re-leased instead, keeping its id (the
 * Idempotency-Key), its token and its text, and its sender once an attempt has gone (SPEC §3); one that never went (handed back by a daemon whose gateway was
 * failing, or whose window closed) goes from this daemon's code, whose rate it then takes. The due row
 * moves on to its next step at the same time ($9: when that step is due), so a sent reminder needs no
 * second write of its due row. A new reminder starts in $12: 'sending' when the dialect honours an
 * idempotency key (a crash leaves it to be sent again under the same key), else 'queued' under the lease
 * until store_mark hands it to the HTTP client. Its text ($11, rendered by the daemon) is kept while it
 * may be sent again; a re-leased reminder answers its stored text, a new one NULL (the daemon has it).
 * The due rows are not read again: the claim's lock keeps what it read ($14 number, $15 language) and
 * where it read it ($16, the row's ctid, which nobody else can move while the lock is held). */
static const char store_sql_prepare[] =
    "WITH d AS (SELECT * FROM unnest($3::bigint[], $4::smallint[], $5::text[], $9::float8[], $10::uuid[],"
    "           $11::text[], $13::bool[], $14::text[], $15::text[], $16::tid[])"
    "           AS d(due_id, step, token, next_at, rid, body, retry, msisdn, language, tid)),"
    /* a new reminder takes its number's ledger row: another daemon's contact within the gap wins */
    " gate AS ("
    "  INSERT INTO payremind.contacts AS c (msisdn, last_at)"
    "  SELECT DISTINCT msisdn, now() FROM d WHERE NOT d.retry ORDER BY msisdn"
    "  ON CONFLICT (msisdn) DO UPDATE SET last_at = now()"
    "   WHERE c.last_at <= now() - make_interval(hours => $8::int)"
    "  RETURNING msisdn),"
    " up AS ("
    "  INSERT INTO payremind.reminders AS r (id, due_account_id, step, msisdn, short_code, language, state,"
    "         attempts, lease_owner, lease_until, link_token, body, token_hash, token_expires_at)"
    "  SELECT DISTINCT ON (d.msisdn, CASE WHEN d.retry THEN d.due_id END) d.rid, d.due_id, d.step, d.msisdn,"
    "         $6, d.language,"
    "         $12::text, 1, $1::uuid, now() + make_interval(secs => $2::int), d.token, d.body,"
    "         sha256(convert_to(d.token, 'UTF8')), now() + make_interval(hours => $7::int)"
    "    FROM d WHERE d.retry OR d.msisdn IN (SELECT msisdn FROM gate)"
    "   ORDER BY d.msisdn, CASE WHEN d.retry THEN d.due_id END, d.due_id"
    "  ON CONFLICT (due_account_id, step) DO UPDATE"
    "     SET state = EXCLUDED.state, attempts = r.attempts + 1, lease_owner = EXCLUDED.lease_owner,"
    "         short_code = CASE WHEN r.attempts = 0 THEN EXCLUDED.short_code ELSE r.short_code END,"
    "         lease_until = EXCLUDED.lease_until, next_attempt_at = NULL, updated_at = now()"
    "   WHERE r.state = 'queued' AND (r.lease_until IS NULL OR r.lease_until < now())"
    "  RETURNING r.due_account_id, r.step, r.id, r.attempts, r.link_token, r.short_code,"
    "            CASE WHEN r.xmax <> 0 THEN r.body END AS body, r.xmax = 0 AS inserted),"
    /* the due row moves on to its next step now; a retry or a rescue brings it back */
    " nx AS ("
    "  UPDATE payremind.due_accounts a SET next_step = up.step + 1, next_at = to_timestamp(d.next_at),"
    "         lease_owner = NULL, lease_until = NULL"
    "    FROM up JOIN d ON d.due_id = up.due_account_id WHERE a.ctid = d.tid AND a.id = d.due_id)"
    " SELECT due_account_id, step, id, attempts, link_token, short_code, body, inserted FROM up";

/* Hand claimed rows back, in the claim transaction. */
static const char store_sql_release[] =
    "WITH u AS (SELECT * FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::smallint[])"
    "           AS u(id, next_at, cancel, next_step)),"
    " rel AS ("
    "  UPDATE payremind.due_accounts d"
    "     SET next_at = to_timestamp(u.next_at), next_step = u.next_step, lease_owner = NULL, lease_until = NULL"
    "    FROM u WHERE d.id = u.id"
    "  RETURNING d.id, d.next_step, u.cancel)"
    " UPDATE payremind.reminders r"
    "    SET state = 'cancelled', link_token = NULL, body = NULL, next_attempt_at = NULL, last_error = rel.cancel,"
    "        updated_at = now()"
    "   FROM rel WHERE rel.cancel IS NOT NULL AND r.due_account_id = rel.id AND r.step = rel.next_step"
    "    AND r.state = 'queued'";

/* The fence of an outcome: this daemon's lease, or a rescue of this very attempt that nobody has taken
 * up since (the lease ran out while the database was unreachable and the answer waited in memory): the
 * answer received is the truth about the attempt, never left `unknown` or sent again. */
#define STORE_FENCE(t)                                                       \
	"(" t ".lease_owner = $1::uuid OR (" t ".lease_owner IS NULL AND " t \
	".state IN ('queued', 'unknown')"                                    \
	" AND " t ".last_error = '" STORE_RESCUED "'))"

/* Outcomes, fenced on id + attempts + owner: only the daemon that leased this attempt may record it
 * (a rescue or another daemon's lease clears or changes the owner). No predicate on state here: the
 * planner would walk a state index full of dead entries instead of the 500 primary keys.
 * `unknown` counts as a contact (sent_at) for the caps: it may have reached the phone. */
static const char store_sql_record[] =
    "WITH u AS (SELECT * FROM unnest($2::uuid[], $3::int[], $4::text[], $5::float8[], $6::text[],"
    "           $7::text[], $8::int[], $9::float8[], $10::smallint[])"
    "           AS u(id, attempts, state, next_attempt_at, gw_id, err, delta, due_next_at, due_next_step)),"
    " rem AS ("
    "  UPDATE payremind.reminders r"
    "     SET state = u.state, attempts = r.attempts + u.delta, next_attempt_at = "
    "to_timestamp(u.next_attempt_at),"
    "         gateway_message_id = coalesce(u.gw_id, r.gateway_message_id), last_error = u.err,"
    "         sent_at = CASE WHEN u.state IN ('sent', 'unknown') THEN now() ELSE r.sent_at END,"
    "         link_token = CASE WHEN u.state = 'queued' THEN r.link_token END,"
    "         body = CASE WHEN u.state = 'queued' THEN r.body END,"
    "         lease_owner = NULL, lease_until = NULL, updated_at = now()"
    "    FROM u WHERE r.id = u.id AND r.attempts = u.attempts AND " STORE_FENCE(
        "r") "  RETURNING r.due_account_id, r.step, u.due_next_at, u.due_next_step),"
             " due AS ("
             "  UPDATE payremind.due_accounts d"
             "     SET next_at = to_timestamp(rem.due_next_at), next_step = rem.due_next_step"
             "    FROM rem WHERE rem.due_next_step >= 0 AND d.id = rem.due_account_id AND d.next_step = rem.step + 1"
             "  RETURNING 1)"
             " SELECT (SELECT count(*) FROM rem), (SELECT count(*) FROM due)";

/* Leases that expired: a reminder or reply left 'queued' under a lease was never handed to the HTTP
 * client, so it goes back untouched (its attempt not counted); one left 'sending' may have reached the
 * gateway: queued again under the same key when the dialect is idempotent ($1), else `unknown`. */
#define STORE_RESCUE_SET(t)                                                                                  \
	"     SET state = CASE WHEN " t ".state = 'queued' OR $1::bool THEN 'queued' ELSE 'unknown' END,"    \
	"         attempts = " t ".attempts - (" t ".state = 'queued')::int,"                                \
	"         next_attempt_at = CASE WHEN " t ".state = 'queued' THEN now()"                             \
	"                                WHEN $1::bool THEN now() + make_interval(secs => $2::int) END,"     \
	"         sent_at = CASE WHEN " t ".state = 'queued' OR $1::bool THEN " t ".sent_at ELSE now() END," \
	"         last_error = CASE WHEN " t ".state = 'queued' THEN " t ".last_error"                       \
	"                      ELSE '" STORE_RESCUED "' END,"                                                \
	"         lease_owner = NULL, lease_until = NULL, updated_at = now()"
static const char store_sql_rescue[] =
    "WITH l AS (SELECT pg_try_advisory_xact_lock(7202202702) AS got),"
    " r AS ("
    "  UPDATE payremind.reminders r" STORE_RESCUE_SET(
        "r") ","
             "         link_token = CASE WHEN r.state = 'queued' OR $1::bool THEN r.link_token END,"
             "         body = CASE WHEN r.state = 'queued' OR $1::bool THEN r.body END"
             "    FROM l WHERE l.got AND r.state IN ('queued', 'sending') AND r.lease_until < now()"
             "  RETURNING r.due_account_id, r.step, r.state, r.next_attempt_at),"
             " p AS ("
             "  UPDATE payremind.replies p" STORE_RESCUE_SET(
                 "p") "    FROM l WHERE l.got AND p.state IN ('queued', 'sending') AND p.lease_until < now()"
                      "  RETURNING 1),"
                      " d AS ("
                      "  UPDATE payremind.due_accounts d SET next_at = r.next_attempt_at, next_step = r.step, lease_owner = NULL,"
                      "         lease_until = NULL"
                      "    FROM r WHERE r.state = 'queued' AND d.id = r.due_account_id AND d.next_step = r.step + 1)"
                      " SELECT (SELECT count(*) FROM r) + (SELECT count(*) FROM p)";

/* Hand a group to the HTTP client: its reminders and replies, created or claimed 'queued' under this
 * daemon's lease, become 'sending' (fenced on id + attempts + owner) with a fresh lease. Answers the ids
 * marked; the others passed to another daemon and must not be sent. */
static const char store_sql_mark[] =
    "WITH m AS (SELECT * FROM unnest($2::uuid[], $3::int[]) AS m(id, attempts)),"
    " r AS ("
    "  UPDATE payremind.reminders r SET state = 'sending', updated_at = now(),"
    "         lease_until = now() + make_interval(secs => $4::int)"
    "    FROM m WHERE r.id = m.id AND r.attempts = m.attempts AND r.lease_owner = $1::uuid"
    "     AND r.state = 'queued'"
    "  RETURNING r.id),"
    " p AS ("
    "  UPDATE payremind.replies p SET state = 'sending', updated_at = now(),"
    "         lease_until = now() + make_interval(secs => $4::int)"
    "    FROM m WHERE p.id = m.id AND p.attempts = m.attempts AND p.lease_owner = $1::uuid"
    "     AND p.state = 'queued'"
    "  RETURNING p.id)"
    " SELECT id::text FROM r UNION ALL SELECT id::text FROM p";

/* Register or refresh this daemon; answer how many daemons are live (itself included) and, when $6,
 * the queue (a scan of reminders: no index may cover state, see sql/006). */
static const char store_sql_heartbeat[] =
    "WITH hb AS ("
    "  INSERT INTO payremind.instances AS i (id, hostname, pid, version, status, circuit, circuit_since,"
    "         short_code, rate_per_second)"
    "  VALUES ($1::uuid, $2, $3::int, $4, $5, $7, to_timestamp(nullif($8::float8, 0)), $9, $10::float8)"
    "  ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), status = EXCLUDED.status,"
    "   circuit = EXCLUDED.circuit, circuit_since = EXCLUDED.circuit_since, short_code = EXCLUDED.short_code,"
    "   rate_per_second = EXCLUDED.rate_per_second"
    "  RETURNING i.id)"
    /* the others sending from this code: live, on the same code (or of before 014), breaker not open */
    " SELECT 1 + (SELECT count(*) FROM payremind.instances"
    "              WHERE stopped_at IS NULL AND heartbeat_at > now() - interval '20 seconds'"
    "                AND id <> $1::uuid AND (short_code = $9 OR short_code IS NULL) AND circuit <> 'open'),"
    "  CASE WHEN $6::bool THEN (SELECT count(*) FROM payremind.reminders WHERE state = 'queued') END,"
    "  CASE WHEN $6::bool THEN (SELECT count(*) FROM payremind.reminders WHERE state = 'sending') END,"
    "  CASE WHEN $6::bool THEN (SELECT count(*) FROM payremind.reminders WHERE state = 'unknown') END,"
    "  (SELECT count(*) FROM hb)";

/* The pause every daemon obeys (sql/011): paused, since (epoch s), by whom, why. */
static const char store_sql_control[] =
    "SELECT paused_at IS NOT NULL, coalesce(extract(epoch FROM paused_at), 0), paused_by, pause_reason"
    "  FROM payremind.control";

static const char store_sql_begin[] = "BEGIN";
static const char store_sql_commit[] = "COMMIT";
static const char store_sql_rollback[] = "ROLLBACK";

static const char store_sql_instance_stop[] =
    "UPDATE payremind.instances SET stopped_at = now(), status = 'stopped' WHERE id = $1::uuid";

/* Take every open operator request; the next batch answers them. */
static const char store_sql_batch_pick[] =
    "UPDATE payremind.batch_requests b SET picked_by = $1::uuid, picked_at = now()"
    "  WHERE b.id IN (SELECT id FROM payremind.batch_requests WHERE picked_by IS NULL"
    "                  FOR UPDATE SKIP LOCKED)"
    " RETURNING b.id";

static const char store_sql_batch_done[] =
    "WITH r AS ("
    "  UPDATE payremind.batch_requests SET finished_at = now(), sent = $3, failed = $4, retried = $5,"
    "         unknown = $6, rows_skipped = $7, rows_closed = $8"
    "   WHERE id = ANY($2::bigint[]) AND picked_by = $1::uuid RETURNING 1)"
    " UPDATE payremind.instances SET last_batch_at = now(),"
    "        last_batch = jsonb_build_object('sent', $3::int, 'failed', $4::int, 'retried', $5::int,"
    "                     'unknown', $6::int, 'rows_skipped', $7::int, 'rows_closed', $8::int,"
    "                     'requests', (SELECT count(*) FROM r))"
    "  WHERE id = $1::uuid";

/* Keyword replies (payremind.replies, filled by the listener): lease the queued ones that are due. */
static const char store_sql_reply_claim[] =
    "WITH c AS (SELECT id FROM payremind.replies WHERE state = 'queued' AND next_attempt_at <= now()"
    "             AND (lease_until IS NULL OR lease_until < now())"
    "            ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
    " UPDATE payremind.replies r SET state = $4::text, attempts = r.attempts + 1, lease_owner = $1::uuid,"
    "        lease_until = now() + make_interval(secs => $3::int), updated_at = now()"
    "   FROM c WHERE r.id = c.id"
    " RETURNING r.id, r.msisdn, r.short_code, r.text, r.attempts";

static const char store_sql_reply_record[] =
    "UPDATE payremind.replies r"
    "   SET state = u.state, attempts = r.attempts + u.delta, next_attempt_at = "
    "to_timestamp(u.next_attempt_at),"
    "       gateway_message_id = coalesce(u.gw_id, r.gateway_message_id), last_error = u.err,"
    "       sent_at = CASE WHEN u.state IN ('sent', 'unknown') THEN now() ELSE r.sent_at END,"
    "       lease_owner = NULL, lease_until = NULL, updated_at = now()"
    "  FROM unnest($2::uuid[], $3::int[], $4::text[], $5::float8[], $6::text[], $7::text[], $8::int[])"
    "       AS u(id, attempts, state, next_attempt_at, gw_id, err, delta)"
    " WHERE r.id = u.id AND r.attempts = u.attempts AND " STORE_FENCE("r");

/* Retention (Québec Law 25): personal data older than retention.days goes, $2 rows per statement so
 * no statement holds locks for long; one daemon at a time (advisory lock). Each answers the row count. */
#define STORE_PURGE(table, key, cond)                                                               \
	"WITH x AS (SELECT " key " FROM payremind." table " t"                                      \
	"            WHERE pg_try_advisory_xact_lock(7202202703) AND " cond " LIMIT $2),"           \
	" d AS (DELETE FROM payremind." table " t USING x WHERE t." key " = x." key " RETURNING 1)" \
	" SELECT count(*) FROM d"

static const char *const store_sql_purge[] = {
	/* texts phones sent us */
	STORE_PURGE("inbound_messages", "id", "t.received_at < now() - make_interval(days => $1::int)"),
	/* payment links redeemed or expired that long ago: a reminder's own, and earlier ones */
	"WITH x AS (SELECT id FROM payremind.reminders t"
	"            WHERE pg_try_advisory_xact_lock(7202202703) AND t.token_hash IS NOT NULL"
	"              AND coalesce(t.token_redeemed_at, t.token_expires_at) < now() - make_interval(days => $1::int)"
	"            LIMIT $2),"
	" d AS (UPDATE payremind.reminders t SET token_hash = NULL, token_created_at = NULL, token_expires_at = NULL,"
	"         token_redeemed_at = NULL, token_first_opened_at = NULL, token_open_count = 0"
	"        FROM x WHERE t.id = x.id RETURNING 1),"
	" e AS (SELECT token_hash FROM payremind.earlier_tokens t"
	"        WHERE pg_try_advisory_xact_lock(7202202703)"
	"          AND coalesce(t.redeemed_at, t.expires_at) < now() - make_interval(days => $1::int) LIMIT $2),"
	" f AS (DELETE FROM payremind.earlier_tokens t USING e WHERE t.token_hash = e.token_hash RETURNING 1)"
	" SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM f)",
	/* reminders (with their tokens and delivery reports) of rows settled that long ago */
	"WITH x AS (SELECT id FROM payremind.reminders t"
	"            WHERE pg_try_advisory_xact_lock(7202202703) AND t.due_account_id IN (SELECT id FROM"
	"              payremind.due_accounts WHERE settled_at < now() - make_interval(days => $1::int)) LIMIT $2),"
	" k AS (DELETE FROM payremind.earlier_tokens p USING x WHERE p.reminder_id = x.id),"
	" d AS (DELETE FROM payremind.reminders t USING x WHERE t.id = x.id RETURNING 1)"
	" SELECT count(*) FROM d",
	/* keyword replies and delivery reports */
	STORE_PURGE("replies", "id",
	    "t.created_at < now() - make_interval(days => $1::int) AND t.state NOT IN ('queued', 'sending')"),
	STORE_PURGE("dlr_events", "id", "t.received_at < now() - make_interval(days => $1::int)"),
	/* the contact ledger's numbers */
	STORE_PURGE("contacts", "msisdn", "t.last_at < now() - make_interval(days => $1::int)"),
	/* the portal's payment results */
	STORE_PURGE("payments", "id", "t.received_at < now() - make_interval(days => $1::int)"),
	/* retried attempts, opt-out history (never the event behind a standing opt-out), operators'
	 * actions about a person */
	STORE_PURGE("attempts", "ctid", "t.ended_at < now() - make_interval(days => $1::int)"),
	STORE_PURGE("opt_out_events", "id",
	    "t.at < now() - make_interval(days => $1::int) AND NOT EXISTS (SELECT 1 FROM payremind.opt_outs o"
	    " WHERE o.msisdn = t.msisdn AND o.created_at = t.at AND t.event = 'opt_out')"),
	STORE_PURGE("operator_actions", "id",
	    "t.at < now() - make_interval(days => $1::int)"
	    " AND (t.msisdn IS NOT NULL OR t.account_ref IS NOT NULL OR t.reminder_id IS NOT NULL)"),
};

static const char *const store_purge_names[] = { "purge_inbound", "purge_tokens", "purge_reminders",
	"purge_replies", "purge_dlrs", "purge_contacts", "purge_payments", "purge_attempts",
	"purge_opt_out_events", "purge_operator_actions" };

static const char store_sql_opt_out[] =
    "INSERT INTO payremind.opt_outs (msisdn, source) VALUES ($1, $2) ON CONFLICT (msisdn) DO NOTHING";

void
store_register(struct db *db)
{
	db_statement(db, "begin", store_sql_begin);
	db_statement(db, "commit", store_sql_commit);
	db_statement(db, "rollback", store_sql_rollback);
	db_statement(db, "claim", store_sql_claim);
	db_statement(db, "groups", store_sql_groups);
	db_statement(db, "prepare", store_sql_prepare);
	db_statement(db, "release", store_sql_release);
	db_statement(db, "record", store_sql_record);
	db_statement(db, "rescue", store_sql_rescue);
	db_statement(db, "mark", store_sql_mark);
	db_statement(db, "opt_out", store_sql_opt_out);
	db_statement(db, "heartbeat", store_sql_heartbeat);
	db_statement(db, "instance_stop", store_sql_instance_stop);
	db_statement(db, "control", store_sql_control);
	db_statement(db, "batch_pick", store_sql_batch_pick);
	db_statement(db, "batch_done", store_sql_batch_done);
	db_statement(db, "reply_claim", store_sql_reply_claim);
	for (size_t i = 0; i < STORE_PURGE_STEPS; i++)
		db_statement(db, store_purge_names[i], store_sql_purge[i]);
	db_statement(db, "reply_record", store_sql_reply_record);
}

/* A PostgreSQL array literal, built element by element. */
struct pgarr {
	char *buf;
	size_t len, cap;
};

static void
pgarr_put(struct pgarr *a, const char *s, size_t n)
{
	if (a->len + n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap : 256;

		while (cap < a->len + n + 2)
			cap *= 2;
		if ((a->buf = realloc(a->buf, cap)) == NULL)
			fatal("pgarr");
		a->cap = cap;
	}
	memcpy(a->buf + a->len, s, n);
	a->len += n;
	a->buf[a->len] = '\0';
}

static void
pgarr_sep(struct pgarr *a)
{
	pgarr_put(a, a->len == 0 ? "{" : ",", 1);
}

/* A text element, double-quoted with " and \ escaped; NULL for s == NULL. */
static void
pgarr_text(struct pgarr *a, const char *s)
{
	pgarr_sep(a);
	if (s == NULL) {
		pgarr_put(a, "NULL", 4);
		return;
	}
	pgarr_put(a, "\"", 1);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			pgarr_put(a, "\\", 1);
		pgarr_put(a, s, 1);
	}
	pgarr_put(a, "\"", 1);
}

static void
pgarr_int(struct pgarr *a, long long v)
{
	char b[32];

	pgarr_sep(a);
	pgarr_put(a, b, (size_t)snprintf(b, sizeof(b), "%lld", v));
}

/* An epoch in seconds; 0 stands for NULL. */
static void
pgarr_time(struct pgarr *a, double t)
{
	char b[48];

	pgarr_sep(a);
	if (t == 0)
		pgarr_put(a, "NULL", 4);
	else
		pgarr_put(a, b, (size_t)snprintf(b, sizeof(b), "%.3f", t));
}

static const char *
pgarr_end(struct pgarr *a)
{
	if (a->len == 0)
		pgarr_put(a, "{", 1);
	pgarr_put(a, "}", 1);
	return a->buf;
}

int
store_begin(struct db *db, db_cb cb, void *arg)
{
	return db_query(db, "begin", 0, NULL, cb, arg);
}

int
store_end(struct db *db, int commit, db_cb cb, void *arg)
{
	return db_query(db, commit ? "commit" : "rollback", 0, NULL, cb, arg);
}

int
store_committed(const PGresult *res)
{
	return db_ok(res) && strcmp(PQcmdStatus((PGresult *)res), "COMMIT") == 0;
}

/* An epoch in seconds for float8, infinities included (PostgreSQL's spelling). */
static void
pgarr_bound(struct pgarr *a, double t)
{
	if (isinf(t))
		pgarr_text(a, t < 0 ? "-Infinity" : "Infinity");
	else
		pgarr_time(a, t);
}

int
store_claim(struct db *db, int limit, int lease_s, double horizon, const struct store_slice *sl, int n,
    db_cb cb, void *arg)
{
	struct pgarr groups = { 0 }, lo = { 0 }, hi = { 0 };
	char lim[16], lease[16], hz[48];
	const char *v[6] = { lim, hz, lease };
	int i, rc;

	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(lease, sizeof(lease), "%ds", lease_s);
	snprintf(hz, sizeof(hz), "%.3f", horizon);
	for (i = 0; i < n; i++) {
		pgarr_int(&groups, sl[i].group);
		pgarr_bound(&lo, sl[i].lo);
		pgarr_bound(&hi, sl[i].hi);
	}
	v[3] = pgarr_end(&groups);
	v[4] = pgarr_end(&lo);
	v[5] = pgarr_end(&hi);
	rc = db_query(db, "claim", 6, v, cb, arg);
	free(groups.buf);
	free(lo.buf);
	free(hi.buf);
	return rc;
}

int
store_groups(struct db *db, int max, db_cb cb, void *arg)
{
	char lim[16];
	const char *v[1] = { lim };

	snprintf(lim, sizeof(lim), "%d", max);
	return db_query(db, "groups", 1, v, cb, arg);
}

static void
store_copy(char *dst, size_t len, const PGresult *res, int i, int col)
{
	snprintf(dst, len, "%s", PQgetvalue(res, i, col));
}

static int
store_cmp_time(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* "{3,1,2}" (unordered, at most 64) -> contacts: the newest POLICY_MAX_HISTORY, oldest first. */
static int
store_parse_history(const char *s, struct policy_history *h)
{
	int64_t t[64];
	int n = 0, skip;
	char *end;

	if (*s++ != '{')
		return -1;
	while (*s && *s != '}' && n < 64) {
		t[n++] = strtoll(s, &end, 10);
		if (end == s)
			return -1;
		s = *end == ',' ? end + 1 : end;
	}
	qsort(t, (size_t)n, sizeof(t[0]), store_cmp_time);
	skip = n > POLICY_MAX_HISTORY ? n - POLICY_MAX_HISTORY : 0;
	h->ncontacts = n - skip;
	memcpy(h->contacts, t + skip, sizeof(t[0]) * (size_t)h->ncontacts);
	return 0;
}

int
store_claim_row(const PGresult *res, int i, struct job *job)
{
	memset(job, 0, sizeof(*job));
	job->due_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	job->step = atoi(PQgetvalue(res, i, 1));
	store_copy(job->msisdn, sizeof(job->msisdn), res, i, 2);
	store_copy(job->lang, sizeof(job->lang), res, i, 3);
	store_copy(job->region, sizeof(job->region), res, i, 4);
	store_copy(job->time_zone, sizeof(job->time_zone), res, i, 5);
	job->due_date = (int32_t)strtol(PQgetvalue(res, i, 6), NULL, 10);
	job->notice_sent_on = (int32_t)strtoll(PQgetvalue(res, i, 7), NULL, 10);
	job->settled = PQgetvalue(res, i, 8)[0] == 't';
	job->held = PQgetvalue(res, i, 9)[0] == 't';
	job->opted_out = PQgetvalue(res, i, 10)[0] == 't';
	job->amount_cents = strtoll(PQgetvalue(res, i, 11), NULL, 10);
	store_copy(job->currency, sizeof(job->currency), res, i, 12);
	store_copy(job->rem_state, sizeof(job->rem_state), res, i, 13);
	job->paid = PQgetvalue(res, i, 15)[0] == 't';
	if (!(job->ref_too_long = strlen(PQgetvalue(res, i, 16)) >= sizeof(job->account_ref)))
		store_copy(job->account_ref, sizeof(job->account_ref), res, i, 16);
	store_copy(job->tid, sizeof(job->tid), res, i, 18);
	job->slice = atoi(PQgetvalue(res, i, 19)) - 1;
	return store_parse_history(PQgetvalue(res, i, 14), &job->hist);
}

int
store_prepare(struct db *db, const char *owner, const struct conf *conf, int handed, struct job *const *jobs,
    int n, db_cb cb, void *arg)
{
	struct pgarr ids = { 0 }, steps = { 0 }, toks = { 0 }, next = { 0 }, rids = { 0 }, bodies = { 0 },
	             retry = { 0 }, numbers = { 0 }, langs = { 0 }, tids = { 0 };
	char lease[16], ttl[16], gap[16];
	const char *v[16];
	int i, rc;

	for (i = 0; i < n; i++) {
		pgarr_int(&ids, jobs[i]->due_id);
		pgarr_int(&steps, jobs[i]->step);
		pgarr_text(&toks, jobs[i]->token);
		pgarr_time(&next, jobs[i]->due_next_at);
		pgarr_text(&rids, jobs[i]->rem_id);
		pgarr_text(&bodies, jobs[i]->body);
		pgarr_text(&retry, jobs[i]->rem_state[0] != '\0' ? "t" : "f");
		pgarr_text(&numbers, jobs[i]->msisdn);
		pgarr_text(&langs, jobs[i]->lang);
		pgarr_text(&tids, jobs[i]->tid);
	}
	snprintf(lease, sizeof(lease), "%d", conf->schedule.lease_s);
	snprintf(ttl, sizeof(ttl), "%d", conf->token.ttl_hours);
	snprintf(gap, sizeof(gap), "%d", conf->rules.min_gap_hours);
	v[0] = owner;
	v[1] = lease;
	v[2] = pgarr_end(&ids);
	v[3] = pgarr_end(&steps);
	v[4] = pgarr_end(&toks);
	v[5] = conf->short_code;
	v[6] = ttl;
	v[7] = gap;
	v[8] = pgarr_end(&next);
	v[9] = pgarr_end(&rids);
	v[10] = pgarr_end(&bodies);
	v[11] = handed ? "sending" : "queued";
	v[12] = pgarr_end(&retry);
	v[13] = pgarr_end(&numbers);
	v[14] = pgarr_end(&langs);
	v[15] = pgarr_end(&tids);
	rc = db_query(db, "prepare", 16, v, cb, arg);
	free(ids.buf);
	free(steps.buf);
	free(toks.buf);
	free(next.buf);
	free(rids.buf);
	free(bodies.buf);
	free(retry.buf);
	free(numbers.buf);
	free(langs.buf);
	free(tids.buf);
	return rc;
}

int
store_release(struct db *db, struct job *const *jobs, int n, db_cb cb, void *arg)
{
	struct pgarr ids = { 0 }, at = { 0 }, cancel = { 0 }, steps = { 0 };
	const char *v[4];
	int i, rc;

	for (i = 0; i < n; i++) {
		int cancelled = jobs[i]->state != NULL && strcmp(jobs[i]->state, "cancelled") == 0;

		pgarr_int(&ids, jobs[i]->due_id);
		pgarr_time(&at, jobs[i]->due_next_at);
		pgarr_text(&cancel, cancelled ? jobs[i]->result.error : NULL);
		pgarr_int(&steps, jobs[i]->due_next_step);
	}
	v[0] = pgarr_end(&ids);
	v[1] = pgarr_end(&at);
	v[2] = pgarr_end(&cancel);
	v[3] = pgarr_end(&steps);
	rc = db_query(db, "release", 4, v, cb, arg);
	free(ids.buf);
	free(at.buf);
	free(cancel.buf);
	free(steps.buf);
	return rc;
}

/* Outcomes as arrays, the same seven for reminders and replies: id, attempts (the fence), state, next
 * attempt, gateway id, error, attempts delta; reminders add their due row's next look and step. */
static int
store_outcomes(struct db *db, const char *name, const char *owner, struct job *const *jobs, int n, int due,
    db_cb cb, void *arg)
{
	struct pgarr a[9] = { { 0 } };
	const char *v[10];
	int i, na = due ? 9 : 7, rc;

	for (i = 0; i < n; i++) {
		const struct job *j = jobs[i];

		pgarr_text(&a[0], j->rem_id);
		pgarr_int(&a[1], j->attempts);
		pgarr_text(&a[2], j->state);
		pgarr_time(&a[3], j->next_attempt_at);
		pgarr_text(&a[4], j->result.message_id[0] ? j->result.message_id : NULL);
		pgarr_text(&a[5], j->result.error[0] ? j->result.error : NULL);
		pgarr_int(&a[6], j->attempts_delta);
		if (due) {
			pgarr_time(&a[7], j->due_next_at);
			pgarr_int(&a[8], j->due_next_step);
		}
	}
	v[0] = owner;
	for (i = 0; i < na; i++)
		v[i + 1] = pgarr_end(&a[i]);
	rc = db_query(db, name, na + 1, v, cb, arg);
	for (i = 0; i < na; i++)
		free(a[i].buf);
	return rc;
}

int
store_record(struct db *db, const char *owner, struct job *const *jobs, int n, db_cb cb, void *arg)
{
	return store_outcomes(db, "record", owner, jobs, n, 1, cb, arg);
}

int
store_mark(struct db *db, const char *owner, int lease_s, struct job *const *jobs, int n, db_cb cb, void *arg)
{
	struct pgarr ids = { 0 }, attempts = { 0 };
	char lease[16];
	const char *v[4];
	int i, rc;

	for (i = 0; i < n; i++) {
		pgarr_text(&ids, jobs[i]->rem_id);
		pgarr_int(&attempts, jobs[i]->attempts);
	}
	snprintf(lease, sizeof(lease), "%d", lease_s);
	v[0] = owner;
	v[1] = pgarr_end(&ids);
	v[2] = pgarr_end(&attempts);
	v[3] = lease;
	rc = db_query(db, "mark", 4, v, cb, arg);
	free(ids.buf);
	free(attempts.buf);
	return rc;
}

int
store_rescue(struct db *db, int idempotent, int grace_s, db_cb cb, void *arg)
{
	char grace[16];
	const char *v[2] = { idempotent ? "true" : "false", grace };

	snprintf(grace, sizeof(grace), "%d", grace_s);
	return db_query(db, "rescue", 2, v, cb, arg);
}

int
store_opt_out(struct db *db, const char *msisdn, const char *source, db_cb cb, void *arg)
{
	const char *v[2] = { msisdn, source };

	return db_query(db, "opt_out", 2, v, cb, arg);
}

int
store_heartbeat(struct db *db, const char *owner, const char *hostname, int pid, const char *status,
    int count, const char *circuit, double circuit_since, const char *short_code, double rate, db_cb cb,
    void *arg)
{
	char p[16], since[32], r[32];
	const char *v[10] = { owner, hostname, p, PAYREMIND_VERSION, status, count ? "true" : "false",
		circuit, since, short_code, r };

	snprintf(p, sizeof(p), "%d", pid);
	snprintf(since, sizeof(since), "%.3f", circuit_since);
	snprintf(r, sizeof(r), "%.17g", rate);
	return db_query(db, "heartbeat", 10, v, cb, arg);
}

int
store_control(struct db *db, db_cb cb, void *arg)
{
	return db_query(db, "control", 0, NULL, cb, arg);
}

void
store_instance_stop(struct db *db, const char *owner)
{
	const char *v[1] = { owner };

	PQclear(db_exec(db, "instance_stop", 1, v));
}

int
store_batch_pick(struct db *db, const char *owner, db_cb cb, void *arg)
{
	const char *v[1] = { owner };

	return db_query(db, "batch_pick", 1, v, cb, arg);
}

int
store_batch_done(
    struct db *db, const char *owner, const int64_t *ids, int n, const long figures[6], db_cb cb, void *arg)
{
	struct pgarr a = { 0 };
	char f[6][24];
	const char *v[8];
	int i, rc;

	for (i = 0; i < n; i++)
		pgarr_int(&a, ids[i]);
	v[0] = owner;
	v[1] = pgarr_end(&a);
	for (i = 0; i < 6; i++) {
		snprintf(f[i], sizeof(f[i]), "%ld", figures[i]);
		v[i + 2] = f[i];
	}
	rc = db_query(db, "batch_done", 8, v, cb, arg);
	free(a.buf);
	return rc;
}

int
store_reply_claim(struct db *db, const char *owner, int limit, int lease_s, int handed, db_cb cb, void *arg)
{
	char lim[16], lease[16];
	const char *v[4] = { owner, lim, lease, handed ? "sending" : "queued" };

	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(lease, sizeof(lease), "%d", lease_s);
	return db_query(db, "reply_claim", 4, v, cb, arg);
}

int
store_reply_record(struct db *db, const char *owner, struct job *const *jobs, int n, db_cb cb, void *arg)
{
	return store_outcomes(db, "reply_record", owner, jobs, n, 0, cb, arg);
}

int
store_purge(struct db *db, int step, int days, int limit, db_cb cb, void *arg)
{
	char d[16], l[16];
	const char *v[2] = { d, l };

	snprintf(d, sizeof(d), "%d", days);
	snprintf(l, sizeof(l), "%d", limit);
	return db_query(db, store_purge_names[step], 2, v, cb, arg);
}

const char *
store_purge_name(int step)
{
	return store_purge_names[step] + strlen("purge_");
}
