package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/admin"
	"github.com/llmgate/gateway/credits"
)

// fakeCredits is a credits.Store for the admin API's tests: purchases and
// lots behave as the contract says (idempotent by ID, ErrConflict, pages
// of lots newest first); balances, transactions, accounts, usage records
// and summary rows are canned, and the queries that read them are kept.
// err, when set, is what every call returns. The Ledger's hot-path
// methods are not the admin API's and panic.
type fakeCredits struct {
	credits.Store // nil: Reserve, Settle, Release, Record and Sweep panic

	mu       sync.Mutex
	now      time.Time
	err      error
	lots     []credits.Lot // in purchase order
	balances map[string]credits.Balance
	txs      credits.TransactionPage
	accounts credits.AccountPage
	usage    credits.UsagePage
	rows     []credits.SummaryRow

	lastAccount string
	lastList    credits.ListOptions
	lastUsage   credits.UsageQuery
	lastSummary credits.SummaryQuery
	lotsCalls   int
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newFakeCredits() *fakeCredits {
	return &fakeCredits{now: t0, balances: map[string]credits.Balance{}}
}

func (f *fakeCredits) Purchase(ctx context.Context, p credits.Purchase) (credits.Lot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return credits.Lot{}, f.err
	}
	if err := credits.ValidatePurchase(p); err != nil {
		return credits.Lot{}, err
	}
	for _, l := range f.lots {
		if l.ID == p.ID {
			if l.Account != p.Account || l.Amount != p.Amount {
				return credits.Lot{}, fmt.Errorf("%w: purchase %q", credits.ErrConflict, p.ID)
			}
			return l, nil
		}
	}
	f.now = f.now.Add(time.Second)
	l := credits.Lot{ID: p.ID, Account: p.Account, Amount: p.Amount, Remaining: p.Amount,
		PurchasedAt: f.now, ExpiresAt: f.now.Add(credits.LotLifetime), Note: p.Note}
	f.lots = append(f.lots, l)
	return l, nil
}

// Lots pages the account's lots newest first; its cursors are "at:N".
func (f *fakeCredits) Lots(ctx context.Context, account string, o credits.ListOptions) ([]credits.Lot, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lotsCalls++
	f.lastAccount, f.lastList = account, o
	if f.err != nil {
		return nil, "", f.err
	}
	limit, err := credits.ListLimit(o)
	if err != nil {
		return nil, "", err
	}
	var mine []credits.Lot
	for i := len(f.lots) - 1; i >= 0; i-- {
		if f.lots[i].Account == account {
			mine = append(mine, f.lots[i])
		}
	}
	start := 0
	if o.Cursor != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(o.Cursor, "at:"))
		if err != nil || !strings.HasPrefix(o.Cursor, "at:") || n > len(mine) {
			return nil, "", credits.Invalid("cursor", "not a cursor of this list")
		}
		start = n
	}
	end := min(start+limit, len(mine))
	next := ""
	if end < len(mine) {
		next = "at:" + strconv.Itoa(end)
	}
	return mine[start:end], next, nil
}

func (f *fakeCredits) Balance(ctx context.Context, account string) (credits.Balance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastAccount = account
	if f.err != nil {
		return credits.Balance{}, f.err
	}
	if b, ok := f.balances[account]; ok {
		return b, nil
	}
	return credits.Balance{Account: account}, nil
}

func (f *fakeCredits) Transactions(ctx context.Context, account string, o credits.ListOptions) (credits.TransactionPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastAccount, f.lastList = account, o
	if f.err != nil {
		return credits.TransactionPage{}, f.err
	}
	return f.txs, nil
}

func (f *fakeCredits) Accounts(ctx context.Context, o credits.ListOptions) (credits.AccountPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastList = o
	if f.err != nil {
		return credits.AccountPage{}, f.err
	}
	return f.accounts, nil
}

func (f *fakeCredits) Usage(ctx context.Context, q credits.UsageQuery) (credits.UsagePage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastUsage = q
	if f.err != nil {
		return credits.UsagePage{}, f.err
	}
	return f.usage, nil
}

func (f *fakeCredits) Summary(ctx context.Context, q credits.SummaryQuery) ([]credits.SummaryRow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastSummary = q
	if f.err != nil {
		return nil, f.err
	}
	return f.rows, nil
}

// newCreditsEnv returns an env whose admin API has the credits store c.
func newCreditsEnv(t *testing.T, c credits.Store) *env {
	return newEnv(t, func(o *admin.Options) { o.Credits = c })
}

// creditsRoutes are a request to every credits and usage route.
var creditsRoutes = []struct{ method, path, body string }{
	{"POST", "/v1/credits/purchases", `{"account":"acct","amount":"10.00"}`},
	{"GET", "/v1/credits/balance?account=acct", ""},
	{"GET", "/v1/credits/accounts", ""},
	{"GET", "/v1/credits/transactions?account=acct", ""},
	{"GET", "/v1/credits/lots?account=acct", ""},
	{"GET", "/v1/usage", ""},
	{"GET", "/v1/usage/summary", ""},
}

func TestCreditsNotConfigured(t *testing.T) {
	e := newEnv(t)
	for _, rt := range creditsRoutes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			w := e.do(rt.method, rt.path, rt.body)
			requireError(t, w, http.StatusNotImplemented, admin.CodeCreditsNotConfigured, "")
		})
	}
}

func TestCreditsAuth(t *testing.T) {
	c := newFakeCredits()
	e := newCreditsEnv(t, c)
	for _, rt := range creditsRoutes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			r := httptest.NewRequest(rt.method, rt.path, strings.NewReader(rt.body))
			r.Header.Set("Content-Type", "application/json")
			requireError(t, e.serve(r), http.StatusUnauthorized, admin.CodeUnauthorized, "")
			r.Header.Set("Authorization", "Bearer wrong-admin-token-0123456789")
			requireError(t, e.serve(r), http.StatusUnauthorized, admin.CodeUnauthorized, "")
		})
	}
	require.Empty(t, c.lots, "nothing was bought")
}

func TestCreditsRouting(t *testing.T) {
	e := newCreditsEnv(t, newFakeCredits())
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/v1/credits/balance", "GET, HEAD"},
		{"GET", "/v1/credits/purchases", "POST"},
		{"DELETE", "/v1/usage", "GET, HEAD"},
		{"PUT", "/v1/usage/summary", "GET, HEAD"},
	} {
		w := e.do(tc.method, tc.path, "")
		requireError(t, w, http.StatusMethodNotAllowed, admin.CodeMethodNotAllowed, "")
		require.Equal(t, tc.allow, w.Header().Get("Allow"))
	}
	requireError(t, e.do("GET", "/v1/credits", ""), http.StatusNotFound, admin.CodeNotFound, "")
	requireError(t, e.do("GET", "/v1/credits/balance/acct", ""), http.StatusNotFound, admin.CodeNotFound, "")
}

// lotBody is the answer to a purchase, and an element of a lot list.
type lotBody struct {
	ID              string `json:"id"`
	Account         string `json:"account"`
	Amount          string `json:"amount"`
	AmountMicros    int64  `json:"amount_micros"`
	Remaining       string `json:"remaining"`
	RemainingMicros int64  `json:"remaining_micros"`
	PurchasedAt     string `json:"purchased_at"`
	ExpiresAt       string `json:"expires_at"`
	Note            string `json:"note"`
}

func TestPurchase(t *testing.T) {
	c := newFakeCredits()
	e := newCreditsEnv(t, c)

	w := e.do("POST", "/v1/credits/purchases", `{"account":"team-a","amount":"10.50","id":"order-1","note":"card 4242"}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	require.JSONEq(t, `{"id":"order-1","account":"team-a","amount":"10.50","amount_micros":10500000,
		"remaining":"10.50","remaining_micros":10500000,"purchased_at":"2026-03-01T12:00:01Z",
		"expires_at":"2027-03-01T12:00:01Z","note":"card 4242"}`, w.Body.String())
	require.Contains(t, e.logs.String(), `"msg":"admin: credits purchased"`)

	t.Run("replay", func(t *testing.T) {
		w := e.do("POST", "/v1/credits/purchases", `{"account":"team-a","amount":"10.5","id":"order-1","note":"again"}`)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		l := decode[lotBody](t, w)
		require.Equal(t, "card 4242", l.Note, "the lot bought first")
		require.Len(t, c.lots, 1)
	})
	t.Run("conflict", func(t *testing.T) {
		w := e.do("POST", "/v1/credits/purchases", `{"account":"team-a","amount":"11.00","id":"order-1"}`)
		requireError(t, w, http.StatusConflict, admin.CodeConflict, "id")
		w = e.do("POST", "/v1/credits/purchases", `{"account":"team-b","amount":"10.50","id":"order-1"}`)
		requireError(t, w, http.StatusConflict, admin.CodeConflict, "id")
		require.Len(t, c.lots, 1)
	})
	t.Run("amount_micros", func(t *testing.T) {
		w := e.do("POST", "/v1/credits/purchases", `{"account":"team-a","amount_micros":5000000,"id":"order-2"}`)
		require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
		l := decode[lotBody](t, w)
		require.Equal(t, "5.00", l.Amount)
		require.EqualValues(t, 5_000_000, l.AmountMicros)
		require.Empty(t, l.Note)
	})
	t.Run("Idempotency-Key", func(t *testing.T) {
		for i, want := range []int{http.StatusCreated, http.StatusOK} {
			r := httptest.NewRequest("POST", "/v1/credits/purchases", strings.NewReader(`{"account":"team-a","amount":"$25"}`))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+testToken)
			r.Header.Set("Idempotency-Key", "stripe-pi-123")
			w := e.serve(r)
			require.Equal(t, want, w.Code, "try %d: %s", i, w.Body.String())
			require.Equal(t, "stripe-pi-123", decode[lotBody](t, w).ID)
		}
		// The same ID in the body and the header.
		r := httptest.NewRequest("POST", "/v1/credits/purchases", strings.NewReader(`{"account":"team-a","amount":"25","id":"stripe-pi-123"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+testToken)
		r.Header.Set("Idempotency-Key", "stripe-pi-123")
		require.Equal(t, http.StatusOK, e.serve(r).Code)
	})
	t.Run("generated id", func(t *testing.T) {
		w1 := e.do("POST", "/v1/credits/purchases", `{"account":"team-a","amount":"5"}`)
		w2 := e.do("POST", "/v1/credits/purchases", `{"account":"team-a","amount":"5"}`)
		require.Equal(t, http.StatusCreated, w1.Code, w1.Body.String())
		require.Equal(t, http.StatusCreated, w2.Code, w2.Body.String())
		id1, id2 := decode[lotBody](t, w1).ID, decode[lotBody](t, w2).ID
		require.Regexp(t, `^pur_[a-z2-7]{26}$`, id1)
		require.NotEqual(t, id1, id2, "without an ID every purchase is new")
	})
}

// TestPurchaseReplayOfAnOldLot replays a purchase older than the first
// page of the account's lots.
func TestPurchaseReplayOfAnOldLot(t *testing.T) {
	c := newFakeCredits()
	e := newCreditsEnv(t, c)
	for i := range credits.MaxListLimit + 10 {
		_, err := c.Purchase(context.Background(), credits.Purchase{ID: fmt.Sprintf("p%04d", i), Account: "big", Amount: credits.MinPurchase})
		require.NoError(t, err)
	}
	_, err := c.Purchase(context.Background(), credits.Purchase{ID: "other", Account: "small", Amount: credits.MinPurchase})
	require.NoError(t, err)
	c.lotsCalls = 0
	w := e.do("POST", "/v1/credits/purchases", `{"account":"big","amount":"5","id":"p0000"}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, 2, c.lotsCalls, "two pages")
	// A lot of another account with that ID: the store's conflict.
	w = e.do("POST", "/v1/credits/purchases", `{"account":"big","amount":"5","id":"other"}`)
	requireError(t, w, http.StatusConflict, admin.CodeConflict, "id")
}

func TestPurchaseErrors(t *testing.T) {
	c := newFakeCredits()
	e := newCreditsEnv(t, c)
	long := strings.Repeat("a", credits.MaxIDLength+1)
	for _, tc := range []struct {
		name, body    string
		status        int
		code, field   string
		contentHeader string
	}{
		{"below the minimum", `{"account":"a","amount":"4.99"}`, 422, admin.CodePurchaseBelowMinimum, "amount", ""},
		{"below the minimum in micros", `{"account":"a","amount_micros":4999999}`, 422, admin.CodePurchaseBelowMinimum, "amount_micros", ""},
		{"zero", `{"account":"a","amount":"0"}`, 422, admin.CodePurchaseBelowMinimum, "amount", ""},
		{"above the maximum", `{"account":"a","amount":"1000000.01"}`, 400, admin.CodeInvalidAmount, "amount", ""},
		{"no amount", `{"account":"a"}`, 400, admin.CodeInvalidAmount, "amount", ""},
		{"null amount", `{"account":"a","amount":null}`, 400, admin.CodeInvalidAmount, "amount", ""},
		{"amount a number", `{"account":"a","amount":10.5}`, 400, admin.CodeInvalidJSON, "amount", ""},
		{"amount not a number", `{"account":"a","amount":"ten"}`, 400, admin.CodeInvalidAmount, "amount", ""},
		{"amount with seven decimals", `{"account":"a","amount":"10.0000001"}`, 400, admin.CodeInvalidAmount, "amount", ""},
		{"negative amount", `{"account":"a","amount":"-10"}`, 400, admin.CodeInvalidAmount, "amount", ""},
		{"amount in exponent form", `{"account":"a","amount":"1e2"}`, 400, admin.CodeInvalidAmount, "amount", ""},
		{"both amounts", `{"account":"a","amount":"10","amount_micros":10000000}`, 400, admin.CodeInvalidAmount, "amount_micros", ""},
		{"micros with a fraction", `{"account":"a","amount_micros":5000000.5}`, 400, admin.CodeInvalidJSON, "amount_micros", ""},
		{"micros in exponent form", `{"account":"a","amount_micros":5e6}`, 400, admin.CodeInvalidJSON, "amount_micros", ""},
		{"micros a string", `{"account":"a","amount_micros":"5000000"}`, 400, admin.CodeInvalidJSON, "amount_micros", ""},
		{"micros beyond int64", `{"account":"a","amount_micros":99999999999999999999}`, 400, admin.CodeInvalidJSON, "amount_micros", ""},
		{"negative micros", `{"account":"a","amount_micros":-5000000}`, 400, admin.CodeInvalidAmount, "amount_micros", ""},
		{"no account", `{"amount":"10"}`, 400, admin.CodeInvalidAccount, "account", ""},
		{"account with a space", `{"account":"a b","amount":"10"}`, 400, admin.CodeInvalidAccount, "account", ""},
		{"long account", `{"account":"` + long + `","amount":"10"}`, 400, admin.CodeInvalidAccount, "account", ""},
		{"account not a string", `{"account":7,"amount":"10"}`, 400, admin.CodeInvalidJSON, "account", ""},
		{"long id", `{"account":"a","amount":"10","id":"` + long + `"}`, 400, admin.CodeInvalidID, "id", ""},
		{"id with a control character", `{"account":"a","amount":"10","id":"x\ty"}`, 400, admin.CodeInvalidID, "id", ""},
		{"long note", `{"account":"a","amount":"10","note":"` + strings.Repeat("n", credits.MaxNote+1) + `"}`, 400, admin.CodeInvalidNote, "note", ""},
		{"unknown field", `{"account":"a","amount":"10","currency":"EUR"}`, 400, admin.CodeInvalidJSON, "currency", ""},
		{"duplicate field", `{"account":"a","amount":"10","amount":"20"}`, 400, admin.CodeInvalidJSON, "amount", ""},
		{"not an object", `["a"]`, 400, admin.CodeInvalidJSON, "", ""},
		{"no body", ``, 400, admin.CodeInvalidAccount, "account", ""},
		{"not JSON", `account=a`, 415, admin.CodeUnsupportedMedia, "", "application/x-www-form-urlencoded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/credits/purchases", strings.NewReader(tc.body))
			r.Header.Set("Authorization", "Bearer "+testToken)
			if tc.body != "" {
				r.Header.Set("Content-Type", "application/json")
			}
			if tc.contentHeader != "" {
				r.Header.Set("Content-Type", tc.contentHeader)
			}
			requireError(t, e.serve(r), tc.status, tc.code, tc.field)
		})
	}
	t.Run("headers", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			keys       []string
			field      string
		}{
			{"id differs from the header", `{"account":"a","amount":"10","id":"x"}`, []string{"y"}, "id"},
			{"header twice", `{"account":"a","amount":"10"}`, []string{"x", "y"}, "Idempotency-Key"},
			{"header with a space", `{"account":"a","amount":"10"}`, []string{"x y"}, "Idempotency-Key"},
			{"long header", `{"account":"a","amount":"10"}`, []string{long}, "Idempotency-Key"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := httptest.NewRequest("POST", "/v1/credits/purchases", strings.NewReader(tc.body))
				r.Header.Set("Authorization", "Bearer "+testToken)
				r.Header.Set("Content-Type", "application/json")
				for _, k := range tc.keys {
					r.Header.Add("Idempotency-Key", k)
				}
				requireError(t, e.serve(r), http.StatusBadRequest, admin.CodeInvalidID, tc.field)
			})
		}
	})
	require.Empty(t, c.lots, "nothing was bought")
}

func TestBalance(t *testing.T) {
	c := newFakeCredits()
	c.balances["team-a"] = credits.Balance{Account: "team-a", Available: 7_250_000, Held: 250_000, Spent: 2_000_001,
		Expired: 499_999, Purchased: 10_000_000, NextExpiry: t0.Add(time.Hour).In(time.FixedZone("x", 3600)), Known: true}
	e := newCreditsEnv(t, c)

	w := e.do("GET", "/v1/credits/balance?account=team-a", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, `{"account":"team-a","known":true,
		"available":"7.25","available_micros":7250000,"held":"0.25","held_micros":250000,
		"spent":"2.000001","spent_micros":2000001,"expired":"0.499999","expired_micros":499999,
		"purchased":"10.00","purchased_micros":10000000,"next_expiry":"2026-03-01T13:00:00Z"}`, w.Body.String())

	w = e.do("GET", "/v1/credits/balance?account=nobody", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, `{"account":"nobody","known":false,
		"available":"0.00","available_micros":0,"held":"0.00","held_micros":0,"spent":"0.00","spent_micros":0,
		"expired":"0.00","expired_micros":0,"purchased":"0.00","purchased_micros":0,"next_expiry":null}`, w.Body.String())
	require.Equal(t, "nobody", c.lastAccount)

	for _, tc := range []struct{ name, query, code, field string }{
		{"no account", "", admin.CodeInvalidAccount, "account"},
		{"empty account", "?account=", admin.CodeInvalidAccount, "account"},
		{"account with a space", "?account=a%20b", admin.CodeInvalidAccount, "account"},
		{"long account", "?account=" + strings.Repeat("a", 129), admin.CodeInvalidAccount, "account"},
		{"account twice", "?account=a&account=b", admin.CodeInvalidParameter, "account"},
		{"unknown parameter", "?account=a&acount=b", admin.CodeInvalidParameter, "acount"},
		{"limit on a balance", "?account=a&limit=5", admin.CodeInvalidParameter, "limit"},
		{"bad escape", "?account=%zz", admin.CodeInvalidParameter, ""},
		{"long query", "?account=" + strings.Repeat("a", admin.MaxQuery), admin.CodeInvalidParameter, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, e.do("GET", "/v1/credits/balance"+tc.query, ""), http.StatusBadRequest, tc.code, tc.field)
		})
	}
}

func TestAccounts(t *testing.T) {
	c := newFakeCredits()
	c.accounts = credits.AccountPage{
		Accounts: []credits.Balance{
			{Account: "a", Available: 5_000_000, Purchased: 5_000_000, NextExpiry: t0, Known: true},
			{Account: "b", Spent: 5_000_000, Purchased: 5_000_000, Known: true},
		},
		NextCursor: "next-page",
	}
	e := newCreditsEnv(t, c)
	w := e.do("GET", "/v1/credits/accounts?limit=2&cursor=abc", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, credits.ListOptions{Limit: 2, Cursor: "abc"}, c.lastList)
	require.JSONEq(t, `{"accounts":[
		{"account":"a","known":true,"available":"5.00","available_micros":5000000,"held":"0.00","held_micros":0,
		 "spent":"0.00","spent_micros":0,"expired":"0.00","expired_micros":0,"purchased":"5.00","purchased_micros":5000000,
		 "next_expiry":"2026-03-01T12:00:00Z"},
		{"account":"b","known":true,"available":"0.00","available_micros":0,"held":"0.00","held_micros":0,
		 "spent":"5.00","spent_micros":5000000,"expired":"0.00","expired_micros":0,"purchased":"5.00","purchased_micros":5000000,
		 "next_expiry":null}],
		"next_cursor":"next-page"}`, w.Body.String())

	c.accounts = credits.AccountPage{}
	w = e.do("GET", "/v1/credits/accounts", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, `{"accounts":[],"next_cursor":null}`, w.Body.String())
	require.Equal(t, credits.ListOptions{}, c.lastList, "the store's default page size")

	requireListErrors(t, e, "/v1/credits/accounts?")
}

// requireListErrors checks the limit and cursor parameters of a list
// route; prefix ends in "?" or "&".
func requireListErrors(t *testing.T, e *env, prefix string) {
	t.Helper()
	for _, tc := range []struct{ name, query, code, field string }{
		{"zero limit", "limit=0", admin.CodeInvalidLimit, "limit"},
		{"negative limit", "limit=-1", admin.CodeInvalidLimit, "limit"},
		{"limit too large", "limit=1001", admin.CodeInvalidLimit, "limit"},
		{"limit not a number", "limit=ten", admin.CodeInvalidLimit, "limit"},
		{"limit twice", "limit=1&limit=2", admin.CodeInvalidParameter, "limit"},
		{"empty cursor", "cursor=", admin.CodeInvalidCursor, "cursor"},
		{"cursor with a space", "cursor=a%20b", admin.CodeInvalidCursor, "cursor"},
		{"long cursor", "cursor=" + strings.Repeat("c", 513), admin.CodeInvalidCursor, "cursor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, e.do("GET", prefix+tc.query, ""), http.StatusBadRequest, tc.code, tc.field)
		})
	}
}

func TestTransactions(t *testing.T) {
	c := newFakeCredits()
	c.txs = credits.TransactionPage{
		Transactions: []credits.Transaction{
			{ID: "tx3", Account: "a", Kind: credits.TxExpire, Amount: 1, LotID: "lot-1", At: t0.Add(2 * time.Hour)},
			{ID: "tx2", Account: "a", Kind: credits.TxSpend, Amount: 1_234_567, HoldID: "req_1", At: t0.Add(time.Hour)},
			{ID: "tx1", Account: "a", Kind: credits.TxPurchase, Amount: 10_000_000, LotID: "lot-1", Note: "card", At: t0},
		},
		NextCursor: "more",
	}
	e := newCreditsEnv(t, c)
	w := e.do("GET", "/v1/credits/transactions?account=a&limit=3", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "a", c.lastAccount)
	require.Equal(t, credits.ListOptions{Limit: 3}, c.lastList)
	require.JSONEq(t, `{"account":"a","transactions":[
		{"id":"tx3","account":"a","kind":"expire","amount":"0.000001","amount_micros":1,"lot_id":"lot-1","hold_id":"","note":"","at":"2026-03-01T14:00:00Z"},
		{"id":"tx2","account":"a","kind":"spend","amount":"1.234567","amount_micros":1234567,"lot_id":"","hold_id":"req_1","note":"","at":"2026-03-01T13:00:00Z"},
		{"id":"tx1","account":"a","kind":"purchase","amount":"10.00","amount_micros":10000000,"lot_id":"lot-1","hold_id":"","note":"card","at":"2026-03-01T12:00:00Z"}],
		"next_cursor":"more"}`, w.Body.String())

	c.txs = credits.TransactionPage{}
	w = e.do("GET", "/v1/credits/transactions?account=a&cursor=more", "")
	require.JSONEq(t, `{"account":"a","transactions":[],"next_cursor":null}`, w.Body.String())
	require.Equal(t, credits.ListOptions{Cursor: "more"}, c.lastList)

	requireError(t, e.do("GET", "/v1/credits/transactions", ""), http.StatusBadRequest, admin.CodeInvalidAccount, "account")
	requireError(t, e.do("GET", "/v1/credits/transactions?account=a&key_id=k", ""), http.StatusBadRequest, admin.CodeInvalidParameter, "key_id")
	requireListErrors(t, e, "/v1/credits/transactions?account=a&")
}

func TestLots(t *testing.T) {
	c := newFakeCredits()
	e := newCreditsEnv(t, c)
	for _, id := range []string{"l1", "l2", "l3"} {
		w := e.do("POST", "/v1/credits/purchases", `{"account":"a","amount":"5","id":"`+id+`"}`)
		require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	}
	w := e.do("GET", "/v1/credits/lots?account=a&limit=2", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.JSONEq(t, `{"account":"a","lots":[
		{"id":"l3","account":"a","amount":"5.00","amount_micros":5000000,"remaining":"5.00","remaining_micros":5000000,
		 "purchased_at":"2026-03-01T12:00:03Z","expires_at":"2027-03-01T12:00:03Z","note":""},
		{"id":"l2","account":"a","amount":"5.00","amount_micros":5000000,"remaining":"5.00","remaining_micros":5000000,
		 "purchased_at":"2026-03-01T12:00:02Z","expires_at":"2027-03-01T12:00:02Z","note":""}],
		"next_cursor":"at:2"}`, w.Body.String())
	w = e.do("GET", "/v1/credits/lots?account=a&limit=2&cursor=at:2", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	body := decode[struct {
		Lots       []lotBody `json:"lots"`
		NextCursor *string   `json:"next_cursor"`
	}](t, w)
	require.Len(t, body.Lots, 1)
	require.Equal(t, "l1", body.Lots[0].ID)
	require.Nil(t, body.NextCursor)

	// A cursor the store did not make: the store's validation error.
	requireError(t, e.do("GET", "/v1/credits/lots?account=a&cursor=bogus", ""), http.StatusBadRequest, admin.CodeInvalidCursor, "cursor")
	requireError(t, e.do("GET", "/v1/credits/lots", ""), http.StatusBadRequest, admin.CodeInvalidAccount, "account")
	requireListErrors(t, e, "/v1/credits/lots?account=a&")
}

func TestUsage(t *testing.T) {
	c := newFakeCredits()
	c.usage = credits.UsagePage{
		Records: []credits.UsageRecord{{
			ID: "req_2", RequestID: "req_2", KeyID: "key_abc", Account: "team-a",
			Provider: "openai", Model: "gpt-4o", KeySource: credits.SourceConfigured,
			Reported:      credits.Tokens{Input: 1200, Output: 300, CacheRead: 1000, CacheWrite: 5},
			ReportedKnown: true,
			Estimated:     credits.Tokens{Input: 1180, Output: 290},
			Cost:          6_000, Fee: 151, Paid: true, Uncollected: 7,
			Status: 200, Stream: true,
			Start: t0, End: t0.Add(1500 * time.Millisecond),
			Attempts: []credits.AttemptRecord{
				{Provider: "anthropic", Model: "claude", KeyID: "k1", KeySource: credits.SourceConfigured, Status: 529,
					Error: "upstream_overloaded", Start: t0, Duration: 300 * time.Millisecond},
				{Provider: "openai", Model: "gpt-4o", KeyID: "primary", KeySource: credits.SourceConfigured, Status: 200,
					Served: true, Start: t0.Add(300 * time.Millisecond), Duration: 1200 * time.Millisecond},
			},
			AttemptsDropped: 1,
		}, {
			ID: "req_1", RequestID: "req_1", KeySource: credits.SourceClient,
			Estimated: credits.Tokens{Input: 10, Output: 0},
			Status:    502, Error: "all_providers_failed",
			Start: t0.Add(-time.Minute),
		}},
		NextCursor: "older",
	}
	e := newCreditsEnv(t, c)
	w := e.do("GET", "/v1/usage?account=team-a&key_id=key_abc&from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00%2B01:00&limit=2&cursor=xyz", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, credits.UsageQuery{
		Account: "team-a", KeyID: "key_abc",
		From:        time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		To:          time.Date(2026, 3, 1, 23, 0, 0, 0, time.UTC),
		ListOptions: credits.ListOptions{Limit: 2, Cursor: "xyz"},
	}, c.lastUsage)
	require.JSONEq(t, `{"records":[{
		"id":"req_2","request_id":"req_2","key_id":"key_abc","account":"team-a","provider":"openai","model":"gpt-4o",
		"key_source":"configured","reported_known":true,
		"reported_tokens":{"input":1200,"output":300,"cache_read":1000,"cache_write":5},
		"estimated_tokens":{"input":1180,"output":290,"cache_read":0,"cache_write":0},
		"billed_tokens":{"input":1200,"output":300,"cache_read":1000,"cache_write":5},
		"cost":"0.006","cost_micros":6000,"fee":"0.000151","fee_micros":151,"charge":"0.006151","charge_micros":6151,
		"paid":true,"uncollected":"0.000007","uncollected_micros":7,
		"status":200,"error":"","stream":true,
		"start":"2026-03-01T12:00:00Z","end":"2026-03-01T12:00:01.5Z","duration_ns":1500000000,
		"attempts":[
			{"provider":"anthropic","model":"claude","key_id":"k1","key_source":"configured","skipped":false,"served":false,
			 "status":529,"error":"upstream_overloaded","start":"2026-03-01T12:00:00Z","duration_ns":300000000},
			{"provider":"openai","model":"gpt-4o","key_id":"primary","key_source":"configured","skipped":false,"served":true,
			 "status":200,"error":"","start":"2026-03-01T12:00:00.3Z","duration_ns":1200000000}],
		"attempts_dropped":1
	},{
		"id":"req_1","request_id":"req_1","key_id":"","account":"","provider":"","model":"",
		"key_source":"client","reported_known":false,
		"reported_tokens":{"input":0,"output":0,"cache_read":0,"cache_write":0},
		"estimated_tokens":{"input":10,"output":0,"cache_read":0,"cache_write":0},
		"billed_tokens":{"input":10,"output":0,"cache_read":0,"cache_write":0},
		"cost":"0.00","cost_micros":0,"fee":"0.00","fee_micros":0,"charge":"0.00","charge_micros":0,
		"paid":false,"uncollected":"0.00","uncollected_micros":0,
		"status":502,"error":"all_providers_failed","stream":false,
		"start":"2026-03-01T11:59:00Z","end":null,"duration_ns":0,"attempts":[],"attempts_dropped":0
	}],"next_cursor":"older"}`, w.Body.String())

	c.usage = credits.UsagePage{}
	w = e.do("GET", "/v1/usage", "")
	require.JSONEq(t, `{"records":[],"next_cursor":null}`, w.Body.String())
	require.Equal(t, credits.UsageQuery{}, c.lastUsage, "no filter")

	requireUsageFilterErrors(t, e, "/v1/usage?")
	requireListErrors(t, e, "/v1/usage?")
	requireError(t, e.do("GET", "/v1/usage?group_by=day", ""), http.StatusBadRequest, admin.CodeInvalidParameter, "group_by")
}

// requireUsageFilterErrors checks the account, key_id, from and to
// parameters of a usage route.
func requireUsageFilterErrors(t *testing.T, e *env, prefix string) {
	t.Helper()
	for _, tc := range []struct{ name, query, code, field string }{
		{"empty account", "account=", admin.CodeInvalidAccount, "account"},
		{"account with a control character", "account=a%00", admin.CodeInvalidAccount, "account"},
		{"long key_id", "key_id=" + strings.Repeat("k", 129), admin.CodeInvalidKeyID, "key_id"},
		{"from a date", "from=2026-03-01", admin.CodeInvalidTimestamp, "from"},
		{"to without a zone", "to=2026-03-01T00:00:00", admin.CodeInvalidTimestamp, "to"},
		{"to before from", "from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", admin.CodeInvalidTimestamp, "to"},
		{"to equal to from", "from=2026-03-02T00:00:00Z&to=2026-03-02T01:00:00%2B01:00", admin.CodeInvalidTimestamp, "to"},
		{"from twice", "from=2026-03-02T00:00:00Z&from=2026-03-03T00:00:00Z", admin.CodeInvalidParameter, "from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, e.do("GET", prefix+tc.query, ""), http.StatusBadRequest, tc.code, tc.field)
		})
	}
}

func TestUsageSummary(t *testing.T) {
	c := newFakeCredits()
	c.rows = []credits.SummaryRow{
		{Day: "2026-03-01", Provider: "openai", Requests: 3, Tokens: credits.Tokens{Input: 100, Output: 50, CacheRead: 10},
			Cost: 1_500, Fee: 38, Uncollected: 0},
		{Day: "2026-03-02", Provider: "", Requests: 1, Tokens: credits.Tokens{Input: 7}},
	}
	e := newCreditsEnv(t, c)
	w := e.do("GET", "/v1/usage/summary?account=a&key_id=k&from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z&group_by=day,%20provider", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, credits.SummaryQuery{Account: "a", KeyID: "k",
		From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
		GroupBy: []credits.Group{credits.GroupDay, credits.GroupProvider}}, c.lastSummary)
	require.JSONEq(t, `{"group_by":["day","provider"],"rows":[
		{"day":"2026-03-01","provider":"openai","model":null,"key_id":null,"account":null,"requests":3,
		 "tokens":{"input":100,"output":50,"cache_read":10,"cache_write":0},
		 "cost":"0.0015","cost_micros":1500,"fee":"0.000038","fee_micros":38,"charge":"0.001538","charge_micros":1538,
		 "uncollected":"0.00","uncollected_micros":0},
		{"day":"2026-03-02","provider":"","model":null,"key_id":null,"account":null,"requests":1,
		 "tokens":{"input":7,"output":0,"cache_read":0,"cache_write":0},
		 "cost":"0.00","cost_micros":0,"fee":"0.00","fee_micros":0,"charge":"0.00","charge_micros":0,
		 "uncollected":"0.00","uncollected_micros":0}]}`, w.Body.String())

	// Every dimension, and none.
	c.rows = []credits.SummaryRow{{Day: "d", Provider: "p", Model: "m", KeyID: "k", Account: "a", Requests: 1}}
	w = e.do("GET", "/v1/usage/summary?group_by=account,key,model,provider,day", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	row := decode[struct {
		GroupBy []string                     `json:"group_by"`
		Rows    []map[string]json.RawMessage `json:"rows"`
	}](t, w)
	require.Equal(t, []string{"account", "key", "model", "provider", "day"}, row.GroupBy)
	for field, want := range map[string]string{"day": `"d"`, "provider": `"p"`, "model": `"m"`, "key_id": `"k"`, "account": `"a"`} {
		require.Equal(t, want, string(row.Rows[0][field]), field)
	}
	c.rows = []credits.SummaryRow{{Requests: 9}}
	w = e.do("GET", "/v1/usage/summary", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"group_by":[],"rows":[{"day":null,"provider":null,"model":null,"key_id":null,"account":null,"requests":9,`)
	require.Empty(t, c.lastSummary.GroupBy)

	for _, tc := range []struct{ name, query string }{
		{"unknown dimension", "group_by=day,week"},
		{"dimension twice", "group_by=day,provider,day"},
		{"empty dimension", "group_by=day,,model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, e.do("GET", "/v1/usage/summary?"+tc.query, ""), http.StatusBadRequest, admin.CodeInvalidGroupBy, "group_by")
		})
	}
	requireUsageFilterErrors(t, e, "/v1/usage/summary?")
	requireError(t, e.do("GET", "/v1/usage/summary?limit=5", ""), http.StatusBadRequest, admin.CodeInvalidParameter, "limit")
}

// TestCreditsStoreErrors answers the store's failures.
func TestCreditsStoreErrors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		err         error
		status      int
		code, field string
	}{
		{"unavailable", fmt.Errorf("%w: connection refused", credits.ErrUnavailable), 503, admin.CodeStoreUnavailable, ""},
		{"deadline", context.DeadlineExceeded, 503, admin.CodeStoreUnavailable, ""},
		{"canceled", context.Canceled, 503, admin.CodeStoreUnavailable, ""},
		{"validation", credits.Invalid("limit", "must be between 1 and 1000"), 400, admin.CodeInvalidLimit, "limit"},
		{"validation of another field", credits.Invalid("record.id", "required"), 400, admin.CodeInvalid, "record.id"},
		{"bare invalid", fmt.Errorf("%w: something", credits.ErrInvalid), 400, admin.CodeInvalid, ""},
		{"below minimum", credits.ErrPurchaseBelowMinimum, 422, admin.CodePurchaseBelowMinimum, "amount"},
		{"other", errors.New("disk on fire: /var/lib/secret-path"), 500, admin.CodeInternal, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeCredits()
			c.err = tc.err
			e := newCreditsEnv(t, c)
			for _, rt := range creditsRoutes {
				w := e.do(rt.method, rt.path, rt.body)
				requireError(t, w, tc.status, tc.code, tc.field)
				require.NotContains(t, w.Body.String(), "secret-path", "a store's error text is never sent")
				if tc.status == http.StatusServiceUnavailable {
					require.Equal(t, "1", w.Header().Get("Retry-After"))
				}
			}
			if tc.status == http.StatusInternalServerError {
				require.Contains(t, e.logs.String(), "secret-path", "but it is logged")
			}
		})
	}
}

// TestMoneyNeverFloat checks that no answer writes money as a JSON
// number with a fraction or an exponent.
func TestMoneyNeverFloat(t *testing.T) {
	c := newFakeCredits()
	c.balances["a"] = credits.Balance{Account: "a", Available: 1, Purchased: 123_456_789_012, Known: true}
	e := newCreditsEnv(t, c)
	float := regexp.MustCompile(`:-?\d+[.eE]`)
	for _, path := range []string{"/v1/credits/balance?account=a"} {
		w := e.do("GET", path, "")
		require.Equal(t, http.StatusOK, w.Code)
		require.NotRegexp(t, float, w.Body.String())
		require.Contains(t, w.Body.String(), `"purchased":"123456.789012","purchased_micros":123456789012`)
	}
}

// TestCreditsWithMemoryStore drives the routes over credits.Memory: a
// purchase, a request held and settled through the Ledger, a BYOK record,
// then every read route.
func TestCreditsWithMemoryStore(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := t0
	m := credits.NewMemory(credits.MemoryOptions{Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}})
	e := newCreditsEnv(t, m)

	w := e.do("POST", "/v1/credits/purchases", `{"account":"team-a","amount":"10.00","id":"order-1","note":"invoice 7"}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	w = e.do("POST", "/v1/credits/purchases", `{"account":"team-a","amount_micros":10000000,"id":"order-1"}`)
	require.Equal(t, http.StatusOK, w.Code, "a replay: "+w.Body.String())
	requireError(t, e.do("POST", "/v1/credits/purchases", `{"account":"team-b","amount":"10.00","id":"order-1"}`),
		http.StatusConflict, admin.CodeConflict, "id")
	requireError(t, e.do("POST", "/v1/credits/purchases", `{"account":"team-b","amount":"4.999999"}`),
		http.StatusUnprocessableEntity, admin.CodePurchaseBelowMinimum, "amount")

	h, err := m.Reserve(ctx, credits.Reservation{ID: "req_1", Account: "team-a", Max: credits.Dollar, Min: 1, TTL: time.Hour})
	require.NoError(t, err)
	_, err = m.Settle(ctx, h.ID, 250_000, &credits.UsageRecord{
		ID: "req_1", RequestID: "req_1", KeyID: "key_a", Provider: "openai", Model: "gpt-4o",
		KeySource: credits.SourceConfigured, Reported: credits.Tokens{Input: 100, Output: 20}, ReportedKnown: true,
		Cost: 243_903, Fee: 6_097, Status: 200, Start: t0.Add(time.Minute), End: t0.Add(time.Minute + time.Second),
	})
	require.NoError(t, err)
	require.NoError(t, m.Record(ctx, &credits.UsageRecord{
		ID: "req_2", RequestID: "req_2", KeyID: "key_b", Provider: "anthropic", Model: "claude",
		KeySource: credits.SourceClient, Estimated: credits.Tokens{Input: 10, Output: 5}, Cost: 100,
		Status: 200, Start: t0.Add(2 * time.Minute),
	}))

	w = e.do("GET", "/v1/credits/balance?account=team-a", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	b := decode[map[string]any](t, w)
	require.Equal(t, "9.75", b["available"])
	require.EqualValues(t, 9_750_000, b["available_micros"])
	require.Equal(t, "0.25", b["spent"])
	require.Equal(t, "10.00", b["purchased"])
	require.Equal(t, true, b["known"])

	w = e.do("GET", "/v1/credits/accounts", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"accounts":[{"account":"team-a","known":true,"available":"9.75"`)

	w = e.do("GET", "/v1/credits/transactions?account=team-a", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	txs := decode[struct {
		Transactions []struct {
			Kind, Amount, LotID, HoldID string
		} `json:"transactions"`
	}](t, w)
	require.Len(t, txs.Transactions, 2)
	require.Equal(t, "spend", txs.Transactions[0].Kind, "newest first")
	require.Equal(t, "0.25", txs.Transactions[0].Amount)
	require.Equal(t, "purchase", txs.Transactions[1].Kind)

	w = e.do("GET", "/v1/credits/lots?account=team-a", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"id":"order-1","account":"team-a","amount":"10.00","amount_micros":10000000,"remaining":"9.75","remaining_micros":9750000`)

	w = e.do("GET", "/v1/usage?account=team-a", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	recs := decode[struct {
		Records []map[string]any `json:"records"`
	}](t, w)
	require.Len(t, recs.Records, 1)
	require.Equal(t, "req_1", recs.Records[0]["id"])
	require.Equal(t, true, recs.Records[0]["paid"])
	require.Equal(t, "0.25", recs.Records[0]["charge"])

	w = e.do("GET", "/v1/usage?from=2026-03-01T12:01:30Z", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"id":"req_2"`)
	require.NotContains(t, w.Body.String(), `"id":"req_1"`, "from is inclusive of later records only")

	w = e.do("GET", "/v1/usage/summary?group_by=provider", "")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	sum := decode[struct {
		Rows []struct {
			Provider *string
			Requests int64
			Cost     string
		} `json:"rows"`
	}](t, w)
	require.Len(t, sum.Rows, 2)
	require.Equal(t, "anthropic", *sum.Rows[0].Provider)
	require.Equal(t, "0.0001", sum.Rows[0].Cost)
	require.Equal(t, "openai", *sum.Rows[1].Provider)
	require.EqualValues(t, 1, sum.Rows[1].Requests)

	requireError(t, e.do("GET", "/v1/credits/lots?account=team-a&cursor=bm90LWEtY3Vyc29y", ""), http.StatusBadRequest, admin.CodeInvalidCursor, "cursor")
}
