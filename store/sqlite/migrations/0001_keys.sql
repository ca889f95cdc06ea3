-- 0001: gateway API keys and the provider keys attached to them (BYOK).
-- Times are INTEGER unix microseconds (UTC); 0 means none.
CREATE TABLE gateway_keys (
	id                TEXT    NOT NULL PRIMARY KEY,
	hash              BLOB    NOT NULL UNIQUE,
	redacted          TEXT    NOT NULL,
	endpoint          TEXT    NOT NULL,
	account           TEXT    NOT NULL DEFAULT '',
	description       TEXT    NOT NULL DEFAULT '',
	metadata          TEXT    NOT NULL DEFAULT '',
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL,
	last_used         INTEGER NOT NULL DEFAULT 0,
	expires_at        INTEGER NOT NULL DEFAULT 0,
	allowed_providers TEXT,   -- JSON array of strings; NULL when unrestricted
	allowed_models    TEXT    -- JSON array of strings; NULL when unrestricted
) STRICT;

CREATE INDEX gateway_keys_endpoint_created ON gateway_keys (endpoint, created_at DESC, id DESC);
CREATE INDEX gateway_keys_created ON gateway_keys (created_at DESC, id DESC);

CREATE TABLE attached_keys (
	id         TEXT    NOT NULL PRIMARY KEY,
	key_id     TEXT    NOT NULL REFERENCES gateway_keys (id) ON DELETE CASCADE,
	provider   TEXT    NOT NULL,
	redacted   TEXT    NOT NULL,
	sealed     BLOB    NOT NULL,
	kek_id     TEXT    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX attached_keys_key_created ON attached_keys (key_id, created_at DESC, id DESC);
CREATE INDEX attached_keys_kek ON attached_keys (kek_id);
