package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"

	"github.com/llmgate/gateway/providers"
)

// The JSON shapes of catalog.json. Unknown fields are rejected, so a typo in
// the file fails Parse instead of silently dropping data. Numbers are read
// as json.Number so that fractional or out-of-range values are reported with
// their place instead of aborting the whole decode.
type (
	fileJSON struct {
		Comment    string         `json:"comment"`
		PricesAsOf string         `json:"prices_as_of"`
		Sources    []string       `json:"sources"`
		Providers  []providerJSON `json:"providers"`
	}
	providerJSON struct {
		ID               string              `json:"id"`
		Aliases          []string            `json:"aliases"`
		DisplayName      string              `json:"display_name"`
		Website          string              `json:"website"`
		BaseURL          string              `json:"base_url"`
		Format           providers.Format    `json:"format"`
		Surfaces         []providers.Surface `json:"surfaces"`
		KeyPrefixes      []string            `json:"key_prefixes"`
		KeyPrefixesNote  string              `json:"key_prefixes_note"`
		StreamUsage      bool                `json:"stream_usage"`
		DefaultModel     string              `json:"default_model"`
		DefaultModelNote string              `json:"default_model_note"`
		Comment          string              `json:"comment"`
		Models           []modelJSON         `json:"models"`
	}
	modelJSON struct {
		ID               string         `json:"id"`
		Aliases          []string       `json:"aliases"`
		Author           string         `json:"author"`
		DisplayName      string         `json:"display_name"`
		ContextWindow    json.Number    `json:"context_window"`
		MaxOutputTokens  json.Number    `json:"max_output_tokens"`
		InputModalities  []string       `json:"input_modalities"`
		OutputModalities []string       `json:"output_modalities"`
		Features         []string       `json:"features"`
		Deprecated       bool           `json:"deprecated"`
		DeprecationDate  string         `json:"deprecation_date"`
		Replacement      string         `json:"replacement"`
		Encoding         string         `json:"encoding"`
		Pricing          pricingJSON    `json:"pricing"`
		PricingNote      string         `json:"pricing_note"`
		Note             string         `json:"note"`
		Metadata         map[string]any `json:"metadata"`
	}
	pricingJSON struct {
		Input      json.Number `json:"input"`
		Output     json.Number `json:"output"`
		CacheRead  json.Number `json:"cache_read"`
		CacheWrite json.Number `json:"cache_write"`
	}
)

// Parse builds a Catalog from a file shaped like the embedded catalog.json:
//
//	{"providers": [{"id", "aliases", "display_name", "website", "base_url",
//	  "format", "surfaces", "key_prefixes", "stream_usage", "default_model",
//	  "models": [{"id", "aliases", "author", "display_name", "context_window",
//	    "max_output_tokens", "input_modalities", "output_modalities",
//	    "features", "deprecated", "deprecation_date", "replacement",
//	    "encoding", "pricing": {"input", "output", "cache_read", "cache_write"},
//	    "metadata"}]}]}
//
// plus informational "comment", "prices_as_of", "sources", "pricing_note",
// "note", "default_model_note" and "key_prefixes_note" fields, which Parse
// ignores. Unknown fields
// are an error. Prices are integers in micro-USD per 1,000,000 tokens and
// limits are integers; a fractional number such as 2.5 is rejected.
//
// Parse validates the whole file and returns every problem at once, joined
// with errors.Join: empty or malformed IDs, unknown formats, surfaces and
// encodings, provider IDs or aliases used twice (ASCII case-insensitive),
// model IDs or aliases used twice within a provider, a default_model or
// replacement that is not a model of its provider, negative prices or
// limits, empty or repeated key prefixes, and base URLs that the provider
// implementations would reject (not absolute http(s), no host, credentials
// or a fragment). Each problem with a provider is a [*SpecError] whose Index
// is the provider's position in the file and whose Field is a path within
// [Provider] ("Models[0].Pricing.Input"). Models without an encoding get one
// by the rule of [Catalog.Extend]. Parse does not retain data.
func Parse(data []byte) (*Catalog, error) {
	var f fileJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("catalog: decoding: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("catalog: decoding: trailing data after the catalog object")
	}

	var errs []error
	// at locates a number field of model j of provider i.
	type at struct {
		i, j     int
		pid, mid string
	}
	num := func(a at, field, name string, n json.Number) int64 {
		if n == "" {
			return 0
		}
		v, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			errs = append(errs, &SpecError{Index: a.i, Provider: a.pid, Model: a.mid, Field: fmt.Sprintf("Models[%d].%s", a.j, field),
				Err: fmt.Errorf("%s %s is not an integer", name, n)})
		}
		return v
	}
	limit := func(a at, field, name string, n json.Number) int {
		v := num(a, field, name, n)
		if int64(int(v)) != v {
			errs = append(errs, &SpecError{Index: a.i, Provider: a.pid, Model: a.mid, Field: fmt.Sprintf("Models[%d].%s", a.j, field),
				Err: fmt.Errorf("%s %s is out of range", name, n)})
			return 0
		}
		return int(v)
	}

	provs := make([]*Provider, 0, len(f.Providers))
	for i, pj := range f.Providers {
		p := &Provider{
			ID:           pj.ID,
			DisplayName:  pj.DisplayName,
			Website:      pj.Website,
			BaseURL:      pj.BaseURL,
			Format:       pj.Format,
			Aliases:      pj.Aliases,
			Surfaces:     pj.Surfaces,
			KeyPrefixes:  pj.KeyPrefixes,
			StreamUsage:  pj.StreamUsage,
			DefaultModel: pj.DefaultModel,
			Models:       make([]*Model, 0, len(pj.Models)),
		}
		for j, mj := range pj.Models {
			where := at{i: i, j: j, pid: pj.ID, mid: mj.ID}
			p.Models = append(p.Models, &Model{
				ID:               mj.ID,
				Author:           mj.Author,
				DisplayName:      mj.DisplayName,
				Aliases:          mj.Aliases,
				ContextWindow:    limit(where, "ContextWindow", "context_window", mj.ContextWindow),
				MaxOutputTokens:  limit(where, "MaxOutputTokens", "max_output_tokens", mj.MaxOutputTokens),
				InputModalities:  mj.InputModalities,
				OutputModalities: mj.OutputModalities,
				Features:         mj.Features,
				Deprecated:       mj.Deprecated,
				DeprecationDate:  mj.DeprecationDate,
				Replacement:      mj.Replacement,
				Encoding:         mj.Encoding,
				Pricing: Pricing{
					Input:      num(where, "Pricing.Input", "pricing.input", mj.Pricing.Input),
					Output:     num(where, "Pricing.Output", "pricing.output", mj.Pricing.Output),
					CacheRead:  num(where, "Pricing.CacheRead", "pricing.cache_read", mj.Pricing.CacheRead),
					CacheWrite: num(where, "Pricing.CacheWrite", "pricing.cache_write", mj.Pricing.CacheWrite),
				},
				Metadata: maps.Clone(mj.Metadata),
			})
		}
		provs = append(provs, p)
	}
	c, berrs := build(provs, nil)
	errs = append(errs, berrs...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}
