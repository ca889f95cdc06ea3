-- 0002: the prepaid credits ledger (package credits) and usage records.
-- Runs with search_path set to the store's schema; see migrate.go.
--
-- Money is bigint micro-USD. IDs compare as bytes (COLLATE "C"), the order
-- the other stores use. Every transaction that moves an account's money
-- first locks its credit_accounts row (SELECT ... FOR UPDATE), so replicas
-- sharing the database serialize on the account; lots, holds and
-- allocations change only under that lock.

-- One row per account that ever bought credits, with the running totals
-- of the accounting identity that are not kept in lots: Balance reads
-- Available and the unrecorded expiries from credit_lots.
CREATE TABLE credit_accounts (
	id         text COLLATE "C" PRIMARY KEY,
	created_at timestamptz NOT NULL,
	purchased  bigint      NOT NULL DEFAULT 0 CHECK (purchased >= 0),
	held       bigint      NOT NULL DEFAULT 0 CHECK (held >= 0),
	spent      bigint      NOT NULL DEFAULT 0 CHECK (spent >= 0),
	-- Expired money recorded by transactions (TxExpire).
	expired    bigint      NOT NULL DEFAULT 0 CHECK (expired >= 0)
);

-- One row per purchase; the lot's ID is the purchase's.
CREATE TABLE credit_lots (
	id           text COLLATE "C" PRIMARY KEY,
	account      text COLLATE "C" NOT NULL REFERENCES credit_accounts (id),
	amount       bigint      NOT NULL CHECK (amount > 0),
	remaining    bigint      NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
	purchased_at timestamptz NOT NULL,
	expires_at   timestamptz NOT NULL,
	note         text        NOT NULL DEFAULT ''
);

-- Lots, newest first.
CREATE INDEX credit_lots_account_purchased ON credit_lots (account, purchased_at DESC, id DESC);
-- Reserve and Balance: an account's lots with money left, earliest expiry
-- first.
CREATE INDEX credit_lots_account_left ON credit_lots (account, expires_at, id) WHERE remaining > 0;
-- Sweep: lots past their expiry with money left.
CREATE INDEX credit_lots_expiring ON credit_lots (expires_at) WHERE remaining > 0;

CREATE TABLE credit_holds (
	id          text COLLATE "C" PRIMARY KEY,
	account     text COLLATE "C" NOT NULL REFERENCES credit_accounts (id),
	amount      bigint      NOT NULL CHECK (amount > 0),
	created_at  timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL,
	-- open, then settled, released (by Release) or expired (released by
	-- a Sweep; a later Settle makes it settled).
	state       text        NOT NULL DEFAULT 'open'
		CHECK (state IN ('open', 'settled', 'released', 'expired')),
	ended_at    timestamptz NULL,
	-- The Settlement a settled hold returns again.
	spent       bigint      NOT NULL DEFAULT 0,
	released    bigint      NOT NULL DEFAULT 0,
	uncollected bigint      NOT NULL DEFAULT 0
);

-- Sweep: open holds past their expiry.
CREATE INDEX credit_holds_open_expiring ON credit_holds (expires_at) WHERE state = 'open';

-- Which lot gave how much to an open hold: settling spends from them and
-- gives the rest back to the same lots. Deleted when the hold ends.
CREATE TABLE credit_hold_allocations (
	hold_id text COLLATE "C" NOT NULL REFERENCES credit_holds (id) ON DELETE CASCADE,
	lot_id  text COLLATE "C" NOT NULL REFERENCES credit_lots (id),
	amount  bigint NOT NULL CHECK (amount > 0),
	PRIMARY KEY (hold_id, lot_id)
);

-- Movements of money in or out of an account. seq orders the rows of
-- one instant; the transaction's ID is derived from it.
CREATE TABLE credit_transactions (
	seq     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account text COLLATE "C" NOT NULL REFERENCES credit_accounts (id),
	kind    text        NOT NULL CHECK (kind IN ('purchase', 'spend', 'expire')),
	amount  bigint      NOT NULL CHECK (amount > 0),
	lot_id  text COLLATE "C" NOT NULL DEFAULT '',
	hold_id text COLLATE "C" NOT NULL DEFAULT '',
	note    text        NOT NULL DEFAULT '',
	at      timestamptz NOT NULL
);

-- Transactions, newest first.
CREATE INDEX credit_transactions_account_at ON credit_transactions (account, at DESC, seq DESC);

-- What each request used and cost, whether credits paid or not. Token
-- counts are columns so that summaries add them up; attempts are JSONB.
CREATE TABLE usage_records (
	id                   text COLLATE "C" PRIMARY KEY,
	request_id           text COLLATE "C" NOT NULL,
	key_id               text COLLATE "C" NOT NULL,
	account              text COLLATE "C" NOT NULL,
	provider             text COLLATE "C" NOT NULL,
	model                text COLLATE "C" NOT NULL,
	key_source           text        NOT NULL,
	reported_known       boolean     NOT NULL,
	reported_input       bigint      NOT NULL,
	reported_output      bigint      NOT NULL,
	reported_cache_read  bigint      NOT NULL,
	reported_cache_write bigint      NOT NULL,
	estimated_input      bigint      NOT NULL,
	estimated_output     bigint      NOT NULL,
	estimated_cache_read  bigint     NOT NULL,
	estimated_cache_write bigint     NOT NULL,
	cost                 bigint      NOT NULL,
	fee                  bigint      NOT NULL,
	paid                 boolean     NOT NULL,
	uncollected          bigint      NOT NULL,
	status               integer     NOT NULL,
	error                text        NOT NULL,
	stream               boolean     NOT NULL,
	start_at             timestamptz NOT NULL,
	end_at               timestamptz NULL,
	attempts             jsonb       NOT NULL,
	attempts_dropped     integer     NOT NULL,
	-- SHA-256 of the record as stored: writing the same ID again is a
	-- no-op when it matches, a conflict when not.
	content_hash         bytea       NOT NULL
);

-- Usage pages, newest first: all records, one account's, one key's.
CREATE INDEX usage_records_start ON usage_records (start_at DESC, id DESC);
CREATE INDEX usage_records_account_start ON usage_records (account, start_at DESC, id DESC);
CREATE INDEX usage_records_key_start ON usage_records (key_id, start_at DESC, id DESC);
