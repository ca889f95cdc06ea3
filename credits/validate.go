package credits

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxNote bounds Purchase.Note (bytes).
const MaxNote = 255

// MaxHoldTTL bounds Reservation.TTL.
const MaxHoldTTL = 24 * time.Hour

// ValidateID checks an ID argument (account, hold, purchase, record): 1 to
// MaxIDLength bytes of printable ASCII without spaces.
func ValidateID(field, id string) error {
	if id == "" {
		return Invalid(field, "required")
	}
	if len(id) > MaxIDLength {
		return Invalid(field, "longer than "+strconv.Itoa(MaxIDLength)+" bytes")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			return Invalid(field, "only printable ASCII without spaces is allowed")
		}
	}
	return nil
}

// ValidateReservation checks r as every store must before holding.
func ValidateReservation(r Reservation) error {
	if err := ValidateID("id", r.ID); err != nil {
		return err
	}
	if err := ValidateID("account", r.Account); err != nil {
		return err
	}
	switch {
	case r.Min <= 0:
		return Invalid("min", "must be positive")
	case r.Max < r.Min:
		return Invalid("max", "must be at least min")
	case r.TTL <= 0 || r.TTL > MaxHoldTTL:
		return Invalid("ttl", "must be positive and at most "+MaxHoldTTL.String())
	}
	return nil
}

// ValidatePurchase checks p: ErrPurchaseBelowMinimum below MinPurchase,
// ErrInvalid for the rest.
func ValidatePurchase(p Purchase) error {
	if err := ValidateID("id", p.ID); err != nil {
		return err
	}
	if err := ValidateID("account", p.Account); err != nil {
		return err
	}
	switch {
	case p.Amount < MinPurchase:
		return ErrPurchaseBelowMinimum
	case p.Amount > MaxPurchase:
		return Invalid("amount", "more than $"+MaxPurchase.String())
	case len(p.Note) > MaxNote || !utf8.ValidString(p.Note):
		return Invalid("note", "longer than "+strconv.Itoa(MaxNote)+" bytes or not UTF-8")
	}
	return nil
}

// ValidateActual checks Settle's actual cost.
func ValidateActual(actual Amount) error {
	if actual < 0 {
		return Invalid("actual", "must not be negative")
	}
	return nil
}

// ValidateUsageRecord checks the fields a store indexes.
func ValidateUsageRecord(r *UsageRecord) error {
	if r == nil {
		return Invalid("record", "required")
	}
	if err := ValidateID("record.id", r.ID); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"record.request_id", r.RequestID}, {"record.key_id", r.KeyID},
		{"record.account", r.Account}, {"record.provider", r.Provider}, {"record.model", r.Model}, {"record.error", r.Error}} {
		if len(f.v) > 256 || !utf8.ValidString(f.v) {
			return Invalid(f.name, "longer than 256 bytes or not UTF-8")
		}
	}
	if r.Start.IsZero() {
		return Invalid("record.start", "required")
	}
	if r.Cost < 0 || r.Fee < 0 || r.Uncollected < 0 {
		return Invalid("record.cost", "must not be negative")
	}
	if len(r.Attempts) > MaxAttempts {
		return Invalid("record.attempts", "more than "+strconv.Itoa(MaxAttempts))
	}
	return nil
}

// ListLimit returns the page size of o, or ErrInvalid.
func ListLimit(o ListOptions) (int, error) {
	switch {
	case o.Limit == 0:
		return DefaultListLimit, nil
	case o.Limit < 0 || o.Limit > MaxListLimit:
		return 0, Invalid("limit", "must be between 1 and "+strconv.Itoa(MaxListLimit))
	}
	return o.Limit, nil
}

// ValidateGroupBy checks the summary dimensions: known, each once.
func ValidateGroupBy(gs []Group) error {
	seen := map[Group]bool{}
	for _, g := range gs {
		switch g {
		case GroupDay, GroupProvider, GroupModel, GroupKey, GroupAccount:
		default:
			return Invalid("group_by", "unknown dimension "+strconv.Quote(string(g))+" (day, provider, model, key, account)")
		}
		if seen[g] {
			return Invalid("group_by", "dimension "+string(g)+" given twice")
		}
		seen[g] = true
	}
	return nil
}

// EncodeCursor makes an opaque cursor of a position (time, ID) in a list
// ordered by both. Stores may use it with DecodeCursor.
func EncodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixMicro(), 10) + "|" + id))
}

// DecodeCursor reverses EncodeCursor; anything else is ErrInvalid (field
// "cursor").
func DecodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(c) > 512 {
		return time.Time{}, "", Invalid("cursor", "not a cursor of this list")
	}
	ts, id, ok := strings.Cut(string(b), "|")
	us, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", Invalid("cursor", "not a cursor of this list")
	}
	return time.UnixMicro(us).UTC(), id, nil
}

// ValidateFlush checks f and its records as every Leaser must before
// changing anything.
func ValidateFlush(f LeaseFlush) error {
	if err := ValidateID("hold_id", f.HoldID); err != nil {
		return err
	}
	switch {
	case f.Seq <= 0:
		return Invalid("seq", "must be positive")
	case f.Spent < 0:
		return Invalid("spent", "must not be negative")
	case f.Grow < 0 || f.Grow > MaxPurchase:
		return Invalid("grow", "must be between 0 and $"+MaxPurchase.String())
	case f.TTL < 0 || f.TTL > MaxHoldTTL:
		return Invalid("ttl", "must be between 0 and "+MaxHoldTTL.String())
	case len(f.Records) > MaxFlushRecords:
		return Invalid("records", "more than "+strconv.Itoa(MaxFlushRecords))
	}
	for _, r := range f.Records {
		if err := ValidateUsageRecord(r); err != nil {
			return err
		}
	}
	return nil
}
