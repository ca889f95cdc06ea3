package admin

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmgate/gateway/credits"
)

// Bounds of the credits and usage routes' inputs.
const (
	// MaxQuery bounds a credits or usage route's raw query string, in
	// bytes.
	MaxQuery = 4 << 10
	// PurchaseIDPrefix begins the IDs the admin API makes for purchases
	// that name none (no "id" member, no Idempotency-Key header).
	PurchaseIDPrefix = "pur_"
	// replayScan bounds how many of an account's lots a purchase reads to
	// tell a replayed purchase (200) from a new one (201).
	replayScan = 10 * credits.MaxListLimit
)

// money returns a in its two JSON forms: the exact dollar string
// ("10.50") and the integer micro-USD (10500000). The types below write
// every amount as both, under "NAME" and "NAME_micros".
func money(a credits.Amount) (string, int64) { return a.String(), int64(a) }

// balanceJSON is an account's balance.
type balanceJSON struct {
	Account         string     `json:"account"`
	Known           bool       `json:"known"`
	Available       string     `json:"available"`
	AvailableMicros int64      `json:"available_micros"`
	Held            string     `json:"held"`
	HeldMicros      int64      `json:"held_micros"`
	Spent           string     `json:"spent"`
	SpentMicros     int64      `json:"spent_micros"`
	Expired         string     `json:"expired"`
	ExpiredMicros   int64      `json:"expired_micros"`
	Purchased       string     `json:"purchased"`
	PurchasedMicros int64      `json:"purchased_micros"`
	NextExpiry      *time.Time `json:"next_expiry"`
}

func toBalanceJSON(b *credits.Balance) balanceJSON {
	j := balanceJSON{Account: b.Account, Known: b.Known, NextExpiry: optTime(b.NextExpiry)}
	j.Available, j.AvailableMicros = money(b.Available)
	j.Held, j.HeldMicros = money(b.Held)
	j.Spent, j.SpentMicros = money(b.Spent)
	j.Expired, j.ExpiredMicros = money(b.Expired)
	j.Purchased, j.PurchasedMicros = money(b.Purchased)
	return j
}

// accountsJSON is a page of balances; next_cursor is null on the last
// page.
type accountsJSON struct {
	Accounts   []balanceJSON `json:"accounts"`
	NextCursor *string       `json:"next_cursor"`
}

// lotJSON is one purchase's credits.
type lotJSON struct {
	ID              string    `json:"id"`
	Account         string    `json:"account"`
	Amount          string    `json:"amount"`
	AmountMicros    int64     `json:"amount_micros"`
	Remaining       string    `json:"remaining"`
	RemainingMicros int64     `json:"remaining_micros"`
	PurchasedAt     time.Time `json:"purchased_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	Note            string    `json:"note"`
}

func toLotJSON(l *credits.Lot) lotJSON {
	j := lotJSON{ID: l.ID, Account: l.Account, PurchasedAt: l.PurchasedAt.UTC(), ExpiresAt: l.ExpiresAt.UTC(), Note: l.Note}
	j.Amount, j.AmountMicros = money(l.Amount)
	j.Remaining, j.RemainingMicros = money(l.Remaining)
	return j
}

// lotsJSON is a page of an account's lots.
type lotsJSON struct {
	Account    string    `json:"account"`
	Lots       []lotJSON `json:"lots"`
	NextCursor *string   `json:"next_cursor"`
}

// transactionJSON is one movement of money; lot_id and hold_id are ""
// when the kind has none.
type transactionJSON struct {
	ID           string    `json:"id"`
	Account      string    `json:"account"`
	Kind         string    `json:"kind"`
	Amount       string    `json:"amount"`
	AmountMicros int64     `json:"amount_micros"`
	LotID        string    `json:"lot_id"`
	HoldID       string    `json:"hold_id"`
	Note         string    `json:"note"`
	At           time.Time `json:"at"`
}

func toTransactionJSON(t *credits.Transaction) transactionJSON {
	j := transactionJSON{ID: t.ID, Account: t.Account, Kind: string(t.Kind), LotID: t.LotID, HoldID: t.HoldID, Note: t.Note, At: t.At.UTC()}
	j.Amount, j.AmountMicros = money(t.Amount)
	return j
}

// transactionsJSON is a page of an account's transactions.
type transactionsJSON struct {
	Account      string            `json:"account"`
	Transactions []transactionJSON `json:"transactions"`
	NextCursor   *string           `json:"next_cursor"`
}

// tokensJSON is token counts, every field present.
type tokensJSON struct {
	Input      int64 `json:"input"`
	Output     int64 `json:"output"`
	CacheRead  int64 `json:"cache_read"`
	CacheWrite int64 `json:"cache_write"`
}

func toTokensJSON(t credits.Tokens) tokensJSON {
	return tokensJSON{t.Input, t.Output, t.CacheRead, t.CacheWrite}
}

// attemptJSON is one upstream attempt of a usage record.
type attemptJSON struct {
	Provider   string    `json:"provider"`
	Model      string    `json:"model"`
	KeyID      string    `json:"key_id"`
	KeySource  string    `json:"key_source"`
	Skipped    bool      `json:"skipped"`
	Served     bool      `json:"served"`
	Status     int       `json:"status"`
	Error      string    `json:"error"`
	Start      time.Time `json:"start"`
	DurationNS int64     `json:"duration_ns"`
}

// usageJSON is one usage record, every field of credits.UsageRecord.
// reported_tokens are the provider's counts (meaningful when
// reported_known), estimated_tokens the gateway's, billed_tokens the ones
// cost was computed from (reported when known, else estimated); charge is
// cost plus fee.
type usageJSON struct {
	ID                string        `json:"id"`
	RequestID         string        `json:"request_id"`
	KeyID             string        `json:"key_id"`
	Account           string        `json:"account"`
	Provider          string        `json:"provider"`
	Model             string        `json:"model"`
	KeySource         string        `json:"key_source"`
	ReportedKnown     bool          `json:"reported_known"`
	ReportedTokens    tokensJSON    `json:"reported_tokens"`
	EstimatedTokens   tokensJSON    `json:"estimated_tokens"`
	BilledTokens      tokensJSON    `json:"billed_tokens"`
	Cost              string        `json:"cost"`
	CostMicros        int64         `json:"cost_micros"`
	Fee               string        `json:"fee"`
	FeeMicros         int64         `json:"fee_micros"`
	Charge            string        `json:"charge"`
	ChargeMicros      int64         `json:"charge_micros"`
	Paid              bool          `json:"paid"`
	Uncollected       string        `json:"uncollected"`
	UncollectedMicros int64         `json:"uncollected_micros"`
	Status            int           `json:"status"`
	Error             string        `json:"error"`
	Stream            bool          `json:"stream"`
	Start             time.Time     `json:"start"`
	End               *time.Time    `json:"end"`
	DurationNS        int64         `json:"duration_ns"`
	Attempts          []attemptJSON `json:"attempts"`
	AttemptsDropped   int           `json:"attempts_dropped"`
}

func toUsageJSON(r *credits.UsageRecord) usageJSON {
	j := usageJSON{
		ID: r.ID, RequestID: r.RequestID, KeyID: r.KeyID, Account: r.Account,
		Provider: r.Provider, Model: r.Model, KeySource: string(r.KeySource),
		ReportedKnown:   r.ReportedKnown,
		ReportedTokens:  toTokensJSON(r.Reported),
		EstimatedTokens: toTokensJSON(r.Estimated),
		BilledTokens:    toTokensJSON(r.Estimated),
		Paid:            r.Paid,
		Status:          r.Status, Error: r.Error, Stream: r.Stream,
		Start: r.Start.UTC(), End: optTime(r.End),
		Attempts:        make([]attemptJSON, len(r.Attempts)),
		AttemptsDropped: r.AttemptsDropped,
	}
	if r.ReportedKnown {
		j.BilledTokens = j.ReportedTokens
	}
	if !r.End.IsZero() {
		j.DurationNS = int64(r.End.Sub(r.Start))
	}
	j.Cost, j.CostMicros = money(r.Cost)
	j.Fee, j.FeeMicros = money(r.Fee)
	j.Charge, j.ChargeMicros = money(r.Charge())
	j.Uncollected, j.UncollectedMicros = money(r.Uncollected)
	for i, at := range r.Attempts {
		j.Attempts[i] = attemptJSON{
			Provider: at.Provider, Model: at.Model, KeyID: at.KeyID, KeySource: string(at.KeySource),
			Skipped: at.Skipped, Served: at.Served, Status: at.Status, Error: at.Error,
			Start: at.Start.UTC(), DurationNS: int64(at.Duration),
		}
	}
	return j
}

// usagePageJSON is a page of usage records.
type usagePageJSON struct {
	Records    []usageJSON `json:"records"`
	NextCursor *string     `json:"next_cursor"`
}

// summaryRowJSON totals one group of usage records. A dimension not
// grouped by is null; a grouped one is a string ("" for records without
// it, such as requests no provider served).
type summaryRowJSON struct {
	Day               *string    `json:"day"`
	Provider          *string    `json:"provider"`
	Model             *string    `json:"model"`
	KeyID             *string    `json:"key_id"`
	Account           *string    `json:"account"`
	Requests          int64      `json:"requests"`
	Tokens            tokensJSON `json:"tokens"`
	Cost              string     `json:"cost"`
	CostMicros        int64      `json:"cost_micros"`
	Fee               string     `json:"fee"`
	FeeMicros         int64      `json:"fee_micros"`
	Charge            string     `json:"charge"`
	ChargeMicros      int64      `json:"charge_micros"`
	Uncollected       string     `json:"uncollected"`
	UncollectedMicros int64      `json:"uncollected_micros"`
}

// summaryJSON is the answer of /v1/usage/summary: the dimensions and the
// rows, ordered by the group values (day ascending).
type summaryJSON struct {
	GroupBy []string         `json:"group_by"`
	Rows    []summaryRowJSON `json:"rows"`
}

func toSummaryRowJSON(r *credits.SummaryRow, groups []credits.Group) summaryRowJSON {
	j := summaryRowJSON{Requests: r.Requests, Tokens: toTokensJSON(r.Tokens)}
	for _, g := range groups {
		switch g {
		case credits.GroupDay:
			j.Day = &r.Day
		case credits.GroupProvider:
			j.Provider = &r.Provider
		case credits.GroupModel:
			j.Model = &r.Model
		case credits.GroupKey:
			j.KeyID = &r.KeyID
		case credits.GroupAccount:
			j.Account = &r.Account
		}
	}
	j.Cost, j.CostMicros = money(r.Cost)
	j.Fee, j.FeeMicros = money(r.Fee)
	j.Charge, j.ChargeMicros = money(r.Cost + r.Fee)
	j.Uncollected, j.UncollectedMicros = money(r.Uncollected)
	return j
}

// badInput returns a 400 for field.
func badInput(field, code, message string) *apiError {
	return &apiError{http.StatusBadRequest, code, message, field}
}

// needCredits answers 501 credits_not_configured, and returns false, when
// the API has no credits store.
func (a *api) needCredits(w http.ResponseWriter) bool {
	if a.credits == nil {
		writeError(w, errNoCredits)
		return false
	}
	return true
}

// query is a credits or usage route's query parameters, each given at most
// once.
type query map[string]string

// readQuery parses r's query: every parameter must be in allowed and
// given once, and the whole query at most MaxQuery bytes.
func readQuery(r *http.Request, allowed ...string) (query, *apiError) {
	raw := r.URL.RawQuery
	if len(raw) > MaxQuery {
		return nil, badInput("", CodeInvalidParameter, "the query is longer than "+strconv.Itoa(MaxQuery)+" bytes")
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badInput("", CodeInvalidParameter, "the query is not a valid URL query")
	}
	q := query{}
	for name, vs := range vals {
		switch {
		case !contains(allowed, name):
			if !utf8.ValidString(name) || len(name) > 64 {
				name = ""
			}
			return nil, badInput(name, CodeInvalidParameter, "unknown parameter; expected one of: "+strings.Join(allowed, ", "))
		case len(vs) > 1:
			return nil, badInput(name, CodeInvalidParameter, "the parameter is given twice")
		}
		q[name] = vs[0]
	}
	return q, nil
}

// id returns the ID parameter name ("" when absent, unless required).
func (q query) id(name, code string, required bool) (string, *apiError) {
	v, ok := q[name]
	if !ok && !required {
		return "", nil
	}
	if err := credits.ValidateID(name, v); err != nil {
		return "", badInput(name, code, reason(err))
	}
	return v, nil
}

// list returns the limit and cursor parameters.
func (q query) list() (credits.ListOptions, *apiError) {
	var o credits.ListOptions
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > credits.MaxListLimit {
			return o, badInput("limit", CodeInvalidLimit, "must be an integer from 1 to "+strconv.Itoa(credits.MaxListLimit))
		}
		o.Limit = n
	}
	if c, ok := q["cursor"]; ok {
		if c == "" || len(c) > 512 || !printable(c) {
			return o, badInput("cursor", CodeInvalidCursor, "not a cursor of this list")
		}
		o.Cursor = c
	}
	return o, nil
}

// span returns the from (inclusive) and to (exclusive) parameters.
func (q query) span() (from, to time.Time, e *apiError) {
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		s, ok := q[p.name]
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return from, to, badInput(p.name, CodeInvalidTimestamp, "must be an RFC 3339 timestamp such as 2026-03-01T00:00:00Z")
		}
		*p.t = t.UTC()
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return from, to, badInput("to", CodeInvalidTimestamp, "must be after from (from is inclusive, to exclusive)")
	}
	return from, to, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// failCredits answers a credits store error: a validation error 400 with
// its field, ErrPurchaseBelowMinimum 422, ErrConflict 409, ErrUnavailable
// (and a context that ended) 503 with Retry-After, anything else 500. The
// store's error text is logged, never sent.
func (a *api) failCredits(w http.ResponseWriter, r *http.Request, err error) {
	var ve *credits.ValidationError
	switch {
	case errors.Is(err, credits.ErrPurchaseBelowMinimum):
		writeError(w, invalid("amount", CodePurchaseBelowMinimum, "a purchase must be at least $"+credits.MinPurchase.String()))
	case errors.As(err, &ve):
		code := CodeInvalid
		switch ve.Field {
		case "limit":
			code = CodeInvalidLimit
		case "cursor":
			code = CodeInvalidCursor
		case "account":
			code = CodeInvalidAccount
		case "amount":
			code = CodeInvalidAmount
		case "id":
			code = CodeInvalidID
		case "note":
			code = CodeInvalidNote
		case "group_by":
			code = CodeInvalidGroupBy
		}
		writeError(w, badInput(ve.Field, code, ve.Reason))
	case errors.Is(err, credits.ErrInvalid):
		writeError(w, badInput("", CodeInvalid, "the request breaks a rule of the credits store"))
	case errors.Is(err, credits.ErrConflict):
		writeError(w, &apiError{http.StatusConflict, CodeConflict,
			"a purchase with that id was made for another account or amount", "id"})
	case errors.Is(err, credits.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		a.logFailure(r, slog.LevelWarn, "admin: credits store unavailable", err)
		writeError(w, &apiError{http.StatusServiceUnavailable, CodeStoreUnavailable, "the credits store is unavailable; retry", ""})
	default:
		a.logFailure(r, slog.LevelError, "admin: internal error", err)
		writeError(w, errInternal)
	}
}

// purchase answers POST /v1/credits/purchases {account, amount or
// amount_micros, id, note}. The purchase's ID is the id member, else the
// Idempotency-Key header, else a new "pur_…" ID. Buying again with the
// same ID, account and amount answers 200 with the lot bought first; with
// another account or amount 409 conflict.
func (a *api) purchase(w http.ResponseWriter, r *http.Request) {
	if !a.needCredits(w) {
		return
	}
	o, e := readObject(w, r, "account", "amount", "amount_micros", "id", "note")
	if e != nil {
		writeError(w, e)
		return
	}
	p, e := purchaseOf(o, r.Header)
	if e != nil {
		writeError(w, e)
		return
	}
	replay, err := a.hasLot(r.Context(), p.Account, p.ID)
	if err != nil {
		a.failCredits(w, r, err)
		return
	}
	lot, err := a.credits.Purchase(r.Context(), p)
	if err != nil {
		a.failCredits(w, r, err)
		return
	}
	status := http.StatusCreated
	if replay {
		status = http.StatusOK
	} else {
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "admin: credits purchased",
			slog.String("account", lot.Account), slog.String("purchase_id", lot.ID), slog.String("amount", lot.Amount.String()))
	}
	writeJSON(w, status, toLotJSON(&lot))
}

// purchaseOf reads and checks a purchase request.
func purchaseOf(o object, h http.Header) (credits.Purchase, *apiError) {
	var p credits.Purchase
	account, e := o.str("account")
	if e != nil {
		return p, e
	}
	if err := credits.ValidateID("account", deref(account)); err != nil {
		return p, badInput("account", CodeInvalidAccount, reason(err))
	}
	p.Account = *account

	dollars, e := o.str("amount")
	if e != nil {
		e.message = `must be a string of dollars such as "10.00" (or give amount_micros)`
		return p, e
	}
	micros, e := o.int64("amount_micros")
	if e != nil {
		return p, e
	}
	switch {
	case deref(dollars) != "" && micros != nil:
		return p, badInput("amount_micros", CodeInvalidAmount, "give amount or amount_micros, not both")
	case deref(dollars) != "":
		amt, err := credits.ParseAmount(*dollars)
		if err != nil {
			return p, badInput("amount", CodeInvalidAmount, `must be a decimal number of dollars with at most six decimals, such as "10.00"`)
		}
		p.Amount = amt
	case micros != nil:
		if *micros < 0 {
			return p, badInput("amount_micros", CodeInvalidAmount, "must not be negative")
		}
		p.Amount = credits.Amount(*micros)
	default:
		return p, badInput("amount", CodeInvalidAmount, `is required: dollars as a string such as "10.00", or amount_micros`)
	}
	amountField := "amount"
	if micros != nil {
		amountField = "amount_micros"
	}
	switch {
	case p.Amount < credits.MinPurchase:
		return p, invalid(amountField, CodePurchaseBelowMinimum, "a purchase must be at least $"+credits.MinPurchase.String())
	case p.Amount > credits.MaxPurchase:
		return p, badInput(amountField, CodeInvalidAmount, "a purchase must be at most $"+credits.MaxPurchase.String())
	}

	id, e := o.str("id")
	if e != nil {
		return p, e
	}
	key := h.Values("Idempotency-Key")
	switch {
	case len(key) > 1:
		return p, badInput("Idempotency-Key", CodeInvalidID, "the header is given twice")
	case len(key) == 1 && deref(id) != "" && key[0] != *id:
		return p, badInput("id", CodeInvalidID, "differs from the Idempotency-Key header")
	case deref(id) != "":
		p.ID = *id
	case len(key) == 1:
		if err := credits.ValidateID("Idempotency-Key", key[0]); err != nil {
			return p, badInput("Idempotency-Key", CodeInvalidID, reason(err))
		}
		p.ID = key[0]
	default:
		p.ID = newPurchaseID()
	}
	if err := credits.ValidateID("id", p.ID); err != nil {
		return p, badInput("id", CodeInvalidID, reason(err))
	}

	note, e := o.str("note")
	if e != nil {
		return p, e
	}
	p.Note = deref(note)
	if len(p.Note) > credits.MaxNote {
		return p, badInput("note", CodeInvalidNote, "must be at most "+strconv.Itoa(credits.MaxNote)+" bytes")
	}
	return p, nil
}

// newPurchaseID returns "pur_" and 26 base32 characters (128 random bits).
func newPurchaseID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return PurchaseIDPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// hasLot reports whether account holds a lot with id, the ID of the
// purchase that made it: a purchase with that ID is a replay. It reads at
// most replayScan lots, newest first; an account with more may see a
// replay of a purchase older than those answered as new (201), with the
// lot bought first all the same.
func (a *api) hasLot(ctx context.Context, account, id string) (bool, error) {
	o := credits.ListOptions{Limit: credits.MaxListLimit}
	for read := 0; read < replayScan; {
		lots, next, err := a.credits.Lots(ctx, account, o)
		if err != nil {
			return false, err
		}
		for i := range lots {
			if lots[i].ID == id {
				return true, nil
			}
		}
		read += len(lots)
		if next == "" || len(lots) == 0 {
			break
		}
		o.Cursor = next
	}
	return false, nil
}

// serveQuery answers a GET route of the credits and usage API in the steps
// they all share: 501 credits_not_configured without a credits store; 400
// for a query readQuery refuses (params are the parameters the route takes)
// or parse refuses, before any store call; then answer's error through
// failCredits, else 200 with the JSON value answer returns.
func serveQuery[In any](a *api, w http.ResponseWriter, r *http.Request, params []string,
	parse func(query) (In, *apiError), answer func(context.Context, In) (any, error)) {
	if !a.needCredits(w) {
		return
	}
	q, e := readQuery(r, params...)
	if e != nil {
		writeError(w, e)
		return
	}
	in, e := parse(q)
	if e != nil {
		writeError(w, e)
		return
	}
	out, err := answer(r.Context(), in)
	if err != nil {
		a.failCredits(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// balance answers GET /v1/credits/balance?account=.
func (a *api) balance(w http.ResponseWriter, r *http.Request) {
	serveQuery(a, w, r, []string{"account"}, accountParam,
		func(ctx context.Context, account string) (any, error) {
			b, err := a.credits.Balance(ctx, account)
			if err != nil {
				return nil, err
			}
			return toBalanceJSON(&b), nil
		})
}

// accountParam reads the required account parameter.
func accountParam(q query) (string, *apiError) {
	return q.id("account", CodeInvalidAccount, true)
}

// accounts answers GET /v1/credits/accounts?limit=&cursor=.
func (a *api) accounts(w http.ResponseWriter, r *http.Request) {
	serveQuery(a, w, r, []string{"limit", "cursor"}, query.list,
		func(ctx context.Context, o credits.ListOptions) (any, error) {
			p, err := a.credits.Accounts(ctx, o)
			if err != nil {
				return nil, err
			}
			return accountsJSON{Accounts: convert(p.Accounts, toBalanceJSON), NextCursor: optString(p.NextCursor)}, nil
		})
}

// accountPage is what a per-account list reads from its query: whose list,
// and which page of it.
type accountPage struct {
	account string
	opts    credits.ListOptions
}

// accountList reads the account, limit and cursor parameters of the
// per-account lists.
func accountList(q query) (accountPage, *apiError) {
	account, e := accountParam(q)
	if e != nil {
		return accountPage{}, e
	}
	o, e := q.list()
	return accountPage{account, o}, e
}

// transactions answers GET /v1/credits/transactions?account=&limit=&cursor=.
func (a *api) transactions(w http.ResponseWriter, r *http.Request) {
	serveQuery(a, w, r, []string{"account", "limit", "cursor"}, accountList,
		func(ctx context.Context, in accountPage) (any, error) {
			p, err := a.credits.Transactions(ctx, in.account, in.opts)
			if err != nil {
				return nil, err
			}
			return transactionsJSON{Account: in.account, Transactions: convert(p.Transactions, toTransactionJSON), NextCursor: optString(p.NextCursor)}, nil
		})
}

// lots answers GET /v1/credits/lots?account=&limit=&cursor=.
func (a *api) lots(w http.ResponseWriter, r *http.Request) {
	serveQuery(a, w, r, []string{"account", "limit", "cursor"}, accountList,
		func(ctx context.Context, in accountPage) (any, error) {
			lots, next, err := a.credits.Lots(ctx, in.account, in.opts)
			if err != nil {
				return nil, err
			}
			return lotsJSON{Account: in.account, Lots: convert(lots, toLotJSON), NextCursor: optString(next)}, nil
		})
}

// usageFilter reads the account, key_id, from and to parameters.
func usageFilter(q query) (account, keyID string, from, to time.Time, e *apiError) {
	if account, e = q.id("account", CodeInvalidAccount, false); e != nil {
		return
	}
	if keyID, e = q.id("key_id", CodeInvalidKeyID, false); e != nil {
		return
	}
	from, to, e = q.span()
	return
}

// usageQuery reads the parameters of GET /v1/usage: the filter, then limit
// and cursor.
func usageQuery(q query) (uq credits.UsageQuery, e *apiError) {
	if uq.Account, uq.KeyID, uq.From, uq.To, e = usageFilter(q); e != nil {
		return uq, e
	}
	uq.ListOptions, e = q.list()
	return uq, e
}

// usage answers GET /v1/usage?account=&key_id=&from=&to=&limit=&cursor=.
func (a *api) usage(w http.ResponseWriter, r *http.Request) {
	serveQuery(a, w, r, []string{"account", "key_id", "from", "to", "limit", "cursor"}, usageQuery,
		func(ctx context.Context, uq credits.UsageQuery) (any, error) {
			p, err := a.credits.Usage(ctx, uq)
			if err != nil {
				return nil, err
			}
			return usagePageJSON{Records: convert(p.Records, toUsageJSON), NextCursor: optString(p.NextCursor)}, nil
		})
}

// summaryQuery reads the parameters of GET /v1/usage/summary: the filter,
// then group_by.
func summaryQuery(q query) (sq credits.SummaryQuery, e *apiError) {
	if sq.Account, sq.KeyID, sq.From, sq.To, e = usageFilter(q); e != nil {
		return sq, e
	}
	sq.GroupBy, e = groupBy(q["group_by"])
	return sq, e
}

// summary answers GET /v1/usage/summary?account=&key_id=&from=&to=&group_by=.
func (a *api) summary(w http.ResponseWriter, r *http.Request) {
	serveQuery(a, w, r, []string{"account", "key_id", "from", "to", "group_by"}, summaryQuery,
		func(ctx context.Context, sq credits.SummaryQuery) (any, error) {
			rows, err := a.credits.Summary(ctx, sq)
			if err != nil {
				return nil, err
			}
			return summaryJSON{
				GroupBy: convert(sq.GroupBy, func(g *credits.Group) string { return string(*g) }),
				Rows:    convert(rows, func(row *credits.SummaryRow) summaryRowJSON { return toSummaryRowJSON(row, sq.GroupBy) }),
			}, nil
		})
}

// groupBy parses a comma-separated list of summary dimensions; "" is
// none.
func groupBy(s string) ([]credits.Group, *apiError) {
	if s == "" {
		return nil, nil
	}
	var gs []credits.Group
	for _, part := range strings.Split(s, ",") {
		gs = append(gs, credits.Group(strings.TrimSpace(part)))
	}
	if err := credits.ValidateGroupBy(gs); err != nil {
		msg := reason(err)
		if !utf8.ValidString(msg) || len(msg) > 200 {
			msg = "must be a comma-separated list of day, provider, model, key, account"
		}
		return nil, badInput("group_by", CodeInvalidGroupBy, msg)
	}
	return gs, nil
}

// reason returns the Reason of a *credits.ValidationError, else a generic
// message.
func reason(err error) string {
	var ve *credits.ValidationError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return "is not valid"
}

// convert returns f of each element of xs, in order. The result is never
// nil, so an empty list is [] in JSON, not null.
func convert[T, J any](xs []T, f func(*T) J) []J {
	out := make([]J, len(xs))
	for i := range xs {
		out[i] = f(&xs[i])
	}
	return out
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
