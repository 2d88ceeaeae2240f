-- 002: running daemons (heartbeats, for status and the shared rate limit) and operator batch requests.

-- One row per daemon start. A daemon is live while stopped_at is NULL and its heartbeat is recent
-- (payremindd beats every 5 s; readers use 20 s). The gateway rate is shared among the live ones.
CREATE TABLE payremind.instances (
	id           uuid PRIMARY KEY,
	hostname     text NOT NULL,
	pid          integer NOT NULL,
	version      text NOT NULL,
	started_at   timestamptz NOT NULL DEFAULT now(),
	heartbeat_at timestamptz NOT NULL DEFAULT now(),
	stopped_at   timestamptz,
	status       text NOT NULL DEFAULT '',  -- the daemon's one-line status (what systemd STATUS= shows)
	last_batch_at timestamptz,              -- when its last batch ended, and what it did:
	last_batch   jsonb                      -- {"sent","failed","retried","unknown","skipped","cancelled"}
);
CREATE INDEX instances_live_idx ON payremind.instances (heartbeat_at) WHERE stopped_at IS NULL;

-- `payremindctl batch`: a request row plus NOTIFY payremind_batch (daemons also poll, so this works
-- behind PgBouncer in transaction mode). A daemon takes the request (picked_by), runs a batch and
-- writes the figures; payremindctl waits for finished_at.
CREATE TABLE payremind.batch_requests (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	requested_at timestamptz NOT NULL DEFAULT now(),
	requested_by text NOT NULL DEFAULT current_user,
	picked_by    uuid,
	picked_at    timestamptz,
	finished_at  timestamptz,
	sent         integer,
	failed       integer,
	retried      integer,
	unknown      integer,
	skipped      integer,
	cancelled    integer,
	error        text
);
CREATE INDEX batch_requests_open_idx ON payremind.batch_requests (id) WHERE picked_by IS NULL;
