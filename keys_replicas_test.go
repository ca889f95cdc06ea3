package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
	"github.com/llmgate/gateway/store/postgres"
	"github.com/llmgate/gateway/store/postgres/pgtest"
)

// newReplica starts a gateway with gateway API keys from store, in front
// of the shared fake upstreams oa and an, served over real HTTP.
func newReplica(t *testing.T, store keys.KeyStore, oa, an *providertest.Server, o KeyStoreOptions) *testEnv {
	t.Helper()
	e := &testEnv{oa: oa, an: an, events: &eventLog{ch: make(chan *Event, 64)}}
	gw, err := New(
		WithProvider(ProviderConfig{ID: "openai", BaseURL: oa.URL, Keys: []ProviderKey{{Value: "sk-oa-1"}}}),
		WithProvider(ProviderConfig{ID: "anthropic", BaseURL: an.URL, Keys: []ProviderKey{{Value: "sk-an-1"}}}),
		WithEventSink(e.events),
		WithKeyStore(store, o),
	)
	require.NoError(t, err)
	e.gw = gw
	e.srv = httptest.NewServer(gw)
	t.Cleanup(func() {
		e.srv.Close()
		_ = gw.Close()
	})
	return e
}

// status sends a chat completion for model with token to e and returns the
// response's status and body; it never fails the test, so that it can run
// in require.Eventually's goroutine (an error is status -1).
func (e *testEnv) status(path, model, token string) (int, []byte) {
	body := chatBody(model)
	if strings.HasPrefix(path, "/v1/messages") {
		body = messagesBody(model)
	}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		return -1, []byte(err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1, []byte(err.Error())
	}
	return resp.StatusCode, b
}

// awaitListeners waits until n Watch connections LISTEN on the database
// at dsn, so that changes made from then on are notified to them.
func awaitListeners(t *testing.T, dsn string, n int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	got := -1
	require.Eventually(t, func() bool {
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1
			AND state = 'idle' AND query LIKE 'LISTEN %'`, postgres.WatchApplicationName).Scan(&got)
		return err == nil && got == n
	}, 10*time.Second, 10*time.Millisecond, "want %d listeners", n)
}

// TestGatewayKeysAcrossReplicas runs two gateways, each with its own
// postgres.Store on one database, and changes keys through A's store
// only. The caches' clock is frozen, so no cache entry ever expires by
// itself: only a LISTEN/NOTIFY notification reaching B's Cache.Run can
// explain that B sees an update or a revocation made on A.
func TestGatewayKeysAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	open := func() *postgres.Store {
		s, err := postgres.Open(ctx, dsn, postgres.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	storeA, storeB := open(), open()
	oa, an := providertest.Start(t, providers.FormatOpenAI), providertest.Start(t, providers.FormatAnthropic)
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	o := KeyStoreOptions{Endpoint: "gw", Cache: keys.CacheOptions{Now: clock.now}} // default TTLs: 30s, 5s negative
	a := newReplica(t, storeA, oa, an, o)
	b := newReplica(t, storeB, oa, an, o)
	// Cache.Run purges the cache when it starts watching: wait for both
	// watches, so that what B caches from now on stays cached.
	awaitListeners(t, dsn, 2)

	create := func(t *testing.T) (keys.Key, string) {
		t.Helper()
		k, token, err := keys.NewKey("gw")
		require.NoError(t, err)
		k, err = storeA.Create(ctx, k)
		require.NoError(t, err)
		return k, token
	}

	k, token := create(t)
	t.Run("a key created on A works on B", func(t *testing.T) {
		resp, body := b.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Authorization", "Bearer "+token)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		require.Equal(t, k.ID, b.events.last(t).Principal.KeyID)
		code, body := b.status("/v1/chat/completions", "gpt-4o", token)
		require.Equal(t, http.StatusOK, code, "cached on B: %s", body)
		code, body = a.status("/v1/chat/completions", "gpt-4o", token)
		require.Equal(t, http.StatusOK, code, string(body))
	})

	t.Run("a key B refused before it existed works after the negative TTL", func(t *testing.T) {
		early, earlyToken, err := keys.NewKey("gw")
		require.NoError(t, err)
		code, body := b.status("/v1/chat/completions", "gpt-4o", earlyToken)
		require.Equal(t, http.StatusUnauthorized, code, string(body))
		_, err = storeA.Create(ctx, early)
		require.NoError(t, err)
		// A creation is not notified: B keeps refusing the key it
		// remembers as unknown, for the negative TTL at most. A, never
		// asked, serves it at once.
		code, body = a.status("/v1/chat/completions", "gpt-4o", earlyToken)
		require.Equal(t, http.StatusOK, code, string(body))
		code, body = b.status("/v1/chat/completions", "gpt-4o", earlyToken)
		require.Equal(t, http.StatusUnauthorized, code, "negative-cached: %s", body)
		clock.advance(keys.DefaultCacheNegativeTTL - time.Millisecond)
		code, body = b.status("/v1/chat/completions", "gpt-4o", earlyToken)
		require.Equal(t, http.StatusUnauthorized, code, "still within the negative TTL: %s", body)
		clock.advance(time.Millisecond)
		resp, body := b.post(t, "/v1/chat/completions", chatBody("gpt-4o"), "Authorization", "Bearer "+earlyToken)
		require.Equal(t, http.StatusOK, resp.StatusCode, "the bound for a new key is the negative TTL: %s", body)
		require.Equal(t, early.ID, b.events.last(t).Principal.KeyID)
	})

	t.Run("an update on A reaches B", func(t *testing.T) {
		code, body := b.status("/v1/chat/completions", "gpt-4o", token)
		require.Equal(t, http.StatusOK, code, "cached on B: %s", body)
		_, err := storeA.Update(ctx, k.ID, keys.Update{AllowedProviders: &[]string{"anthropic"}})
		require.NoError(t, err)
		var last []byte
		require.Eventually(t, func() bool {
			code, last = b.status("/v1/chat/completions", "gpt-4o", token)
			return code == http.StatusForbidden
		}, 2*time.Second, 5*time.Millisecond, "B still serves the old key")
		require.Equal(t, "provider_not_allowed", decodeOpenAIError(t, last).Error.Code)
		code, body = b.status("/v1/messages", "claude-haiku-4-5", token)
		require.Equal(t, http.StatusOK, code, "the new allow-list: %s", body)
	})

	t.Run("a revocation on A reaches B", func(t *testing.T) {
		code, body := b.status("/v1/messages", "claude-haiku-4-5", token)
		require.Equal(t, http.StatusOK, code, "cached on B: %s", body)
		require.NoError(t, storeA.Delete(ctx, k.ID))
		var last []byte
		require.Eventually(t, func() bool {
			code, last = b.status("/v1/messages", "claude-haiku-4-5", token)
			return code == http.StatusUnauthorized
		}, 2*time.Second, 5*time.Millisecond, "B still serves the deleted key")
		require.Equal(t, "invalid_api_key", decodeAnthropicError(t, last).Error.Code)
		code, body = a.status("/v1/chat/completions", "gpt-4o", token)
		require.Equal(t, http.StatusUnauthorized, code, string(body))
	})
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers (slog
// handlers write from request goroutines).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestGatewayKeySecretsNeverLeak drives a gateway whose key has attached
// provider keys through successes, hostile upstream failures that echo
// the secrets back, a bad token and an expired key, and scans everything
// observable (events, logs, client responses, upstream requests) for the
// gateway tokens, the attached keys and the key-encryption key.
func TestGatewayKeySecretsNeverLeak(t *testing.T) {
	ctx := context.Background()
	kek := keys.KEK{ID: "kek-leak", Key: sha256.Sum256([]byte("llmgate leak test KEK"))}
	sealer, err := keys.NewSealer(kek)
	require.NoError(t, err)
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newKeyEnv(t, KeyStoreOptions{Sealer: sealer}, WithLogger(logger), WithEventSink(SlogSink{Logger: logger, Level: slog.LevelInfo}))

	k, token := e.key(t, "gw", func(k *keys.Key) { k.Metadata = `{"team":"a"}` })
	_, expiredToken := e.key(t, "gw", func(k *keys.Key) { k.ExpiresAt = time.Now().Add(-time.Hour) })
	badToken := keys.TokenPrefix + strings.Repeat("Z", 43)
	const oaSecret, anSecret = "sk-proj-attached-openai-0123456789abcdef", "sk-ant-attached-anthropic-0123456789abcdef"
	for provider, secret := range map[string]string{"openai": oaSecret, "anthropic": anSecret} {
		a, err := sealer.NewAttached(k.ID, provider, secret)
		require.NoError(t, err)
		_, err = e.store.Attach(ctx, a)
		require.NoError(t, err)
	}

	// What the client sees.
	var (
		clientMu  sync.Mutex
		clientOut []string
	)
	send := func(t *testing.T, path, body string, header ...string) int {
		t.Helper()
		resp, b := e.post(t, path, body, header...)
		var h strings.Builder
		require.NoError(t, resp.Header.Write(&h))
		clientMu.Lock()
		clientOut = append(clientOut, h.String(), string(b))
		clientMu.Unlock()
		return resp.StatusCode
	}
	auth := []string{"Authorization", "Bearer " + token}
	xkey := []string{"X-Api-Key", token}
	// hostile echoes back what an upstream could learn: its own credential,
	// and the gateway token a client pasted into a prompt.
	hostile := func(secret string) string {
		return "invalid request: credential " + secret + " rejected; the prompt said " + token + "; Bearer " + secret
	}

	for _, tc := range []struct {
		name, path, body string
		header           []string
		steps            func()
		status           int
	}{
		{"OpenAI JSON", "/v1/chat/completions", chatBody("gpt-4o"), auth, nil, 200},
		{"OpenAI stream", "/v1/chat/completions", chatBody("gpt-4o", `"stream":true`), auth, nil, 200},
		{"Anthropic JSON", "/v1/messages", messagesBody("claude-haiku-4-5"), xkey, nil, 200},
		{"Anthropic stream", "/v1/messages", messagesBody("claude-haiku-4-5", `"stream":true`), xkey, nil, 200},
		{"OpenAI dialect to Anthropic", "/v1/chat/completions", chatBody("claude-haiku-4-5"), auth, nil, 200},
		{"OpenAI 500 echoing secrets", "/v1/chat/completions", chatBody("gpt-4o"), auth, func() {
			e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 500, hostile(oaSecret)))
		}, 0},
		{"OpenAI in-stream error echoing secrets", "/v1/chat/completions", chatBody("gpt-4o", `"stream":true`), auth, func() {
			e.oa.Enqueue(providertest.StreamError(providers.FormatOpenAI, "gpt-4o", []string{"Hel"}, 500, hostile(oaSecret)))
		}, 200},
		{"Anthropic 500 echoing secrets", "/v1/messages", messagesBody("claude-haiku-4-5"), xkey, func() {
			e.an.Enqueue(providertest.Error(providers.FormatAnthropic, 500, hostile(anSecret)))
		}, 0},
		{"Anthropic in-stream error echoing secrets", "/v1/messages", messagesBody("claude-haiku-4-5", `"stream":true`), xkey, func() {
			e.an.Enqueue(providertest.StreamError(providers.FormatAnthropic, "claude-haiku-4-5", []string{"Hel"}, 500, hostile(anSecret)))
		}, 200},
		{"Anthropic 401 echoing secrets", "/v1/messages", messagesBody("claude-haiku-4-5"), xkey, func() {
			e.an.Enqueue(providertest.Error(providers.FormatAnthropic, 401, hostile(anSecret)))
		}, 0},
		{"OpenAI 401 echoing secrets", "/v1/chat/completions", chatBody("gpt-4o"), auth, func() {
			e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 401, hostile(oaSecret)))
		}, 0},
		{"OpenAI 400 relayed, echoing secrets", "/v1/chat/completions", chatBody("gpt-4o"), auth, func() {
			e.oa.Enqueue(providertest.Error(providers.FormatOpenAI, 400, hostile(oaSecret)))
		}, 400},
		{"Anthropic 400 relayed, echoing secrets", "/v1/messages", messagesBody("claude-haiku-4-5"), xkey, func() {
			e.an.Enqueue(providertest.Error(providers.FormatAnthropic, 400, hostile(anSecret)))
		}, 400},
		{"bad token", "/v1/chat/completions", chatBody("gpt-4o"), []string{"Authorization", "Bearer " + badToken}, nil, 401},
		{"expired key", "/v1/messages", messagesBody("claude-haiku-4-5"), []string{"X-Api-Key", expiredToken}, nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.steps != nil {
				tc.steps()
			}
			code := send(t, tc.path, tc.body, tc.header...)
			if tc.status != 0 {
				require.Equal(t, tc.status, code)
			} else {
				require.GreaterOrEqual(t, code, 400)
			}
			require.Zero(t, e.oa.Pending()+e.an.Pending(), "every scripted answer was played")
		})
	}

	// Everything observable.
	var seen []string
	seen = append(seen, clientOut...)
	e.events.mu.Lock()
	for _, ev := range e.events.evs {
		b, err := json.Marshal(ev)
		require.NoError(t, err)
		seen = append(seen, string(b), fmt.Sprintf("%+v", *ev))
		if ev.Err != nil {
			seen = append(seen, ev.Err.Error())
			if ev.Err.Err != nil {
				seen = append(seen, ev.Err.Err.Error())
			}
		}
	}
	e.events.mu.Unlock()
	require.NoError(t, e.gw.Close()) // flushes last-used times, may log
	seen = append(seen, logs.String())
	require.Contains(t, logs.String(), "llmgate request", "the slog sink logged the requests")

	upstream := func(s *providertest.Server, authHeader, want string) {
		reqs := s.Requests()
		require.NotEmpty(t, reqs)
		for _, r := range reqs {
			require.Equal(t, want, r.Header.Get(authHeader), "the upstream gets the attached key in its own auth header")
			h := r.Header.Clone()
			h.Del(authHeader)
			var b strings.Builder
			require.NoError(t, h.Write(&b))
			seen = append(seen, r.Method+" "+r.Path+"?"+r.RawQuery, b.String(), string(r.Body))
		}
	}
	upstream(e.oa, "Authorization", "Bearer "+oaSecret)
	upstream(e.an, "X-Api-Key", anSecret)

	secrets := map[string]string{
		"gateway token":             token,
		"expired gateway token":     expiredToken,
		"bad gateway token":         badToken,
		"attached OpenAI key":       oaSecret,
		"attached Anthropic key":    anSecret,
		"KEK raw":                   string(kek.Key[:]),
		"KEK hex":                   hex.EncodeToString(kek.Key[:]),
		"KEK HEX":                   strings.ToUpper(hex.EncodeToString(kek.Key[:])),
		"KEK base64":                base64.StdEncoding.EncodeToString(kek.Key[:]),
		"KEK base64 raw":            base64.RawStdEncoding.EncodeToString(kek.Key[:]),
		"KEK base64url":             base64.URLEncoding.EncodeToString(kek.Key[:]),
		"KEK base64url raw":         base64.RawURLEncoding.EncodeToString(kek.Key[:]),
		"gateway token, JSON-bytes": base64.StdEncoding.EncodeToString([]byte(token)),
	}
	for i, s := range seen {
		for name, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("%s leaked in observation %d:\n%s", name, i, s)
			}
		}
	}
	// The hostile messages did reach the client and the logs, redacted.
	const echoed = "credential [redacted] rejected; the prompt said [redacted]"
	require.Contains(t, strings.Join(clientOut, "\n"), echoed)
	require.Contains(t, logs.String(), echoed)
}

// TestGatewayKeysConcurrentRevocation sends requests from 32 goroutines
// while the key is deleted: once Forget has returned, no request sent
// afterwards succeeds. Run it with -race.
func TestGatewayKeysConcurrentRevocation(t *testing.T) {
	e := newKeyEnv(t, KeyStoreOptions{})
	k, token := e.key(t, "gw", nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(client.CloseIdleConnections)

	const workers, minAfter = 32, 5
	var (
		forgotten        atomic.Bool
		okBefore         atomic.Int64
		okAfter, deniedA atomic.Int64
		wg               sync.WaitGroup
		errsMu           sync.Mutex
		errs             []error
	)
	stop := make(chan struct{})
	afterCounts := make([]atomic.Int64, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				after := forgotten.Load() // read before the request is sent
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("gpt-4o")))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil {
					errsMu.Lock()
					errs = append(errs, err)
					errsMu.Unlock()
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusOK && after:
					okAfter.Add(1)
				case resp.StatusCode == http.StatusOK:
					okBefore.Add(1)
				case resp.StatusCode == http.StatusUnauthorized:
					if after {
						deniedA.Add(1)
					}
				default:
					errsMu.Lock()
					errs = append(errs, fmt.Errorf("status %d", resp.StatusCode))
					errsMu.Unlock()
					return
				}
				if after {
					afterCounts[w].Add(1)
				}
			}
		}()
	}
	errList := func() []error {
		errsMu.Lock()
		defer errsMu.Unlock()
		return append([]error(nil), errs...)
	}
	failed := func() bool { return len(errList()) > 0 }
	require.Eventually(t, func() bool { return okBefore.Load() >= 4*workers || failed() }, 10*time.Second, time.Millisecond)
	require.Empty(t, errList(), "requests succeed before the revocation")
	require.NoError(t, e.store.Delete(context.Background(), k.ID))
	e.gw.Forget(k.Hash)
	forgotten.Store(true)
	require.Eventually(t, func() bool {
		for w := range afterCounts {
			if afterCounts[w].Load() < minAfter {
				return failed()
			}
		}
		return true
	}, 10*time.Second, time.Millisecond, "every worker sends requests after Forget")
	close(stop)
	wg.Wait()
	require.Empty(t, errs, "only 200 before and 401 after")
	require.Zero(t, okAfter.Load(), "no request sent after Forget succeeds")
	require.GreaterOrEqual(t, deniedA.Load(), int64(workers*minAfter))
	_, _, err := e.gw.routing.Load().auth.cache.Lookup(context.Background(), k.Hash)
	require.True(t, errors.Is(err, keys.ErrNotFound), "%v", err)
}
