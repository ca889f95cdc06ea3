-- 0002: prepaid credits (package credits): accounts with running totals,
-- purchased lots, holds and the lots they took money from, transactions and
-- usage records. Money is INTEGER micro-USD; times are INTEGER unix
-- microseconds (UTC), 0 for none.

-- One row per account that ever bought credits. The running totals make
-- Balance one indexed read: held is the sum of the open holds, spent and
-- expired what the spend and expire transactions recorded. Available and
-- the expired-but-unrecorded remainders come from credit_lots. Small rows
-- keyed by ID are WITHOUT ROWID: one b-tree, not a table and its key's
-- index.
CREATE TABLE credit_accounts (
	id         TEXT    NOT NULL PRIMARY KEY,
	purchased  INTEGER NOT NULL DEFAULT 0 CHECK (purchased >= 0),
	held       INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
	spent      INTEGER NOT NULL DEFAULT 0 CHECK (spent >= 0),
	expired    INTEGER NOT NULL DEFAULT 0 CHECK (expired >= 0),
	created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- A lot is one purchase; its ID is the purchase ID. remaining is what is
-- neither held, spent nor recorded as expired: Available while expires_at
-- is in the future, expired (not yet recorded by a Sweep) after.
CREATE TABLE credit_lots (
	id           TEXT    NOT NULL PRIMARY KEY,
	account      TEXT    NOT NULL REFERENCES credit_accounts (id),
	amount       INTEGER NOT NULL CHECK (amount > 0),
	remaining    INTEGER NOT NULL CHECK (remaining >= 0),
	purchased_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	note         TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX credit_lots_account_purchased ON credit_lots (account, purchased_at DESC, id DESC);
-- Reserve, Settle's excess and Balance: an account's lots with money left, earliest expiry first.
CREATE INDEX credit_lots_account_live ON credit_lots (account, expires_at, id) WHERE remaining > 0;
-- Sweep: lots with money left, by expiry.
CREATE INDEX credit_lots_live ON credit_lots (expires_at, id) WHERE remaining > 0;

-- A hold is open until settled or released; a Sweep releases open holds
-- past expires_at ('swept'), which Settle may still settle. spent, released
-- and uncollected are the Settlement, kept so that a second Settle returns
-- the first one. WITHOUT ROWID: a Reserve writes one b-tree for the row
-- and its key, not two.
CREATE TABLE credit_holds (
	id          TEXT    NOT NULL PRIMARY KEY,
	account     TEXT    NOT NULL REFERENCES credit_accounts (id),
	amount      INTEGER NOT NULL CHECK (amount > 0),
	state       TEXT    NOT NULL CHECK (state IN ('open', 'settled', 'released', 'swept')),
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	ended_at    INTEGER NOT NULL DEFAULT 0,
	spent       INTEGER NOT NULL DEFAULT 0,
	released    INTEGER NOT NULL DEFAULT 0,
	uncollected INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

-- Sweep: open holds by expiry.
CREATE INDEX credit_holds_open ON credit_holds (expires_at, id) WHERE state = 'open';

-- What each hold took from each lot.
CREATE TABLE credit_hold_lots (
	hold_id TEXT    NOT NULL REFERENCES credit_holds (id),
	lot_id  TEXT    NOT NULL REFERENCES credit_lots (id),
	amount  INTEGER NOT NULL CHECK (amount > 0),
	PRIMARY KEY (hold_id, lot_id)
) STRICT, WITHOUT ROWID;

-- Movements of money in and out of accounts. The transaction ID is
-- derived from seq ("tx_" and seq in 16 digits).
CREATE TABLE credit_transactions (
	seq     INTEGER NOT NULL PRIMARY KEY,
	account TEXT    NOT NULL REFERENCES credit_accounts (id),
	kind    TEXT    NOT NULL CHECK (kind IN ('purchase', 'spend', 'expire')),
	amount  INTEGER NOT NULL CHECK (amount > 0),
	lot_id  TEXT    NOT NULL DEFAULT '',
	hold_id TEXT    NOT NULL DEFAULT '',
	note    TEXT    NOT NULL DEFAULT '',
	at      INTEGER NOT NULL
) STRICT;

CREATE INDEX credit_transactions_account_at ON credit_transactions (account, at DESC, seq DESC);

-- One row per metered request, paid with credits or not.
CREATE TABLE usage_records (
	id                      TEXT    NOT NULL PRIMARY KEY,
	request_id              TEXT    NOT NULL DEFAULT '',
	key_id                  TEXT    NOT NULL DEFAULT '',
	account                 TEXT    NOT NULL DEFAULT '',
	provider                TEXT    NOT NULL DEFAULT '',
	model                   TEXT    NOT NULL DEFAULT '',
	key_source              TEXT    NOT NULL DEFAULT '',
	reported_known          INTEGER NOT NULL DEFAULT 0,
	reported_input          INTEGER NOT NULL DEFAULT 0,
	reported_output         INTEGER NOT NULL DEFAULT 0,
	reported_cache_read     INTEGER NOT NULL DEFAULT 0,
	reported_cache_write    INTEGER NOT NULL DEFAULT 0,
	estimated_input         INTEGER NOT NULL DEFAULT 0,
	estimated_output        INTEGER NOT NULL DEFAULT 0,
	estimated_cache_read    INTEGER NOT NULL DEFAULT 0,
	estimated_cache_write   INTEGER NOT NULL DEFAULT 0,
	cost                    INTEGER NOT NULL DEFAULT 0,
	fee                     INTEGER NOT NULL DEFAULT 0,
	paid                    INTEGER NOT NULL DEFAULT 0,
	uncollected             INTEGER NOT NULL DEFAULT 0,
	status                  INTEGER NOT NULL DEFAULT 0,
	error                   TEXT    NOT NULL DEFAULT '',
	stream                  INTEGER NOT NULL DEFAULT 0,
	start_at                INTEGER NOT NULL,
	end_at                  INTEGER NOT NULL DEFAULT 0,
	attempts                TEXT,   -- JSON array of credits.AttemptRecord; NULL when none
	attempts_dropped        INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX usage_records_start ON usage_records (start_at DESC, id DESC);
CREATE INDEX usage_records_account_start ON usage_records (account, start_at DESC, id DESC);
CREATE INDEX usage_records_key_start ON usage_records (key_id, start_at DESC, id DESC);
