-- 0003: leases (credits.Leaser): a hold that a replica spends from in many
-- steps, writing back each step with Flush.
-- Runs with search_path set to the store's schema; see migrate.go.

-- The Seq of the last flush applied to the hold (0: none): a flush whose
-- Seq is not above it is a retry, and changes nothing.
ALTER TABLE credit_holds ADD COLUMN flush_seq bigint NOT NULL DEFAULT 0;

-- A lease may be spent down to nothing and stay open (to grow again), so
-- an open hold may hold 0. Every existing row satisfies the new check (it
-- satisfied amount > 0): NOT VALID spares the scan of the whole table
-- under its lock, and the check still applies to every row written.
ALTER TABLE credit_holds DROP CONSTRAINT credit_holds_amount_check;
ALTER TABLE credit_holds ADD CONSTRAINT credit_holds_amount_check CHECK (amount >= 0) NOT VALID;
