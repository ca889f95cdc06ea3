package credits

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// Memory is a Store keeping everything in memory: for tests, examples and
// single-process gateways whose credits may be lost on restart. It follows
// the rules package creditstest pins down for every store.
//
// It copies everything in and out, so callers never share slices with it.
// It keeps every ended hold (to answer replays of Reserve, Settle and
// Release) and every usage record, so its memory grows with the requests it
// meters. Expired lot remainders are recorded by Sweep; until then Balance
// counts them as Expired and Lots shows them with Remaining 0.
//
// Its times are UTC, truncated to the microsecond; a clock that goes back
// is held at the latest time it gave. The zero Memory is empty, uses
// time.Now and is ready to use. A Memory is safe for concurrent use: one
// mutex orders every call.
type Memory struct {
	clock func() time.Time

	mu         sync.Mutex
	last       time.Time
	accounts   map[string]*memAccount
	accountIDs []string            // sorted
	lots       map[string]*memLot  // by lot ID (= purchase ID)
	holds      map[string]*memHold // every hold ever made, by ID
	open       map[string]*memHold // the open holds
	usage      map[string]*UsageRecord
	usageOrder []*UsageRecord // ascending by (Start, ID)
	txSeq      uint64
}

// MemoryOptions configures NewMemory. The zero MemoryOptions uses
// time.Now.
type MemoryOptions struct {
	// Now is the clock of purchases, holds, expiry and transactions; nil
	// means time.Now. It must be safe for concurrent use.
	Now func() time.Time
}

// NewMemory returns an empty Memory.
func NewMemory(o MemoryOptions) *Memory { return &Memory{clock: o.Now} }

var (
	_ Store  = (*Memory)(nil)
	_ Leaser = (*Memory)(nil)
)

// memAccount is an account that bought credits.
type memAccount struct {
	id string
	// lots are ordered by ExpiresAt, then purchase order: the order money
	// is taken in.
	lots []*memLot
	// held, spent and expired are recorded totals; purchased their sum
	// with the lots' remainders.
	held, spent, expired, purchased Amount
	// txs are the transactions, oldest first (ascending by At, then ID).
	txs []Transaction
}

// memLot is a lot; lot.Remaining is what is neither held nor spent nor
// recorded as expired, so it may be positive past ExpiresAt until a Sweep
// records it.
type memLot struct{ lot Lot }

// holdState is where a hold is in its life.
type holdState int

const (
	holdOpen     holdState = iota
	holdSettled            // Settle ended it (settlement is kept)
	holdReleased           // Release ended it
	holdExpired            // a Sweep released it past its ExpiresAt
)

// memHold is a hold with the lots its money came from.
type memHold struct {
	hold       Hold
	state      holdState
	allocs     []memAlloc // earliest expiry first
	settlement Settlement
	seq        int64 // the last LeaseFlush.Seq applied
}

// memAlloc is what a hold took from one lot.
type memAlloc struct {
	lot    *memLot
	amount Amount
}

// init makes the maps of a zero Memory; m.mu is held.
func (m *Memory) init() {
	if m.accounts == nil {
		m.accounts = make(map[string]*memAccount)
		m.lots = make(map[string]*memLot)
		m.holds = make(map[string]*memHold)
		m.open = make(map[string]*memHold)
		m.usage = make(map[string]*UsageRecord)
	}
}

// lock takes m.mu, readies m and returns the time of the call.
func (m *Memory) lock() time.Time {
	m.mu.Lock()
	m.init()
	now := time.Now()
	if m.clock != nil {
		now = m.clock()
	}
	now = normTime(now)
	if now.Before(m.last) {
		now = m.last
	}
	m.last = now
	return now
}

// normTime returns t in UTC, truncated to the microsecond (the precision
// of the database stores); zero stays zero.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// ctxErr returns a done ctx's error, wrapped.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("credits: %w", err)
	}
	return nil
}

// expired reports that l is past its expiry at now.
func (l *memLot) expired(now time.Time) bool { return !now.Before(l.lot.ExpiresAt) }

// out returns the lot as callers see it: Remaining 0 once expired.
func (l *memLot) out(now time.Time) Lot {
	lot := l.lot
	if l.expired(now) {
		lot.Remaining = 0
	}
	return lot
}

// available returns a's unexpired remainders.
func (a *memAccount) available(now time.Time) Amount {
	var sum Amount
	for _, l := range a.lots {
		if !l.expired(now) {
			sum += l.lot.Remaining
		}
	}
	return sum
}

// take takes up to amount out of a's unexpired lots, earliest expiry
// first, and returns what it took from each.
func (a *memAccount) take(amount Amount, now time.Time) []memAlloc {
	var allocs []memAlloc
	for _, l := range a.lots {
		if amount == 0 {
			break
		}
		if l.expired(now) || l.lot.Remaining == 0 {
			continue
		}
		n := min(amount, l.lot.Remaining)
		l.lot.Remaining -= n
		amount -= n
		allocs = append(allocs, memAlloc{lot: l, amount: n})
	}
	return allocs
}

// giveBack returns amt to l: to its remainder, or, once l has expired, to
// the expired money with a TxExpire. It returns what expired.
func (m *Memory) giveBack(a *memAccount, l *memLot, amt Amount, now time.Time) Amount {
	if amt == 0 {
		return 0
	}
	if !l.expired(now) {
		l.lot.Remaining += amt
		return 0
	}
	a.expired += amt
	m.addTx(a, Transaction{Kind: TxExpire, Amount: amt, LotID: l.lot.ID}, now)
	return amt
}

// addTx appends tx to a's transactions with a new ID.
func (m *Memory) addTx(a *memAccount, tx Transaction, now time.Time) {
	m.txSeq++
	tx.ID = fmt.Sprintf("tx_%020d", m.txSeq)
	tx.Account = a.id
	tx.At = now
	a.txs = append(a.txs, tx)
}

// balance returns a's balance at now.
func (a *memAccount) balance(now time.Time) Balance {
	b := Balance{Account: a.id, Held: a.held, Spent: a.spent, Expired: a.expired, Purchased: a.purchased, Known: true}
	for _, l := range a.lots {
		switch {
		case l.expired(now):
			b.Expired += l.lot.Remaining
		default:
			b.Available += l.lot.Remaining
			if l.lot.Remaining > 0 && b.NextExpiry.IsZero() {
				b.NextExpiry = l.lot.ExpiresAt
			}
		}
	}
	return b
}

// Purchase adds a lot whose ID is p.ID, expiring LotLifetime after now.
// Buying again with the same ID, account and amount returns the lot as it
// is now (whatever the note); with another account or amount it is
// ErrConflict.
func (m *Memory) Purchase(ctx context.Context, p Purchase) (Lot, error) {
	if err := ctxErr(ctx); err != nil {
		return Lot{}, err
	}
	if err := ValidatePurchase(p); err != nil {
		return Lot{}, err
	}
	now := m.lock()
	defer m.mu.Unlock()
	if l, ok := m.lots[p.ID]; ok {
		if l.lot.Account != p.Account || l.lot.Amount != p.Amount {
			return Lot{}, fmt.Errorf("%w: purchase %q was made for account %q, $%s", ErrConflict, p.ID, l.lot.Account, l.lot.Amount)
		}
		return l.out(now), nil
	}
	a := m.accounts[p.Account]
	if a == nil {
		a = &memAccount{id: p.Account}
		m.accounts[p.Account] = a
		i, _ := slices.BinarySearch(m.accountIDs, p.Account)
		m.accountIDs = slices.Insert(m.accountIDs, i, p.Account)
	}
	l := &memLot{lot: Lot{
		ID: p.ID, Account: p.Account, Amount: p.Amount, Remaining: p.Amount,
		PurchasedAt: now, ExpiresAt: now.Add(LotLifetime), Note: p.Note,
	}}
	m.lots[p.ID] = l
	// Keep a.lots by expiry, a new lot after those expiring with it.
	i := sort.Search(len(a.lots), func(i int) bool { return a.lots[i].lot.ExpiresAt.After(l.lot.ExpiresAt) })
	a.lots = slices.Insert(a.lots, i, l)
	a.purchased += p.Amount
	m.addTx(a, Transaction{Kind: TxPurchase, Amount: p.Amount, LotID: p.ID, Note: p.Note}, now)
	return l.lot, nil
}

// Reserve holds min(r.Max, available) of r.Account's unexpired lots,
// earliest expiry first, when that is at least r.Min.
func (m *Memory) Reserve(ctx context.Context, r Reservation) (Hold, error) {
	if err := ctxErr(ctx); err != nil {
		return Hold{}, err
	}
	if err := ValidateReservation(r); err != nil {
		return Hold{}, err
	}
	now := m.lock()
	defer m.mu.Unlock()
	if h, ok := m.holds[r.ID]; ok {
		return reserveAgain(h.hold, h.state, r)
	}
	a := m.accounts[r.Account]
	if a == nil {
		return Hold{}, &InsufficientError{Account: r.Account, Min: r.Min, Never: true}
	}
	avail := a.available(now)
	amount := min(r.Max, avail)
	if amount < r.Min {
		return Hold{}, &InsufficientError{Account: r.Account, Available: avail, Min: r.Min}
	}
	h := &memHold{
		hold:   Hold{ID: r.ID, Account: r.Account, Amount: amount, CreatedAt: now, ExpiresAt: normTime(now.Add(r.TTL))},
		allocs: a.take(amount, now),
	}
	a.held += amount
	m.holds[r.ID] = h
	m.open[r.ID] = h
	return h.hold, nil
}

// reserveAgain answers a Reserve of the ID of a hold made before: the hold
// while it is open, ErrConflict for another account, ErrHoldClosed once
// ended.
func reserveAgain(h Hold, state holdState, r Reservation) (Hold, error) {
	switch {
	case h.Account != r.Account:
		return Hold{}, fmt.Errorf("%w: hold %q belongs to another account", ErrConflict, r.ID)
	case state != holdOpen:
		return Hold{}, fmt.Errorf("%w: hold %q", ErrHoldClosed, r.ID)
	}
	return h, nil
}

// Settle ends the hold, spending actual: from the hold earliest expiry
// first, then (beyond the hold) from the available money, at most all of
// it. rec, when not nil, is validated before anything changes and kept as
// a copy with Paid true, Uncollected filled in and Account set to the
// hold's (a record naming another account is ErrInvalid); *rec is not
// modified. A record ID already kept with other content is ErrConflict and
// nothing is charged.
func (m *Memory) Settle(ctx context.Context, holdID string, actual Amount, rec *UsageRecord) (Settlement, error) {
	if err := ctxErr(ctx); err != nil {
		return Settlement{}, err
	}
	if err := ValidateID("id", holdID); err != nil {
		return Settlement{}, err
	}
	if err := ValidateActual(actual); err != nil {
		return Settlement{}, err
	}
	var keep *UsageRecord
	if rec != nil {
		r := copyRecord(rec)
		r.Paid, r.Uncollected = true, 0
		if err := ValidateUsageRecord(r); err != nil {
			return Settlement{}, err
		}
		keep = r
	}
	now := m.lock()
	defer m.mu.Unlock()
	h, ok := m.holds[holdID]
	if !ok {
		return Settlement{}, fmt.Errorf("%w: %q", ErrHoldNotFound, holdID)
	}
	switch h.state {
	case holdSettled:
		return h.settlement, nil
	case holdReleased:
		return Settlement{}, fmt.Errorf("%w: hold %q was released", ErrHoldClosed, holdID)
	}
	a := m.accounts[h.hold.Account]
	var fromHold Amount
	if h.state == holdOpen {
		fromHold = h.hold.Amount
	}
	var s Settlement
	s.Released = fromHold - min(actual, fromHold)
	excess := actual - min(actual, fromHold)
	fromAvail := min(excess, a.available(now))
	s.Spent = actual - excess + fromAvail
	s.Uncollected = excess - fromAvail
	if keep != nil {
		if keep.Account == "" {
			keep.Account = a.id
		} else if keep.Account != a.id {
			return Settlement{}, Invalid("record.account", "not the hold's account "+a.id)
		}
		keep.Uncollected = s.Uncollected
		if err := m.checkRecord(keep); err != nil {
			return Settlement{}, err
		}
	}
	// Charge: the hold first, earliest expiry first; then the rest back.
	if h.state == holdOpen {
		left := actual
		for _, al := range h.allocs {
			n := min(left, al.amount)
			left -= n
			m.giveBack(a, al.lot, al.amount-n, now)
		}
		a.held -= h.hold.Amount
		delete(m.open, holdID)
	}
	a.take(fromAvail, now)
	if s.Spent > 0 {
		a.spent += s.Spent
		m.addTx(a, Transaction{Kind: TxSpend, Amount: s.Spent, HoldID: holdID}, now)
	}
	h.state, h.allocs, h.settlement = holdSettled, nil, s
	if keep != nil {
		m.putRecord(keep)
	}
	return s, nil
}

// Flush spends f.Spent from the open hold f.HoldID (then from the
// available money), keeps f.Records, grows the hold by up to f.Grow and
// moves its expiry, in one step (see Leaser and LeaseFlush).
func (m *Memory) Flush(ctx context.Context, f LeaseFlush) (FlushResult, error) {
	if err := ctxErr(ctx); err != nil {
		return FlushResult{}, err
	}
	if err := ValidateFlush(f); err != nil {
		return FlushResult{}, err
	}
	keep := make([]*UsageRecord, len(f.Records))
	for i, rec := range f.Records {
		keep[i] = copyRecord(rec)
		keep[i].Paid = true
	}
	now := m.lock()
	defer m.mu.Unlock()
	h, ok := m.holds[f.HoldID]
	if !ok {
		return FlushResult{}, fmt.Errorf("%w: %q", ErrHoldNotFound, f.HoldID)
	}
	switch h.state {
	case holdSettled, holdReleased:
		return FlushResult{}, fmt.Errorf("%w: hold %q", ErrHoldClosed, f.HoldID)
	}
	res := FlushResult{Hold: h.hold, Swept: h.state == holdExpired, Replayed: f.Seq <= h.seq}
	if res.Swept {
		res.Hold.Amount = 0
	}
	if res.Replayed {
		return res, nil
	}
	a := m.accounts[h.hold.Account]
	for _, r := range keep {
		if r.Account == "" {
			r.Account = a.id
		} else if r.Account != a.id {
			return FlushResult{}, Invalid("record.account", "not the hold's account "+a.id)
		}
	}
	// Spend: the hold first, earliest expiry first; then the available
	// money.
	var fromHold Amount
	if h.state == holdOpen {
		fromHold = min(f.Spent, h.hold.Amount)
		left := fromHold
		allocs := h.allocs[:0]
		for _, al := range h.allocs {
			n := min(left, al.amount)
			left -= n
			if al.amount -= n; al.amount > 0 {
				allocs = append(allocs, al)
			}
		}
		h.allocs = allocs
		h.hold.Amount -= fromHold
		a.held -= fromHold
	}
	excess := f.Spent - fromHold
	fromAvail := min(excess, a.available(now))
	a.take(fromAvail, now)
	res.Spent, res.Uncollected = fromHold+fromAvail, excess-fromAvail
	if res.Spent > 0 {
		a.spent += res.Spent
		m.addTx(a, Transaction{Kind: TxSpend, Amount: res.Spent, HoldID: f.HoldID}, now)
	}
	if h.state == holdOpen {
		if f.Grow > 0 {
			for _, al := range a.take(min(f.Grow, a.available(now)), now) {
				res.Grown += al.amount
				i := slices.IndexFunc(h.allocs, func(x memAlloc) bool { return x.lot == al.lot })
				if i >= 0 {
					h.allocs[i].amount += al.amount
				} else {
					h.allocs = append(h.allocs, al)
				}
			}
			// Keep the hold's lots in the account's order: earliest
			// expiry first.
			order := make(map[*memLot]int, len(a.lots))
			for i, l := range a.lots {
				order[l] = i
			}
			slices.SortFunc(h.allocs, func(x, y memAlloc) int { return cmp.Compare(order[x.lot], order[y.lot]) })
			h.hold.Amount += res.Grown
			a.held += res.Grown
		}
		if f.TTL > 0 {
			h.hold.ExpiresAt = normTime(now.Add(f.TTL))
		}
		res.Hold = h.hold
	}
	h.seq = f.Seq
	for _, r := range keep {
		if m.checkRecord(r) != nil {
			res.Conflicts = append(res.Conflicts, r.ID)
			continue
		}
		m.putRecord(r)
	}
	return res, nil
}

// Release ends the hold and gives all of it back; money given back to an
// expired lot expires.
func (m *Memory) Release(ctx context.Context, holdID string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if err := ValidateID("id", holdID); err != nil {
		return err
	}
	now := m.lock()
	defer m.mu.Unlock()
	h, ok := m.holds[holdID]
	switch {
	case !ok:
		return fmt.Errorf("%w: %q", ErrHoldNotFound, holdID)
	case h.state != holdOpen:
		return nil
	}
	m.endHold(h, holdReleased, now)
	return nil
}

// endHold gives all of the open hold h back and leaves it in state; it
// returns what expired.
func (m *Memory) endHold(h *memHold, state holdState, now time.Time) Amount {
	a := m.accounts[h.hold.Account]
	var expired Amount
	for _, al := range h.allocs {
		expired += m.giveBack(a, al.lot, al.amount, now)
	}
	a.held -= h.hold.Amount
	h.state, h.allocs = state, nil
	delete(m.open, h.hold.ID)
	return expired
}

// Record keeps a copy of rec with Paid false and Uncollected 0. Recording
// an ID again with the same content does nothing; with other content it is
// ErrConflict.
func (m *Memory) Record(ctx context.Context, rec *UsageRecord) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if rec == nil {
		return Invalid("record", "required")
	}
	r := copyRecord(rec)
	r.Paid, r.Uncollected = false, 0
	if err := ValidateUsageRecord(r); err != nil {
		return err
	}
	m.lock()
	defer m.mu.Unlock()
	if err := m.checkRecord(r); err != nil {
		return err
	}
	m.putRecord(r)
	return nil
}

// checkRecord returns ErrConflict when a record with r's ID but other
// content is kept; m.mu is held.
func (m *Memory) checkRecord(r *UsageRecord) error {
	if old, ok := m.usage[r.ID]; ok && !sameRecord(old, r) {
		return fmt.Errorf("%w: usage record %q was kept with other content", ErrConflict, r.ID)
	}
	return nil
}

// putRecord keeps r unless its ID is kept already; m.mu is held.
func (m *Memory) putRecord(r *UsageRecord) {
	if _, ok := m.usage[r.ID]; ok {
		return
	}
	m.usage[r.ID] = r
	i, _ := slices.BinarySearchFunc(m.usageOrder, r, cmpRecord)
	m.usageOrder = slices.Insert(m.usageOrder, i, r)
}

// cmpRecord orders records by Start, then ID.
func cmpRecord(a, b *UsageRecord) int {
	if c := a.Start.Compare(b.Start); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// copyRecord returns a copy of r with its own Attempts and normalized
// times (empty Attempts become nil).
func copyRecord(r *UsageRecord) *UsageRecord {
	c := *r
	c.Start, c.End = normTime(c.Start), normTime(c.End)
	c.Attempts = nil
	if len(r.Attempts) > 0 {
		c.Attempts = make([]AttemptRecord, len(r.Attempts))
		for i, at := range r.Attempts {
			at.Start = normTime(at.Start)
			c.Attempts[i] = at
		}
	}
	return &c
}

// sameRecord reports that a and b, both copies from copyRecord, are equal.
func sameRecord(a, b *UsageRecord) bool {
	return a.ID == b.ID && a.RequestID == b.RequestID && a.KeyID == b.KeyID && a.Account == b.Account &&
		a.Provider == b.Provider && a.Model == b.Model && a.KeySource == b.KeySource &&
		a.Reported == b.Reported && a.ReportedKnown == b.ReportedKnown && a.Estimated == b.Estimated &&
		a.Cost == b.Cost && a.Fee == b.Fee && a.Paid == b.Paid && a.Uncollected == b.Uncollected &&
		a.Status == b.Status && a.Error == b.Error && a.Stream == b.Stream &&
		a.Start.Equal(b.Start) && a.End.Equal(b.End) &&
		slices.EqualFunc(a.Attempts, b.Attempts, func(x, y AttemptRecord) bool {
			return x.Provider == y.Provider && x.Model == y.Model && x.KeyID == y.KeyID && x.KeySource == y.KeySource &&
				x.Skipped == y.Skipped && x.Status == y.Status && x.Error == y.Error && x.Served == y.Served &&
				x.Start.Equal(y.Start) && x.Duration == y.Duration
		}) && a.AttemptsDropped == b.AttemptsDropped
}

// Balance returns the account's balance; an unknown account's is the zero
// Balance with Account set.
func (m *Memory) Balance(ctx context.Context, account string) (Balance, error) {
	if err := ctxErr(ctx); err != nil {
		return Balance{}, err
	}
	if err := ValidateID("account", account); err != nil {
		return Balance{}, err
	}
	now := m.lock()
	defer m.mu.Unlock()
	a := m.accounts[account]
	if a == nil {
		return Balance{Account: account}, nil
	}
	return a.balance(now), nil
}

// Sweep releases the open holds past their ExpiresAt (they become expired:
// a later Settle spends from the available money) and records the
// remainders of lots past their expiry as TxExpire transactions.
func (m *Memory) Sweep(ctx context.Context) (SweepResult, error) {
	if err := ctxErr(ctx); err != nil {
		return SweepResult{}, err
	}
	now := m.lock()
	defer m.mu.Unlock()
	var res SweepResult
	var due []*memHold
	for _, h := range m.open {
		if !now.Before(h.hold.ExpiresAt) {
			due = append(due, h)
		}
	}
	slices.SortFunc(due, func(a, b *memHold) int { return cmp.Compare(a.hold.ID, b.hold.ID) })
	expiredLots := map[string]bool{}
	for _, h := range due {
		for _, al := range h.allocs {
			if al.lot.expired(now) {
				expiredLots[al.lot.lot.ID] = true
			}
		}
		res.HoldsReleased++
		res.Released += h.hold.Amount
		res.Expired += m.endHold(h, holdExpired, now)
	}
	for _, id := range m.accountIDs {
		a := m.accounts[id]
		for _, l := range a.lots {
			if !l.expired(now) {
				break // a.lots is ordered by expiry
			}
			if r := l.lot.Remaining; r > 0 {
				l.lot.Remaining = 0
				a.expired += r
				res.Expired += r
				expiredLots[l.lot.ID] = true
				m.addTx(a, Transaction{Kind: TxExpire, Amount: r, LotID: l.lot.ID}, now)
			}
		}
	}
	res.LotsExpired = len(expiredLots)
	return res, nil
}

// Lots lists the account's lots, newest first (by PurchasedAt, then ID).
func (m *Memory) Lots(ctx context.Context, account string, o ListOptions) ([]Lot, string, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, "", err
	}
	if err := ValidateID("account", account); err != nil {
		return nil, "", err
	}
	limit, err := ListLimit(o)
	if err != nil {
		return nil, "", err
	}
	now := m.lock()
	defer m.mu.Unlock()
	var lots []Lot
	if a := m.accounts[account]; a != nil {
		lots = make([]Lot, len(a.lots))
		for i, l := range a.lots {
			lots[i] = l.out(now)
		}
		slices.SortFunc(lots, func(x, y Lot) int { return cmpDesc(x.PurchasedAt, x.ID, y.PurchasedAt, y.ID) })
	}
	return pageOf(lots, limit, o.Cursor, func(l Lot) (time.Time, string) { return l.PurchasedAt, l.ID })
}

// Transactions lists the account's transactions, newest first (by At,
// then ID).
func (m *Memory) Transactions(ctx context.Context, account string, o ListOptions) (TransactionPage, error) {
	if err := ctxErr(ctx); err != nil {
		return TransactionPage{}, err
	}
	if err := ValidateID("account", account); err != nil {
		return TransactionPage{}, err
	}
	limit, err := ListLimit(o)
	if err != nil {
		return TransactionPage{}, err
	}
	m.lock()
	defer m.mu.Unlock()
	var txs []Transaction
	if a := m.accounts[account]; a != nil {
		txs = slices.Clone(a.txs)
		slices.Reverse(txs)
	}
	page, next, err := pageOf(txs, limit, o.Cursor, func(tx Transaction) (time.Time, string) { return tx.At, tx.ID })
	return TransactionPage{Transactions: page, NextCursor: next}, err
}

// cmpDesc orders (at, id) pairs newest first.
func cmpDesc(at1 time.Time, id1 string, at2 time.Time, id2 string) int {
	if c := at2.Compare(at1); c != 0 {
		return c
	}
	return cmp.Compare(id2, id1)
}

// pageOf returns the page of items (ordered newest first by key) after
// cursor, at most limit long, and the cursor of the next page ("" on the
// last page).
func pageOf[T any](items []T, limit int, cursor string, key func(T) (time.Time, string)) ([]T, string, error) {
	start := 0
	if cursor != "" {
		at, id, err := DecodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		start = sort.Search(len(items), func(i int) bool {
			t, iid := key(items[i])
			return cmpDesc(t, iid, at, id) > 0
		})
	}
	end := min(start+limit, len(items))
	page := slices.Clone(items[start:end])
	if end == len(items) {
		return page, "", nil
	}
	at, id := key(items[end-1])
	return page, EncodeCursor(at, id), nil
}

// Accounts lists the accounts that ever bought credits, by account ID.
func (m *Memory) Accounts(ctx context.Context, o ListOptions) (AccountPage, error) {
	if err := ctxErr(ctx); err != nil {
		return AccountPage{}, err
	}
	limit, err := ListLimit(o)
	if err != nil {
		return AccountPage{}, err
	}
	var after string
	if o.Cursor != "" {
		_, id, err := DecodeCursor(o.Cursor)
		if err != nil {
			return AccountPage{}, err
		}
		after = id
	}
	now := m.lock()
	defer m.mu.Unlock()
	start := 0
	if after != "" {
		start = sort.Search(len(m.accountIDs), func(i int) bool { return m.accountIDs[i] > after })
	}
	end := min(start+limit, len(m.accountIDs))
	var p AccountPage
	for _, id := range m.accountIDs[start:end] {
		p.Accounts = append(p.Accounts, m.accounts[id].balance(now))
	}
	if end < len(m.accountIDs) {
		p.NextCursor = EncodeCursor(time.Unix(0, 0), m.accountIDs[end-1])
	}
	return p, nil
}

// matches reports that r is selected by the filters.
func matches(r *UsageRecord, account, keyID string, from, to time.Time) bool {
	return (account == "" || r.Account == account) && (keyID == "" || r.KeyID == keyID) &&
		(from.IsZero() || !r.Start.Before(from)) && (to.IsZero() || r.Start.Before(to))
}

// Usage lists usage records, newest first (by Start, then ID).
func (m *Memory) Usage(ctx context.Context, q UsageQuery) (UsagePage, error) {
	if err := ctxErr(ctx); err != nil {
		return UsagePage{}, err
	}
	limit, err := ListLimit(q.ListOptions)
	if err != nil {
		return UsagePage{}, err
	}
	var cur *UsageRecord
	if q.Cursor != "" {
		at, id, err := DecodeCursor(q.Cursor)
		if err != nil {
			return UsagePage{}, err
		}
		cur = &UsageRecord{Start: at, ID: id}
	}
	m.lock()
	defer m.mu.Unlock()
	end := len(m.usageOrder) // the records before end come after the cursor
	if cur != nil {
		end, _ = slices.BinarySearchFunc(m.usageOrder, cur, cmpRecord)
	}
	var p UsagePage
	for i := end - 1; i >= 0; i-- {
		r := m.usageOrder[i]
		if !matches(r, q.Account, q.KeyID, q.From, q.To) {
			continue
		}
		if len(p.Records) == limit {
			last := p.Records[limit-1]
			p.NextCursor = EncodeCursor(last.Start, last.ID)
			break
		}
		p.Records = append(p.Records, *copyRecord(r))
	}
	return p, nil
}

// summaryKey is the group of a record.
type summaryKey struct{ day, provider, model, key, account string }

// Summary totals the usage records selected by q, grouped by q.GroupBy and
// ordered by the group values in the order GroupBy lists them (byte order;
// days ascending). Nothing selected gives no rows.
func (m *Memory) Summary(ctx context.Context, q SummaryQuery) ([]SummaryRow, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if err := ValidateGroupBy(q.GroupBy); err != nil {
		return nil, err
	}
	m.lock()
	defer m.mu.Unlock()
	groups := map[summaryKey]*SummaryRow{}
	for _, r := range m.usageOrder {
		if !matches(r, q.Account, q.KeyID, q.From, q.To) {
			continue
		}
		var k summaryKey
		for _, g := range q.GroupBy {
			switch g {
			case GroupDay:
				k.day = r.Start.UTC().Format(time.DateOnly)
			case GroupProvider:
				k.provider = r.Provider
			case GroupModel:
				k.model = r.Model
			case GroupKey:
				k.key = r.KeyID
			case GroupAccount:
				k.account = r.Account
			}
		}
		row := groups[k]
		if row == nil {
			row = &SummaryRow{Day: k.day, Provider: k.provider, Model: k.model, KeyID: k.key, Account: k.account}
			groups[k] = row
		}
		tok := r.Estimated
		if r.ReportedKnown {
			tok = r.Reported
		}
		row.Requests++
		row.Tokens.Input += tok.Input
		row.Tokens.Output += tok.Output
		row.Tokens.CacheRead += tok.CacheRead
		row.Tokens.CacheWrite += tok.CacheWrite
		row.Cost += r.Cost
		row.Fee += r.Fee
		row.Uncollected += r.Uncollected
	}
	rows := make([]SummaryRow, 0, len(groups))
	for _, row := range groups {
		rows = append(rows, *row)
	}
	slices.SortFunc(rows, func(x, y SummaryRow) int {
		for _, g := range q.GroupBy {
			var c int
			switch g {
			case GroupDay:
				c = cmp.Compare(x.Day, y.Day)
			case GroupProvider:
				c = cmp.Compare(x.Provider, y.Provider)
			case GroupModel:
				c = cmp.Compare(x.Model, y.Model)
			case GroupKey:
				c = cmp.Compare(x.KeyID, y.KeyID)
			case GroupAccount:
				c = cmp.Compare(x.Account, y.Account)
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	return rows, nil
}
