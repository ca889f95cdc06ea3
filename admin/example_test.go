package admin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/llmgate/gateway/admin"
	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/keys"
)

// Example mounts the admin API under /admin and drives it as curl would:
// create a key, read it, delete it.
func Example() {
	store := keys.NewMemoryStore()
	h, err := admin.New(admin.Options{
		Store:    store,
		Endpoint: "prod",
		Token:    "admin-token-from-the-secret-manager",
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", h))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	call := func(method, path, body string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer admin-token-from-the-secret-manager")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}

	// curl -X POST $ADMIN/v1/keys -H "Authorization: Bearer $TOKEN" -d '{"description":"team a"}'
	resp, key := call("POST", "/admin/v1/keys", `{"description":"team a","allowed_providers":["openai"]}`)
	token := key["token"].(string) // shown this once
	fmt.Println(resp.StatusCode, key["endpoint"], key["description"], keys.LooksLikeToken(token))

	id := key["id"].(string)
	resp, key = call("GET", "/admin/v1/keys/"+id, "")
	_, hasToken := key["token"]
	fmt.Println(resp.StatusCode, key["redacted"] == keys.Redact(token), hasToken)

	resp, _ = call("DELETE", "/admin/v1/keys/"+id, "")
	fmt.Println(resp.StatusCode)
	resp, body := call("GET", "/admin/v1/keys/"+id, "")
	fmt.Println(resp.StatusCode, body["error"].(map[string]any)["code"])
	// Output:
	// 201 prod team a true
	// 200 true false
	// 204
	// 404 key_not_found
}

// Example_credits buys credits for an account and reads its balance, as
// an operator's billing system would after a payment.
func Example_credits() {
	store := credits.NewMemory(credits.MemoryOptions{})
	h, err := admin.New(admin.Options{
		Store:    keys.NewMemoryStore(),
		Credits:  store,
		Endpoint: "prod",
		Token:    "admin-token-from-the-secret-manager",
	})
	if err != nil {
		panic(err)
	}
	call := func(method, path, body string) (int, map[string]any) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer admin-token-from-the-secret-manager")
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var out map[string]any
		dec := json.NewDecoder(w.Body)
		dec.UseNumber() // amount_micros is an integer: keep it one
		dec.Decode(&out)
		return w.Code, out
	}

	// The payment's ID makes the purchase idempotent: a retry buys nothing.
	status, lot := call("POST", "/v1/credits/purchases", `{"account":"team-a","amount":"25.00","id":"payment-8812"}`)
	fmt.Println(status, lot["id"], lot["amount"], lot["amount_micros"])
	status, _ = call("POST", "/v1/credits/purchases", `{"account":"team-a","amount":"25.00","id":"payment-8812"}`)
	fmt.Println(status)

	_, b := call("GET", "/v1/credits/balance?account=team-a", "")
	fmt.Println(b["available"], b["purchased"], b["known"])

	status, e := call("POST", "/v1/credits/purchases", `{"account":"team-a","amount":"1.00"}`)
	fmt.Println(status, e["error"].(map[string]any)["code"])
	// Output:
	// 201 payment-8812 25.00 25000000
	// 200
	// 25.00 25.00 true
	// 422 purchase_below_minimum
}
