// Package benchledger holds the credits ledger of the load benchmark's
// "llmgate + keys + credits" paths (bench/cmd/proxy -credits): how the
// proxy funds the benchmark's account so that no request is ever refused,
// and the debug endpoint through which the driver reads, at the end of a
// run, what the ledger charged, to prove that the path metered every
// request rather than measuring a no-op.
//
// The account is the benchmark's gateway key's own ID (gatewaykey.ID): the
// key has no Account, and the gateway then charges the key's ID.
package benchledger

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/llmgate/gateway/bench/internal/gatewaykey"
	"github.com/llmgate/gateway/credits"
)

// Path is the debug endpoint Handler serves on the proxy's listener: GET
// returns the Snapshot as JSON. No API path of the gateway starts with
// "/_bench/".
const Path = "/_bench/credits"

// Account is whose credits the benchmark's requests spend.
const Account = gatewaykey.ID

// Purchases is how many purchases of credits.MaxPurchase Fund makes: $3M,
// enough for any number of the benchmark's requests (a ~400 KB request
// holds about $0.07 at gpt-4o-mini's prices).
const Purchases = 3

// Fund buys Purchases lots of credits.MaxPurchase for Account in s, with
// the purchase IDs "bench-1", "bench-2", … (so funding the same store
// again buys nothing more: purchases are idempotent by ID).
func Fund(ctx context.Context, s credits.Store) error {
	for i := range Purchases {
		if _, err := s.Purchase(ctx, credits.Purchase{ID: fmt.Sprintf("bench-%d", i+1), Account: Account,
			Amount: credits.MaxPurchase, Note: "llmgate load benchmark"}); err != nil {
			return fmt.Errorf("funding the benchmark's account: %w", err)
		}
	}
	return nil
}

// Snapshot is what the ledger holds for Account: its balance and the
// totals of its usage records. Money in micro-USD.
type Snapshot struct {
	Account string `json:"account"`
	// Purchased, Available, Held, Spent and Expired are the account's
	// Balance.
	Purchased credits.Amount `json:"purchased"`
	Available credits.Amount `json:"available"`
	Held      credits.Amount `json:"held"`
	Spent     credits.Amount `json:"spent"`
	Expired   credits.Amount `json:"expired"`
	// Records is the number of usage records of the account; Cost, Fee
	// and Uncollected their sums.
	Records     int64          `json:"records"`
	Cost        credits.Amount `json:"cost"`
	Fee         credits.Amount `json:"fee"`
	Uncollected credits.Amount `json:"uncollected"`
}

// Charged is what the usage records say the account paid: their cost and
// fee less what could not be collected. It equals Spent when credits paid
// for every record.
func (s Snapshot) Charged() credits.Amount { return s.Cost + s.Fee - s.Uncollected }

// Read returns the Snapshot of Account in s.
func Read(ctx context.Context, s credits.Store) (Snapshot, error) {
	b, err := s.Balance(ctx, Account)
	if err != nil {
		return Snapshot{}, err
	}
	rows, err := s.Summary(ctx, credits.SummaryQuery{Account: Account})
	if err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Account: Account, Purchased: b.Purchased, Available: b.Available, Held: b.Held, Spent: b.Spent, Expired: b.Expired}
	for _, r := range rows {
		snap.Records += r.Requests
		snap.Cost += r.Cost
		snap.Fee += r.Fee
		snap.Uncollected += r.Uncollected
	}
	return snap, nil
}

// Handler serves GET Path with the Snapshot of s as JSON and passes every
// other request to next. sync, when not nil, runs first: it writes back
// what a ledger in front of s (a credits.Leasing) has not written yet.
func Handler(s credits.Store, sync func(context.Context) error, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != Path {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if sync != nil {
			if err := sync(r.Context()); err != nil {
				http.Error(w, "writing the ledger back: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		snap, err := Read(r.Context(), s)
		if err != nil {
			http.Error(w, "reading the ledger: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(snap)
	})
}
