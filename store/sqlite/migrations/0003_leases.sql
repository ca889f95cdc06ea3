-- 0003: leases (credits.Leaser). A lease is an open hold that Flush spends
-- from in steps: its amount may reach 0 while it stays open, and flush_seq
-- is the last LeaseFlush.Seq applied (0: none), so that a retried flush is
-- recognized.
--
-- SQLite cannot change a CHECK constraint, so credit_holds is rebuilt. The
-- migrations run in one transaction with foreign_keys on, where PRAGMA
-- foreign_keys cannot be turned off, and dropping a table that another
-- references deletes its rows first (a foreign key violation). So the
-- table that references it, credit_hold_lots, is rebuilt too, referencing
-- the new table, and the old ones are dropped child first, when nothing
-- references them any more. Renaming the new table then renames the
-- reference to it in the new credit_hold_lots (legacy_alter_table is off).

CREATE TABLE credit_holds_v3 (
	id          TEXT    NOT NULL PRIMARY KEY,
	account     TEXT    NOT NULL REFERENCES credit_accounts (id),
	amount      INTEGER NOT NULL CHECK (amount >= 0),
	state       TEXT    NOT NULL CHECK (state IN ('open', 'settled', 'released', 'swept')),
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	ended_at    INTEGER NOT NULL DEFAULT 0,
	spent       INTEGER NOT NULL DEFAULT 0,
	released    INTEGER NOT NULL DEFAULT 0,
	uncollected INTEGER NOT NULL DEFAULT 0,
	flush_seq   INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

INSERT INTO credit_holds_v3 (id, account, amount, state, created_at, expires_at, ended_at, spent, released, uncollected)
SELECT id, account, amount, state, created_at, expires_at, ended_at, spent, released, uncollected FROM credit_holds;

-- What each hold took from each lot (a portion that Flush spends to 0 is
-- deleted).
CREATE TABLE credit_hold_lots_v3 (
	hold_id TEXT    NOT NULL REFERENCES credit_holds_v3 (id),
	lot_id  TEXT    NOT NULL REFERENCES credit_lots (id),
	amount  INTEGER NOT NULL CHECK (amount > 0),
	PRIMARY KEY (hold_id, lot_id)
) STRICT, WITHOUT ROWID;

INSERT INTO credit_hold_lots_v3 (hold_id, lot_id, amount)
SELECT hold_id, lot_id, amount FROM credit_hold_lots;

DROP TABLE credit_hold_lots;
DROP TABLE credit_holds; -- and its index credit_holds_open

ALTER TABLE credit_holds_v3 RENAME TO credit_holds;
ALTER TABLE credit_hold_lots_v3 RENAME TO credit_hold_lots;

-- Sweep: open holds by expiry.
CREATE INDEX credit_holds_open ON credit_holds (expires_at, id) WHERE state = 'open';
