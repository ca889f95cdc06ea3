package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/llmgate/gateway/credits"
)

// The Store is also a credits ledger: credits.Store and credits.Sweeper.
var _ credits.Store = (*Store)(nil)

// Hold states, credit_holds.state.
const (
	holdOpen     = "open"
	holdSettled  = "settled"
	holdReleased = "released"
	// holdExpired is a hold a Sweep released (expireHolds), which a
	// Settle may still settle and a Flush still spend for.
	holdExpired = "expired"
)

// sweepBatch is how many accounts one query of Sweep finds to sweep.
const sweepBatch = 100

// txIDPrefix starts a transaction's ID; its sequence number follows.
const txIDPrefix = "tx_"

// lotRow receives a lot's columns (lotColumns).
type lotRow struct{ l credits.Lot }

func (r *lotRow) dest() []any {
	return []any{&r.l.ID, &r.l.Account, &r.l.Amount, &r.l.Remaining, &r.l.PurchasedAt, &r.l.ExpiresAt, &r.l.Note}
}

// lot returns the scanned lot as of now: times in UTC, and no money left
// once it expired, whether a Sweep recorded that or not yet.
func (r *lotRow) lot(now time.Time) credits.Lot {
	l := r.l
	l.PurchasedAt, l.ExpiresAt = l.PurchasedAt.UTC(), l.ExpiresAt.UTC()
	if !l.ExpiresAt.After(now) {
		l.Remaining = 0
	}
	return l
}

// holdRow receives a hold's columns (holdColumns).
type holdRow struct {
	h     credits.Hold
	state string
	s     credits.Settlement // of a settled hold
	seq   int64              // of the last flush applied (lease.go)
}

func (r *holdRow) dest() []any {
	return []any{&r.h.ID, &r.h.Account, &r.h.Amount, &r.h.CreatedAt, &r.h.ExpiresAt, &r.state,
		&r.s.Spent, &r.s.Released, &r.s.Uncollected, &r.seq}
}

func (r *holdRow) hold() credits.Hold {
	h := r.h
	h.CreatedAt, h.ExpiresAt = h.CreatedAt.UTC(), h.ExpiresAt.UTC()
	return h
}

// lotShare is money of one lot: what is left of it (available lots) or
// what it gave to a hold (allocations), with the lot's expiry.
type lotShare struct {
	lot     string
	amount  credits.Amount
	expires time.Time
}

// scanShares reads rows of (lot, amount, expiry).
func scanShares(rows pgx.Rows) ([]lotShare, error) {
	var out []lotShare
	for rows.Next() {
		var s lotShare
		if err := rows.Scan(&s.lot, &s.amount, &s.expires); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// movement collects the writes of one transaction that moves an
// account's money, applied by queue: changes of lots' remainders,
// transactions, and changes of the account's totals. Its methods keep
// the accounting identity: every amount taken from one place is put in
// another.
type movement struct {
	account string
	at      time.Time
	lots    map[string]credits.Amount // remainder deltas, one per lot
	txs     []credits.Transaction     // in order
	// Deltas of the account's totals.
	purchased, held, spent, expired credits.Amount
}

func newMovement(account string, at time.Time) *movement {
	return &movement{account: account, at: at, lots: map[string]credits.Amount{}}
}

// take takes up to want from shares (available lots, earliest expiry
// first), lowering each share by what it took, and returns what it took
// from each (shares with nothing left give nothing).
func (m *movement) take(shares []lotShare, want credits.Amount) []lotShare {
	var taken []lotShare
	for i := range shares {
		s := &shares[i]
		if want <= 0 {
			break
		}
		n := min(s.amount, want)
		if n <= 0 {
			continue
		}
		s.amount -= n
		m.lots[s.lot] -= n
		want -= n
		taken = append(taken, lotShare{lot: s.lot, amount: n, expires: s.expires})
	}
	return taken
}

// giveBack returns n of a hold's money to the lot it came from; when the
// lot has expired, the money expires with it.
func (m *movement) giveBack(s lotShare, n credits.Amount) {
	switch {
	case n <= 0:
	case s.expires.After(m.at):
		m.lots[s.lot] += n
	default:
		m.expire(s.lot, n)
	}
}

// expire records n of the lot as expired.
func (m *movement) expire(lot string, n credits.Amount) {
	m.expired += n
	m.txs = append(m.txs, credits.Transaction{Kind: credits.TxExpire, Amount: n, LotID: lot})
}

// queue adds the movement's writes to b.
func (m *movement) queue(b *pgx.Batch, q *creditQueries) {
	if len(m.lots) > 0 {
		ids := make([]string, 0, len(m.lots))
		for id := range m.lots {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		deltas := make([]int64, len(ids))
		for i, id := range ids {
			deltas[i] = int64(m.lots[id])
		}
		b.Queue(q.adjustLots, ids, deltas)
	}
	if len(m.txs) > 0 {
		n := len(m.txs)
		kinds, amounts := make([]string, n), make([]int64, n)
		lotIDs, holdIDs, notes := make([]string, n), make([]string, n), make([]string, n)
		for i, t := range m.txs {
			kinds[i], amounts[i], lotIDs[i], holdIDs[i], notes[i] = string(t.Kind), int64(t.Amount), t.LotID, t.HoldID, t.Note
		}
		b.Queue(q.insertTransactions, m.account, m.at, kinds, amounts, lotIDs, holdIDs, notes)
	}
	if m.purchased != 0 || m.held != 0 || m.spent != 0 || m.expired != 0 {
		b.Queue(q.adjustAccount, m.account, int64(m.purchased), int64(m.held), int64(m.spent), int64(m.expired))
	}
}

// Purchase adds a lot of p.Amount to p.Account, bought now and expiring
// credits.LotLifetime later, with a purchase transaction; the lot's ID is
// the purchase's. Buying again with the same ID returns the lot as it is
// now when the account and amount match (the note is not compared), and
// is credits.ErrConflict when not. credits.ErrPurchaseBelowMinimum and
// credits.ErrInvalid as credits.ValidatePurchase says.
func (s *Store) Purchase(ctx context.Context, p credits.Purchase) (credits.Lot, error) {
	if err := credits.ValidatePurchase(p); err != nil {
		return credits.Lot{}, err
	}
	now := s.stamp()
	var out credits.Lot
	err := s.pipelined(ctx, "purchase", func(t *pipeTx) error {
		var (
			lr    lotRow
			found bool
		)
		b := t.batch()
		b.Queue(s.cq.createAccount, p.Account, now)
		b.Queue(s.cq.lockAccount, p.Account)
		b.Queue(s.cq.getLot, p.ID).QueryRow(func(row pgx.Row) error {
			return scanOptional(row, &found, lr.dest()...)
		})
		if err := t.send(b); err != nil {
			return err
		}
		if found {
			if lr.l.Account != p.Account || lr.l.Amount != p.Amount {
				return fmt.Errorf("postgres: purchase %q: %w: bought %s for account %q",
					p.ID, credits.ErrConflict, lr.l.Amount, lr.l.Account)
			}
			out = lr.lot(now)
			return t.commit(nil)
		}
		out = credits.Lot{ID: p.ID, Account: p.Account, Amount: p.Amount, Remaining: p.Amount,
			PurchasedAt: now, ExpiresAt: now.Add(credits.LotLifetime), Note: p.Note}
		m := newMovement(p.Account, now)
		m.purchased = p.Amount
		m.txs = append(m.txs, credits.Transaction{Kind: credits.TxPurchase, Amount: p.Amount, LotID: p.ID, Note: p.Note})
		b = t.batch()
		// Another account's purchase of the same ID in the meantime is
		// a unique violation: credits.ErrConflict.
		b.Queue(s.cq.insertLot, out.ID, out.Account, int64(out.Amount), out.PurchasedAt, out.ExpiresAt, out.Note)
		m.queue(b, &s.cq)
		return t.commit(b)
	})
	if err != nil {
		return credits.Lot{}, err
	}
	return out, nil
}

// scanOptional scans row into dest and sets found; no row is not an
// error.
func scanOptional(row pgx.Row, found *bool, dest ...any) error {
	err := row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	*found = err == nil
	return err
}

// Reserve holds min(r.Max, available) of r.Account's money when that is
// at least r.Min, taking it from the lots that have not expired, earliest
// expiry first; the hold expires r.TTL from now. It fails with a
// *credits.InsufficientError when the account cannot cover r.Min.
// Reserving an open hold's ID again returns it unchanged,
// credits.ErrConflict when it is another account's, credits.ErrHoldClosed
// once it ended. The account's row lock serializes Reserve with every
// other movement of its money, on every replica.
func (s *Store) Reserve(ctx context.Context, r credits.Reservation) (credits.Hold, error) {
	if err := credits.ValidateReservation(r); err != nil {
		return credits.Hold{}, err
	}
	now := s.stamp()
	var out credits.Hold
	s.routes.add(r.ID, r.Account)
	err := s.grouped(ctx, "reserve", target{account: r.Account}, func(t *pipeTx) error {
		var (
			known, found bool
			account      string
			hr           holdRow
			lots         []lotShare
		)
		b := t.batch()
		b.Queue(s.cq.lockAccount, r.Account).QueryRow(func(row pgx.Row) error {
			return scanOptional(row, &known, &account)
		})
		b.Queue(s.cq.getHold, r.ID).QueryRow(func(row pgx.Row) error {
			return scanOptional(row, &found, hr.dest()...)
		})
		b.Queue(s.cq.availableLots, r.Account, now).Query(func(rows pgx.Rows) (err error) {
			lots, err = scanShares(rows)
			return err
		})
		if err := t.send(b); err != nil {
			return err
		}
		if found {
			switch {
			case hr.h.Account != r.Account:
				return fmt.Errorf("postgres: reserve %q: %w: the hold is another account's", r.ID, credits.ErrConflict)
			case hr.state != holdOpen:
				return credits.ErrHoldClosed
			}
			out = hr.hold()
			return t.commit(nil)
		}
		if !known {
			return &credits.InsufficientError{Account: r.Account, Min: r.Min, Never: true}
		}
		var available credits.Amount
		for _, l := range lots {
			available += l.amount
		}
		amount := min(r.Max, available)
		if amount < r.Min {
			return &credits.InsufficientError{Account: r.Account, Available: available, Min: r.Min}
		}
		out = credits.Hold{ID: r.ID, Account: r.Account, Amount: amount, CreatedAt: now,
			ExpiresAt: dbTime(now.Add(r.TTL))}
		m := newMovement(r.Account, now)
		m.held = amount
		taken := m.take(lots, amount)
		lotIDs, amounts := make([]string, len(taken)), make([]int64, len(taken))
		for i, t := range taken {
			lotIDs[i], amounts[i] = t.lot, int64(t.amount)
		}
		b = t.batch()
		// The ID was free when the lock was taken; another account's
		// Reserve of the same ID in the meantime is a unique violation,
		// credits.ErrConflict.
		b.Queue(s.cq.insertHold, out.ID, out.Account, int64(out.Amount), out.CreatedAt, out.ExpiresAt)
		b.Queue(s.cq.insertAllocations, out.ID, lotIDs, amounts)
		m.queue(b, &s.cq)
		return t.commit(b)
	})
	if err != nil {
		return credits.Hold{}, err
	}
	return out, nil
}

// lockHold starts t: it locks the account of the hold holdID and reads
// the hold and its allocations (earliest expiry first), and what more
// queues after them, in one round trip. found is false when there is no
// such hold.
func (s *Store) lockHold(t *pipeTx, holdID string, more func(b *pgx.Batch)) (hr holdRow, allocs []lotShare, found bool, err error) {
	var account string
	b := t.batch()
	b.Queue(s.cq.lockHoldAccount, holdID).QueryRow(func(row pgx.Row) error {
		return scanOptional(row, new(bool), &account)
	})
	b.Queue(s.cq.getHold, holdID).QueryRow(func(row pgx.Row) error {
		return scanOptional(row, &found, hr.dest()...)
	})
	b.Queue(s.cq.holdAllocations, holdID).Query(func(rows pgx.Rows) (err error) {
		allocs, err = scanShares(rows)
		return err
	})
	if more != nil {
		more(b)
	}
	err = t.send(b)
	return hr, allocs, found, err
}

// Settle ends the hold: it spends actual from the hold's money, earliest
// expiry first, and gives the rest back to the lots it came from (what
// goes back to a lot that has expired expires with it). When actual is
// more than the hold, the excess is spent from the available money, at
// most all of it, and the rest is Uncollected. rec, when not nil, is
// stored in the same transaction with Paid set, Uncollected filled in and
// Account set to the hold's (the caller's value is not changed): a
// record naming another account is credits.ErrInvalid (field
// "record.account"), one whose ID was recorded with other content
// credits.ErrConflict, and nothing is charged.
//
// Settling a settled hold returns the first Settlement and changes
// nothing; a released hold is credits.ErrHoldClosed; a hold a Sweep
// released is settled by spending actual from the available money. An
// unknown hold is credits.ErrHoldNotFound. A malformed holdID is
// credits.ErrInvalid (field "id"); actual and rec are validated before
// anything changes.
func (s *Store) Settle(ctx context.Context, holdID string, actual credits.Amount, rec *credits.UsageRecord) (credits.Settlement, error) {
	if err := credits.ValidateID("id", holdID); err != nil {
		return credits.Settlement{}, err
	}
	if err := credits.ValidateActual(actual); err != nil {
		return credits.Settlement{}, err
	}
	var ur *usageRow
	if rec != nil {
		r := *rec
		r.Paid, r.Uncollected = true, 0 // what the store sets
		if err := credits.ValidateUsageRecord(&r); err != nil {
			return credits.Settlement{}, err
		}
		ur = newUsageRow(&r)
	}
	now := s.stamp()
	var out credits.Settlement
	tg := target{hold: holdID}
	if rec != nil {
		tg.route = rec.Account
	}
	err := s.grouped(ctx, "settle", tg, func(t *pipeTx) error {
		// The hash of a record kept under rec's ID, if any.
		var kept []byte
		hr, allocs, found, err := s.lockHold(t, holdID, func(b *pgx.Batch) {
			if ur != nil {
				b.Queue(s.cq.usageHash, ur.r.ID).QueryRow(func(row pgx.Row) error {
					return scanOptional(row, new(bool), &kept)
				})
			}
		})
		switch {
		case err != nil:
			return err
		case !found:
			return credits.ErrHoldNotFound
		case hr.state == holdSettled:
			out = hr.s
			return t.commit(nil)
		case hr.state == holdReleased:
			return credits.ErrHoldClosed
		}
		if ur != nil {
			switch ur.r.Account {
			case "":
				ur.r.Account = hr.h.Account
			case hr.h.Account:
			default:
				return credits.Invalid("record.account", "not the hold's account "+strconv.Quote(hr.h.Account))
			}
		}
		out = credits.Settlement{}
		m := newMovement(hr.h.Account, now)
		rest := actual
		if hr.state == holdOpen {
			// The hold's money, past its ExpiresAt or not while no Sweep
			// released it.
			var fromHold credits.Amount
			for _, a := range allocs {
				n := min(rest, a.amount)
				rest -= n
				fromHold += n
				m.giveBack(a, a.amount-n)
			}
			m.held = -hr.h.Amount
			out.Released = hr.h.Amount - fromHold
		}
		if rest > 0 {
			// Rare: a round trip more.
			var lots []lotShare
			b := t.batch()
			b.Queue(s.cq.availableLots, hr.h.Account, now).Query(func(rows pgx.Rows) (err error) {
				lots, err = scanShares(rows)
				return err
			})
			if err := t.send(b); err != nil {
				return err
			}
			for _, t := range m.take(lots, rest) {
				rest -= t.amount
			}
		}
		out.Uncollected = rest
		out.Spent = actual - rest
		if out.Spent > 0 {
			m.spent = out.Spent
			m.txs = append(m.txs, credits.Transaction{Kind: credits.TxSpend, Amount: out.Spent, HoldID: holdID})
		}
		b := t.batch()
		b.Queue(s.cq.endHold, holdID, holdSettled, now, int64(out.Spent), int64(out.Released), int64(out.Uncollected))
		if hr.state == holdOpen {
			b.Queue(s.cq.dropAllocations, []string{holdID})
		}
		m.queue(b, &s.cq)
		if ur != nil {
			ur.paid(out.Uncollected)
			switch {
			case kept == nil:
				// A record of that ID written since the read is a
				// unique violation: credits.ErrConflict, even with the
				// same content (Settles of two holds with one record
				// ID at once).
				b.Queue(s.cq.insertNewUsage, ur.args()...)
			case !slices.Equal(kept, ur.hash):
				return recordConflict(ur.r.ID)
			}
		}
		return t.commit(b)
	})
	if err != nil {
		return credits.Settlement{}, err
	}
	s.routes.forget(holdID)
	return out, nil
}

// Release ends the hold and gives all of it back to the lots it came from
// (what goes back to a lot that has expired expires with it). Releasing
// an ended hold does nothing and returns nil; an unknown one is
// credits.ErrHoldNotFound, a malformed ID credits.ErrInvalid (field "id").
func (s *Store) Release(ctx context.Context, holdID string) error {
	if err := credits.ValidateID("id", holdID); err != nil {
		return err
	}
	now := s.stamp()
	err := s.grouped(ctx, "release", target{hold: holdID}, func(t *pipeTx) error {
		hr, allocs, found, err := s.lockHold(t, holdID, nil)
		switch {
		case err != nil:
			return err
		case !found:
			return credits.ErrHoldNotFound
		case hr.state != holdOpen:
			return t.commit(nil)
		}
		m := newMovement(hr.h.Account, now)
		for _, a := range allocs {
			m.giveBack(a, a.amount)
		}
		m.held = -hr.h.Amount
		b := t.batch()
		b.Queue(s.cq.endHold, holdID, holdReleased, now, 0, int64(hr.h.Amount), 0)
		b.Queue(s.cq.dropAllocations, []string{holdID})
		m.queue(b, &s.cq)
		return t.commit(b)
	})
	if err == nil {
		s.routes.forget(holdID)
	}
	return err
}

// Sweep releases the holds past their ExpiresAt and records the
// remainders of the lots past their expiry as expired (TxExpire
// transactions), one account per database transaction under the
// account's lock: Sweeps running at once on many replicas, and the
// ledger's other calls, never record anything twice. The result counts
// what this Sweep did: Expired and LotsExpired include what released holds
// gave back to lots that had expired. On an error, the accounts swept
// before it stay swept.
func (s *Store) Sweep(ctx context.Context) (credits.SweepResult, error) {
	now := s.stamp()
	var res credits.SweepResult
	after := ""
	for {
		rows, err := s.pool.Query(ctx, s.cq.sweepCandidates, now, after, sweepBatch)
		if err != nil {
			return res, failCredits(ctx, "sweep", err)
		}
		accounts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return res, failCredits(ctx, "sweep", err)
		}
		for _, a := range accounts {
			r, err := s.sweepAccount(ctx, a, now)
			if err != nil {
				return res, err
			}
			res.HoldsReleased += r.HoldsReleased
			res.Released += r.Released
			res.LotsExpired += r.LotsExpired
			res.Expired += r.Expired
		}
		if len(accounts) < sweepBatch {
			return res, nil
		}
		after = accounts[len(accounts)-1]
	}
}

// sweepAccount sweeps one account, as of now.
func (s *Store) sweepAccount(ctx context.Context, account string, now time.Time) (credits.SweepResult, error) {
	var res credits.SweepResult
	err := s.pipelined(ctx, "sweep", func(t *pipeTx) error {
		res = credits.SweepResult{}
		type heldShare struct {
			hold   string
			amount credits.Amount
			share  *lotShare // nil for a hold without allocations
		}
		var (
			held []heldShare
			lots []lotShare
		)
		b := t.batch()
		b.Queue(s.cq.lockAccount, account)
		b.Queue(s.cq.sweepHolds, account, now).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var (
					h       heldShare
					lot     *string
					amount  *credits.Amount
					expires *time.Time
				)
				if err := rows.Scan(&h.hold, &h.amount, &lot, &amount, &expires); err != nil {
					return err
				}
				if lot != nil {
					h.share = &lotShare{lot: *lot, amount: *amount, expires: *expires}
				}
				held = append(held, h)
			}
			return rows.Err()
		})
		b.Queue(s.cq.expiredLots, account, now).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var l lotShare
				if err := rows.Scan(&l.lot, &l.amount); err != nil {
					return err
				}
				lots = append(lots, l)
			}
			return rows.Err()
		})
		if err := t.send(b); err != nil {
			return err
		}
		m := newMovement(account, now)
		var holds []string
		for _, h := range held { // by hold
			if len(holds) == 0 || holds[len(holds)-1] != h.hold {
				holds = append(holds, h.hold)
				m.held -= h.amount
				res.Released += h.amount
			}
			if h.share != nil {
				m.giveBack(*h.share, h.share.amount)
			}
		}
		res.HoldsReleased = len(holds)
		for _, l := range lots {
			m.lots[l.lot] -= l.amount
			m.expire(l.lot, l.amount)
		}
		// What expired: the remainders, and what the holds gave back to
		// lots that had expired.
		expired := map[string]bool{}
		for _, t := range m.txs {
			expired[t.LotID] = true
			res.Expired += t.Amount
		}
		res.LotsExpired = len(expired)
		b = t.batch()
		if len(holds) > 0 {
			b.Queue(s.cq.expireHolds, holds, now)
			b.Queue(s.cq.dropAllocations, holds)
		}
		m.queue(b, &s.cq)
		return t.commit(b)
	})
	return res, err
}

// balanceRow receives balanceColumns.
type balanceRow struct {
	b                  credits.Balance
	recorded, pastLots credits.Amount // expired money recorded, and past-expiry remainders not yet
	next               *time.Time
}

func (r *balanceRow) dest() []any {
	return []any{&r.b.Account, &r.b.Purchased, &r.b.Held, &r.b.Spent, &r.recorded, &r.b.Available, &r.pastLots, &r.next}
}

func (r *balanceRow) balance() credits.Balance {
	b := r.b
	b.Expired = r.recorded + r.pastLots
	if r.next != nil {
		b.NextExpiry = r.next.UTC()
	}
	b.Known = true
	return b
}

// Balance returns the account's balance now, read in one statement (one
// snapshot), so that Purchased = Available + Held + Spent + Expired holds
// exactly; lots past their expiry count as Expired whether a Sweep
// recorded it or not, open holds as Held whether past their ExpiresAt or
// not. An account that never bought credits has the zero Balance with
// Account set.
func (s *Store) Balance(ctx context.Context, account string) (credits.Balance, error) {
	if err := credits.ValidateID("account", account); err != nil {
		return credits.Balance{}, err
	}
	var br balanceRow
	if err := s.pool.QueryRow(ctx, s.cq.balance, s.stamp(), account).Scan(br.dest()...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return credits.Balance{Account: account}, nil
		}
		return credits.Balance{}, failCredits(ctx, "balance", err)
	}
	return br.balance(), nil
}

// Accounts lists the accounts that ever bought credits with their
// balances now, by account ID (bytewise).
func (s *Store) Accounts(ctx context.Context, o credits.ListOptions) (credits.AccountPage, error) {
	limit, err := credits.ListLimit(o)
	if err != nil {
		return credits.AccountPage{}, err
	}
	after := ""
	if o.Cursor != "" {
		if _, after, err = credits.DecodeCursor(o.Cursor); err != nil {
			return credits.AccountPage{}, err
		}
	}
	rows, err := s.pool.Query(ctx, s.cq.accounts, s.stamp(), after, limit+1)
	if err != nil {
		return credits.AccountPage{}, failCredits(ctx, "accounts", err)
	}
	defer rows.Close()
	var p credits.AccountPage
	for rows.Next() {
		var br balanceRow
		if err := rows.Scan(br.dest()...); err != nil {
			return credits.AccountPage{}, failCredits(ctx, "accounts", err)
		}
		p.Accounts = append(p.Accounts, br.balance())
	}
	if err := rows.Err(); err != nil {
		return credits.AccountPage{}, failCredits(ctx, "accounts", err)
	}
	if len(p.Accounts) > limit {
		p.Accounts = p.Accounts[:limit]
		p.NextCursor = credits.EncodeCursor(time.Unix(0, 0), p.Accounts[limit-1].Account) // by ID alone
	}
	return p, nil
}

// Lots lists the account's lots, newest first (by PurchasedAt, then ID),
// with the cursor of the next page ("" after the last). A lot past its
// expiry has Remaining 0.
func (s *Store) Lots(ctx context.Context, account string, o credits.ListOptions) ([]credits.Lot, string, error) {
	if err := credits.ValidateID("account", account); err != nil {
		return nil, "", err
	}
	limit, err := credits.ListLimit(o)
	if err != nil {
		return nil, "", err
	}
	args := []any{account, limit + 1}
	q := s.cq.lots[0]
	if o.Cursor != "" {
		at, id, err := credits.DecodeCursor(o.Cursor)
		if err != nil {
			return nil, "", err
		}
		args, q = append(args, at, id), s.cq.lots[1]
	}
	now := s.stamp()
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", failCredits(ctx, "lots", err)
	}
	defer rows.Close()
	var lots []credits.Lot
	for rows.Next() {
		var lr lotRow
		if err := rows.Scan(lr.dest()...); err != nil {
			return nil, "", failCredits(ctx, "lots", err)
		}
		lots = append(lots, lr.lot(now))
	}
	if err := rows.Err(); err != nil {
		return nil, "", failCredits(ctx, "lots", err)
	}
	next := ""
	if len(lots) > limit {
		lots = lots[:limit]
		next = credits.EncodeCursor(lots[limit-1].PurchasedAt, lots[limit-1].ID)
	}
	return lots, next, nil
}

// Transactions lists the account's transactions, newest first (by At,
// then ID). Their IDs are "tx_" and a 20-digit number that grows with each
// transaction written to the database, so ties of At list the later
// written first.
func (s *Store) Transactions(ctx context.Context, account string, o credits.ListOptions) (credits.TransactionPage, error) {
	if err := credits.ValidateID("account", account); err != nil {
		return credits.TransactionPage{}, err
	}
	limit, err := credits.ListLimit(o)
	if err != nil {
		return credits.TransactionPage{}, err
	}
	args := []any{account, limit + 1}
	q := s.cq.transactions[0]
	if o.Cursor != "" {
		at, id, err := credits.DecodeCursor(o.Cursor)
		if err != nil {
			return credits.TransactionPage{}, err
		}
		seq, ok := parseTxID(id)
		if !ok {
			return credits.TransactionPage{}, credits.Invalid("cursor", "not a cursor of this list")
		}
		args, q = append(args, at, seq), s.cq.transactions[1]
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return credits.TransactionPage{}, failCredits(ctx, "transactions", err)
	}
	defer rows.Close()
	var p credits.TransactionPage
	for rows.Next() {
		var (
			t    credits.Transaction
			seq  int64
			kind string
		)
		if err := rows.Scan(&seq, &kind, &t.Amount, &t.LotID, &t.HoldID, &t.Note, &t.At); err != nil {
			return credits.TransactionPage{}, failCredits(ctx, "transactions", err)
		}
		t.ID, t.Account, t.Kind, t.At = txID(seq), account, credits.TransactionKind(kind), t.At.UTC()
		p.Transactions = append(p.Transactions, t)
	}
	if err := rows.Err(); err != nil {
		return credits.TransactionPage{}, failCredits(ctx, "transactions", err)
	}
	if len(p.Transactions) > limit {
		p.Transactions = p.Transactions[:limit]
		last := p.Transactions[limit-1]
		p.NextCursor = credits.EncodeCursor(last.At, last.ID)
	}
	return p, nil
}

// txID is the ID of the transaction numbered seq: zero-padded, so that
// IDs sort as their numbers do.
func txID(seq int64) string { return fmt.Sprintf("%s%020d", txIDPrefix, seq) }

// parseTxID reverses txID.
func parseTxID(id string) (int64, bool) {
	n, ok := strings.CutPrefix(id, txIDPrefix)
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseInt(n, 10, 64)
	return seq, err == nil && seq > 0
}
