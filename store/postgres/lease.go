package postgres

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/llmgate/gateway/credits"
)

// The Store lets replicas spend a hold in many steps: credits.Leaser.
var _ credits.Leaser = (*Store)(nil)

// Flush writes back what a replica spent from the lease f.HoldID, in one
// database transaction: it spends f.Spent from the hold's lots, earliest
// expiry first, and what exceeds the hold from the account's available
// money, at most all of it (the rest is Uncollected), as one spend
// transaction; it keeps f.Records with Paid set and Account set to the
// hold's (the caller's records are not changed); then, for an open hold,
// it takes up to f.Grow more of the available money into the hold,
// earliest expiry first, and moves its ExpiresAt to now + f.TTL when
// f.TTL is positive. The hold stays open, with 0 when it was spent down
// to nothing. A record whose ID was kept with the same content is a
// no-op; with other content it is not written and its ID is in
// Conflicts. A record naming another account is credits.ErrInvalid
// (field "record.account") and nothing changes.
//
// f.Seq makes Flush idempotent: a flush whose Seq is not above the last
// one applied to the hold changes nothing and returns the hold as it is
// (Replayed), its records not looked at. A hold a Sweep released spends
// from the available money only, grows no more and holds nothing
// (Swept); its Seq is kept all the same. A settled or released hold is
// credits.ErrHoldClosed, an unknown one credits.ErrHoldNotFound; f is
// validated by credits.ValidateFlush before anything is looked at.
//
// Flush runs in the lane of the hold's account (group.go), as Settle and
// Release do, and locks the account's row before it reads or changes the
// hold, its allocations and lots, as every movement of money does, so that
// it cannot deadlock with them on those rows. When the lane is idle — the
// usual case, since a lease replaces its account's per-request holds on
// this replica — it runs at once in a transaction of its own, two round
// trips; when the lane is busy it shares the COMMIT of the lane's next
// batch instead of holding a second connection of the pool to wait for the
// account's row lock that batch holds. Its records are written by one
// statement, whatever their number.
func (s *Store) Flush(ctx context.Context, f credits.LeaseFlush) (credits.FlushResult, error) {
	if err := credits.ValidateFlush(f); err != nil {
		return credits.FlushResult{}, err
	}
	recs := newFlushRecords(f.Records, s.routes.get(f.HoldID))
	now := s.stamp()
	var (
		out credits.FlushResult
		// IDs of records kept before with other content, with that
		// content's hash.
		kept map[string][]byte
	)
	err := s.grouped(ctx, "flush", target{hold: f.HoldID, route: recs.account}, func(t *pipeTx) error {
		out, kept = credits.FlushResult{}, nil
		var lots []lotShare // the account's available lots
		hr, allocs, found, err := s.lockHold(t, f.HoldID, func(b *pgx.Batch) {
			if f.Spent > 0 || f.Grow > 0 {
				b.Queue(s.cq.holdLots, f.HoldID, now).Query(func(rows pgx.Rows) (err error) {
					lots, err = scanShares(rows)
					return err
				})
			}
		})
		switch {
		case err != nil:
			return err
		case !found:
			return fmt.Errorf("postgres: flush: %w: %q", credits.ErrHoldNotFound, f.HoldID)
		case hr.state == holdSettled || hr.state == holdReleased:
			return fmt.Errorf("postgres: flush: %w: hold %q", credits.ErrHoldClosed, f.HoldID)
		}
		open := hr.state == holdOpen
		out.Hold, out.Swept, out.Replayed = hr.hold(), !open, f.Seq <= hr.seq
		if !open {
			out.Hold.Amount = 0
		}
		if out.Replayed {
			return t.commit(nil)
		}
		if err := recs.forAccount(hr.h.Account); err != nil {
			return err
		}
		if recs.argsErr != nil {
			return recs.argsErr
		}

		m := newMovement(hr.h.Account, now)
		amount, expires := hr.h.Amount, out.Hold.ExpiresAt // the hold's, as it will be
		// The hold's allocations as they will be, by lot, and the lots
		// whose allocation changes.
		held := make(map[string]credits.Amount, len(allocs))
		var touched []string
		var fromHold credits.Amount
		if open {
			// The hold first, earliest expiry first.
			fromHold = min(f.Spent, amount)
			left := fromHold
			for _, a := range allocs {
				n := min(left, a.amount)
				held[a.lot] = a.amount - n
				if n > 0 {
					left -= n
					touched = append(touched, a.lot)
				}
			}
			amount -= fromHold
			m.held -= fromHold
		}
		// Then the available money.
		excess := f.Spent - fromHold
		var fromAvailable credits.Amount
		for _, t := range m.take(lots, excess) {
			fromAvailable += t.amount
		}
		out.Spent, out.Uncollected = fromHold+fromAvailable, excess-fromAvailable
		if out.Spent > 0 {
			m.spent = out.Spent
			m.txs = append(m.txs, credits.Transaction{Kind: credits.TxSpend, Amount: out.Spent, HoldID: f.HoldID})
		}
		if open {
			if f.Grow > 0 {
				for _, t := range m.take(lots, f.Grow) {
					held[t.lot] += t.amount
					touched = append(touched, t.lot)
					out.Grown += t.amount
				}
				amount += out.Grown
				m.held += out.Grown
			}
			if f.TTL > 0 {
				expires = dbTime(now.Add(f.TTL))
			}
			out.Hold.Amount, out.Hold.ExpiresAt = amount, expires
		}

		b := t.batch()
		b.Queue(s.cq.flushHold, f.HoldID, int64(amount), expires, f.Seq)
		slices.Sort(touched)
		var drop, put []string
		var putAmounts []int64
		for _, lot := range slices.Compact(touched) {
			if n := held[lot]; n > 0 {
				put, putAmounts = append(put, lot), append(putAmounts, int64(n))
			} else {
				drop = append(drop, lot)
			}
		}
		if len(drop) > 0 {
			b.Queue(s.cq.shrinkAllocations, f.HoldID, drop)
		}
		if len(put) > 0 {
			b.Queue(s.cq.putAllocations, f.HoldID, put, putAmounts)
		}
		m.queue(b, &s.cq)
		if recs.args != nil {
			found := map[string][]byte{}
			kept = found
			// Read when the statement has run: at the COMMIT, or in a
			// lane's batch when the batch goes on.
			b.Queue(s.cq.flushUsage, recs.args...).Query(func(rows pgx.Rows) error {
				for rows.Next() {
					var (
						id   string
						hash []byte
					)
					if err := rows.Scan(&id, &hash); err != nil {
						return err
					}
					found[id] = hash
				}
				return rows.Err()
			})
		}
		return t.commit(b)
	})
	if err != nil {
		return credits.FlushResult{}, err
	}
	if !out.Replayed {
		out.Conflicts = recs.conflicts(kept)
	}
	if !out.Swept {
		// Keep the lease in its account's lane, should the route
		// have been forgotten to make room.
		s.routes.add(f.HoldID, out.Hold.Account)
	}
	return out, nil
}

// flushRecords are a flush's usage records as stored: copies with Paid
// set and Account set to the hold's. They are made before the hold is
// read, for the account the hold is expected to be of, and made again
// only when it is another's, so that the hashing of many records is not
// done while the account's row is locked.
type flushRecords struct {
	in      []*credits.UsageRecord
	account string      // the account rows were made for
	rows    []*usageRow // of in, in order
	first   []bool      // rows[i] is the first of its ID
	// flushUsage's arguments for rows (nil without records), or why
	// there are none.
	args    []any
	argsErr error
}

// newFlushRecords makes the rows of in for the account guess, or when
// guess is empty the first one a record names.
func newFlushRecords(in []*credits.UsageRecord, guess string) *flushRecords {
	r := &flushRecords{in: in, account: guess, first: make([]bool, len(in))}
	for _, rec := range in {
		if r.account != "" {
			break
		}
		r.account = rec.Account
	}
	seen := make(map[string]bool, len(in))
	for i, rec := range in {
		r.first[i] = !seen[rec.ID]
		seen[rec.ID] = true
	}
	r.make()
	return r
}

// make makes rows and args for r.account.
func (r *flushRecords) make() {
	r.rows = make([]*usageRow, len(r.in))
	for i, rec := range r.in {
		c := *rec
		c.Paid = true
		if c.Account == "" {
			c.Account = r.account
		}
		r.rows[i] = newUsageRow(&c)
	}
	r.args, r.argsErr = r.columns()
}

// forAccount makes the rows for account unless they are: a record naming
// another account is credits.ErrInvalid.
func (r *flushRecords) forAccount(account string) error {
	for _, rec := range r.in {
		if rec.Account != "" && rec.Account != account {
			return credits.Invalid("record.account", "not the hold's account "+strconv.Quote(account))
		}
	}
	if r.account != account {
		r.account = account
		r.make()
	}
	return nil
}

// columns returns flushUsage's arguments, for the first record of each
// ID: usageRow.args of each, one array per column. Without records, nil.
func (r *flushRecords) columns() ([]any, error) {
	var rows [][]any
	for i, u := range r.rows {
		if r.first[i] {
			rows = append(rows, u.args())
		}
	}
	if len(rows) == 0 {
		return nil, nil
	}
	cols := make([]any, len(rows[0]))
	for j := range cols {
		switch v := rows[0][j].(type) {
		case string:
			cols[j] = column[string](rows, j)
		case bool:
			cols[j] = column[bool](rows, j)
		case int64:
			cols[j] = column[int64](rows, j)
		case int: // status, attempts dropped: bigint[]
			c := make([]int64, len(rows))
			for i, row := range rows {
				c[i] = int64(row[j].(int))
			}
			cols[j] = c
		case time.Time:
			cols[j] = column[time.Time](rows, j)
		case *time.Time:
			cols[j] = column[*time.Time](rows, j)
		case []byte:
			cols[j] = column[[]byte](rows, j)
		default:
			return nil, fmt.Errorf("postgres: flush: usage column %d: unexpected %T", j+1, v)
		}
	}
	return cols, nil
}

// column returns the column j of rows, each of type T.
func column[T any](rows [][]any, j int) []T {
	c := make([]T, len(rows))
	for i, row := range rows {
		c[i] = row[j].(T)
	}
	return c
}

// conflicts returns the IDs of the records not kept because their ID
// was kept with other content, in the records' order: those kept before
// the flush (kept, with the hash of what was kept), and those whose ID
// came earlier in the flush with other content.
func (r *flushRecords) conflicts(kept map[string][]byte) []string {
	var out []string
	stored := make(map[string][]byte, len(r.rows))
	for i, u := range r.rows {
		id := u.r.ID
		if h, ok := kept[id]; ok {
			stored[id] = h
		} else if r.first[i] {
			stored[id] = u.hash
		}
		if !bytes.Equal(stored[id], u.hash) {
			out = append(out, id)
		}
	}
	return out
}
