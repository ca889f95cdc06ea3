package credits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// LeaseStore is what a Leasing leases from: a Ledger whose holds can be
// spent in steps (Leaser) and swept.
type LeaseStore interface {
	Ledger
	Sweeper
	Leaser
}

// Defaults of LeasingOptions.
const (
	DefaultLeaseSize          = Dollar
	DefaultLeaseFlushInterval = time.Second
	DefaultLeaseTTL           = 2 * time.Minute
	DefaultLeaseIdle          = 30 * time.Second
	// DefaultLeaseMinBalance is how many leases' worth an account must
	// have available to be leased (LeasingOptions.MinBalance).
	DefaultLeaseMinBalance = 10
	// DefaultLeaseMaxPending bounds the settlements waiting to be
	// written back, over all accounts.
	DefaultLeaseMaxPending = 64 * MaxFlushRecords
)

// LeasingOptions configures NewLeasing. Zero fields take the defaults.
type LeasingOptions struct {
	// Size is what a lease holds when it is opened and is grown back to
	// at each flush (DefaultLeaseSize). A request whose worst case the
	// lease cannot hold holds in the store on its own.
	Size Amount
	// FlushInterval is how often spends and usage records are written
	// back (DefaultLeaseFlushInterval). A crash loses at most this much of
	// charges and records: never more than what the leases held.
	FlushInterval time.Duration
	// TTL is how long a lease outlives its last flush
	// (DefaultLeaseTTL, at least 3 flush intervals): after a crash the
	// store's Sweep releases it then.
	TTL time.Duration
	// Idle is how long a lease stays open without requests before it is
	// given back (DefaultLeaseIdle, at least 2 flush intervals).
	Idle time.Duration
	// MinBalance: an account is leased only while it has at least
	// MinBalance × Size available (DefaultLeaseMinBalance); below, each
	// of its requests holds in the store, so that what other replicas'
	// leases hold never refuses a request the account could pay.
	MinBalance int
	// MaxPending bounds the settlements waiting to be written back
	// (DefaultLeaseMaxPending); beyond it (the store has been down for a
	// while) Settle fails with ErrUnavailable.
	MaxPending int
	// Logger receives failed flushes; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of the holds' times; nil means time.Now.
	Now func() time.Time
}

// Leasing is a Ledger that holds money for requests in memory, from leases:
// one store hold per account and replica, opened with Reserve, spent in
// steps and grown back with Flush (see Leaser), and given back with Release
// when the account goes idle. A request's Reserve, Settle and Release then
// touch no store, and the store sees one write per account per
// FlushInterval instead of three per request, which is what makes a
// database ledger cheap enough for every request.
//
// No interleaving overspends: a lease is money the store holds for this
// replica, and the replica never holds more for its requests than its
// leases hold. What a crash loses is what was spent since the last flush
// (charges and their usage records): the store's Sweep releases the lease
// after its TTL and the money goes back to the account.
//
// Requests that a lease cannot take hold in the store on their own, as
// without a Leasing: a worst case larger than what the lease has left, an
// account with less than MinBalance leases' worth available (its leases are
// given back, so every replica sees all of its money), a store that failed
// to open a lease. Settle, Release and Reserve replays of such holds go to
// the store. Record and Sweep always go to the store; Balance is the
// store's, with this replica's unflushed spending moved from Held to Spent
// and its leases' free money shown as Available.
//
// Close writes everything back and gives the leases back. A Leasing is
// safe for concurrent use.
type Leasing struct {
	store  LeaseStore
	opts   LeasingOptions
	logger *slog.Logger
	prefix string // of lease hold IDs: "lease-" and a random replica ID

	mu       sync.Mutex
	accounts map[string]*accountLeases
	holds    map[string]*localHold // open and recently ended local holds
	// ended and endedPrev are the IDs of the local holds that ended in
	// this flush generation and the previous one: kept to answer replays,
	// then forgotten.
	ended, endedPrev []string
	nextID           uint64
	gen              int // flush generation: one per FlushInterval
	pending          int // settlements waiting to be written back
	closed           bool

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// accountLeases is an account's lease and the ones being given back.
type accountLeases struct {
	cur *lease
	// direct is set while the account holds in the store (too little
	// money, or a lease could not be opened), until generation directUntil.
	directUntil int
	opening     bool
	old         []*lease // retired: no new holds, flushed and released when unused
}

// lease is one store hold spent in memory.
type lease struct {
	id, account string
	seq         int64  // last Seq applied by the store
	free        Amount // what new holds may take; negative while in debt
	held        Amount // what open local holds hold
	holds       int    // open local holds
	collecting  int    // settlements collecting an excess from the store (collect)
	entries     []entry
	debt        Amount // spent beyond the lease, to collect at the next flush
	flushing    *batch // the batch being written (kept until applied)
	busy        bool   // a flushLease is writing it
	expires     time.Time
	lastUse     int  // generation of the last hold
	checked     int  // generation of the last look at the account's balance
	low         bool // the store had less to grow it than wanted
	dead        bool // swept or refused by the store: no new holds
	retired     bool // no new holds; given back once unused and flushed
}

// entry is one settlement to write back.
type entry struct {
	spent Amount
	rec   *UsageRecord
}

// batch is a flush in progress or to retry.
type batch struct {
	seq     int64
	entries []entry
	spent   Amount
	debt    Amount
	grow    Amount
}

// localHold is a request's hold on a lease.
type localHold struct {
	hold       Hold
	lease      *lease
	state      holdState
	settlement Settlement
}

// NewLeasing returns a Leasing of store and starts its flusher; Close
// stops it.
func NewLeasing(store LeaseStore, o LeasingOptions) *Leasing {
	if o.Size <= 0 {
		o.Size = DefaultLeaseSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultLeaseFlushInterval
	}
	if o.TTL <= 0 {
		o.TTL = DefaultLeaseTTL
	}
	o.TTL = min(max(o.TTL, 3*o.FlushInterval), MaxHoldTTL)
	if o.Idle <= 0 {
		o.Idle = DefaultLeaseIdle
	}
	o.Idle = max(o.Idle, 2*o.FlushInterval)
	if o.MinBalance <= 0 {
		o.MinBalance = DefaultLeaseMinBalance
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultLeaseMaxPending
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	l := &Leasing{store: store, opts: o, logger: logger, prefix: "lease-" + hex.EncodeToString(rnd[:]) + "-",
		accounts: map[string]*accountLeases{}, holds: map[string]*localHold{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

var _ interface {
	Ledger
	Sweeper
} = (*Leasing)(nil)

// idleGens is Idle in flush generations.
func (l *Leasing) idleGens() int {
	return max(1, int(l.opts.Idle/l.opts.FlushInterval))
}

// Reserve holds r in a lease of r.Account when it can, else in the store.
func (l *Leasing) Reserve(ctx context.Context, r Reservation) (Hold, error) {
	if err := ValidateReservation(r); err != nil {
		return Hold{}, err
	}
	if err := ctx.Err(); err != nil {
		return Hold{}, err
	}
	l.mu.Lock()
	if h, ok := l.holds[r.ID]; ok {
		defer l.mu.Unlock()
		return reserveAgain(h.hold, h.state, r)
	}
	a := l.accounts[r.Account]
	if a == nil {
		a = &accountLeases{}
		l.accounts[r.Account] = a
	}
	if ls := a.cur; ls != nil && !ls.retired && !ls.dead && ls.free >= r.Max && !l.closed {
		h := l.holdLocal(ls, r)
		l.mu.Unlock()
		return h, nil
	}
	open := a.cur == nil && !a.opening && a.directUntil <= l.gen && !l.closed
	if open {
		a.opening = true
	}
	var retire *lease
	if ls := a.cur; ls != nil && ls.holds == 0 && ls.low && !ls.retired {
		// The account is short: give the lease back before holding in
		// the store, so that the store sees all of the account's money.
		ls.retired = true
		a.old, a.cur = append(a.old, ls), nil
		retire = ls
	} else if ls != nil && !ls.low {
		l.wake() // grow it
	}
	l.mu.Unlock()
	if retire != nil {
		_, _ = l.flushLease(ctx, retire, true)
	}
	if open {
		if h, ok := l.openLease(ctx, a, r); ok {
			return h, nil
		}
	}
	h, err := l.store.Reserve(ctx, r)
	if errors.Is(err, ErrInsufficientCredits) {
		// What the store has left may be less than this replica's lease
		// has: hold what the lease has, when that is enough.
		l.mu.Lock()
		defer l.mu.Unlock()
		if ls := a.cur; ls != nil && l.accounts[r.Account] == a && !ls.retired && !ls.dead && ls.free >= r.Min && !l.closed {
			if _, taken := l.holds[r.ID]; !taken {
				r.Max = min(r.Max, ls.free)
				return l.holdLocal(ls, r), nil
			}
		}
	}
	return h, err
}

// holdLocal takes r.Max out of ls; l.mu is held.
func (l *Leasing) holdLocal(ls *lease, r Reservation) Hold {
	now := l.opts.Now()
	h := &localHold{lease: ls, hold: Hold{ID: r.ID, Account: r.Account, Amount: r.Max,
		CreatedAt: normTime(now), ExpiresAt: normTime(now.Add(r.TTL))}}
	ls.free -= r.Max
	ls.held += r.Max
	ls.holds++
	ls.lastUse = l.gen
	l.holds[r.ID] = h
	if ls.free < l.opts.Size/4 {
		l.wake()
	}
	return h.hold
}

// wake asks the flusher to run now.
func (l *Leasing) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// openLease opens a lease for a and holds r in it. It reports false (and
// leaves the account to hold in the store for a while) when the account
// has too little or the store fails.
func (l *Leasing) openLease(ctx context.Context, a *accountLeases, r Reservation) (Hold, bool) {
	size := l.opts.Size
	if r.Max > size {
		l.mu.Lock()
		a.opening = false
		l.mu.Unlock()
		return Hold{}, false // too big for any lease: the store holds it
	}
	var ls *lease
	b, err := l.store.Balance(ctx, r.Account)
	if err == nil && b.Available >= size*Amount(l.opts.MinBalance) {
		l.mu.Lock()
		l.nextID++
		id := l.prefix + strconv.FormatUint(l.nextID, 10)
		l.mu.Unlock()
		var h Hold
		h, err = l.store.Reserve(ctx, Reservation{ID: id, Account: r.Account, Max: size, Min: size, TTL: l.opts.TTL})
		if err == nil {
			ls = &lease{id: id, account: r.Account, free: h.Amount, expires: h.ExpiresAt}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a.opening = false
	if ls == nil {
		if err != nil && !errors.Is(err, ErrInsufficientCredits) && ctx.Err() == nil {
			l.logger.Warn("llmgate: credits lease not opened; requests hold in the store", "account", r.Account, "error", err.Error())
		}
		a.directUntil = l.gen + l.idleGens()
		return Hold{}, false
	}
	ls.lastUse = l.gen
	a.cur = ls
	if _, ok := l.holds[r.ID]; ok || l.closed {
		return Hold{}, false // a concurrent Reserve of the same ID won; the store answers
	}
	return l.holdLocal(ls, r), true
}

// Settle settles a local hold in memory, to be written back with its
// lease; other holds are the store's.
func (l *Leasing) Settle(ctx context.Context, holdID string, actual Amount, rec *UsageRecord) (Settlement, error) {
	if err := ValidateID("id", holdID); err != nil {
		return Settlement{}, err
	}
	if err := ValidateActual(actual); err != nil {
		return Settlement{}, err
	}
	l.mu.Lock()
	h, ok := l.holds[holdID]
	if !ok {
		l.mu.Unlock()
		return l.store.Settle(ctx, holdID, actual, rec)
	}
	s, owed, err := l.settleLocal(ctx, h, actual, rec)
	closed := l.closed
	l.mu.Unlock()
	if err == nil && owed.amount > 0 {
		s = l.collect(ctx, h, s, owed)
	}
	if err == nil && closed {
		_, _ = l.flushLease(ctx, h.lease, true) // no flusher runs any more
	}
	return s, err
}

// owing is what a settlement owes beyond its hold and its lease's free
// money: amount, and the entry to write back once it is collected.
type owing struct {
	amount Amount
	entry  entry
}

// collect takes what a request cost beyond its hold and its lease from the
// account's available money in the store, at most all of it (a hold of
// its own, settled at once), so that the request's Settlement and usage
// record say exactly what could not be collected, as a store's Settle
// would. When the store fails, the amount becomes a debt of the lease,
// which its next flush collects.
func (l *Leasing) collect(ctx context.Context, h *localHold, s Settlement, o owing) Settlement {
	l.mu.Lock()
	l.nextID++
	id := l.prefix + "x" + strconv.FormatUint(l.nextID, 10)
	l.mu.Unlock()
	var (
		got Amount
		err error
	)
	switch dh, rerr := l.store.Reserve(ctx, Reservation{ID: id, Account: h.hold.Account, Max: o.amount, Min: 1, TTL: l.opts.TTL}); {
	case errors.Is(rerr, ErrInsufficientCredits):
	case rerr != nil:
		err = rerr
	default:
		var st Settlement
		if st, err = l.store.Settle(ctx, id, o.amount, nil); err == nil {
			got = st.Spent
		} else if rerr := l.store.Release(ctx, dh.ID); rerr != nil {
			l.logger.Warn("llmgate: credits hold not released; it expires", "hold", dh.ID, "error", rerr.Error())
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ls := h.lease
	if err != nil {
		// The lease owes it: its next flush spends it from the account.
		l.logger.Warn("llmgate: credits excess left to the lease's next flush", "account", h.hold.Account, "error", err.Error())
		ls.debt += o.amount
		o.entry.spent += o.amount
	} else {
		s.Spent -= o.amount - got
		s.Uncollected = o.amount - got
		if o.entry.rec != nil {
			o.entry.rec.Uncollected = s.Uncollected
		}
	}
	h.settlement = s
	ls.entries = append(ls.entries, o.entry)
	ls.collecting--
	l.pending++
	if err != nil {
		l.wake()
	}
	return s
}

// settleLocal settles the local hold h; l.mu is held. What the lease
// cannot pay is returned owed, for collect, instead of being written back.
func (l *Leasing) settleLocal(ctx context.Context, h *localHold, actual Amount, rec *UsageRecord) (Settlement, owing, error) {
	switch h.state {
	case holdSettled:
		return h.settlement, owing{}, nil
	case holdReleased:
		return Settlement{}, owing{}, fmt.Errorf("%w: hold %q was released", ErrHoldClosed, h.hold.ID)
	}
	var keep *UsageRecord
	if rec != nil {
		keep = copyRecord(rec)
		keep.Paid, keep.Uncollected = true, 0
		if keep.Account == "" {
			keep.Account = h.hold.Account
		}
		if err := ValidateUsageRecord(keep); err != nil {
			return Settlement{}, owing{}, err
		}
		if keep.Account != h.hold.Account {
			return Settlement{}, owing{}, Invalid("record.account", "not the hold's account "+h.hold.Account)
		}
	}
	if err := ctx.Err(); err != nil {
		return Settlement{}, owing{}, err
	}
	if l.pending >= l.opts.MaxPending {
		return Settlement{}, owing{}, fmt.Errorf("%w: %d settlements wait to be written back", ErrUnavailable, l.pending)
	}
	ls := h.lease
	var s Settlement
	var fromHold Amount
	if h.state == holdOpen {
		fromHold = min(actual, h.hold.Amount)
		s.Released = h.hold.Amount - fromHold
		ls.free += s.Released
		ls.held -= h.hold.Amount
		ls.holds--
		l.ended = append(l.ended, h.hold.ID)
	}
	// An excess over the hold is paid from the lease's free money; what
	// that cannot pay is owed, collected from the store by collect.
	excess := actual - fromHold
	fromFree := max(0, min(excess, ls.free))
	ls.free -= fromFree
	s.Spent = actual
	h.state, h.settlement = holdSettled, s
	ls.lastUse = l.gen
	if owed := excess - fromFree; owed > 0 {
		// What the lease paid is written back now (its books must
		// always add up, whatever a flush meanwhile reads); the record
		// follows once collect knows what could not be collected.
		ls.entries = append(ls.entries, entry{spent: fromHold + fromFree})
		l.pending++
		ls.collecting++ // the lease is not given back before the record is in
		return s, owing{amount: owed, entry: entry{rec: keep}}, nil
	}
	ls.entries = append(ls.entries, entry{spent: fromHold + fromFree, rec: keep})
	l.pending++
	if len(ls.entries) >= MaxFlushRecords/2 {
		l.wake()
	}
	return s, owing{}, nil
}

// Release gives a local hold back to its lease; other holds are the
// store's.
func (l *Leasing) Release(ctx context.Context, holdID string) error {
	if err := ValidateID("id", holdID); err != nil {
		return err
	}
	l.mu.Lock()
	h, ok := l.holds[holdID]
	if !ok {
		l.mu.Unlock()
		return l.store.Release(ctx, holdID)
	}
	defer l.mu.Unlock()
	if h.state == holdOpen {
		ls := h.lease
		ls.free += h.hold.Amount
		ls.held -= h.hold.Amount
		ls.holds--
		h.state = holdReleased
		l.ended = append(l.ended, holdID)
	}
	return nil
}

// Record keeps rec in the store.
func (l *Leasing) Record(ctx context.Context, rec *UsageRecord) error {
	return l.store.Record(ctx, rec)
}

// Sweep sweeps the store.
func (l *Leasing) Sweep(ctx context.Context) (SweepResult, error) { return l.store.Sweep(ctx) }

// Balance returns the store's balance of account with this replica's
// unflushed spending moved from Held to Spent and its leases' free money
// to Available.
func (l *Leasing) Balance(ctx context.Context, account string) (Balance, error) {
	b, err := l.store.Balance(ctx, account)
	if err != nil {
		return b, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.accounts[account]
	if a == nil {
		return b, nil
	}
	for _, ls := range append([]*lease{a.cur}, a.old...) {
		if ls == nil || ls.dead {
			continue
		}
		var spent Amount
		for _, e := range ls.entries {
			spent += e.spent
		}
		if ls.flushing != nil {
			spent += ls.flushing.spent
		}
		spent -= ls.debt // not held: still to collect
		free := max(0, ls.free)
		if spent+free > b.Held {
			continue // the store's view moved on (a flush landed): keep it
		}
		b.Held -= spent + free
		b.Spent += spent
		b.Available += free
	}
	return b, nil
}

// run flushes every FlushInterval, or when kicked, until Close.
func (l *Leasing) run() {
	defer close(l.done)
	t := time.NewTicker(l.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.tick(true)
		case <-l.kick:
			l.tick(false)
		}
	}
}

// tick flushes the leases that need it; a timed tick also starts a new
// generation (ages idle leases, forgets old ended holds, ends expired
// local holds).
func (l *Leasing) tick(timed bool) {
	ctx, cancel := context.WithTimeout(context.Background(), max(l.opts.FlushInterval, 10*time.Second))
	defer cancel()
	var todo []*lease
	l.mu.Lock()
	if timed {
		l.newGeneration()
	}
	now := l.opts.Now()
	for acct, a := range l.accounts {
		if ls := a.cur; ls != nil && (ls.dead || ls.holds == 0 && ls.collecting == 0 && (ls.low || l.gen-ls.lastUse >= l.idleGens())) {
			ls.retired = true
			a.old, a.cur = append(a.old, ls), nil
		}
		for _, ls := range append([]*lease{a.cur}, a.old...) {
			if ls != nil && l.needsFlush(ls, now, timed) {
				todo = append(todo, ls)
			}
		}
		if a.cur == nil && len(a.old) == 0 && !a.opening && a.directUntil <= l.gen {
			delete(l.accounts, acct)
		}
	}
	l.mu.Unlock()
	for _, ls := range todo {
		_, _ = l.flushLease(ctx, ls, timed) // failures are logged, and retried next tick
	}
}

// newGeneration starts a flush generation: ended local holds of two
// generations ago are forgotten, local holds past their ExpiresAt are
// released (as a store's Sweep would); l.mu is held.
func (l *Leasing) newGeneration() {
	l.gen++
	for _, id := range l.endedPrev {
		if h := l.holds[id]; h != nil && h.state != holdOpen {
			delete(l.holds, id)
		}
	}
	l.endedPrev, l.ended = l.ended, l.endedPrev[:0]
	now := l.opts.Now()
	for id, h := range l.holds {
		if h.state == holdOpen && !now.Before(h.hold.ExpiresAt) {
			ls := h.lease
			ls.free += h.hold.Amount
			ls.held -= h.hold.Amount
			ls.holds--
			h.state = holdExpired
			h.hold.Amount = 0
			l.ended = append(l.ended, id)
		}
	}
}

// needsFlush reports whether ls has something to write back, needs
// growing, is near its expiry or is to be given back; l.mu is held.
func (l *Leasing) needsFlush(ls *lease, now time.Time, timed bool) bool {
	switch {
	case ls.debt > 0, len(ls.entries) >= MaxFlushRecords/2:
		return true
	case ls.flushing != nil, len(ls.entries) > 0:
		// Between timed ticks only a full batch is worth a write: the
		// store's cost is mostly per write.
		return timed || ls.retired
	case ls.retired:
		return ls.holds == 0
	case ls.dead:
		return false
	}
	return ls.free < l.opts.Size/2 && !ls.low || timed && ls.expires.Sub(now) < l.opts.TTL/2
}

// flushLease writes back what ls spent, grows it and, once a retired lease
// is unused and written back, gives it back to the store.
//
// A full flush (all) writes everything settled before the call; otherwise
// (a flusher woken between ticks) it writes only full batches, so that
// batches stay large under load.
func (l *Leasing) flushLease(ctx context.Context, ls *lease, all bool) (ran bool, err error) {
	l.mu.Lock()
	if ls.busy {
		l.mu.Unlock()
		return false, nil // another goroutine writes it
	}
	ls.busy = true
	owed := 0 // entries settled before the call, still to write
	if all {
		owed = len(ls.entries)
		if ls.flushing != nil {
			owed += len(ls.flushing.entries)
		}
	}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		ls.busy = false
		l.mu.Unlock()
	}()
	for {
		l.mu.Lock()
		b := ls.flushing
		if b == nil {
			b = &batch{seq: ls.seq + 1}
			n := min(len(ls.entries), MaxFlushRecords)
			b.entries = ls.entries[:n:n]
			ls.entries = ls.entries[n:]
			for _, e := range b.entries {
				b.spent += e.spent
			}
			b.debt, ls.debt = ls.debt, 0
			// Grow the store's hold back to what the requests in flight
			// hold plus, while the lease takes new requests, Size free.
			// After the spend it holds held + free - debt (a debt larger
			// than that was taken from the account's available money).
			target := ls.held
			if !ls.retired && !ls.dead && !ls.low {
				target += l.opts.Size
			}
			b.grow = max(0, target-max(0, ls.held+ls.free-b.debt))
			ls.flushing = b
		}
		l.mu.Unlock()

		recs := make([]*UsageRecord, 0, len(b.entries))
		for _, e := range b.entries {
			if e.rec != nil {
				recs = append(recs, e.rec)
			}
		}
		res, err := l.store.Flush(ctx, LeaseFlush{HoldID: ls.id, Seq: b.seq, Spent: b.spent, Records: recs, Grow: b.grow, TTL: l.opts.TTL})
		l.mu.Lock()
		if err != nil {
			retry := errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
			if !retry {
				// The store refused the lease (released by someone else,
				// or unknown): what it spent cannot be written back.
				ls.dead, ls.flushing = true, nil
				l.pending -= len(b.entries)
			}
			l.mu.Unlock()
			l.logger.Error("llmgate: credits lease flush failed", "account", ls.account, "lease", ls.id,
				"spent", b.spent.String(), "records", len(recs), "retried", retry, "error", err.Error())
			return true, err
		}
		ls.flushing = nil
		ls.seq = b.seq
		l.pending -= len(b.entries)
		// What is free is what the store's hold holds now less what
		// this replica's requests hold or spent since (even when a replay
		// hides what an earlier try of the batch grew).
		ls.free = res.Hold.Amount - ls.held + ls.debt
		for _, e := range ls.entries {
			ls.free -= e.spent
		}
		ls.expires = res.Hold.ExpiresAt
		if !res.Replayed && res.Grown < b.grow {
			ls.low = true
		}
		if res.Swept {
			ls.dead, ls.free = true, 0
		}
		// Go on while a full batch waits, entries owed to a full flush
		// remain, or everything must go (a retired lease, a closed
		// Leasing); the rest waits for the next tick.
		owed -= len(b.entries)
		more := len(ls.entries) >= MaxFlushRecords/2 || owed > 0 || len(ls.entries) > 0 && (ls.retired || l.closed)
		// A retired lease is given back once nothing is held from it or
		// left to write.
		release := ls.retired && ls.holds == 0 && ls.collecting == 0 && len(ls.entries) == 0 && ls.debt == 0
		check := !ls.low && !ls.retired && !ls.dead && ls.checked != l.gen
		ls.checked = l.gen
		l.mu.Unlock()
		if check {
			// Near exhaustion every replica gives its lease back, so that
			// what leases hold never refuses a request the account could
			// pay.
			if bal, err := l.store.Balance(ctx, ls.account); err == nil && bal.Available < l.opts.Size*Amount(l.opts.MinBalance) {
				l.mu.Lock()
				ls.low = true
				l.mu.Unlock()
			}
		}
		if res.Uncollected > 0 {
			l.logger.Warn("llmgate: requests cost more than their account could pay", "account", ls.account,
				"uncollected", res.Uncollected.String())
		}
		if len(res.Conflicts) > 0 {
			l.logger.Error("llmgate: usage records not kept: their IDs were kept with other content", "account", ls.account,
				"ids", res.Conflicts)
		}
		if more {
			continue
		}
		if release {
			return true, l.giveBack(ctx, ls)
		}
		return true, nil
	}
}

// giveBack releases a retired, unused, written-back lease and forgets it.
func (l *Leasing) giveBack(ctx context.Context, ls *lease) error {
	if err := l.store.Release(ctx, ls.id); err != nil && !errors.Is(err, ErrHoldNotFound) {
		l.logger.Warn("llmgate: credits lease not given back; it expires", "account", ls.account, "lease", ls.id, "error", err.Error())
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.accounts[ls.account]; a != nil {
		for i, o := range a.old {
			if o == ls {
				a.old = append(a.old[:i], a.old[i+1:]...)
				break
			}
		}
		if ls.low {
			// The account is short: its requests hold in the store for a
			// while.
			a.directUntil = l.gen + l.idleGens()
		}
	}
	return nil
}

// Sync writes back everything settled so far and gives back the leases
// that no request holds from (the next request opens a new one): when it
// returns nil, the store's books have every request settled before the
// call, and its Held only the leases of requests still in flight.
func (l *Leasing) Sync(ctx context.Context) error {
	l.mu.Lock()
	var all []*lease
	for _, a := range l.accounts {
		if ls := a.cur; ls != nil && ls.holds == 0 {
			ls.retired = true
			a.old, a.cur = append(a.old, ls), nil
		}
		if a.cur != nil {
			all = append(all, a.cur)
		}
		all = append(all, a.old...)
	}
	l.mu.Unlock()
	var errs []error
	for _, ls := range all {
		for {
			ran, err := l.flushLease(ctx, ls, true)
			if ran {
				errs = append(errs, err)
				break
			}
			select { // the flusher is writing it: then write what is left
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	return errors.Join(errs...)
}

// Close stops the flusher, writes back everything spent and gives the
// unused leases back (leases with requests in flight expire). ctx bounds
// the writing back.
func (l *Leasing) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	var all []*lease
	for _, a := range l.accounts {
		if a.cur != nil {
			a.cur.retired = true
			a.old, a.cur = append(a.old, a.cur), nil
		}
		all = append(all, a.old...)
	}
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	for _, ls := range all {
		_, _ = l.flushLease(ctx, ls, true)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending > 0 {
		return fmt.Errorf("%w: %d settlements were not written back", ErrUnavailable, l.pending)
	}
	return nil
}
