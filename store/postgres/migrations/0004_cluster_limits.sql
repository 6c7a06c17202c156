-- Limits the nodes of a cluster agree on (issue 11). budget_windows: a
-- tenant's settled model use per budget window and period, seeded from the
-- usage ledger when first reserved against; its row lock orders the nodes
-- reserving at once. budget_holds: the reservation of each model call in
-- flight, expiring on its own when its node died. rate_windows: counters
-- of windowed limits (tool calls per minute). run_queue_tenant: counting a
-- tenant's claimed runs when claiming one more.
CREATE TABLE budget_windows (
	tenant_id   text COLLATE "C" NOT NULL,
	win         text NOT NULL,
	period      text COLLATE "C" NOT NULL,
	used_tokens bigint NOT NULL,
	used_cost   double precision NOT NULL,
	touched     timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, win, period)
);

CREATE TABLE budget_holds (
	hold_id    text COLLATE "C" PRIMARY KEY,
	tenant_id  text COLLATE "C" NOT NULL,
	win        text NOT NULL,
	period     text COLLATE "C" NOT NULL,
	tokens     bigint NOT NULL,
	cost       double precision NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX budget_holds_window ON budget_holds (tenant_id, win, period);

CREATE TABLE rate_windows (
	tenant_id text COLLATE "C" NOT NULL,
	name      text NOT NULL,
	win       text COLLATE "C" NOT NULL,
	n         integer NOT NULL,
	created   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, name, win)
);

CREATE INDEX run_queue_tenant ON run_queue (tenant_id, lease_until);
