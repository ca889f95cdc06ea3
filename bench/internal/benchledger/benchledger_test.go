package benchledger

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
)

// spend holds and settles one request of the account in m, with its usage
// record, as the gateway does; cost is what the record says it cost and
// paid what the settlement spends.
func spend(t *testing.T, m credits.Ledger, id string, cost, paid credits.Amount) {
	t.Helper()
	ctx := context.Background()
	h, err := m.Reserve(ctx, credits.Reservation{ID: id, Account: Account, Max: credits.Dollar, Min: credits.Cent, TTL: time.Minute})
	require.NoError(t, err)
	now := time.Now()
	_, err = m.Settle(ctx, h.ID, paid, &credits.UsageRecord{ID: id, RequestID: id, KeyID: Account, Account: Account,
		Provider: "openai", Model: "gpt-4o-mini", KeySource: credits.SourceConfigured, Cost: cost, Status: http.StatusOK,
		Start: now, End: now})
	require.NoError(t, err)
}

func TestFundAndRead(t *testing.T) {
	ctx := context.Background()
	m := credits.NewMemory(credits.MemoryOptions{})
	require.NoError(t, Fund(ctx, m))
	require.NoError(t, Fund(ctx, m), "funding again buys nothing more")
	snap, err := Read(ctx, m)
	require.NoError(t, err)
	require.Equal(t, Snapshot{Account: Account, Purchased: Purchases * credits.MaxPurchase, Available: Purchases * credits.MaxPurchase}, snap)

	spend(t, m, "req_1", 300, 300)
	spend(t, m, "req_2", 200, 200)
	snap, err = Read(ctx, m)
	require.NoError(t, err)
	require.EqualValues(t, 2, snap.Records)
	require.EqualValues(t, 500, snap.Spent)
	require.EqualValues(t, 500, snap.Charged())
	require.Zero(t, snap.Held)
	require.Equal(t, snap.Purchased, snap.Available+snap.Spent)

	// A request the ledger only recorded (not paid with credits) shows
	// as a charge the ledger did not spend.
	require.NoError(t, m.Record(ctx, &credits.UsageRecord{ID: "req_3", RequestID: "req_3", Account: Account, Cost: 100,
		KeySource: credits.SourceClient, Status: http.StatusOK, Start: time.Now(), End: time.Now()}))
	snap, err = Read(ctx, m)
	require.NoError(t, err)
	require.EqualValues(t, 3, snap.Records)
	require.NotEqual(t, snap.Spent, snap.Charged())
}

func TestHandler(t *testing.T) {
	m := credits.NewMemory(credits.MemoryOptions{})
	require.NoError(t, Fund(context.Background(), m))
	spend(t, m, "req_1", 300, 300)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := Handler(m, nil, next)
	for _, tc := range []struct {
		name, method, path string
		status             int
	}{
		{"snapshot", http.MethodGet, Path, http.StatusOK},
		{"other paths reach the gateway", http.MethodPost, "/v1/chat/completions", http.StatusTeapot},
		{"other methods", http.MethodPost, Path, http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			require.Equal(t, tc.status, rec.Code)
			if tc.status != http.StatusOK {
				return
			}
			require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			var snap Snapshot
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &snap))
			require.EqualValues(t, 1, snap.Records)
			require.EqualValues(t, 300, snap.Spent)
		})
	}
}

func TestHandlerSyncsALeasing(t *testing.T) {
	m := credits.NewMemory(credits.MemoryOptions{})
	require.NoError(t, Fund(context.Background(), m))
	l := credits.NewLeasing(m, credits.LeasingOptions{FlushInterval: time.Hour})
	defer l.Close(context.Background())
	spend(t, l, "req_1", 300, 300)
	h := Handler(m, l.Sync, http.NotFoundHandler())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path, nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var snap Snapshot
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &snap))
	require.EqualValues(t, 1, snap.Records, "the leasing's settlement is written back before the snapshot")
	require.EqualValues(t, 300, snap.Spent)
	require.Zero(t, snap.Held, "and its unused lease given back")
}
