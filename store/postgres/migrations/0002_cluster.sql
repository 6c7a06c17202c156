-- Nodes sharing the database: the live nodes (heartbeats) for operators,
-- and an index for claiming runs whose lease expired.
CREATE TABLE cluster_nodes (
	node_id   text COLLATE "C" PRIMARY KEY,
	doc       bytea NOT NULL,
	last_seen timestamptz NOT NULL
);

CREATE INDEX run_queue_lease ON run_queue (lease_owner, lease_until);
