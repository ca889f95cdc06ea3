package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/admin"
	"github.com/llmgate/gateway/keys"
)

const testToken = "test-admin-token-0123456789"

// env is an admin API over a memory store with a stepping clock, capturing
// its logs and OnChange calls.
type env struct {
	t     *testing.T
	h     http.Handler
	store *keys.MemoryStore
	logs  *bytes.Buffer

	mu      sync.Mutex
	changes [][32]byte
}

// newEnv returns an env; mod adjusts the Options (o.Store may be replaced).
func newEnv(t *testing.T, mod ...func(o *admin.Options)) *env {
	t.Helper()
	e := &env{t: t, store: keys.NewMemoryStore(), logs: &bytes.Buffer{}}
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	e.store.Now = func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	}
	o := admin.Options{
		Store:    e.store,
		Endpoint: "prod",
		Token:    testToken,
		OnChange: func(h [32]byte) {
			e.mu.Lock()
			e.changes = append(e.changes, h)
			e.mu.Unlock()
		},
		Now:    func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mod {
		m(&o)
	}
	h, err := admin.New(o)
	require.NoError(t, err)
	e.h = h
	return e
}

// do sends an authenticated request; a non-empty body is sent as JSON.
func (e *env) do(method, path, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("Authorization", "Bearer "+testToken)
	return e.serve(r)
}

func (e *env) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// takeChanges returns and clears the hashes given to OnChange.
func (e *env) takeChanges() [][32]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.changes
	e.changes = nil
	return c
}

// created is the answer to a create.
type created struct {
	ID               string   `json:"id"`
	Redacted         string   `json:"redacted"`
	Endpoint         string   `json:"endpoint"`
	Account          string   `json:"account"`
	Description      string   `json:"description"`
	Metadata         string   `json:"metadata"`
	CreatedAt        string   `json:"created_at"`
	UpdatedAt        string   `json:"updated_at"`
	LastUsed         *string  `json:"last_used"`
	ExpiresAt        *string  `json:"expires_at"`
	AllowedProviders []string `json:"allowed_providers"`
	AllowedModels    []string `json:"allowed_models"`
	Token            string   `json:"token"`
}

// create makes a key and returns the answer.
func (e *env) create(body string) created {
	e.t.Helper()
	w := e.do("POST", "/v1/keys", body)
	require.Equal(e.t, http.StatusCreated, w.Code, w.Body.String())
	return decode[created](e.t, w)
}

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	var v T
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &v), w.Body.String())
	return v
}

// apiErr is an error answer's body.
type apiErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

// requireError checks an error answer's status, code and field.
func requireError(t *testing.T, w *httptest.ResponseRecorder, status int, code, field string) {
	t.Helper()
	require.Equal(t, status, w.Code, w.Body.String())
	var b struct{ Error apiErr }
	b = decode[struct{ Error apiErr }](t, w)
	require.Equal(t, code, b.Error.Code, w.Body.String())
	require.Equal(t, field, b.Error.Field, w.Body.String())
	require.NotEmpty(t, b.Error.Message)
}

func TestNew(t *testing.T) {
	store := keys.NewMemoryStore()
	authorize := func(*http.Request) bool { return true }
	for _, tc := range []struct {
		name string
		o    admin.Options
		errs []string
	}{
		{"token", admin.Options{Store: store, Endpoint: "prod", Token: testToken}, nil},
		{"authorize only", admin.Options{Store: store, Endpoint: "prod", Authorize: authorize}, nil},
		{"both", admin.Options{Store: store, Endpoint: "prod", Token: testToken, Authorize: authorize}, nil},
		{"zero", admin.Options{}, []string{"Store is required", "Endpoint is required", "Token or Authorize is required"}},
		{"short token", admin.Options{Store: store, Endpoint: "prod", Token: "short"}, []string{"at least 16 bytes"}},
		{"token spaces", admin.Options{Store: store, Endpoint: "prod", Token: testToken + "\n"}, []string{"surrounding spaces"}},
		{"long endpoint", admin.Options{Store: store, Endpoint: strings.Repeat("e", 256), Token: testToken}, []string{"Endpoint must be"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := admin.New(tc.o)
			if tc.errs == nil {
				require.NoError(t, err)
				require.NotNil(t, h)
				return
			}
			require.ErrorIs(t, err, admin.ErrOptions)
			require.Nil(t, h)
			for _, s := range tc.errs {
				require.ErrorContains(t, err, s)
			}
			require.NotContains(t, err.Error(), testToken)
		})
	}
}

func TestAuthToken(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		header string
		ok     bool
	}{
		{"missing", "", false},
		{"wrong", "Bearer wrong-admin-token-0123456789", false},
		{"prefix of the token", "Bearer " + testToken[:len(testToken)-1], false},
		{"token and more", "Bearer " + testToken + "x", false},
		{"basic scheme", "Basic " + testToken, false},
		{"no scheme", testToken, false},
		{"empty bearer", "Bearer ", false},
		{"right", "Bearer " + testToken, true},
		{"scheme in lower case", "bearer " + testToken, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/v1/keys", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			w := e.serve(r)
			if tc.ok {
				require.Equal(t, http.StatusOK, w.Code)
				return
			}
			requireError(t, w, http.StatusUnauthorized, "admin_unauthorized", "")
			require.Equal(t, `Bearer realm="llmgate-admin"`, w.Header().Get("WWW-Authenticate"))
			require.NotContains(t, e.logs.String(), "wrong-admin-token")
		})
	}
	t.Run("before routing", func(t *testing.T) {
		// Unauthenticated clients learn nothing of the routes.
		for _, path := range []string{"/nowhere", "/v1/keys/key_x"} {
			w := e.serve(httptest.NewRequest("PUT", path, nil))
			requireError(t, w, http.StatusUnauthorized, "admin_unauthorized", "")
		}
	})
}

func TestAuthorize(t *testing.T) {
	hostOK := func(r *http.Request) bool { return r.Header.Get("X-Host-Auth") == "yes" }
	for _, tc := range []struct {
		name    string
		token   string
		bearer  bool
		hostHdr bool
		want    int
	}{
		{"hook only: accepted", "", false, true, http.StatusOK},
		{"hook only: refused", "", true, false, http.StatusUnauthorized},
		{"both: both pass", testToken, true, true, http.StatusOK},
		{"both: token missing", testToken, false, true, http.StatusUnauthorized},
		{"both: hook refuses", testToken, true, false, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *admin.Options) { o.Token = tc.token; o.Authorize = hostOK })
			r := httptest.NewRequest("GET", "/v1/keys", nil)
			if tc.bearer {
				r.Header.Set("Authorization", "Bearer "+testToken)
			}
			if tc.hostHdr {
				r.Header.Set("X-Host-Auth", "yes")
			}
			w := e.serve(r)
			require.Equal(t, tc.want, w.Code, w.Body.String())
			if tc.token == "" {
				require.Empty(t, w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestRouting(t *testing.T) {
	e := newEnv(t)
	k := e.create("")
	for _, tc := range []struct {
		name, method, path string
		status             int
		code, allow        string
	}{
		{"unknown path", "GET", "/v2/keys", 404, "not_found", ""},
		{"root", "GET", "/", 404, "not_found", ""},
		{"trailing slash", "GET", "/v1/keys/", 404, "not_found", ""},
		{"unclean path is not redirected", "GET", "/v1//keys", 404, "not_found", ""},
		{"dot segments", "GET", "/v1/x/../keys/" + k.ID, 404, "not_found", ""},
		{"too deep", "GET", "/v1/keys/" + k.ID + "/provider_keys/pk_x/more", 404, "not_found", ""},
		{"collection", "PUT", "/v1/keys", 405, "method_not_allowed", "GET, HEAD, POST"},
		{"key", "POST", "/v1/keys/" + k.ID, 405, "method_not_allowed", "DELETE, GET, HEAD, PATCH"},
		{"provider keys", "PATCH", "/v1/keys/" + k.ID + "/provider_keys", 405, "method_not_allowed", "GET, HEAD, POST"},
		{"provider key", "GET", "/v1/keys/" + k.ID + "/provider_keys/pk_x", 405, "method_not_allowed", "DELETE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(tc.method, tc.path, "")
			requireError(t, w, tc.status, tc.code, "")
			require.Equal(t, tc.allow, w.Header().Get("Allow"))
		})
	}
	t.Run("headers", func(t *testing.T) {
		w := e.do("GET", "/v1/keys/"+k.ID, "")
		require.Equal(t, http.StatusOK, w.Code)
		require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
		require.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
	})
	t.Run("mounted under a prefix", func(t *testing.T) {
		mux := http.NewServeMux()
		mux.Handle("/admin/", http.StripPrefix("/admin", e.h))
		r := httptest.NewRequest("GET", "/admin/v1/keys/"+k.ID, nil)
		r.Header.Set("Authorization", "Bearer "+testToken)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		require.Equal(t, k.ID, decode[created](t, w).ID)
	})
}

// failingStore is a memory store whose methods fail with err when it is
// set, counting the calls that reach it.
type failingStore struct {
	*keys.MemoryStore
	mu    sync.Mutex
	err   error
	calls int
}

func (s *failingStore) fail() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return s.err
}

func (s *failingStore) Create(ctx context.Context, k keys.Key) (keys.Key, error) {
	if err := s.fail(); err != nil {
		return keys.Key{}, err
	}
	return s.MemoryStore.Create(ctx, k)
}

func (s *failingStore) Get(ctx context.Context, id string) (keys.Key, error) {
	if err := s.fail(); err != nil {
		return keys.Key{}, err
	}
	return s.MemoryStore.Get(ctx, id)
}

func (s *failingStore) List(ctx context.Context, o keys.ListOptions) (keys.Page, error) {
	if err := s.fail(); err != nil {
		return keys.Page{}, err
	}
	return s.MemoryStore.List(ctx, o)
}

func (s *failingStore) Update(ctx context.Context, id string, u keys.Update) (keys.Key, error) {
	if err := s.fail(); err != nil {
		return keys.Key{}, err
	}
	return s.MemoryStore.Update(ctx, id, u)
}

func (s *failingStore) Delete(ctx context.Context, id string) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.MemoryStore.Delete(ctx, id)
}

func (s *failingStore) Attach(ctx context.Context, a keys.AttachedKey) (keys.AttachedKey, error) {
	if err := s.fail(); err != nil {
		return keys.AttachedKey{}, err
	}
	return s.MemoryStore.Attach(ctx, a)
}

func (s *failingStore) Detach(ctx context.Context, keyID, attachedID string) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.MemoryStore.Detach(ctx, keyID, attachedID)
}

func (s *failingStore) Attached(ctx context.Context, keyID string) ([]keys.AttachedKey, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.MemoryStore.Attached(ctx, keyID)
}

func (s *failingStore) set(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
	s.calls = 0
}

func (s *failingStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// newFailingEnv returns an env over a failingStore, with a sealer.
func newFailingEnv(t *testing.T) (*env, *failingStore) {
	t.Helper()
	var fs *failingStore
	e := newEnv(t, func(o *admin.Options) {
		fs = &failingStore{MemoryStore: o.Store.(*keys.MemoryStore)}
		o.Store = fs
		o.Sealer = testSealer(t)
	})
	return e, fs
}

func testSealer(t *testing.T) *keys.Sealer {
	t.Helper()
	s, err := keys.NewSealer(keys.KEK{ID: "test-kek", Key: [32]byte{7, 7, 7}})
	require.NoError(t, err)
	return s
}

var errBoom = errors.New("database said: password=hunter2 at db.internal")
