package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Errors of Sealer, matched with errors.Is.
var (
	// ErrUnknownKEK: a sealed key names a key-encryption key the Sealer
	// does not hold (it was retired before its entries were rewrapped).
	ErrUnknownKEK = errors.New("keys: unknown key-encryption key")
	// ErrUnseal: a sealed key does not open: it is malformed or was
	// altered, or it was sealed under another key, for another gateway key
	// or provider (see AttachedAAD).
	ErrUnseal = errors.New("keys: sealed key does not open")
)

// KEK is a key-encryption key: a 256-bit AES key, and the ID stored beside
// every entry sealed under it, so that a rotation can find them. The host
// supplies KEKs (from its secret manager); llmgate never stores them.
//
// A KEK prints redacted, in every fmt verb and as JSON: only its ID shows.
type KEK struct {
	// ID names the KEK: 1 to MaxKEKID printable ASCII characters, unique
	// among a Sealer's KEKs.
	ID string
	// Key is the AES-256 key; never all zeros.
	Key [32]byte
}

// String returns the KEK's ID and "[redacted]" in place of its key.
func (k KEK) String() string {
	return "keys.KEK{ID: " + strconv.Quote(k.ID) + ", Key: [redacted]}"
}

// GoString is String, so that %#v redacts too.
func (k KEK) GoString() string { return k.String() }

// Format writes String for every verb, so no verb (%x, %+v, …) prints the
// key.
func (k KEK) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// MarshalJSON writes the ID only, with the key redacted.
func (k KEK) MarshalJSON() ([]byte, error) {
	return []byte(`{"id":` + strconv.Quote(k.ID) + `,"key":"[redacted]"}`), nil
}

// sealVersion is the first byte of a sealed key: AES-256-GCM with a 96-bit
// random nonce.
const sealVersion = 1

const (
	nonceSize = 12
	tagSize   = 16
	// sealOverhead is what Seal adds to the plaintext: the version byte,
	// the nonce and the GCM tag.
	sealOverhead = 1 + nonceSize + tagSize
)

// Sealer encrypts attached provider keys (envelope encryption): each is
// sealed with AES-256-GCM under the current KEK, with associated data
// binding it to its gateway key and provider, and stored with the KEK's ID.
// Older KEKs are kept to open entries sealed before a rotation, until
// Rewrap has moved them to the current KEK.
//
// A sealed key is: a version byte (1), a 96-bit random nonce, and the
// ciphertext with its 128-bit GCM tag. Random nonces stay safe for up to
// 2^32 seals under one KEK; rotate long before.
//
// The zero Sealer holds no KEK and fails every call; make one with
// NewSealer. A Sealer is immutable and safe for concurrent use. It prints
// as its KEK IDs only.
type Sealer struct {
	current string
	old     []string
	aeads   map[string]cipher.AEAD
}

// NewSealer returns a Sealer sealing under current and opening entries
// sealed under current or any of old. It returns every problem with the
// KEKs (an empty, over-long or non-ASCII ID; a duplicate ID; an all-zero
// key) at once, as errors wrapping ErrInvalid.
func NewSealer(current KEK, old ...KEK) (*Sealer, error) {
	s := &Sealer{current: current.ID, aeads: make(map[string]cipher.AEAD, 1+len(old))}
	var errs []error
	for i, k := range append([]KEK{current}, old...) {
		field := "current"
		if i > 0 {
			field = "old[" + strconv.Itoa(i-1) + "]"
			s.old = append(s.old, k.ID)
		}
		switch {
		case !validKEKID(k.ID):
			errs = append(errs, &ValidationError{field + ".id", "invalid_kek_id", "must be 1 to " + strconv.Itoa(MaxKEKID) + " printable ASCII characters"})
			continue
		case s.aeads[k.ID] != nil:
			errs = append(errs, &ValidationError{field + ".id", "duplicate_kek_id", "KEK " + strconv.Quote(k.ID) + " is given twice"})
			continue
		case k.Key == [32]byte{}:
			errs = append(errs, &ValidationError{field + ".key", "zero_kek", "the key of KEK " + strconv.Quote(k.ID) + " is all zeros"})
			continue
		}
		block, err := aes.NewCipher(k.Key[:])
		if err != nil { // unreachable: the key is 32 bytes
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads[k.ID] = aead
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// Current returns the ID of the KEK Seal uses.
func (s *Sealer) Current() string { return s.current }

// Old returns the IDs of the older KEKs, in the order given to NewSealer:
// those to pass to KeyStore.Rewrap after a rotation. The slice is new.
func (s *Sealer) Old() []string { return append([]string(nil), s.old...) }

// String returns the Sealer's KEK IDs, never their keys.
func (s *Sealer) String() string {
	if s == nil {
		return "keys.Sealer(nil)"
	}
	return fmt.Sprintf("keys.Sealer{current: %q, old: %q}", s.current, s.old)
}

// Format writes String for every verb, so that no verb prints the AES
// state, even of a Sealer value (a value receiver, so that both Sealer and
// *Sealer have it; fmt reports a nil *Sealer as "<nil>").
func (s Sealer) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }

// AttachedAAD returns the associated data binding a sealed provider key to
// its gateway key and provider: keyID, a NUL byte and provider. A sealed
// key copied to another gateway key or provider no longer opens.
func AttachedAAD(keyID, provider string) []byte {
	b := make([]byte, 0, len(keyID)+1+len(provider))
	b = append(b, keyID...)
	b = append(b, 0)
	return append(b, provider...)
}

// Seal encrypts plaintext under the current KEK with aad as associated
// data (see AttachedAAD) and returns the sealed bytes and the KEK's ID.
// err is non-nil only for a zero Sealer or when the system's random source
// fails.
func (s *Sealer) Seal(plaintext, aad []byte) (sealed []byte, kekID string, err error) {
	if s == nil || s.aeads[s.current] == nil {
		return nil, "", fmt.Errorf("%w: the Sealer holds no KEK", ErrUnknownKEK)
	}
	out := make([]byte, 1+nonceSize, len(plaintext)+sealOverhead)
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, "", err
	}
	return s.aeads[s.current].Seal(out, out[1:], plaintext, aad), s.current, nil
}

// Open decrypts sealed, made by Seal under the KEK named kekID with the
// same aad. It returns an error wrapping ErrUnknownKEK when the Sealer does
// not hold that KEK, and one wrapping ErrUnseal when sealed is malformed,
// altered, or bound to other aad; never the plaintext or key in an error.
// It does not panic on any input.
func (s *Sealer) Open(sealed []byte, kekID string, aad []byte) ([]byte, error) {
	var aead cipher.AEAD
	if s != nil {
		aead = s.aeads[kekID]
	}
	switch {
	case aead == nil:
		return nil, fmt.Errorf("%w %q", ErrUnknownKEK, kekID)
	case len(sealed) < sealOverhead:
		return nil, fmt.Errorf("%w: %d bytes are too short", ErrUnseal, len(sealed))
	case sealed[0] != sealVersion:
		return nil, fmt.Errorf("%w: unknown version %d", ErrUnseal, sealed[0])
	}
	plaintext, err := aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed (altered, or sealed for another key or KEK)", ErrUnseal)
	}
	return plaintext, nil
}

// Rewrap opens sealed (under kekID, usually an old KEK) and seals it again
// under the current KEK, with the same aad; it returns the new sealed
// bytes and the current KEK's ID. Errors are Open's and Seal's.
func (s *Sealer) Rewrap(sealed []byte, kekID string, aad []byte) ([]byte, string, error) {
	plaintext, err := s.Open(sealed, kekID, aad)
	if err != nil {
		return nil, "", err
	}
	defer clear(plaintext)
	return s.Seal(plaintext, aad)
}

// NewAttached seals secret, a provider key, for the gateway key keyID and
// provider, and returns the AttachedKey to pass to KeyStore.Attach: a new
// ID, the redacted secret, the sealed secret and the KEK's ID.
func (s *Sealer) NewAttached(keyID, provider, secret string) (AttachedKey, error) {
	sealed, kek, err := s.Seal([]byte(secret), AttachedAAD(keyID, provider))
	if err != nil {
		return AttachedKey{}, err
	}
	return AttachedKey{
		ID:       NewAttachedID(),
		KeyID:    keyID,
		Provider: provider,
		Redacted: Redact(secret),
		Sealed:   sealed,
		KEKID:    kek,
	}, nil
}

// OpenAttached returns the provider key sealed in a.
func (s *Sealer) OpenAttached(a *AttachedKey) (string, error) {
	b, err := s.Open(a.Sealed, a.KEKID, AttachedAAD(a.KeyID, a.Provider))
	if err != nil {
		return "", fmt.Errorf("attached key %s: %w", a.ID, err)
	}
	return string(b), nil
}

// RewrapAttached re-seals a under the current KEK; it has the signature
// KeyStore.Rewrap expects:
//
//	n, err := store.Rewrap(ctx, oldKEK, sealer.RewrapAttached)
func (s *Sealer) RewrapAttached(a AttachedKey) ([]byte, string, error) {
	sealed, kek, err := s.Rewrap(a.Sealed, a.KEKID, AttachedAAD(a.KeyID, a.Provider))
	if err != nil {
		return nil, "", fmt.Errorf("attached key %s: %w", a.ID, err)
	}
	return sealed, kek, nil
}
