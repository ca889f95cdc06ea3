package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// Sell access with prepaid credits: a gateway key spends its account's
// balance on the catalog price of what it uses plus a 5% fee.
func ExampleWithMetering() {
	upstream := providertest.NewServer(providers.FormatOpenAI) // stands in for api.openai.com
	defer upstream.Close()
	ctx := context.Background()

	keyStore := keys.NewMemoryStore()
	ledger := credits.NewMemory(credits.MemoryOptions{})
	gw, err := gateway.New(
		gateway.WithProvider(gateway.ProviderConfig{ID: "openai", BaseURL: upstream.URL, Keys: []gateway.ProviderKey{{Value: "sk-your-key"}}}),
		gateway.WithKeyStore(keyStore, gateway.KeyStoreOptions{Endpoint: "prod"}),
		gateway.WithMetering(ledger, gateway.MeteringOptions{Credits: true, FeeBasisPoints: 500}))
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()

	// A key for account "acme", which buys $5.00 of credits.
	k, token, _ := keys.NewKey("prod")
	k.Account = "acme"
	if _, err := keyStore.Create(ctx, k); err != nil {
		log.Fatal(err)
	}
	if _, err := ledger.Purchase(ctx, credits.Purchase{ID: "order-1", Account: "acme", Amount: 5 * credits.Dollar}); err != nil {
		log.Fatal(err)
	}

	srv := httptest.NewServer(gw)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	srv.Close() // waits for the handler: the request settles just after its answer is sent

	page, _ := ledger.Usage(ctx, credits.UsageQuery{Account: "acme"})
	r := page.Records[0]
	fmt.Printf("%d %s:%s, %d+%d tokens, cost $%s + fee $%s\n", resp.StatusCode, r.Provider, r.Model,
		r.Reported.Input, r.Reported.Output, r.Cost, r.Fee)
	b, _ := ledger.Balance(ctx, "acme")
	fmt.Printf("available $%s, spent $%s\n", b.Available, b.Spent)
	// Output:
	// 200 openai:gpt-4o-mini, 17+6 tokens, cost $0.000007 + fee $0.000001
	// available $4.999992, spent $0.000008
}
