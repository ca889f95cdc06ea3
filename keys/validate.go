package keys

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// ValidationError is a field that breaks a rule. It wraps ErrInvalid.
type ValidationError struct {
	// Field is the field's JSON name ("description", "allowed_models[2]").
	Field string
	// Code is a stable machine-readable code ("description_too_long").
	Code string
	// Message explains the rule.
	Message string
}

func (e *ValidationError) Error() string { return "keys: " + e.Field + ": " + e.Message }

// Unwrap returns ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Validate checks a key about to be created: ID, Hash, Redacted and
// Endpoint set, and every field within its limits. It returns the first
// problem as a *ValidationError.
func Validate(k *Key) error {
	switch {
	case !validID(k.ID, "key_"):
		return &ValidationError{"id", "invalid_id", "must be \"key_\" and 26 base32 characters"}
	case k.Hash == [32]byte{}:
		return &ValidationError{"hash", "missing_hash", "the token hash is not set"}
	case k.Redacted == "":
		return &ValidationError{"redacted", "missing_redacted", "the redacted token is not set"}
	case k.Endpoint == "":
		return &ValidationError{"endpoint", "endpoint_required", "the endpoint the key works on is required"}
	case len(k.Endpoint) > MaxDescription || !utf8.ValidString(k.Endpoint):
		return &ValidationError{"endpoint", "invalid_endpoint", "must be valid UTF-8 of at most " + strconv.Itoa(MaxDescription) + " bytes"}
	case len(k.Account) > MaxDescription || !utf8.ValidString(k.Account):
		return &ValidationError{"account", "invalid_account", "must be valid UTF-8 of at most " + strconv.Itoa(MaxDescription) + " bytes"}
	}
	return validateFields(k.Description, k.Metadata, k.AllowedProviders, k.AllowedModels)
}

// ValidateUpdate checks the fields an Update sets.
func ValidateUpdate(u *Update) error {
	var d, m string
	var p, ms []string
	if u.Description != nil {
		d = *u.Description
	}
	if u.Metadata != nil {
		m = *u.Metadata
	}
	if u.AllowedProviders != nil {
		p = *u.AllowedProviders
	}
	if u.AllowedModels != nil {
		ms = *u.AllowedModels
	}
	return validateFields(d, m, p, ms)
}

func validateFields(description, metadata string, providers, models []string) error {
	switch {
	case len(description) > MaxDescription:
		return &ValidationError{"description", "description_too_long", "must be at most " + strconv.Itoa(MaxDescription) + " bytes"}
	case !utf8.ValidString(description):
		return &ValidationError{"description", "invalid_utf8", "must be valid UTF-8"}
	case len(metadata) > MaxMetadata:
		return &ValidationError{"metadata", "metadata_too_long", "must be at most " + strconv.Itoa(MaxMetadata) + " bytes"}
	case !utf8.ValidString(metadata):
		return &ValidationError{"metadata", "invalid_utf8", "must be valid UTF-8"}
	}
	for _, l := range []struct {
		name string
		v    []string
	}{{"allowed_providers", providers}, {"allowed_models", models}} {
		if len(l.v) > MaxAllowList {
			return &ValidationError{l.name, "allow_list_too_long", "must list at most " + strconv.Itoa(MaxAllowList) + " entries"}
		}
		for i, s := range l.v {
			if s == "" || len(s) > MaxDescription || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
				return &ValidationError{l.name + "[" + strconv.Itoa(i) + "]", "invalid_allow_list_entry",
					"entries must be non-empty UTF-8 names of at most " + strconv.Itoa(MaxDescription) + " bytes without surrounding spaces"}
			}
		}
	}
	return nil
}

// validID reports whether id is prefix followed by 26 lower-case base32
// characters (a-z, 2-7).
func validID(id, prefix string) bool {
	if len(id) != len(prefix)+26 || !strings.HasPrefix(id, prefix) {
		return false
	}
	for _, c := range id[len(prefix):] {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// ValidAttachedID reports whether id is an attached key's ID ("pk_" and 26
// base32 characters).
func ValidAttachedID(id string) bool { return validID(id, "pk_") }

// ValidID reports whether id is a gateway key's ID.
func ValidID(id string) bool { return validID(id, "key_") }

// MaxKEKID bounds the length of a key-encryption key's ID, in bytes.
const MaxKEKID = 64

// ValidateAttached checks an attached key about to be stored: its ID (see
// NewAttachedID), KeyID, Provider (a non-empty name without surrounding
// spaces), Redacted, Sealed and KEKID (printable ASCII, at most MaxKEKID
// bytes). It returns the first problem as a *ValidationError. Whether the
// gateway key exists and the per-provider limit are the store's to check
// (see TooManyAttached).
func ValidateAttached(a *AttachedKey) error {
	switch {
	case !ValidAttachedID(a.ID):
		return &ValidationError{"id", "invalid_id", "must be \"pk_\" and 26 base32 characters"}
	case !ValidID(a.KeyID):
		return &ValidationError{"key_id", "invalid_key_id", "must be a gateway key's ID"}
	case a.Provider == "" || len(a.Provider) > MaxDescription || !utf8.ValidString(a.Provider) || strings.TrimSpace(a.Provider) != a.Provider:
		return &ValidationError{"provider", "invalid_provider", "must be a non-empty UTF-8 name of at most " + strconv.Itoa(MaxDescription) + " bytes without surrounding spaces"}
	case a.Redacted == "":
		return &ValidationError{"redacted", "missing_redacted", "the redacted provider key is not set"}
	case len(a.Sealed) == 0:
		return &ValidationError{"sealed", "missing_sealed", "the sealed provider key is not set"}
	case !validKEKID(a.KEKID):
		return &ValidationError{"kek_id", "invalid_kek_id", "must be 1 to " + strconv.Itoa(MaxKEKID) + " printable ASCII characters"}
	}
	return nil
}

// TooManyAttached is the error a store returns when attaching one more key
// for a provider would exceed MaxAttachedPerProvider. It wraps ErrInvalid.
func TooManyAttached() *ValidationError {
	return &ValidationError{"provider", "too_many_attached",
		"at most " + strconv.Itoa(MaxAttachedPerProvider) + " provider keys can be attached per provider"}
}

// validKEKID reports whether id is 1 to MaxKEKID printable ASCII bytes.
func validKEKID(id string) bool {
	if id == "" || len(id) > MaxKEKID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
