-- 0001: gateway API keys and the provider keys attached to them (BYOK).
-- Runs with search_path set to the store's schema; see migrate.go.

CREATE TABLE gateway_keys (
	id                text        PRIMARY KEY,
	hash              bytea       NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
	redacted          text        NOT NULL,
	endpoint          text        NOT NULL,
	account           text        NOT NULL DEFAULT '',
	description       text        NOT NULL DEFAULT '',
	metadata          text        NOT NULL DEFAULT '',
	created_at        timestamptz NOT NULL,
	updated_at        timestamptz NOT NULL,
	last_used         timestamptz NULL,
	expires_at        timestamptz NULL,
	allowed_providers text[]      NOT NULL DEFAULT '{}',
	allowed_models    text[]      NOT NULL DEFAULT '{}'
);

-- List pages, newest first, with and without an endpoint.
CREATE INDEX gateway_keys_endpoint_created ON gateway_keys (endpoint, created_at DESC, id DESC);
CREATE INDEX gateway_keys_created ON gateway_keys (created_at DESC, id DESC);

CREATE TABLE attached_keys (
	id         text        PRIMARY KEY,
	key_id     text        NOT NULL REFERENCES gateway_keys (id) ON DELETE CASCADE,
	provider   text        NOT NULL,
	redacted   text        NOT NULL,
	sealed     bytea       NOT NULL,
	kek_id     text        NOT NULL,
	created_at timestamptz NOT NULL
);

-- Lookup and Attached (newest first), the per-provider count of Attach.
CREATE INDEX attached_keys_key_created ON attached_keys (key_id, created_at DESC, id DESC);
-- Rewrap finds the entries sealed under a key-encryption key.
CREATE INDEX attached_keys_kek ON attached_keys (kek_id);
