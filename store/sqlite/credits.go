package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/llmgate/gateway/credits"
)

var _ credits.Store = (*Store)(nil)

// The states of a credit_holds row. A swept hold was released by a Sweep
// and may still be settled (from the available money).
const (
	holdOpen     = "open"
	holdSettled  = "settled"
	holdReleased = "released"
	holdSwept    = "swept"
)

// sweepBatch bounds the holds or lots one Sweep transaction ends, so that a
// large backlog does not keep the writer from requests for long.
const sweepBatch = 256

// ledgerError turns a database error of op into the credits contract: a
// UNIQUE or PRIMARY KEY violation is credits.ErrConflict, anything else
// credits.ErrUnavailable (closed database, I/O, lock timeout,
// cancellation). The driver's error stays in the chain.
func ledgerError(op string, err error) error {
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return fmt.Errorf("sqlite: %s: %w: %w", op, credits.ErrConflict, err)
	}
	return fmt.Errorf("sqlite: %s: %w: %w", op, credits.ErrUnavailable, err)
}

// isLedgerError reports whether err is one of the credits contract's
// answers, which pass through unwrapped.
func isLedgerError(err error) bool {
	var (
		ve *credits.ValidationError
		ie *credits.InsufficientError
	)
	return errors.As(err, &ve) || errors.As(err, &ie) ||
		errors.Is(err, credits.ErrConflict) || errors.Is(err, credits.ErrHoldNotFound) ||
		errors.Is(err, credits.ErrHoldClosed) || errors.Is(err, credits.ErrPurchaseBelowMinimum)
}

// write runs fn in a transaction of its own on the writer (Purchase and
// Sweep; the hot writes go through group). The transaction begins
// IMMEDIATE (the writer's DSN sets _txlock=immediate), so it holds SQLite's
// write lock from its first statement: what fn reads cannot change before
// it writes, in this process or another. t.now is the store clock's time,
// taken once the lock is held, in unix microseconds. Errors of fn that are
// not the contract's are reported as credits.ErrUnavailable.
func (s *Store) write(ctx context.Context, op string, fn func(t *wtx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return ledgerError(op, err)
	}
	if err = fn(&wtx{ctx: ctx, tx: tx, s: s, now: s.ledgerNow()}); err != nil {
		_ = tx.Rollback()
		if isLedgerError(err) {
			return err
		}
		return ledgerError(op, err)
	}
	if err = tx.Commit(); err != nil {
		return ledgerError(op, err)
	}
	return nil
}

// ledgerNow returns the store clock's time in unix microseconds for the
// credits, never earlier than a time it returned before: a clock stepping
// back (NTP) neither reorders the transactions this process writes nor
// brings expired lots back to life.
func (s *Store) ledgerNow() int64 {
	now := s.stamp().UnixMicro()
	for {
		last := s.last.Load()
		if now <= last {
			return last
		}
		if s.last.CompareAndSwap(last, now) {
			return now
		}
	}
}

// The statements of Reserve, Settle, Release and Record, prepared on the
// writer at Open (see wtx).
const (
	addTxSQL = `INSERT INTO credit_transactions (account, kind, amount, lot_id, hold_id, note, at)
VALUES (?, ?, ?, ?, ?, ?, ?)`
	getHoldSQL  = `SELECT ` + holdColumns + ` FROM credit_holds WHERE id = ?`
	liveLotsSQL = `SELECT id, remaining, expires_at FROM credit_lots
WHERE account = ? AND remaining > 0 AND expires_at > ? ORDER BY expires_at, id`
	takeLotSQL    = `UPDATE credit_lots SET remaining = remaining - ? WHERE id = ?`
	giveLotSQL    = `UPDATE credit_lots SET remaining = remaining + ? WHERE id = ?`
	insertHoldSQL = `INSERT INTO credit_holds (id, account, amount, state, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?)`
	insertHoldLotSQL = `INSERT INTO credit_hold_lots (hold_id, lot_id, amount) VALUES (?, ?, ?)`
	addHeldSQL       = `UPDATE credit_accounts SET held = held + ? WHERE id = ?`
	settleHoldSQL    = `UPDATE credit_holds SET state = ?, ended_at = ?, spent = ?, released = ?, uncollected = ?
WHERE id = ?`
	settleAccountSQL = `UPDATE credit_accounts SET held = held - ?, spent = spent + ?, expired = expired + ?
WHERE id = ?`
	endHoldSQL     = `UPDATE credit_holds SET state = ?, ended_at = ? WHERE id = ?`
	endAccountSQL  = `UPDATE credit_accounts SET held = held - ?, expired = expired + ? WHERE id = ?`
	insertUsageSQL = `INSERT INTO usage_records (` + usageColumns + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING`
	holdPortionsSQL = `SELECT a.lot_id, a.amount, l.expires_at
FROM credit_hold_lots a JOIN credit_lots l ON l.id = a.lot_id
WHERE a.hold_id = ? ORDER BY l.expires_at, l.id`
)

// preparedSQL lists the statements prepared at Open.
func preparedSQL() []string {
	qs := []string{addTxSQL, getHoldSQL, liveLotsSQL, takeLotSQL, giveLotSQL, insertHoldSQL, insertHoldLotSQL,
		addHeldSQL, settleHoldSQL, settleAccountSQL, endHoldSQL, endAccountSQL, insertUsageSQL, holdPortionsSQL,
		savepointSQL, releaseSQL,
		flushHoldSQL, flushAccountSQL, setPortionSQL, dropPortionSQL, growPortionSQL}
	for _, n := range usageChunks[:len(usageChunks)-1] {
		qs = append(qs, insertUsageRowsSQL(n))
	}
	return qs
}

// wtx is one transaction on the writer. Its statements whose SQL is one
// of preparedSQL run as the statements prepared at Open, the others are
// prepared for the call.
type wtx struct {
	ctx context.Context
	tx  *sql.Tx
	s   *Store
	now int64 // the store clock's time, in unix microseconds
}

func (t *wtx) exec(query string, args ...any) (sql.Result, error) {
	if st := t.s.prepared[query]; st != nil {
		return t.tx.StmtContext(t.ctx, st).ExecContext(t.ctx, args...)
	}
	return t.tx.ExecContext(t.ctx, query, args...)
}

func (t *wtx) query(query string, args ...any) (*sql.Rows, error) {
	if st := t.s.prepared[query]; st != nil {
		return t.tx.StmtContext(t.ctx, st).QueryContext(t.ctx, args...)
	}
	return t.tx.QueryContext(t.ctx, query, args...)
}

func (t *wtx) queryRow(query string, args ...any) *sql.Row {
	if st := t.s.prepared[query]; st != nil {
		return t.tx.StmtContext(t.ctx, st).QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, query, args...)
}

// txID is the ID of the transaction with that seq: "tx_" and 20 digits, so
// that IDs order as their seqs do.
func txID(seq int64) string { return fmt.Sprintf("tx_%020d", seq) }

func parseTxID(id string) (int64, bool) {
	digits, ok := strings.CutPrefix(id, "tx_")
	if !ok || len(digits) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseInt(digits, 10, 64)
	return seq, err == nil && seq > 0
}

// addTransaction records a movement of money.
func addTransaction(t *wtx, account string, kind credits.TransactionKind, amount credits.Amount, lotID, holdID, note string) error {
	_, err := t.exec(addTxSQL, account, string(kind), int64(amount), lotID, holdID, note, t.now)
	return err
}

const lotColumns = `id, account, amount, remaining, purchased_at, expires_at, note`

// lotRow is a credit_lots row as scanned.
type lotRow struct {
	id, account, note                     string
	amount, remaining, purchased, expires int64
}

func (r *lotRow) dest() []any {
	return []any{&r.id, &r.account, &r.amount, &r.remaining, &r.purchased, &r.expires, &r.note}
}

// lot returns the row as a Lot at now: a lot past its expiry has nothing
// left, whether or not a Sweep recorded it.
func (r *lotRow) lot(now int64) credits.Lot {
	l := credits.Lot{
		ID: r.id, Account: r.account, Amount: credits.Amount(r.amount), Remaining: credits.Amount(r.remaining),
		PurchasedAt: fromMicros(r.purchased), ExpiresAt: fromMicros(r.expires), Note: r.note,
	}
	if r.expires <= now {
		l.Remaining = 0
	}
	return l
}

// Purchase adds a lot of p.Amount to p.Account, expiring credits.LotLifetime
// from now, and records a purchase transaction. A purchase ID already used
// returns its lot (as it is now) when the account and amount match, and is
// credits.ErrConflict otherwise. See credits.ValidatePurchase for the
// errors of a bad argument.
func (s *Store) Purchase(ctx context.Context, p credits.Purchase) (credits.Lot, error) {
	if err := credits.ValidatePurchase(p); err != nil {
		return credits.Lot{}, err
	}
	var lot credits.Lot
	err := s.write(ctx, "purchase "+p.ID, func(t *wtx) error {
		var r lotRow
		err := t.queryRow(`SELECT `+lotColumns+` FROM credit_lots WHERE id = ?`, p.ID).Scan(r.dest()...)
		switch {
		case err == nil:
			if r.account != p.Account || credits.Amount(r.amount) != p.Amount {
				return fmt.Errorf("sqlite: purchase %s: %w: the ID bought %s for account %q", p.ID, credits.ErrConflict,
					credits.Amount(r.amount), r.account)
			}
			lot = r.lot(t.now)
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		r = lotRow{id: p.ID, account: p.Account, note: p.Note, amount: int64(p.Amount), remaining: int64(p.Amount),
			purchased: t.now, expires: t.now + credits.LotLifetime.Microseconds()}
		if _, err := t.exec(`INSERT INTO credit_accounts (id, purchased, created_at) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET purchased = purchased + excluded.purchased`, p.Account, r.amount, t.now); err != nil {
			return err
		}
		if _, err := t.exec(`INSERT INTO credit_lots (`+lotColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.dest()...); err != nil {
			return err
		}
		if err := addTransaction(t, p.Account, credits.TxPurchase, p.Amount, p.ID, "", p.Note); err != nil {
			return err
		}
		lot = r.lot(t.now)
		return nil
	})
	return lot, err
}

// holdRow is a credit_holds row as scanned.
type holdRow struct {
	id, account, state                   string
	amount, created, expires             int64
	spent, released, uncollected, ending int64
	seq                                  int64 // the last LeaseFlush.Seq applied
}

const holdColumns = `id, account, state, amount, created_at, expires_at, spent, released, uncollected, ended_at, flush_seq`

func (r *holdRow) dest() []any {
	return []any{&r.id, &r.account, &r.state, &r.amount, &r.created, &r.expires,
		&r.spent, &r.released, &r.uncollected, &r.ending, &r.seq}
}

func (r *holdRow) hold() credits.Hold {
	return credits.Hold{ID: r.id, Account: r.account, Amount: credits.Amount(r.amount),
		CreatedAt: fromMicros(r.created), ExpiresAt: fromMicros(r.expires)}
}

func (r *holdRow) settlement() credits.Settlement {
	return credits.Settlement{Spent: credits.Amount(r.spent), Released: credits.Amount(r.released),
		Uncollected: credits.Amount(r.uncollected)}
}

// getHold reads the hold with that ID, or credits.ErrHoldNotFound.
func getHold(t *wtx, id string) (holdRow, error) {
	var h holdRow
	err := t.queryRow(getHoldSQL, id).Scan(h.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return holdRow{}, fmt.Errorf("sqlite: hold %q: %w", id, credits.ErrHoldNotFound)
	}
	return h, err
}

// portion is money of one lot: what a hold took from it, or what is left
// in it.
type portion struct {
	lot     string
	amount  int64
	expires int64
}

// scanPortions reads (lot, amount, expires_at) rows until their amounts
// add up to upTo (all of them when upTo < 0).
func scanPortions(t *wtx, upTo int64, query string, args ...any) ([]portion, error) {
	rows, err := t.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		ps    []portion
		total int64
	)
	for (upTo < 0 || total < upTo) && rows.Next() {
		var p portion
		if err := rows.Scan(&p.lot, &p.amount, &p.expires); err != nil {
			return nil, err
		}
		ps = append(ps, p)
		total += p.amount
	}
	return ps, rows.Err()
}

// liveLots returns account's lots with money left that have not expired at
// t.now, earliest expiry first (the available money, in the order it is
// taken), reading only as many as add up to upTo: all of them when the
// account has less.
func liveLots(t *wtx, account string, upTo int64) ([]portion, error) {
	return scanPortions(t, upTo, liveLotsSQL, account, t.now)
}

// takeFrom takes up to want from ps in order, lowering the lots'
// remainders, and returns what each gave (in order, only non-zero) and the
// total taken.
func takeFrom(t *wtx, ps []portion, want int64) ([]portion, int64, error) {
	var (
		taken []portion
		total int64
	)
	for _, p := range ps {
		if total == want {
			break
		}
		take := min(p.amount, want-total)
		if _, err := t.exec(takeLotSQL, take, p.lot); err != nil {
			return nil, 0, err
		}
		taken = append(taken, portion{lot: p.lot, amount: take, expires: p.expires})
		total += take
	}
	return taken, total, nil
}

// giveBack returns amount to the lot, or, when the lot has expired,
// records it as expired with the lot (an expire transaction). It returns
// what it expired, for the caller to add to the account's total.
func giveBack(t *wtx, account string, p portion) (int64, error) {
	if p.amount == 0 {
		return 0, nil
	}
	if p.expires > t.now {
		_, err := t.exec(giveLotSQL, p.amount, p.lot)
		return 0, err
	}
	return p.amount, addTransaction(t, account, credits.TxExpire, credits.Amount(p.amount), p.lot, "", "")
}

// holdPortions returns what the hold took from each lot, earliest expiry
// first (then by lot ID), the order it is spent in.
func holdPortions(t *wtx, holdID string) ([]portion, error) {
	return scanPortions(t, -1, holdPortionsSQL, holdID)
}

// Reserve holds min(r.Max, available) of r.Account's money when that is at
// least r.Min, taking it from the account's unexpired lots earliest expiry
// first, else fails with a *credits.InsufficientError. Reserving an open
// hold's ID again returns the hold unchanged (credits.ErrConflict for
// another account); an ended hold's ID is credits.ErrHoldClosed. The check
// and the hold are one step of an IMMEDIATE transaction (a group commit's,
// see group), so no interleaving of reservations, in this process or
// another on the same file, holds more than the account has.
func (s *Store) Reserve(ctx context.Context, r credits.Reservation) (credits.Hold, error) {
	if err := credits.ValidateReservation(r); err != nil {
		return credits.Hold{}, err
	}
	var hold credits.Hold
	err := s.group(ctx, "reserve "+r.ID, func(t *wtx) error {
		h, err := getHold(t, r.ID)
		switch {
		case err == nil:
			if h.state != holdOpen {
				return fmt.Errorf("sqlite: hold %q: %w", r.ID, credits.ErrHoldClosed)
			}
			if h.account != r.Account {
				return fmt.Errorf("sqlite: hold %q: %w: it holds money of account %q", r.ID, credits.ErrConflict, h.account)
			}
			hold = h.hold()
			return nil
		case !errors.Is(err, credits.ErrHoldNotFound):
			return err
		}
		lots, err := liveLots(t, r.Account, int64(r.Max))
		if err != nil {
			return err
		}
		var avail int64 // all the account has when less than r.Max
		for _, l := range lots {
			avail += l.amount
		}
		want := min(int64(r.Max), avail)
		if want < int64(r.Min) {
			ie := &credits.InsufficientError{Account: r.Account, Available: credits.Amount(avail), Min: r.Min}
			if len(lots) == 0 {
				var known bool
				if err := t.queryRow(`SELECT EXISTS (SELECT 1 FROM credit_accounts WHERE id = ?)`,
					r.Account).Scan(&known); err != nil {
					return err
				}
				ie.Never = !known
			}
			return ie
		}
		h = holdRow{id: r.ID, account: r.Account, state: holdOpen, amount: want, created: t.now,
			expires: t.now + r.TTL.Microseconds()}
		if _, err := t.exec(insertHoldSQL, h.id, h.account, h.amount, h.state, h.created, h.expires); err != nil {
			return err
		}
		taken, _, err := takeFrom(t, lots, want)
		if err != nil {
			return err
		}
		for _, p := range taken {
			if _, err := t.exec(insertHoldLotSQL, r.ID, p.lot, p.amount); err != nil {
				return err
			}
		}
		if _, err := t.exec(addHeldSQL, want, r.Account); err != nil {
			return err
		}
		hold = h.hold()
		return nil
	})
	return hold, err
}

// Settle ends the hold: it spends actual from what the hold took, earliest
// expiry first, and gives the rest back to the lots it came from (money
// given back to a lot that has expired is recorded as expired). When actual
// exceeds the hold, the excess is spent from the account's available
// money, at most all of it; what could not be paid is the Settlement's
// Uncollected. rec, when not nil, is stored (a copy: *rec is not changed)
// with Paid set, Uncollected filled in and Account set to the hold's, in
// the same transaction as the charge; a rec naming another account is
// credits.ErrInvalid.
//
// Settling a settled hold returns the first Settlement and changes
// nothing (rec is ignored); a released hold is credits.ErrHoldClosed; a hold released by a
// Sweep spends actual from the available money; an unknown one is
// credits.ErrHoldNotFound. A bad actual or rec is credits.ErrInvalid,
// checked before anything changes; a rec whose ID was kept with other
// content is credits.ErrConflict, and the hold stays open.
func (s *Store) Settle(ctx context.Context, holdID string, actual credits.Amount, rec *credits.UsageRecord) (credits.Settlement, error) {
	if err := credits.ValidateID("id", holdID); err != nil {
		return credits.Settlement{}, err
	}
	if err := credits.ValidateActual(actual); err != nil {
		return credits.Settlement{}, err
	}
	var ur *credits.UsageRecord
	if rec != nil {
		if err := credits.ValidateUsageRecord(rec); err != nil {
			return credits.Settlement{}, err
		}
		ur = normalizeRecord(rec)
		ur.Paid = true
	}
	var st credits.Settlement
	err := s.group(ctx, "settle "+holdID, func(t *wtx) error {
		h, err := getHold(t, holdID)
		if err != nil {
			return err
		}
		if ur != nil && (h.state == holdOpen || h.state == holdSwept) {
			if ur.Account == "" {
				ur.Account = h.account
			} else if ur.Account != h.account {
				return credits.Invalid("record.account", "not the hold's account "+strconv.Quote(h.account))
			}
		}
		var (
			fromHold int64 // what the hold pays of actual
			held     int64 // what leaves the account's held total
			expired  int64
		)
		switch h.state {
		case holdSettled:
			st = h.settlement()
			return nil
		case holdReleased:
			return fmt.Errorf("sqlite: hold %q: %w", holdID, credits.ErrHoldClosed)
		case holdOpen:
			ps, err := holdPortions(t, holdID)
			if err != nil {
				return err
			}
			left := int64(actual)
			for _, p := range ps {
				spend := min(p.amount, left)
				left -= spend
				p.amount -= spend
				x, err := giveBack(t, h.account, p)
				if err != nil {
					return err
				}
				expired += x
			}
			fromHold = min(int64(actual), h.amount)
			held = h.amount
			st.Released = credits.Amount(h.amount - fromHold)
		}
		var took int64
		if excess := int64(actual) - fromHold; excess > 0 {
			lots, err := liveLots(t, h.account, excess)
			if err != nil {
				return err
			}
			if _, took, err = takeFrom(t, lots, excess); err != nil {
				return err
			}
		}
		st.Spent = credits.Amount(fromHold + took)
		st.Uncollected = actual - st.Spent
		if _, err := t.exec(settleHoldSQL, holdSettled, t.now, int64(st.Spent), int64(st.Released), int64(st.Uncollected), holdID); err != nil {
			return err
		}
		if _, err := t.exec(settleAccountSQL, held, int64(st.Spent), expired, h.account); err != nil {
			return err
		}
		if st.Spent > 0 {
			if err := addTransaction(t, h.account, credits.TxSpend, st.Spent, "", holdID, ""); err != nil {
				return err
			}
		}
		if ur != nil {
			ur.Uncollected = st.Uncollected
			return keepRecord(t, ur)
		}
		return nil
	})
	if err != nil {
		return credits.Settlement{}, err
	}
	return st, nil
}

// endHold gives all of an open hold back to its lots (recording what goes
// back to expired lots as expired) and marks it state (released or swept).
func endHold(t *wtx, h holdRow, state string) (expired []portion, err error) {
	ps, err := holdPortions(t, h.id)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, p := range ps {
		x, err := giveBack(t, h.account, p)
		if err != nil {
			return nil, err
		}
		if x > 0 {
			expired = append(expired, p)
			total += x
		}
	}
	if _, err := t.exec(endHoldSQL, state, t.now, h.id); err != nil {
		return nil, err
	}
	_, err = t.exec(endAccountSQL, h.amount, total, h.account)
	return expired, err
}

// Release ends the hold and gives all of it back to the lots it came from
// (money given back to a lot that has expired is recorded as expired).
// Releasing an ended hold does nothing and returns nil; an unknown one is
// credits.ErrHoldNotFound.
func (s *Store) Release(ctx context.Context, holdID string) error {
	if err := credits.ValidateID("id", holdID); err != nil {
		return err
	}
	return s.group(ctx, "release "+holdID, func(t *wtx) error {
		h, err := getHold(t, holdID)
		if err != nil || h.state != holdOpen {
			return err
		}
		_, err = endHold(t, h, holdReleased)
		return err
	})
}

// Sweep releases the open holds past their ExpiresAt (a later Settle of
// one spends from the available money) and records the remainders of lots
// past their expiry as expired, in transactions of at most sweepBatch
// holds or lots. Money of a released hold that goes back to an expired lot
// counts in both Released and Expired, and its lot in LotsExpired (each lot
// once). It is safe to run concurrently with every other call and with
// other Sweeps, in this process or another: each batch re-reads what is
// left to do under the write lock. On an error, the result counts the
// batches that were committed.
func (s *Store) Sweep(ctx context.Context) (credits.SweepResult, error) {
	var (
		res     credits.SweepResult
		expired = make(map[string]bool) // lots with money recorded as expired
	)
	// batch is what one transaction did, added to res once it commits.
	type batch struct {
		n                 int
		released, expired credits.Amount
		lots              []string
	}
	add := func(b batch) {
		res.Released += b.released
		res.Expired += b.expired
		for _, id := range b.lots {
			expired[id] = true
		}
		res.LotsExpired = len(expired)
	}
	for {
		var b batch
		err := s.write(ctx, "sweep", func(t *wtx) error {
			b = batch{}
			rows, err := t.query(`SELECT `+holdColumns+` FROM credit_holds
WHERE state = 'open' AND expires_at <= ? ORDER BY expires_at, id LIMIT ?`, t.now, sweepBatch)
			if err != nil {
				return err
			}
			var hs []holdRow
			for rows.Next() {
				var h holdRow
				if err := rows.Scan(h.dest()...); err != nil {
					rows.Close()
					return err
				}
				hs = append(hs, h)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
			for _, h := range hs {
				ps, err := endHold(t, h, holdSwept)
				if err != nil {
					return err
				}
				b.released += credits.Amount(h.amount)
				for _, p := range ps {
					b.expired += credits.Amount(p.amount)
					b.lots = append(b.lots, p.lot)
				}
			}
			b.n = len(hs)
			return nil
		})
		if err != nil {
			return res, err
		}
		res.HoldsReleased += b.n
		add(b)
		if b.n < sweepBatch {
			break
		}
	}
	for {
		var b batch
		err := s.write(ctx, "sweep", func(t *wtx) error {
			b = batch{}
			rows, err := t.query(`SELECT id, account, remaining FROM credit_lots
WHERE remaining > 0 AND expires_at <= ? ORDER BY expires_at, id LIMIT ?`, t.now, sweepBatch)
			if err != nil {
				return err
			}
			type lotLeft struct {
				id, account string
				remaining   int64
			}
			var ls []lotLeft
			for rows.Next() {
				var l lotLeft
				if err := rows.Scan(&l.id, &l.account, &l.remaining); err != nil {
					rows.Close()
					return err
				}
				ls = append(ls, l)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
			for _, l := range ls {
				if _, err := t.exec(`UPDATE credit_lots SET remaining = 0 WHERE id = ?`, l.id); err != nil {
					return err
				}
				if _, err := t.exec(`UPDATE credit_accounts SET expired = expired + ? WHERE id = ?`,
					l.remaining, l.account); err != nil {
					return err
				}
				if err := addTransaction(t, l.account, credits.TxExpire, credits.Amount(l.remaining), l.id, "", ""); err != nil {
					return err
				}
				b.expired += credits.Amount(l.remaining)
				b.lots = append(b.lots, l.id)
			}
			b.n = len(ls)
			return nil
		})
		if err != nil {
			return res, err
		}
		add(b)
		if b.n < sweepBatch {
			break
		}
	}
	return res, nil
}

// balanceSQL computes balances from the running totals of credit_accounts
// and the lots with money left: ?1 is now; the caller appends the WHERE
// clause on a.id, GROUP BY a.id and the rest. One statement reads one
// snapshot, so the identity holds in what it returns.
const balanceSQL = `SELECT a.id, a.purchased, a.held, a.spent, a.expired,
	COALESCE(SUM(CASE WHEN l.expires_at > ?1 THEN l.remaining END), 0),
	COALESCE(SUM(CASE WHEN l.expires_at <= ?1 THEN l.remaining END), 0),
	COALESCE(MIN(CASE WHEN l.expires_at > ?1 THEN l.expires_at END), 0)
FROM credit_accounts a LEFT JOIN credit_lots l ON l.account = a.id AND l.remaining > 0
`

// scanBalance scans a row of balanceSQL.
func scanBalance(sc scanner) (credits.Balance, error) {
	var (
		b                                  credits.Balance
		purchased, held, spent, expired    int64
		available, unrecorded, nextExpires int64
	)
	if err := sc.Scan(&b.Account, &purchased, &held, &spent, &expired, &available, &unrecorded, &nextExpires); err != nil {
		return credits.Balance{}, err
	}
	b.Purchased = credits.Amount(purchased)
	b.Held = credits.Amount(held)
	b.Spent = credits.Amount(spent)
	b.Expired = credits.Amount(expired + unrecorded)
	b.Available = credits.Amount(available)
	b.NextExpiry = fromMicros(nextExpires)
	b.Known = true
	return b, nil
}

// Balance returns the account's balance now, read in one snapshot on the
// reader pool. Lots past their expiry that no Sweep has recorded count as
// expired, and holds past their ExpiresAt that no Sweep has released as
// held. An account that never bought credits has the zero Balance with
// its Account set.
func (s *Store) Balance(ctx context.Context, account string) (credits.Balance, error) {
	if err := credits.ValidateID("account", account); err != nil {
		return credits.Balance{}, err
	}
	b, err := scanBalance(s.r.QueryRowContext(ctx, balanceSQL+`WHERE a.id = ?2 GROUP BY a.id`,
		s.ledgerNow(), account))
	if errors.Is(err, sql.ErrNoRows) {
		return credits.Balance{Account: account}, nil
	}
	if err != nil {
		return credits.Balance{}, ledgerError("balance "+account, err)
	}
	return b, nil
}

// listPosition decodes o's cursor (nil when there is none) and returns the
// page size.
func listPosition(o credits.ListOptions) (limit int, at time.Time, id string, hasCursor bool, err error) {
	if limit, err = credits.ListLimit(o); err != nil {
		return 0, time.Time{}, "", false, err
	}
	if o.Cursor == "" {
		return limit, time.Time{}, "", false, nil
	}
	at, id, err = credits.DecodeCursor(o.Cursor)
	if err != nil {
		return 0, time.Time{}, "", false, err
	}
	return limit, at, id, true, nil
}

// Lots lists the account's lots, newest first (by purchase time, then ID),
// and the cursor of the next page ("" after the last). Remaining is 0 for
// a lot past its expiry. A bad limit or cursor is credits.ErrInvalid.
func (s *Store) Lots(ctx context.Context, account string, o credits.ListOptions) ([]credits.Lot, string, error) {
	if err := credits.ValidateID("account", account); err != nil {
		return nil, "", err
	}
	limit, at, id, hasCursor, err := listPosition(o)
	if err != nil {
		return nil, "", err
	}
	where, args := []string{"account = ?"}, []any{account}
	if hasCursor {
		where = append(where, "(purchased_at, id) < (?, ?)")
		args = append(args, at.UnixMicro(), id)
	}
	q, args := pageQuery(lotColumns, "credit_lots", where, "purchased_at DESC, id DESC", args, limit)
	now := s.ledgerNow()
	lots, err := queryList(ctx, s.r, func(err error) error { return ledgerError("lots", err) },
		func(sc scanner) (credits.Lot, error) {
			var r lotRow
			if err := sc.Scan(r.dest()...); err != nil {
				return credits.Lot{}, err
			}
			return r.lot(now), nil
		}, q, args...)
	if err != nil {
		return nil, "", err
	}
	var (
		last *credits.Lot
		next string
	)
	if lots, last = cutPage(lots, limit); last != nil {
		next = credits.EncodeCursor(last.PurchasedAt, last.ID)
	}
	return lots, next, nil
}

// Transactions lists the account's transactions, newest first (by time,
// then ID). A bad limit or cursor is credits.ErrInvalid.
func (s *Store) Transactions(ctx context.Context, account string, o credits.ListOptions) (credits.TransactionPage, error) {
	if err := credits.ValidateID("account", account); err != nil {
		return credits.TransactionPage{}, err
	}
	limit, at, id, hasCursor, err := listPosition(o)
	if err != nil {
		return credits.TransactionPage{}, err
	}
	where, args := []string{"account = ?"}, []any{account}
	if hasCursor {
		seq, ok := parseTxID(id)
		if !ok {
			return credits.TransactionPage{}, credits.Invalid("cursor", "not a cursor of this list")
		}
		where = append(where, "(at, seq) < (?, ?)")
		args = append(args, at.UnixMicro(), seq)
	}
	q, args := pageQuery(transactionColumns, "credit_transactions", where, "at DESC, seq DESC", args, limit)
	txs, err := queryList(ctx, s.r, func(err error) error { return ledgerError("transactions", err) }, scanTransaction, q, args...)
	if err != nil {
		return credits.TransactionPage{}, err
	}
	var (
		p    credits.TransactionPage
		last *credits.Transaction
	)
	if p.Transactions, last = cutPage(txs, limit); last != nil {
		p.NextCursor = credits.EncodeCursor(last.At, last.ID)
	}
	return p, nil
}

const transactionColumns = `seq, account, kind, amount, lot_id, hold_id, note, at`

// scanTransaction scans a row of transactionColumns.
func scanTransaction(sc scanner) (credits.Transaction, error) {
	var (
		t            credits.Transaction
		seq, amt, ts int64
		kind         string
	)
	if err := sc.Scan(&seq, &t.Account, &kind, &amt, &t.LotID, &t.HoldID, &t.Note, &ts); err != nil {
		return credits.Transaction{}, err
	}
	t.ID, t.Kind, t.Amount, t.At = txID(seq), credits.TransactionKind(kind), credits.Amount(amt), fromMicros(ts)
	return t, nil
}

// Accounts lists the accounts that ever bought credits with their
// balances, by account ID, read in one snapshot. A bad limit or cursor is
// credits.ErrInvalid.
func (s *Store) Accounts(ctx context.Context, o credits.ListOptions) (credits.AccountPage, error) {
	limit, _, after, _, err := listPosition(o)
	if err != nil {
		return credits.AccountPage{}, err
	}
	bs, err := queryList(ctx, s.r, func(err error) error { return ledgerError("accounts", err) }, scanBalance,
		balanceSQL+`WHERE a.id > ?2 GROUP BY a.id ORDER BY a.id LIMIT ?3`, s.ledgerNow(), after, limit+1)
	if err != nil {
		return credits.AccountPage{}, err
	}
	var (
		p    credits.AccountPage
		last *credits.Balance
	)
	if p.Accounts, last = cutPage(bs, limit); last != nil {
		p.NextCursor = credits.EncodeCursor(time.Unix(0, 0), last.Account)
	}
	return p, nil
}

// normalizeRecord returns a copy of rec as the store keeps it: times in
// UTC to the microsecond, attempts copied (nil when none).
func normalizeRecord(rec *credits.UsageRecord) *credits.UsageRecord {
	r := *rec
	r.Start = utcMicro(r.Start)
	r.End = utcMicro(r.End)
	if len(r.Attempts) == 0 {
		r.Attempts = nil
	} else {
		r.Attempts = make([]credits.AttemptRecord, len(rec.Attempts))
		for i, a := range rec.Attempts {
			a.Start = utcMicro(a.Start)
			r.Attempts[i] = a
		}
	}
	return &r
}

const usageColumns = `id, request_id, key_id, account, provider, model, key_source,
	reported_known, reported_input, reported_output, reported_cache_read, reported_cache_write,
	estimated_input, estimated_output, estimated_cache_read, estimated_cache_write,
	cost, fee, paid, uncollected, status, error, stream, start_at, end_at, attempts, attempts_dropped`

// usageArgs returns the values of usageColumns for r.
func usageArgs(r *credits.UsageRecord) ([]any, error) {
	w := usageWriter{args: make([]any, 0, usageFields)}
	if err := w.add(r, r.Account, r.Paid); err != nil {
		return nil, err
	}
	return w.args, nil
}

// scanUsage scans a row of usageColumns.
func scanUsage(sc scanner) (credits.UsageRecord, error) {
	var (
		r                      credits.UsageRecord
		source                 string
		cost, fee, uncollected int64
		start, end             int64
		attempts               []byte
	)
	if err := sc.Scan(&r.ID, &r.RequestID, &r.KeyID, &r.Account, &r.Provider, &r.Model, &source,
		&r.ReportedKnown, &r.Reported.Input, &r.Reported.Output, &r.Reported.CacheRead, &r.Reported.CacheWrite,
		&r.Estimated.Input, &r.Estimated.Output, &r.Estimated.CacheRead, &r.Estimated.CacheWrite,
		&cost, &fee, &r.Paid, &uncollected, &r.Status, &r.Error, &r.Stream,
		&start, &end, &attempts, &r.AttemptsDropped); err != nil {
		return credits.UsageRecord{}, err
	}
	r.KeySource = credits.KeySource(source)
	r.Cost, r.Fee, r.Uncollected = credits.Amount(cost), credits.Amount(fee), credits.Amount(uncollected)
	r.Start, r.End = fromMicros(start), fromMicros(end)
	if len(attempts) > 0 {
		if err := json.Unmarshal(attempts, &r.Attempts); err != nil {
			return credits.UsageRecord{}, fmt.Errorf("sqlite: usage record %s: attempts: %w", r.ID, err)
		}
		for i := range r.Attempts {
			r.Attempts[i].Start = utcMicro(r.Attempts[i].Start)
		}
	}
	return r, nil
}

// sameRecord reports whether two normalized records have the same content.
func sameRecord(a, b *credits.UsageRecord) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// keepRecord stores the normalized record r: an ID already kept with the
// same content is a no-op, with other content credits.ErrConflict.
func keepRecord(t *wtx, r *credits.UsageRecord) error {
	conflict, err := insertRecord(t, r)
	if err == nil && conflict {
		err = fmt.Errorf("sqlite: usage record %q: %w: kept before with other content", r.ID, credits.ErrConflict)
	}
	return err
}

// insertRecord stores the normalized record r unless its ID is kept
// already, and reports a conflict when it was kept with other content. The
// kept record is read back only when the insert did nothing.
func insertRecord(t *wtx, r *credits.UsageRecord) (conflict bool, err error) {
	args, err := usageArgs(r)
	if err != nil {
		return false, err
	}
	res, err := t.exec(insertUsageSQL, args...)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return false, err
	}
	same, err := sameAsKept(t, r)
	return !same, err
}

// Record keeps the usage record of a request that credits did not pay
// for: a copy with Paid false and Uncollected 0, times in UTC to the
// microsecond. Recording the same ID with the same content again is a
// no-op, with other content credits.ErrConflict; a bad record is
// credits.ErrInvalid.
func (s *Store) Record(ctx context.Context, rec *credits.UsageRecord) error {
	if err := credits.ValidateUsageRecord(rec); err != nil {
		return err
	}
	r := normalizeRecord(rec)
	r.Paid, r.Uncollected = false, 0
	return s.group(ctx, "record "+r.ID, func(t *wtx) error { return keepRecord(t, r) })
}

// usageWhere returns the WHERE conditions and arguments of the filters.
func usageWhere(account, keyID string, from, to time.Time) ([]string, []any) {
	var (
		where []string
		args  []any
	)
	if account != "" {
		where = append(where, "account = ?")
		args = append(args, account)
	}
	if keyID != "" {
		where = append(where, "key_id = ?")
		args = append(args, keyID)
	}
	if !from.IsZero() {
		where = append(where, "start_at >= ?")
		args = append(args, from.UnixMicro())
	}
	if !to.IsZero() {
		where = append(where, "start_at < ?")
		args = append(args, to.UnixMicro())
	}
	return where, args
}

// Usage lists the usage records q selects, newest first (by Start, then
// ID). From is inclusive and To exclusive, to the microsecond. A bad limit
// or cursor is credits.ErrInvalid.
func (s *Store) Usage(ctx context.Context, q credits.UsageQuery) (credits.UsagePage, error) {
	limit, at, id, hasCursor, err := listPosition(q.ListOptions)
	if err != nil {
		return credits.UsagePage{}, err
	}
	where, args := usageWhere(q.Account, q.KeyID, q.From, q.To)
	if hasCursor {
		where = append(where, "(start_at, id) < (?, ?)")
		args = append(args, at.UnixMicro(), id)
	}
	query, args := pageQuery(usageColumns, "usage_records", where, "start_at DESC, id DESC", args, limit)
	recs, err := queryList(ctx, s.r, func(err error) error { return ledgerError("usage", err) }, scanUsage, query, args...)
	if err != nil {
		return credits.UsagePage{}, err
	}
	var (
		p    credits.UsagePage
		last *credits.UsageRecord
	)
	if p.Records, last = cutPage(recs, limit); last != nil {
		p.NextCursor = credits.EncodeCursor(last.Start, last.ID)
	}
	return p, nil
}

// groupColumn returns the SQL expression of a summary dimension. The day
// is the UTC date of start_at (floored to the second, also before 1970).
func groupColumn(g credits.Group) string {
	switch g {
	case credits.GroupDay:
		return `strftime('%Y-%m-%d', (start_at - (((start_at % 1000000) + 1000000) % 1000000)) / 1000000, 'unixepoch')`
	case credits.GroupProvider:
		return `provider`
	case credits.GroupModel:
		return `model`
	case credits.GroupKey:
		return `key_id`
	default:
		return `account`
	}
}

// billed sums a token count: the reported one when the provider reported,
// else the estimate.
func billed(col string) string {
	return `SUM(CASE WHEN reported_known THEN reported_` + col + ` ELSE estimated_` + col + ` END)`
}

// Summary totals the usage records q selects by q.GroupBy, ordered by the
// group values in the order of q.GroupBy (day ascending). Billed tokens
// are the reported ones when the provider reported any, else the
// estimates. There are no rows when no record matches. Unknown or repeated
// dimensions are credits.ErrInvalid.
func (s *Store) Summary(ctx context.Context, q credits.SummaryQuery) ([]credits.SummaryRow, error) {
	if err := credits.ValidateGroupBy(q.GroupBy); err != nil {
		return nil, err
	}
	exprs := make([]string, len(q.GroupBy))
	for i, g := range q.GroupBy {
		exprs[i] = groupColumn(g)
	}
	cols := append(slices.Clone(exprs), `COUNT(*)`,
		billed("input"), billed("output"), billed("cache_read"), billed("cache_write"),
		`SUM(cost)`, `SUM(fee)`, `SUM(uncollected)`)
	query := `SELECT ` + strings.Join(cols, ", ") + ` FROM usage_records`
	where, args := usageWhere(q.Account, q.KeyID, q.From, q.To)
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	if len(exprs) > 0 {
		query += ` GROUP BY ` + strings.Join(exprs, ", ") + ` ORDER BY ` + strings.Join(exprs, ", ")
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, ledgerError("summary", err)
	}
	defer rows.Close()
	var out []credits.SummaryRow
	for rows.Next() {
		var (
			row                    credits.SummaryRow
			dims                   = make([]string, len(exprs))
			in, outT, cr, cw       sql.NullInt64
			cost, fee, uncollected sql.NullInt64
		)
		dest := make([]any, 0, len(cols))
		for i := range dims {
			dest = append(dest, &dims[i])
		}
		dest = append(dest, &row.Requests, &in, &outT, &cr, &cw, &cost, &fee, &uncollected)
		if err := rows.Scan(dest...); err != nil {
			return nil, ledgerError("summary", err)
		}
		if row.Requests == 0 {
			continue
		}
		for i, g := range q.GroupBy {
			switch g {
			case credits.GroupDay:
				row.Day = dims[i]
			case credits.GroupProvider:
				row.Provider = dims[i]
			case credits.GroupModel:
				row.Model = dims[i]
			case credits.GroupKey:
				row.KeyID = dims[i]
			case credits.GroupAccount:
				row.Account = dims[i]
			}
		}
		row.Tokens = credits.Tokens{Input: in.Int64, Output: outT.Int64, CacheRead: cr.Int64, CacheWrite: cw.Int64}
		row.Cost, row.Fee, row.Uncollected = credits.Amount(cost.Int64), credits.Amount(fee.Int64), credits.Amount(uncollected.Int64)
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, ledgerError("summary", err)
	}
	return out, nil
}
