package catalog

import (
	"strconv"
	"strings"
)

// SpecError is one problem with one provider definition: a provider of the
// file given to [Parse], or a [ProviderSpec] given to [Catalog.Extend]. Parse
// and Extend return every problem at once, joined with errors.Join, so
// errors.As finds the first *SpecError and a loop over the joined errors
// (interface{ Unwrap() []error }) finds each one; a configuration layer can
// use Index, Provider and Field to point at the line that caused it.
//
// A *SpecError is not modified after it is returned and is safe to share.
// The zero SpecError is not meaningful.
type SpecError struct {
	// Index is the position of the provider definition: in the file's
	// "providers" array for Parse, in Extend's specs argument for Extend.
	// Extend reports a problem that no spec caused (which a valid base
	// catalog rules out) with Index -1 and the catalog provider's ID.
	Index int
	// Provider is the provider's ID as written in the file or the spec
	// (possibly an alias of a catalog provider); empty when it has none.
	Provider string
	// Model is the ID of the model concerned, as written, when Field is a
	// field of one of the models ("Models[2].ID"); empty otherwise.
	Model string
	// Field is the Go path of the offending field within the Provider
	// (Parse) or the ProviderSpec (Extend), with slice indexes counted in
	// that definition: "ID", "BaseURL", "Format", "Surfaces[1]",
	// "Aliases[0]", "KeyPrefixes[0]", "DefaultModel", "Models[2]",
	// "Models[2].ID", "Models[2].Aliases[0]", "Models[0].Pricing.Input",
	// "Models[1].ContextWindow". Empty when the whole definition is at
	// fault (a nil provider).
	Field string
	// Err describes the problem.
	Err error

	// inSpec reports that the error comes from Extend, which names a
	// provider without an ID "provider spec N" rather than "provider N".
	inSpec bool
}

// Error returns the problem prefixed with "catalog: " and the provider (and
// model) it concerns, e.g.
//
//	catalog: provider "lab": model "m1": negative context_window -1
func (e *SpecError) Error() string {
	var b strings.Builder
	b.WriteString("catalog: provider ")
	switch {
	case e.Provider != "":
		b.WriteString(strconv.Quote(e.Provider))
	case e.inSpec:
		b.WriteString("spec ")
		b.WriteString(strconv.Itoa(e.Index))
	default:
		b.WriteString(strconv.Itoa(e.Index))
	}
	if strings.HasPrefix(e.Field, "Models[") && strings.Contains(e.Field, "].") {
		b.WriteString(": model ")
		b.WriteString(strconv.Quote(e.Model))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Err.
func (e *SpecError) Unwrap() error { return e.Err }
