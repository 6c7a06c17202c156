-- AgentOS schema, version 1. Every tenant-owned table has tenant_id first
-- in its primary key; ids are compared byte-wise (COLLATE "C") so ULID
-- order is creation order, as on bbolt. Records are stored as the JSON the
-- bbolt adapter stores (doc), with the columns queries and locks need
-- beside it.

CREATE TABLE meta (
	key   text PRIMARY KEY,
	value text NOT NULL
);

CREATE TABLE tenants (
	tenant_id text COLLATE "C" PRIMARY KEY,
	doc       bytea NOT NULL
);

CREATE TABLE tokens (
	tenant_id   text COLLATE "C" NOT NULL,
	token_id    text COLLATE "C" NOT NULL,
	secret_hash text NOT NULL UNIQUE,
	revoked     boolean NOT NULL DEFAULT false,
	doc         bytea NOT NULL,
	PRIMARY KEY (tenant_id, token_id)
);

-- The audit chain: seq orders a tenant's records; the head row is locked
-- by every append, so writers on any node chain one after another.
CREATE TABLE audit (
	tenant_id text COLLATE "C" NOT NULL,
	seq       bigint NOT NULL,
	audit_id  text NOT NULL,
	at        timestamptz NOT NULL,
	action    text NOT NULL,
	doc       bytea NOT NULL,
	PRIMARY KEY (tenant_id, seq)
);
CREATE TABLE audit_heads (
	tenant_id text COLLATE "C" PRIMARY KEY,
	seq       bigint NOT NULL,
	hash      text NOT NULL
);

CREATE TABLE agents (
	tenant_id text COLLATE "C" NOT NULL,
	agent_id  text COLLATE "C" NOT NULL,
	doc       bytea NOT NULL,
	PRIMARY KEY (tenant_id, agent_id)
);

CREATE TABLE tools (
	tenant_id text COLLATE "C" NOT NULL,
	tool_id   text COLLATE "C" NOT NULL,
	doc       bytea NOT NULL,
	PRIMARY KEY (tenant_id, tool_id)
);

CREATE TABLE runs (
	tenant_id     text COLLATE "C" NOT NULL,
	run_id        text COLLATE "C" NOT NULL,
	agent_id      text COLLATE "C" NOT NULL,
	status        text NOT NULL,
	last_sequence bigint NOT NULL,
	doc           bytea NOT NULL,
	PRIMARY KEY (tenant_id, run_id)
);

CREATE TABLE run_events (
	tenant_id text COLLATE "C" NOT NULL,
	run_id    text COLLATE "C" NOT NULL,
	sequence  bigint NOT NULL,
	doc       bytea NOT NULL,
	PRIMARY KEY (tenant_id, run_id, sequence)
);

CREATE TABLE run_idempotency (
	tenant_id    text COLLATE "C" NOT NULL,
	principal_id text NOT NULL,
	agent_id     text NOT NULL,
	key          text NOT NULL,
	run_id       text COLLATE "C" NOT NULL,
	PRIMARY KEY (tenant_id, principal_id, agent_id, key)
);

-- The durable queue: one row per non-terminal run, deleted by the
-- transaction that makes the run terminal. lease_owner/lease_until are for
-- nodes that share the database and claim runs (empty on a single node).
CREATE TABLE run_queue (
	run_id      text COLLATE "C" PRIMARY KEY,
	tenant_id   text COLLATE "C" NOT NULL,
	lease_owner text,
	lease_until timestamptz
);

CREATE TABLE memory (
	tenant_id text COLLATE "C" NOT NULL,
	namespace text COLLATE "C" NOT NULL,
	key       text COLLATE "C" NOT NULL,
	size      bigint NOT NULL,
	doc       bytea NOT NULL,
	PRIMARY KEY (tenant_id, namespace, key)
);
CREATE TABLE memory_usage (
	tenant_id text COLLATE "C" PRIMARY KEY,
	bytes     bigint NOT NULL
);

CREATE TABLE usage (
	tenant_id text COLLATE "C" NOT NULL,
	win       text NOT NULL,
	period    text COLLATE "C" NOT NULL,
	doc       bytea NOT NULL,
	PRIMARY KEY (tenant_id, win, period)
);
CREATE TABLE model_replays (
	tenant_id  text COLLATE "C" NOT NULL,
	request_id text NOT NULL,
	doc        bytea NOT NULL,
	PRIMARY KEY (tenant_id, request_id)
);

CREATE TABLE peers (
	stack_id text COLLATE "C" PRIMARY KEY,
	doc      bytea NOT NULL
);

CREATE TABLE forwards (
	tenant_id       text COLLATE "C" NOT NULL,
	idempotency_key text NOT NULL,
	remote_run_id   text NOT NULL,
	doc             bytea NOT NULL,
	PRIMARY KEY (tenant_id, idempotency_key),
	UNIQUE (tenant_id, remote_run_id)
);

CREATE TABLE seen_jtis (
	issuer text NOT NULL,
	jti    text NOT NULL,
	exp    bigint NOT NULL,
	PRIMARY KEY (issuer, jti)
);
CREATE INDEX seen_jtis_exp ON seen_jtis (exp);

CREATE TABLE ingested_events (
	tenant_id text COLLATE "C" NOT NULL,
	run_id    text COLLATE "C" NOT NULL,
	sequence  bigint NOT NULL,
	event_id  text NOT NULL,
	doc       bytea NOT NULL,
	PRIMARY KEY (tenant_id, run_id, sequence),
	UNIQUE (tenant_id, event_id)
);
