package admin_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/admin"
	"github.com/llmgate/gateway/keys"
)

func TestCreate(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		e := newEnv(t)
		k := e.create("")
		require.True(t, keys.ValidID(k.ID))
		require.True(t, keys.LooksLikeToken(k.Token))
		require.Equal(t, keys.Redact(k.Token), k.Redacted)
		require.Equal(t, "prod", k.Endpoint)
		require.Empty(t, k.Account)
		require.Empty(t, k.Description)
		require.Nil(t, k.LastUsed)
		require.Nil(t, k.ExpiresAt)
		require.Equal(t, []string{}, k.AllowedProviders)
		require.Equal(t, []string{}, k.AllowedModels)
		require.Equal(t, "2026-03-01T12:00:01Z", k.CreatedAt)
		require.Equal(t, k.CreatedAt, k.UpdatedAt)

		// The token works: the store finds the key by its hash.
		stored, _, err := e.store.Lookup(context.Background(), keys.Hash(k.Token))
		require.NoError(t, err)
		require.Equal(t, k.ID, stored.ID)
		require.Equal(t, []([32]byte){keys.Hash(k.Token)}, e.takeChanges())
	})
	t.Run("every field", func(t *testing.T) {
		e := newEnv(t)
		k := e.create(`{"description":"team a","metadata":"{\"team\":\"a\"}","endpoint":"staging","account":"acct-1",
			"expires_at":"2027-01-31T01:00:00+01:00","allowed_providers":["openai"],"allowed_models":["openai:gpt-4o","claude-sonnet-4"]}`)
		require.Equal(t, "team a", k.Description)
		require.Equal(t, `{"team":"a"}`, k.Metadata)
		require.Equal(t, "staging", k.Endpoint)
		require.Equal(t, "acct-1", k.Account)
		require.NotNil(t, k.ExpiresAt)
		require.Equal(t, "2027-01-31T00:00:00Z", *k.ExpiresAt)
		require.Equal(t, []string{"openai"}, k.AllowedProviders)
		require.Equal(t, []string{"openai:gpt-4o", "claude-sonnet-4"}, k.AllowedModels)
		stored, err := e.store.Get(context.Background(), k.ID)
		require.NoError(t, err)
		require.Equal(t, time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), stored.ExpiresAt)
		require.Equal(t, "staging", stored.Endpoint)
	})
	t.Run("nulls are defaults", func(t *testing.T) {
		e := newEnv(t)
		k := e.create(`{"description":null,"endpoint":null,"expires_at":null,"allowed_models":null}`)
		require.Equal(t, "prod", k.Endpoint)
		require.Nil(t, k.ExpiresAt)
		require.Equal(t, []string{}, k.AllowedModels)
	})
	t.Run("the answer holds no hash", func(t *testing.T) {
		e := newEnv(t)
		w := e.do("POST", "/v1/keys", `{}`)
		require.Equal(t, http.StatusCreated, w.Code)
		var m map[string]any
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m))
		require.ElementsMatch(t, []string{"id", "redacted", "endpoint", "account", "description", "metadata", "created_at",
			"updated_at", "last_used", "expires_at", "allowed_providers", "allowed_models", "token"}, mapKeys(m))
	})
}

func mapKeys(m map[string]any) []string {
	var l []string
	for k := range m {
		l = append(l, k)
	}
	return l
}

func TestCreateErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, body  string
		status      int
		code, field string
	}{
		{"description too long", `{"description":"` + strings.Repeat("d", 256) + `"}`, 422, "description_too_long", "description"},
		{"metadata too long", `{"metadata":"` + strings.Repeat("m", 4097) + `"}`, 422, "metadata_too_long", "metadata"},
		{"allow-list entry", `{"allowed_models":["gpt-4o"," spaced "]}`, 422, "invalid_allow_list_entry", "allowed_models[1]"},
		{"allow-list too long", `{"allowed_providers":[` + strings.TrimSuffix(strings.Repeat(`"p",`, 257), ",") + `]}`, 422, "allow_list_too_long", "allowed_providers"},
		{"endpoint too long", `{"endpoint":"` + strings.Repeat("e", 256) + `"}`, 422, "invalid_endpoint", "endpoint"},
		{"account too long", `{"account":"` + strings.Repeat("a", 256) + `"}`, 422, "invalid_account", "account"},
		{"expiry not RFC 3339", `{"expires_at":"tomorrow"}`, 422, "invalid_timestamp", "expires_at"},
		{"expiry without zone", `{"expires_at":"2027-01-31T00:00:00"}`, 422, "invalid_timestamp", "expires_at"},
		{"expiry in the past", `{"expires_at":"2026-03-01T11:59:59Z"}`, 422, "expires_at_in_past", "expires_at"},
		{"expiry now", `{"expires_at":"2026-03-01T12:00:00Z"}`, 422, "expires_at_in_past", "expires_at"},
		{"expiry a number", `{"expires_at":1767225600}`, 400, "invalid_json", "expires_at"},
		{"description a number", `{"description":5}`, 400, "invalid_json", "description"},
		{"metadata an object", `{"metadata":{"team":"a"}}`, 400, "invalid_json", "metadata"},
		{"allow-list a string", `{"allowed_models":"gpt-4o"}`, 400, "invalid_json", "allowed_models"},
		{"allow-list of numbers", `{"allowed_models":[1]}`, 400, "invalid_json", "allowed_models"},
		{"unknown field", `{"descripton":"typo"}`, 400, "invalid_json", "descripton"},
		{"field in another case", `{"Description":"x"}`, 400, "invalid_json", "Description"},
		{"token is not settable", `{"token":"lg-chosen"}`, 400, "invalid_json", "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, e.do("POST", "/v1/keys", tc.body), tc.status, tc.code, tc.field)
		})
	}
	page, err := e.store.List(context.Background(), keys.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, page.Keys, "no failed create stored a key")
	require.Empty(t, e.takeChanges())
}

func TestGet(t *testing.T) {
	e := newEnv(t)
	k := e.create(`{"description":"d"}`)
	w := e.do("GET", "/v1/keys/"+k.ID, "")
	require.Equal(t, http.StatusOK, w.Code)
	got := decode[created](t, w)
	require.Empty(t, got.Token)
	k.Token = ""
	require.Equal(t, k, got)

	t.Run("last used", func(t *testing.T) {
		at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
		require.NoError(t, e.store.Touch(context.Background(), []keys.Use{{ID: k.ID, At: at}}))
		got := decode[created](t, e.do("GET", "/v1/keys/"+k.ID, ""))
		require.NotNil(t, got.LastUsed)
		require.Equal(t, "2026-03-02T09:30:00Z", *got.LastUsed)
	})
	for _, id := range []string{"key_aaaaaaaaaaaaaaaaaaaaaaaaaa", "key_x", "pk_aaaaaaaaaaaaaaaaaaaaaaaaaa", "KEY_AAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		t.Run("unknown "+id, func(t *testing.T) {
			requireError(t, e.do("GET", "/v1/keys/"+id, ""), 404, "key_not_found", "")
		})
	}
}

func TestMalformedIDsDoNotReachTheStore(t *testing.T) {
	e, fs := newFailingEnv(t)
	fs.set(keys.ErrUnavailable)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/keys/key_short"},
		{"PATCH", "/v1/keys/key_short"},
		{"DELETE", "/v1/keys/key_short"},
		{"GET", "/v1/keys/key_short/provider_keys"},
		{"POST", "/v1/keys/key_short/provider_keys"},
		{"DELETE", "/v1/keys/key_short/provider_keys/pk_aaaaaaaaaaaaaaaaaaaaaaaaaa"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			requireError(t, e.do(tc.method, tc.path, ""), 404, "key_not_found", "")
		})
	}
	t.Run("attached ID", func(t *testing.T) {
		requireError(t, e.do("DELETE", "/v1/keys/key_aaaaaaaaaaaaaaaaaaaaaaaaaa/provider_keys/pk_1", ""), 404, "provider_key_not_found", "")
	})
	require.Zero(t, fs.count())
}

func TestList(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 250 {
		endpoint := "prod"
		if i%5 == 0 {
			endpoint = "staging"
		}
		ids = append(ids, e.create(`{"endpoint":"`+endpoint+`","description":"key `+strconv.Itoa(i)+`"}`).ID)
	}
	type page struct {
		Keys       []created `json:"keys"`
		NextCursor *string   `json:"next_cursor"`
	}
	walk := func(t *testing.T, query string) (got []string, sizes []int) {
		cursor := ""
		for {
			w := e.do("GET", "/v1/keys?"+query+"&cursor="+cursor, "")
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			p := decode[page](t, w)
			sizes = append(sizes, len(p.Keys))
			for _, k := range p.Keys {
				require.Empty(t, k.Token)
				got = append(got, k.ID)
			}
			if p.NextCursor == nil {
				return got, sizes
			}
			require.NotEmpty(t, *p.NextCursor)
			cursor = *p.NextCursor
			require.Less(t, len(sizes), 100, "the list does not end")
		}
	}
	newestFirst := func(ids []string) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[len(ids)-1-i] = id
		}
		return out
	}
	t.Run("default limit", func(t *testing.T) {
		got, sizes := walk(t, "")
		require.Equal(t, []int{100, 100, 50}, sizes)
		require.Equal(t, newestFirst(ids), got)
	})
	t.Run("limit 7", func(t *testing.T) {
		got, sizes := walk(t, "limit=7")
		require.Len(t, sizes, 36)
		require.Equal(t, newestFirst(ids), got)
	})
	t.Run("endpoint", func(t *testing.T) {
		got, _ := walk(t, "endpoint=staging&limit=100")
		var want []string
		for i, id := range ids {
			if i%5 == 0 {
				want = append(want, id)
			}
		}
		require.Equal(t, newestFirst(want), got)
	})
	t.Run("empty", func(t *testing.T) {
		w := e.do("GET", "/v1/keys?endpoint=nowhere", "")
		require.Equal(t, http.StatusOK, w.Code)
		require.JSONEq(t, `{"keys":[],"next_cursor":null}`, w.Body.String())
	})
	for _, tc := range []struct{ name, query, code, field string }{
		{"limit 0", "limit=0", "invalid_limit", "limit"},
		{"limit 101", "limit=101", "invalid_limit", "limit"},
		{"limit negative", "limit=-1", "invalid_limit", "limit"},
		{"limit not a number", "limit=ten", "invalid_limit", "limit"},
		{"bad cursor", "cursor=bm90LWEtY3Vyc29y", "invalid_cursor", "cursor"},
		{"cursor not base64", "cursor=***", "invalid_cursor", "cursor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireError(t, e.do("GET", "/v1/keys?"+tc.query, ""), 422, tc.code, tc.field)
		})
	}
}

func TestUpdate(t *testing.T) {
	const full = `{"description":"d","metadata":"m","expires_at":"2027-01-01T00:00:00Z",
		"allowed_providers":["openai"],"allowed_models":["gpt-4o"]}`
	for _, tc := range []struct {
		name, patch string
		check       func(t *testing.T, k created)
	}{
		{"empty patch keeps all", `{}`, func(t *testing.T, k created) {
			require.Equal(t, "d", k.Description)
			require.Equal(t, "m", k.Metadata)
			require.Equal(t, "2027-01-01T00:00:00Z", *k.ExpiresAt)
			require.Equal(t, []string{"openai"}, k.AllowedProviders)
			require.Equal(t, []string{"gpt-4o"}, k.AllowedModels)
		}},
		{"set description only", `{"description":"new"}`, func(t *testing.T, k created) {
			require.Equal(t, "new", k.Description)
			require.Equal(t, "m", k.Metadata)
			require.Equal(t, "2027-01-01T00:00:00Z", *k.ExpiresAt)
			require.Equal(t, []string{"openai"}, k.AllowedProviders)
			require.Equal(t, []string{"gpt-4o"}, k.AllowedModels)
		}},
		{"null clears description and metadata", `{"description":null,"metadata":null}`, func(t *testing.T, k created) {
			require.Empty(t, k.Description)
			require.Empty(t, k.Metadata)
			require.NotNil(t, k.ExpiresAt)
		}},
		{"null clears expiry", `{"expires_at":null}`, func(t *testing.T, k created) {
			require.Nil(t, k.ExpiresAt)
			require.Equal(t, "d", k.Description)
		}},
		{"expiry in the past is allowed", `{"expires_at":"2026-01-01T00:00:00Z"}`, func(t *testing.T, k created) {
			require.Equal(t, "2026-01-01T00:00:00Z", *k.ExpiresAt)
		}},
		{"null clears allowed providers", `{"allowed_providers":null}`, func(t *testing.T, k created) {
			require.Equal(t, []string{}, k.AllowedProviders)
			require.Equal(t, []string{"gpt-4o"}, k.AllowedModels)
		}},
		{"[] clears allowed models", `{"allowed_models":[]}`, func(t *testing.T, k created) {
			require.Equal(t, []string{"openai"}, k.AllowedProviders)
			require.Equal(t, []string{}, k.AllowedModels)
		}},
		{"replace allowed models", `{"allowed_models":["a","b"]}`, func(t *testing.T, k created) {
			require.Equal(t, []string{"a", "b"}, k.AllowedModels)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			k := e.create(full)
			e.takeChanges()
			w := e.do("PATCH", "/v1/keys/"+k.ID, tc.patch)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			got := decode[created](t, w)
			require.Empty(t, got.Token)
			tc.check(t, got)
			// The store holds what the answer says.
			tc.check(t, decode[created](t, e.do("GET", "/v1/keys/"+k.ID, "")))
			if tc.patch == `{}` {
				require.Equal(t, k.UpdatedAt, got.UpdatedAt)
				require.Empty(t, e.takeChanges())
			} else {
				require.Greater(t, got.UpdatedAt, k.UpdatedAt)
				require.Equal(t, []([32]byte){keys.Hash(k.Token)}, e.takeChanges())
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		e := newEnv(t)
		k := e.create(full)
		e.takeChanges()
		for _, tc := range []struct {
			name, id, body string
			status         int
			code, field    string
		}{
			{"unknown key", "key_aaaaaaaaaaaaaaaaaaaaaaaaaa", `{"description":"x"}`, 404, "key_not_found", ""},
			{"description too long", k.ID, `{"description":"` + strings.Repeat("d", 256) + `"}`, 422, "description_too_long", "description"},
			{"metadata too long", k.ID, `{"metadata":"` + strings.Repeat("m", 4097) + `"}`, 422, "metadata_too_long", "metadata"},
			{"bad entry", k.ID, `{"allowed_providers":[""]}`, 422, "invalid_allow_list_entry", "allowed_providers[0]"},
			{"bad time", k.ID, `{"expires_at":"soon"}`, 422, "invalid_timestamp", "expires_at"},
			{"endpoint is immutable", k.ID, `{"endpoint":"staging"}`, 400, "invalid_json", "endpoint"},
			{"account is immutable", k.ID, `{"account":"other"}`, 400, "invalid_json", "account"},
			{"wrong type", k.ID, `{"allowed_models":{}}`, 400, "invalid_json", "allowed_models"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				requireError(t, e.do("PATCH", "/v1/keys/"+tc.id, tc.body), tc.status, tc.code, tc.field)
			})
		}
		require.Equal(t, "d", decode[created](t, e.do("GET", "/v1/keys/"+k.ID, "")).Description)
		require.Empty(t, e.takeChanges())
	})
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	k := e.create("")
	other := e.create("")
	e.takeChanges()
	w := e.do("DELETE", "/v1/keys/"+k.ID, "")
	require.Equal(t, http.StatusNoContent, w.Code)
	require.Empty(t, w.Body.String())
	require.Equal(t, []([32]byte){keys.Hash(k.Token)}, e.takeChanges())

	_, _, err := e.store.Lookup(context.Background(), keys.Hash(k.Token))
	require.ErrorIs(t, err, keys.ErrNotFound)
	requireError(t, e.do("GET", "/v1/keys/"+k.ID, ""), 404, "key_not_found", "")
	requireError(t, e.do("DELETE", "/v1/keys/"+k.ID, ""), 404, "key_not_found", "")
	require.Empty(t, e.takeChanges())
	require.Equal(t, http.StatusOK, e.do("GET", "/v1/keys/"+other.ID, "").Code)
}

// TestTokenShownOnce checks that a created key's token appears in the
// create answer only: in no other answer and no log record.
func TestTokenShownOnce(t *testing.T) {
	e := newEnv(t, func(o *admin.Options) { o.Sealer = testSealer(t) })
	w := e.do("POST", "/v1/keys", `{"description":"team a"}`)
	require.Equal(t, http.StatusCreated, w.Code)
	k := decode[created](t, w)
	require.Contains(t, w.Body.String(), k.Token)
	hash := keys.Hash(k.Token)

	var bodies []string
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/keys/" + k.ID, ""},
		{"GET", "/v1/keys", ""},
		{"PATCH", "/v1/keys/" + k.ID, `{"description":"b"}`},
		{"POST", "/v1/keys/" + k.ID + "/provider_keys", `{"provider":"openai","value":"sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"}`},
		{"GET", "/v1/keys/" + k.ID + "/provider_keys", ""},
		{"POST", "/v1/keys", `{"description":"` + k.Token + `","unknown":1}`},
		{"DELETE", "/v1/keys/" + k.ID, ""},
	} {
		bodies = append(bodies, e.do(r.method, r.path, r.body).Body.String())
	}
	require.NotEmpty(t, e.logs.String())
	for _, s := range append(bodies, e.logs.String()) {
		require.NotContains(t, s, k.Token)
		require.NotContains(t, s, k.Token[len(k.Token)-20:])
		require.NotContains(t, s, hex.EncodeToString(hash[:]))
		require.NotContains(t, s, base64.StdEncoding.EncodeToString(hash[:]))
		require.NotContains(t, s, "sk-proj-abcdefghijklmnopqrstuvwxyz")
	}
}

func BenchmarkGet(b *testing.B) {
	store := keys.NewMemoryStore()
	h, err := admin.New(admin.Options{Store: store, Endpoint: "prod", Token: testToken})
	require.NoError(b, err)
	k, _, err := keys.NewKey("prod")
	require.NoError(b, err)
	_, err = store.Create(context.Background(), k)
	require.NoError(b, err)
	r := httptest.NewRequest("GET", "/v1/keys/"+k.ID, nil)
	r.Header.Set("Authorization", "Bearer "+testToken)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
