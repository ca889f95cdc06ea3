// Package credits is the contract of llmgate's prepaid credits: accounts
// buy credits in lots, requests hold their worst-case cost before they go
// upstream and settle what they actually cost when they end, and every
// request (paid with credits or not) leaves a usage record.
//
// [Ledger] is what the gateway calls on the hot path; [Store] adds what the
// admin API and the CLI need. Three stores implement Store: the in-memory
// [Memory] here, store/sqlite and store/postgres; package creditstest holds
// the one conformance suite they all pass. This package imports nothing of
// llmgate's, so a store depends on the contract only.
//
// # Money
//
// Money is an [Amount]: an int64 count of micro-USD (1e-6 US dollars), never
// a float. $10.00 is 10_000_000.
//
// # Accounting
//
// An account's money is always in exactly one of five places, so that for
// every account at every moment
//
//	Purchased = Available + Held + Spent + Expired
//
// (see [Balance]). A purchase adds a [Lot] that expires [LotLifetime] after
// it was bought. A hold ([Ledger.Reserve]) takes money out of the account's
// lots, earliest expiry first, into the hold; settling it
// ([Ledger.Settle]) spends what the request cost from the hold (again
// earliest expiry first) and gives the rest back to the lots it came from;
// releasing it gives all of it back. Money given back to a lot that has
// expired in the meantime is expired with it. Remainders of expired lots are
// recorded as expired, never as spent.
//
// A request may turn out to cost more than its hold (a provider reporting
// more tokens than the estimate). Settle then spends the excess from the
// account's available money, at most all of it: the account never goes
// below zero, and what could not be collected is reported as
// [Settlement.Uncollected] and kept in the usage record.
//
// # Holds
//
// Reserve, Settle and Release are idempotent by hold ID, like a
// rate.Reservation that can be cancelled once. A hold the gateway could not
// end (a crash) expires at its ExpiresAt, and [Sweeper.Sweep] releases it.
// A request that outlives its hold still settles: its cost is spent from
// the available money, as for an excess.
//
// # Leases
//
// A database write per request costs more than proxying the request.
// [Leasing] is a Ledger in front of a store that is a [Leaser]: each
// replica holds a slice of an account's money in one store hold (a lease),
// divides it among its requests in memory, and writes their spends and
// usage records back in batches with [Leaser.Flush], idempotent by a
// sequence number. No replica holds more than its leases, so nothing is
// overspent; a crash loses at most one flush interval of charges and
// records, and the lease's money goes back to the account when it expires.
package credits

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Amount is money in micro-USD (1e-6 US dollars). The zero Amount is no
// money. Amounts are plain int64 values; arithmetic on them is the caller's,
// and the stores refuse negative amounts where they make no sense.
type Amount int64

// Units of Amount.
const (
	Microdollar Amount = 1
	Cent        Amount = 10_000
	Dollar      Amount = 1_000_000
)

// Rules of the ledger.
const (
	// MinPurchase is the smallest purchase: $5.00.
	MinPurchase = 5 * Dollar
	// MaxPurchase bounds one purchase ($1,000,000), far from int64 overflow
	// however many lots an account holds.
	MaxPurchase = 1_000_000 * Dollar
	// LotLifetime is how long purchased credits last: 365 days.
	LotLifetime = 365 * 24 * time.Hour
	// MaxIDLength bounds account, hold, purchase, request and key IDs
	// (bytes).
	MaxIDLength = 128
	// MaxListLimit bounds the page size of every list.
	MaxListLimit = 1000
	// DefaultListLimit is the page size when a list asks for 0.
	DefaultListLimit = 100
	// MaxAttempts bounds the attempts kept in one usage record; the rest
	// are counted in UsageRecord.AttemptsDropped.
	MaxAttempts = 32
)

// ParseAmount parses a decimal US dollar amount: "10", "10.5", "10.00",
// "$10.00" or "0.000001"; at most six decimals, no sign, no exponent, at
// most MaxPurchase*1000. It never goes through a float.
func ParseAmount(s string) (Amount, error) {
	in := s
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "$")
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && frac == "" || hasDot && frac == "" {
		return 0, fmt.Errorf("credits: amount %q: not a decimal number of dollars", in)
	}
	if len(frac) > 6 {
		return 0, fmt.Errorf("credits: amount %q: more than six decimals (the unit is one micro-dollar)", in)
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, fmt.Errorf("credits: amount %q: not a decimal number of dollars", in)
			}
		}
	}
	if len(whole) > 12 {
		return 0, fmt.Errorf("credits: amount %q: too large", in)
	}
	var w int64
	if whole != "" {
		w, _ = strconv.ParseInt(whole, 10, 64)
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	return Amount(w*int64(Dollar) + f), nil
}

// String formats a as dollars with at least two and at most six decimals:
// "10.00", "0.000123", "-1.50".
func (a Amount) String() string {
	neg := a < 0
	u := uint64(a)
	if neg {
		u = uint64(-a)
		if a == math.MinInt64 {
			u = 1 << 63
		}
	}
	whole, frac := u/1_000_000, u%1_000_000
	fs := fmt.Sprintf("%06d", frac)
	for len(fs) > 2 && fs[len(fs)-1] == '0' {
		fs = fs[:len(fs)-1]
	}
	s := strconv.FormatUint(whole, 10) + "." + fs
	if neg {
		return "-" + s
	}
	return s
}

// Errors of ledgers, matched with errors.Is.
var (
	// ErrInsufficientCredits: the account's available money does not
	// cover the reservation's minimum. The error is an
	// *InsufficientError.
	ErrInsufficientCredits = errors.New("credits: insufficient credits")
	// ErrPurchaseBelowMinimum: a purchase of less than MinPurchase.
	ErrPurchaseBelowMinimum = errors.New("credits: purchase below the minimum of $5.00")
	// ErrHoldNotFound: no hold with that ID.
	ErrHoldNotFound = errors.New("credits: hold not found")
	// ErrHoldClosed: Settle of a hold that was released, or Reserve of a
	// hold ID that was already ended.
	ErrHoldClosed = errors.New("credits: hold already ended")
	// ErrConflict: an ID already used with different content (a purchase
	// ID with another account or amount, a hold ID of another account, a
	// usage record ID recorded twice with different content).
	ErrConflict = errors.New("credits: conflict")
	// ErrInvalid wraps a *ValidationError: an argument breaks a rule.
	ErrInvalid = errors.New("credits: invalid")
	// ErrUnavailable wraps a store's failure to answer (database down,
	// timeout): the call may be retried with the same IDs.
	ErrUnavailable = errors.New("credits: store unavailable")
)

// InsufficientError is the error of a Reserve that the account cannot
// cover. It matches ErrInsufficientCredits.
type InsufficientError struct {
	Account string
	// Available is what the account could have held; Min what the
	// reservation needed at least.
	Available, Min Amount
	// Never reports that the account has never bought credits.
	Never bool
}

func (e *InsufficientError) Error() string {
	if e.Never {
		return "credits: account " + strconv.Quote(e.Account) + " has no credits: buy at least $" + MinPurchase.String()
	}
	return "credits: account " + strconv.Quote(e.Account) + " has $" + e.Available.String() +
		" available, the request needs at least $" + e.Min.String()
}

// Is makes errors.Is(err, ErrInsufficientCredits) true.
func (e *InsufficientError) Is(target error) bool { return target == ErrInsufficientCredits }

// ValidationError names the argument field that broke a rule. It matches
// ErrInvalid.
type ValidationError struct {
	Field  string // e.g. "amount", "account", "limit", "cursor"
	Reason string
}

func (e *ValidationError) Error() string { return "credits: invalid " + e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Invalid returns a *ValidationError for field.
func Invalid(field, reason string) error { return &ValidationError{Field: field, Reason: reason} }

// Reservation asks Reserve to hold up to Max of an account's money, and at
// least Min.
type Reservation struct {
	// ID identifies the hold; the gateway uses the request ID. Required.
	ID string
	// Account whose money is held. Required.
	Account string
	// Max is the most to hold (the request's worst case); Min the least
	// that is still worth holding (0 < Min ≤ Max). Reserve holds
	// min(Max, Available) when that is at least Min.
	Max, Min Amount
	// TTL is how long the hold lasts if nobody ends it; after it a Sweep
	// releases it. Required, at most 24 hours.
	TTL time.Duration
}

// Hold is money set aside for one request.
type Hold struct {
	ID, Account string
	// Amount is what is held (between the reservation's Min and Max).
	Amount    Amount
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Settlement is the outcome of a Settle.
type Settlement struct {
	// Spent is what the account paid: the actual cost, or less when the
	// account could not pay it all.
	Spent Amount
	// Released is what went back to the account from the hold.
	Released Amount
	// Uncollected is what the request cost beyond what the account could
	// pay (the hold and the available money after it).
	Uncollected Amount
}

// Balance is an account's money, in the five places of the accounting
// identity Purchased = Available + Held + Spent + Expired.
type Balance struct {
	Account string
	// Available is what requests can hold now: the remainders of the
	// lots that have not expired.
	Available Amount
	// Held is what open holds have set aside.
	Held Amount
	// Spent is what settled requests paid.
	Spent Amount
	// Expired is what lots lost when they expired (including lots past
	// their expiry that no Sweep has recorded yet).
	Expired Amount
	// Purchased is the sum of all purchases.
	Purchased Amount
	// NextExpiry is when the earliest lot with money left expires; zero
	// when none.
	NextExpiry time.Time
	// Known reports that the account ever bought credits.
	Known bool
}

// Purchase adds credits to an account.
type Purchase struct {
	// ID makes the purchase idempotent (an order or payment ID): buying
	// again with the same ID and the same account and amount returns the
	// first lot, with another account or amount it is ErrConflict.
	// Required.
	ID      string
	Account string
	// Amount is at least MinPurchase and at most MaxPurchase.
	Amount Amount
	// Note is free-form operator text (≤ 255 bytes), such as a payment
	// reference.
	Note string
}

// Lot is one purchase's credits.
type Lot struct {
	ID, Account string
	// Amount is what was bought, Remaining what is left (0 once expired).
	Amount, Remaining Amount
	PurchasedAt       time.Time
	// ExpiresAt is PurchasedAt + LotLifetime.
	ExpiresAt time.Time
	Note      string
}

// TransactionKind classifies a movement of money.
type TransactionKind string

// The transaction kinds. Holds and releases are not transactions: they
// move money within the account, not in or out of it.
const (
	// TxPurchase: a lot was bought (Amount > 0).
	TxPurchase TransactionKind = "purchase"
	// TxSpend: a settled request paid Amount (HoldID set: the gateway
	// uses the request ID as the hold ID).
	TxSpend TransactionKind = "spend"
	// TxExpire: a lot's remainder expired (LotID set).
	TxExpire TransactionKind = "expire"
)

// Transaction is one movement of money in or out of an account. Amount is
// always positive; Kind says the direction.
type Transaction struct {
	ID      string
	Account string
	Kind    TransactionKind
	Amount  Amount
	LotID   string // purchase and expire
	HoldID  string // spend
	Note    string
	At      time.Time
}

// ListOptions selects a page of a list. Pages run from newest to oldest.
type ListOptions struct {
	// Limit is the page size, 1 to MaxListLimit; 0 means DefaultListLimit.
	// A negative Limit or one above MaxListLimit is ErrInvalid (field
	// "limit").
	Limit int
	// Cursor is the NextCursor of the previous page; "" starts at the
	// newest. A cursor the store did not make is ErrInvalid (field
	// "cursor").
	Cursor string
}

// TransactionPage is one page of an account's transactions.
type TransactionPage struct {
	Transactions []Transaction
	NextCursor   string
}

// AccountPage is one page of accounts with their balances, ordered by
// account ID.
type AccountPage struct {
	Accounts   []Balance
	NextCursor string
}

// KeySource says who paid the upstream: the operator's configured provider
// keys (paid with credits) or the client's own keys (BYOK).
type KeySource string

// The key sources.
const (
	// SourceConfigured: the operator's provider key; paid with credits
	// when credits are on.
	SourceConfigured KeySource = "configured"
	// SourceAttached: a provider key attached to the client's gateway key
	// (BYOK).
	SourceAttached KeySource = "attached"
	// SourceClient: the client's own provider credential, passed through
	// (BYOK).
	SourceClient KeySource = "client"
	// SourceNone: no key (a local upstream that needs none).
	SourceNone KeySource = "none"
)

// Tokens are token counts. Input is the whole prompt, including CacheRead
// and CacheWrite; Output includes reasoning tokens.
type Tokens struct {
	Input      int64 `json:"input"`
	Output     int64 `json:"output"`
	CacheRead  int64 `json:"cache_read,omitempty"`
	CacheWrite int64 `json:"cache_write,omitempty"`
}

// AttemptRecord is one upstream attempt of a request, or a candidate
// skipped without one.
type AttemptRecord struct {
	Provider  string    `json:"provider"`
	Model     string    `json:"model"`
	KeyID     string    `json:"key_id,omitempty"`
	KeySource KeySource `json:"key_source,omitempty"`
	Skipped   bool      `json:"skipped,omitempty"`
	Status    int       `json:"status,omitempty"`
	Error     string    `json:"error,omitempty"`
	// Served reports the attempt that answered the client; its tokens are
	// the request's.
	Served   bool          `json:"served,omitempty"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
}

// UsageRecord is what one request used and cost. Every request the gateway
// meters leaves one, whether credits paid for it or not.
type UsageRecord struct {
	// ID identifies the record (the gateway uses the request ID); a record
	// is kept once, and writing it again with the same content is a no-op.
	ID        string
	RequestID string
	// KeyID is the gateway API key's ID, "" without one. Account is the
	// account of the request's principal, "" without one; Paid says
	// whether its credits paid.
	KeyID   string
	Account string
	// Provider and Model served the request ("" when none did).
	Provider, Model string
	// KeySource is who paid the upstream for the serving attempt.
	KeySource KeySource
	// Reported is what the provider reported; Estimated what the gateway
	// counted (the input from the request, the output from the streamed
	// text). ReportedKnown says the provider reported anything; when it did
	// its counts are the ones billed.
	Reported      Tokens
	ReportedKnown bool
	Estimated     Tokens
	// Cost is the model's price of the billed tokens, Fee the gateway's
	// processing fee, both already rounded up to the micro-dollar. The
	// account is charged Cost + Fee when credits pay (Paid).
	Cost, Fee Amount
	// Paid reports that credits paid for the request; Uncollected is what
	// the account could not pay.
	Paid        bool
	Uncollected Amount
	// Status is the HTTP status the client got; Error the gateway's error
	// code ("" on success).
	Status int
	Error  string
	Stream bool
	// Start is when the request arrived, End when it ended.
	Start, End time.Time
	// Attempts lists the upstream attempts, at most MaxAttempts.
	Attempts        []AttemptRecord
	AttemptsDropped int
}

// Charge is what the request charges the account: Cost + Fee.
func (r *UsageRecord) Charge() Amount { return r.Cost + r.Fee }

// UsageQuery selects usage records. Pages run from newest to oldest (by
// Start, then ID).
type UsageQuery struct {
	// Account and KeyID, when not empty, select one account's or one
	// key's records.
	Account, KeyID string
	// From (inclusive) and To (exclusive) bound Start; zero means
	// unbounded.
	From, To time.Time
	ListOptions
}

// UsagePage is one page of usage records.
type UsagePage struct {
	Records    []UsageRecord
	NextCursor string
}

// Group names a dimension of a usage summary.
type Group string

// The summary dimensions.
const (
	GroupDay      Group = "day" // UTC day of Start
	GroupProvider Group = "provider"
	GroupModel    Group = "model" // implies nothing: group by provider too to tell models apart
	GroupKey      Group = "key"
	GroupAccount  Group = "account"
)

// SummaryQuery selects and groups usage records.
type SummaryQuery struct {
	Account, KeyID string
	From, To       time.Time
	// GroupBy lists the dimensions, each at most once; empty means one row
	// for everything.
	GroupBy []Group
}

// SummaryRow totals the usage records of one group. The fields of
// dimensions not grouped by are empty.
type SummaryRow struct {
	Day      string // YYYY-MM-DD (UTC)
	Provider string
	Model    string
	KeyID    string
	Account  string
	Requests int64
	// Tokens are the billed tokens (reported, else estimated).
	Tokens      Tokens
	Cost, Fee   Amount
	Uncollected Amount
}

// SweepResult says what a Sweep did.
type SweepResult struct {
	// HoldsReleased is how many expired holds were released, and
	// Released their money.
	HoldsReleased int
	Released      Amount
	// LotsExpired is how many lots had a remainder recorded as expired,
	// and Expired that money.
	LotsExpired int
	Expired     Amount
}

// Ledger is what the gateway calls for each request. Implementations are
// safe for concurrent use by many goroutines and, for database stores, by
// many processes: no interleaving of calls may hold or spend more than an
// account has.
type Ledger interface {
	// Reserve holds min(r.Max, available) of r.Account's money when that
	// is at least r.Min, else fails with an *InsufficientError. Reserving
	// an open hold's ID again returns it unchanged (ErrConflict for
	// another account); an ended one's is ErrHoldClosed.
	Reserve(ctx context.Context, r Reservation) (Hold, error)
	// Settle ends the hold: it spends actual (≥ 0) and gives the rest
	// back, and keeps rec (when not nil, with Paid set and Uncollected
	// filled in) atomically with the charge. Settling a settled hold again
	// returns the first Settlement and changes nothing; a released hold is
	// ErrHoldClosed; an expired one (released by a Sweep) spends actual
	// from the available money.
	Settle(ctx context.Context, holdID string, actual Amount, rec *UsageRecord) (Settlement, error)
	// Release ends the hold and gives all of it back. Releasing an ended
	// hold does nothing and returns nil; an unknown one is
	// ErrHoldNotFound.
	Release(ctx context.Context, holdID string) error
	// Record keeps the usage record of a request that credits did not pay
	// for (BYOK, free upstreams, requests refused before any hold).
	Record(ctx context.Context, rec *UsageRecord) error
	// Balance returns the account's balance; an account that never bought
	// credits has the zero Balance with its Account set.
	Balance(ctx context.Context, account string) (Balance, error)
}

// Sweeper is implemented by ledgers whose holds and lots expire: Sweep
// releases the holds past their ExpiresAt and records the remainders of
// lots past theirs as expired. It is safe to run on many replicas at once.
type Sweeper interface {
	Sweep(ctx context.Context) (SweepResult, error)
}

// MaxFlushRecords bounds LeaseFlush.Records.
const MaxFlushRecords = 1000

// LeaseFlush writes back what a replica spent from a lease: an open hold
// (made with Reserve) that the replica spends from in memory for many
// requests, instead of one hold per request (see [Leasing]).
type LeaseFlush struct {
	// HoldID is the lease's hold. Required.
	HoldID string
	// Seq numbers the flushes of one hold from 1. A flush whose Seq is not
	// above the last applied one's is a retry of it: it changes nothing
	// and returns the hold as it is (FlushResult.Replayed).
	Seq int64
	// Spent is what the flush's requests paid: it is spent from the hold,
	// earliest expiry first, and what exceeds the hold from the available
	// money, at most all of it (the rest is FlushResult.Uncollected). The
	// hold stays open with what is left.
	Spent Amount
	// Records are the usage records of the requests Spent paid for, kept
	// atomically with the spend with Paid true and Account set to the
	// hold's (a record naming another account is ErrInvalid). At most
	// MaxFlushRecords. A record whose ID was kept before with the same
	// content is a no-op; with other content it is not kept, and its ID is
	// in FlushResult.Conflicts (the spend still happens).
	Records []*UsageRecord
	// Grow, when positive, then takes up to Grow more of the account's
	// available money into the hold, earliest expiry first: as much as
	// there is.
	Grow Amount
	// TTL, when positive, moves the hold's ExpiresAt to now + TTL (at most
	// MaxHoldTTL).
	TTL time.Duration
}

// FlushResult is the outcome of a Flush.
type FlushResult struct {
	// Hold is the hold after the flush: Amount is what it still holds.
	Hold Hold
	// Spent is what the account paid of LeaseFlush.Spent; Uncollected what
	// it could not pay.
	Spent, Uncollected Amount
	// Grown is what Grow took into the hold.
	Grown Amount
	// Conflicts lists the IDs of records not kept because their ID was
	// kept with other content.
	Conflicts []string
	// Swept reports that a Sweep had released the hold (it outlived its
	// ExpiresAt): Spent came from the available money, nothing was grown,
	// and the hold holds nothing.
	Swept bool
	// Replayed reports a flush whose Seq was applied before.
	Replayed bool
}

// Leaser is implemented by stores that let a replica spend one hold in
// many steps: the hold is a lease of the account's money that the replica
// divides among its requests in memory, writing back their spends and
// usage records in batches with Flush. A released or settled hold is
// ErrHoldClosed and an unknown one ErrHoldNotFound; nothing changes then.
// An ErrUnavailable flush may or may not have been applied: retrying it
// with the same Seq is safe.
type Leaser interface {
	Flush(ctx context.Context, f LeaseFlush) (FlushResult, error)
}

// Store is a whole credits store: the Ledger, the Sweeper, and what the
// admin API and the CLI need.
type Store interface {
	Ledger
	Sweeper
	// Purchase adds a lot (see Purchase for idempotency). Below
	// MinPurchase is ErrPurchaseBelowMinimum.
	Purchase(ctx context.Context, p Purchase) (Lot, error)
	// Lots lists an account's lots, newest first.
	Lots(ctx context.Context, account string, o ListOptions) ([]Lot, string, error)
	// Transactions lists an account's transactions, newest first.
	Transactions(ctx context.Context, account string, o ListOptions) (TransactionPage, error)
	// Accounts lists the accounts that ever bought credits, with their
	// balances, by account ID.
	Accounts(ctx context.Context, o ListOptions) (AccountPage, error)
	// Usage lists usage records.
	Usage(ctx context.Context, q UsageQuery) (UsagePage, error)
	// Summary totals usage records by q.GroupBy, ordered by the group
	// values (day ascending).
	Summary(ctx context.Context, q SummaryQuery) ([]SummaryRow, error)
}
