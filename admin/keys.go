package admin

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/llmgate/gateway/keys"
)

// keyJSON is the JSON of a key: never its hash or token. Times are RFC 3339
// in UTC; last_used and expires_at are null when unset; the allow-lists are
// [] when empty (no restriction).
type keyJSON struct {
	ID               string     `json:"id"`
	Redacted         string     `json:"redacted"`
	Endpoint         string     `json:"endpoint"`
	Account          string     `json:"account"`
	Description      string     `json:"description"`
	Metadata         string     `json:"metadata"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	LastUsed         *time.Time `json:"last_used"`
	ExpiresAt        *time.Time `json:"expires_at"`
	AllowedProviders []string   `json:"allowed_providers"`
	AllowedModels    []string   `json:"allowed_models"`
}

// createdJSON is the answer to a create: the key and, this once, its token.
type createdJSON struct {
	keyJSON
	Token string `json:"token"`
}

// listJSON is a page of keys; next_cursor is null on the last page.
type listJSON struct {
	Keys       []keyJSON `json:"keys"`
	NextCursor *string   `json:"next_cursor"`
}

func toJSON(k *keys.Key) keyJSON {
	j := keyJSON{
		ID:               k.ID,
		Redacted:         k.Redacted,
		Endpoint:         k.Endpoint,
		Account:          k.Account,
		Description:      k.Description,
		Metadata:         k.Metadata,
		CreatedAt:        k.CreatedAt.UTC(),
		UpdatedAt:        k.UpdatedAt.UTC(),
		LastUsed:         optTime(k.LastUsed),
		ExpiresAt:        optTime(k.ExpiresAt),
		AllowedProviders: nonNil(k.AllowedProviders),
		AllowedModels:    nonNil(k.AllowedModels),
	}
	return j
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// keyID returns the {id} path value, or false (having answered 404) when it
// is not a key ID: malformed IDs never reach the store.
func keyID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !keys.ValidID(id) {
		writeError(w, errKeyNotFound)
		return "", false
	}
	return id, true
}

// createKey answers POST /v1/keys.
func (a *api) createKey(w http.ResponseWriter, r *http.Request) {
	o, e := readObject(w, r, "description", "metadata", "endpoint", "account", "expires_at", "allowed_providers", "allowed_models")
	if e != nil {
		writeError(w, e)
		return
	}
	var (
		description, metadata, endpoint, account *string
		expires                                  *time.Time
		providers, models                        *[]string
	)
	for _, step := range []func() *apiError{
		func() (e *apiError) { description, e = o.str("description"); return },
		func() (e *apiError) { metadata, e = o.str("metadata"); return },
		func() (e *apiError) { endpoint, e = o.str("endpoint"); return },
		func() (e *apiError) { account, e = o.str("account"); return },
		func() (e *apiError) { expires, e = o.time("expires_at"); return },
		func() (e *apiError) { providers, e = o.list("allowed_providers"); return },
		func() (e *apiError) { models, e = o.list("allowed_models"); return },
	} {
		if e := step(); e != nil {
			writeError(w, e)
			return
		}
	}
	ep := a.endpoint
	if endpoint != nil && *endpoint != "" {
		ep = *endpoint
	}
	k, token, err := keys.NewKey(ep)
	if err != nil {
		a.fail(w, r, err, errKeyNotFound)
		return
	}
	k.Description = deref(description)
	k.Metadata = deref(metadata)
	k.Account = deref(account)
	if expires != nil && !expires.IsZero() {
		if !expires.After(a.now()) {
			writeError(w, invalid("expires_at", CodeExpiresInPast, "must be in the future"))
			return
		}
		k.ExpiresAt = *expires
	}
	if providers != nil && len(*providers) > 0 {
		k.AllowedProviders = *providers
	}
	if models != nil && len(*models) > 0 {
		k.AllowedModels = *models
	}
	k, err = a.store.Create(r.Context(), k)
	if err != nil {
		a.fail(w, r, err, errKeyNotFound)
		return
	}
	a.changed(k.Hash)
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "admin: key created",
		slog.String("key_id", k.ID), slog.String("endpoint", k.Endpoint), slog.String("account", k.Account))
	writeJSON(w, http.StatusCreated, createdJSON{toJSON(&k), token})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// listKeys answers GET /v1/keys?limit=&cursor=&endpoint=.
func (a *api) listKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := keys.ListOptions{Endpoint: q.Get("endpoint"), Cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > keys.MaxListLimit {
			writeError(w, invalid("limit", CodeInvalidLimit, "must be an integer from 1 to "+strconv.Itoa(keys.MaxListLimit)))
			return
		}
		opts.Limit = n
	}
	p, err := a.store.List(r.Context(), opts)
	if err != nil {
		a.fail(w, r, err, errKeyNotFound)
		return
	}
	out := listJSON{Keys: make([]keyJSON, len(p.Keys))}
	for i := range p.Keys {
		out.Keys[i] = toJSON(&p.Keys[i])
	}
	if p.NextCursor != "" {
		out.NextCursor = &p.NextCursor
	}
	writeJSON(w, http.StatusOK, out)
}

// getKey answers GET /v1/keys/{id}.
func (a *api) getKey(w http.ResponseWriter, r *http.Request) {
	id, ok := keyID(w, r)
	if !ok {
		return
	}
	k, err := a.store.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err, errKeyNotFound)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(&k))
}

// updateKey answers PATCH /v1/keys/{id}: an absent member keeps the field,
// null clears it (description and metadata become "", expires_at none, an
// allow-list no restriction, as [] does). An empty object changes nothing
// and answers the key as it is.
func (a *api) updateKey(w http.ResponseWriter, r *http.Request) {
	id, ok := keyID(w, r)
	if !ok {
		return
	}
	o, e := readObject(w, r, "description", "metadata", "expires_at", "allowed_providers", "allowed_models")
	if e != nil {
		writeError(w, e)
		return
	}
	var u keys.Update
	for _, step := range []func() *apiError{
		func() (e *apiError) { u.Description, e = o.str("description"); return },
		func() (e *apiError) { u.Metadata, e = o.str("metadata"); return },
		func() (e *apiError) { u.ExpiresAt, e = o.time("expires_at"); return },
		func() (e *apiError) { u.AllowedProviders, e = o.list("allowed_providers"); return },
		func() (e *apiError) { u.AllowedModels, e = o.list("allowed_models"); return },
	} {
		if e := step(); e != nil {
			writeError(w, e)
			return
		}
	}
	if len(o) == 0 {
		a.getKey(w, r)
		return
	}
	k, err := a.store.Update(r.Context(), id, u)
	if err != nil {
		a.fail(w, r, err, errKeyNotFound)
		return
	}
	a.changed(k.Hash)
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "admin: key updated", slog.String("key_id", k.ID))
	writeJSON(w, http.StatusOK, toJSON(&k))
}

// deleteKey answers DELETE /v1/keys/{id}.
func (a *api) deleteKey(w http.ResponseWriter, r *http.Request) {
	id, ok := keyID(w, r)
	if !ok {
		return
	}
	k, err := a.store.Get(r.Context(), id) // for its hash, to tell OnChange
	if err == nil {
		err = a.store.Delete(r.Context(), id)
	}
	if err != nil {
		a.fail(w, r, err, errKeyNotFound)
		return
	}
	a.changed(k.Hash)
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "admin: key deleted", slog.String("key_id", id))
	w.WriteHeader(http.StatusNoContent)
}
