package admin

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmgate/gateway/keys"
)

// MaxValue bounds an attached provider key's value, in bytes.
const MaxValue = 16 << 10

// attachedJSON is the JSON of an attached provider key: never its value
// (sealed or not), only its redacted form.
type attachedJSON struct {
	ID        string    `json:"id"`
	KeyID     string    `json:"key_id"`
	Provider  string    `json:"provider"`
	Redacted  string    `json:"redacted"`
	CreatedAt time.Time `json:"created_at"`
}

// attachedListJSON lists a key's provider keys, newest first (the order the
// gateway tries them in).
type attachedListJSON struct {
	ProviderKeys []attachedJSON `json:"provider_keys"`
}

func toAttachedJSON(a *keys.AttachedKey) attachedJSON {
	return attachedJSON{a.ID, a.KeyID, a.Provider, a.Redacted, a.CreatedAt.UTC()}
}

// attach answers POST /v1/keys/{id}/provider_keys {provider, value}. The
// value is sealed at once (keys.Sealer.NewAttached, bound to the key and
// provider) and never written anywhere in the clear, nor echoed.
func (a *api) attach(w http.ResponseWriter, r *http.Request) {
	id, ok := keyID(w, r)
	if !ok {
		return
	}
	if a.sealer == nil {
		writeError(w, errNoSealer)
		return
	}
	o, e := readObject(w, r, "provider", "value")
	if e != nil {
		writeError(w, e)
		return
	}
	provider, e := o.str("provider")
	if e != nil {
		writeError(w, e)
		return
	}
	value, e := o.str("value")
	if e != nil {
		writeError(w, e)
		return
	}
	switch {
	case provider == nil || *provider == "":
		writeError(w, invalid("provider", CodeProviderRequired, "the provider the key is for is required"))
		return
	case value == nil || *value == "":
		writeError(w, invalid("value", CodeValueRequired, "the provider key is required"))
		return
	case len(*value) > MaxValue || !utf8.ValidString(*value) || strings.TrimSpace(*value) != *value:
		writeError(w, invalid("value", CodeInvalidValue,
			"must be valid UTF-8 of at most "+strconv.Itoa(MaxValue)+" bytes without surrounding spaces"))
		return
	case keys.LooksLikeToken(*value):
		writeError(w, invalid("value", CodeValueIsGatewayKey, "is a gateway API key, not a provider key"))
		return
	}
	k, err := a.store.Get(r.Context(), id) // 404 before sealing; its hash for OnChange
	if err != nil {
		a.fail(w, r, err, errKeyNotFound)
		return
	}
	ak, err := a.sealer.NewAttached(id, *provider, *value)
	if err != nil {
		a.fail(w, r, err, errKeyNotFound)
		return
	}
	if err := keys.ValidateAttached(&ak); err != nil {
		a.fail(w, r, err, errKeyNotFound)
		return
	}
	ak, err = a.store.Attach(r.Context(), ak)
	if err != nil {
		a.fail(w, r, err, errKeyNotFound)
		return
	}
	a.changed(k.Hash)
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "admin: provider key attached",
		slog.String("key_id", id), slog.String("provider_key_id", ak.ID), slog.String("provider", ak.Provider))
	writeJSON(w, http.StatusCreated, toAttachedJSON(&ak))
}

// listAttached answers GET /v1/keys/{id}/provider_keys.
func (a *api) listAttached(w http.ResponseWriter, r *http.Request) {
	id, ok := keyID(w, r)
	if !ok {
		return
	}
	l, err := a.store.Attached(r.Context(), id)
	if err != nil {
		a.fail(w, r, err, errKeyNotFound)
		return
	}
	out := attachedListJSON{ProviderKeys: make([]attachedJSON, len(l))}
	for i := range l {
		out.ProviderKeys[i] = toAttachedJSON(&l[i])
	}
	writeJSON(w, http.StatusOK, out)
}

// detach answers DELETE /v1/keys/{id}/provider_keys/{pid}.
func (a *api) detach(w http.ResponseWriter, r *http.Request) {
	id, ok := keyID(w, r)
	if !ok {
		return
	}
	pid := r.PathValue("pid")
	if !keys.ValidAttachedID(pid) {
		writeError(w, errAttachedNotFound)
		return
	}
	k, err := a.store.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err, errKeyNotFound)
		return
	}
	if err := a.store.Detach(r.Context(), id, pid); err != nil {
		a.fail(w, r, err, errAttachedNotFound)
		return
	}
	a.changed(k.Hash)
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "admin: provider key detached",
		slog.String("key_id", id), slog.String("provider_key_id", pid))
	w.WriteHeader(http.StatusNoContent)
}
