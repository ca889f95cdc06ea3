package sqlite

import (
	"context"
	"fmt"
	"strconv"

	"github.com/llmgate/gateway/credits"
)

var _ credits.Leaser = (*Store)(nil)

// The statements of Flush, prepared on the writer at Open (see
// preparedSQL).
const (
	flushHoldSQL    = `UPDATE credit_holds SET amount = ?, expires_at = ?, flush_seq = ? WHERE id = ?`
	flushAccountSQL = `UPDATE credit_accounts SET held = held + ?, spent = spent + ? WHERE id = ?`
	setPortionSQL   = `UPDATE credit_hold_lots SET amount = ? WHERE hold_id = ? AND lot_id = ?`
	dropPortionSQL  = `DELETE FROM credit_hold_lots WHERE hold_id = ? AND lot_id = ?`
	growPortionSQL  = `INSERT INTO credit_hold_lots (hold_id, lot_id, amount) VALUES (?, ?, ?)
ON CONFLICT (hold_id, lot_id) DO UPDATE SET amount = amount + excluded.amount`
)

// Flush writes back what a replica spent from the lease f.HoldID, an open
// hold, in one ledger write (see credits.Leaser and credits.LeaseFlush):
// it spends f.Spent from what the hold took, earliest expiry first, and
// what exceeds the hold from the account's available money, at most all of
// it, with one spend transaction of the total; it keeps f.Records (copies
// with Paid true and Account set to the hold's); then it takes up to
// f.Grow of the available money into the hold, earliest expiry first, and
// moves its expiry to now + f.TTL when f.TTL is positive. The hold stays
// open, with what is left (possibly nothing).
//
// A flush whose Seq is not above the last applied one changes nothing and
// returns the hold as it is (Replayed; its records are not looked at). A
// hold released by a Sweep pays from the available money only and is
// neither grown nor extended (Swept, Hold.Amount 0). A released or settled
// hold is credits.ErrHoldClosed, an unknown one credits.ErrHoldNotFound. A
// bad f, or a record naming another account than the hold's, is
// credits.ErrInvalid, and nothing changes. A record whose ID was kept
// before with the same content is a no-op; with other content it is not
// kept and its ID is listed in FlushResult.Conflicts, and the rest of the
// flush happens.
//
// Flush is one of the hot writes that share group commits (see group):
// a replica flushes each account's lease about once a second, and in a
// transaction of its own the flush would wait for the writer connection
// between batches as long as in one and pay a commit of its own. Its
// records are inserted up to 32 rows a statement (insertRecords), without
// copying them first, and read back only when a statement inserted fewer
// rows than it had (measured with BenchmarkFlush and records like the
// gateway's: about 30% less CPU a record than a statement each; most of
// what is left is SQLite's b-trees and the commit's log writes).
func (s *Store) Flush(ctx context.Context, f credits.LeaseFlush) (credits.FlushResult, error) {
	if err := credits.ValidateFlush(f); err != nil {
		return credits.FlushResult{}, err
	}
	var res credits.FlushResult
	err := s.group(ctx, "flush "+f.HoldID, func(t *wtx) error {
		res = credits.FlushResult{}
		h, err := getHold(t, f.HoldID)
		if err != nil {
			return err
		}
		switch h.state {
		case holdSettled, holdReleased:
			return fmt.Errorf("sqlite: hold %q: %w", f.HoldID, credits.ErrHoldClosed)
		}
		open := h.state == holdOpen
		res.Hold, res.Swept, res.Replayed = h.hold(), !open, f.Seq <= h.seq
		if !open {
			res.Hold.Amount = 0
		}
		if res.Replayed {
			return nil
		}
		for _, r := range f.Records {
			if r.Account != "" && r.Account != h.account {
				return credits.Invalid("record.account", "not the hold's account "+strconv.Quote(h.account))
			}
		}
		fromHold, err := spendHold(t, &h, int64(f.Spent))
		if err != nil {
			return err
		}
		var took int64
		if excess := int64(f.Spent) - fromHold; excess > 0 {
			lots, err := liveLots(t, h.account, excess)
			if err != nil {
				return err
			}
			if _, took, err = takeFrom(t, lots, excess); err != nil {
				return err
			}
		}
		res.Spent = credits.Amount(fromHold + took)
		res.Uncollected = f.Spent - res.Spent
		if res.Spent > 0 {
			if err := addTransaction(t, h.account, credits.TxSpend, res.Spent, "", h.id, ""); err != nil {
				return err
			}
		}
		var grown int64
		if open && f.Grow > 0 {
			if grown, err = growHold(t, &h, int64(f.Grow)); err != nil {
				return err
			}
		}
		if open && f.TTL > 0 {
			h.expires = t.now + f.TTL.Microseconds()
		}
		if _, err := t.exec(flushHoldSQL, h.amount, h.expires, f.Seq, h.id); err != nil {
			return err
		}
		if held := grown - fromHold; held != 0 || res.Spent > 0 {
			if _, err := t.exec(flushAccountSQL, held, int64(res.Spent), h.account); err != nil {
				return err
			}
		}
		res.Grown = credits.Amount(grown)
		if open {
			res.Hold = h.hold()
		}
		res.Conflicts, err = insertRecords(t, f.Records, h.account)
		return err
	})
	if err != nil {
		return credits.FlushResult{}, err
	}
	return res, nil
}

// spendHold spends up to spent from the open hold h's portions, earliest
// expiry first (a portion spent to nothing is deleted), lowers h.amount and
// returns what it spent: min(spent, h.amount), nothing for a hold that is
// not open.
func spendHold(t *wtx, h *holdRow, spent int64) (int64, error) {
	if h.state != holdOpen {
		return 0, nil
	}
	want := min(spent, h.amount)
	if want == 0 {
		return 0, nil
	}
	ps, err := scanPortions(t, want, holdPortionsSQL, h.id)
	if err != nil {
		return 0, err
	}
	left := want
	for _, p := range ps {
		n := min(left, p.amount)
		left -= n
		if n == p.amount {
			_, err = t.exec(dropPortionSQL, h.id, p.lot)
		} else {
			_, err = t.exec(setPortionSQL, p.amount-n, h.id, p.lot)
		}
		if err != nil {
			return 0, err
		}
	}
	if left != 0 {
		return 0, fmt.Errorf("sqlite: hold %q: its lots hold %d less than its amount %d", h.id, left, h.amount)
	}
	h.amount -= want
	return want, nil
}

// growHold takes up to grow of the account's available money into the open
// hold h, earliest expiry first, adding to the hold's portion of a lot it
// already took from; it raises h.amount and returns what it took.
func growHold(t *wtx, h *holdRow, grow int64) (int64, error) {
	lots, err := liveLots(t, h.account, grow)
	if err != nil {
		return 0, err
	}
	taken, total, err := takeFrom(t, lots, grow)
	if err != nil {
		return 0, err
	}
	for _, p := range taken {
		if _, err := t.exec(growPortionSQL, h.id, p.lot, p.amount); err != nil {
			return 0, err
		}
	}
	h.amount += total
	return total, nil
}
