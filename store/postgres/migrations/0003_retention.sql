-- Retention (issue 16). audit_anchors: where a tenant's audit chain starts
-- once the sweep removed its oldest records (a core.AuditAnchor as JSON).
-- model_replays.created_at: the sweep finds old stored answers by index;
-- rows from before this step count as created now.
CREATE TABLE audit_anchors (
	tenant_id text COLLATE "C" PRIMARY KEY,
	doc       bytea NOT NULL
);

ALTER TABLE model_replays ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX model_replays_created ON model_replays (tenant_id, created_at);
