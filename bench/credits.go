package main

// The credits paths (-credits): checking that their ledgers charge, and
// the report's sections about them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/llmgate/gateway/bench/internal/benchledger"
)

// chargeCheck proves that the credits path at host charges its requests,
// so that a path meant to pay with credits cannot be measured when it
// does not: sanityCheck has already sent it requests, so its ledger must
// hold usage records for them and have spent something.
func chargeCheck(ctx context.Context, host string) error {
	snap, err := readLedger(ctx, host)
	switch {
	case err != nil:
		return err
	case snap.Records == 0 || snap.Spent <= 0:
		return fmt.Errorf("the ledger has %d usage records and spent $%s after the sanity check's requests: the path does not charge", snap.Records, snap.Spent)
	case snap.Charged() != snap.Spent:
		return fmt.Errorf("the usage records charged $%s and the ledger spent $%s: not every request paid with credits", snap.Charged(), snap.Spent)
	}
	return nil
}

// readLedger returns the ledger snapshot of the credits path at host
// (GET benchledger.Path).
func readLedger(ctx context.Context, host string) (benchledger.Snapshot, error) {
	var snap benchledger.Snapshot
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+benchledger.Path, nil)
	if err != nil {
		return snap, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return snap, fmt.Errorf("reading the ledger: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return snap, fmt.Errorf("reading the ledger: status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return snap, fmt.Errorf("reading the ledger: %w", err)
	}
	return snap, nil
}

// settled returns the ledger snapshot of the credits path at host once
// every request sent to it has settled (as many usage records as sent,
// nothing held), or after 5 s: the gateway settles a request after its
// last byte, so the last ones may still be settling.
func settled(ctx context.Context, host string, sent int64) (benchledger.Snapshot, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		snap, err := readLedger(ctx, host)
		if err != nil || snap.Records >= sent && snap.Held == 0 || time.Now().After(deadline) {
			return snap, err
		}
		select {
		case <-ctx.Done():
			return snap, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ledgerCheck is what the ledger of one credits proxy process held at the
// end of the run, against the requests the load generator sent it.
type ledgerCheck struct {
	path     string
	scenario string // the scenarios the process served
	sent     int64  // requests the load generator sent it
	snap     benchledger.Snapshot
	err      error // reading the ledger failed
}

// problem says what is wrong with the ledger, or returns "": every request
// sent must have left a usage record (give or take the run's failed
// requests, failed is their number), the records' charges must add up to
// what the ledger spent, something must have been spent and no hold may
// be left open.
func (c ledgerCheck) problem(failed int) string {
	s := c.snap
	switch {
	case c.err != nil:
		return c.err.Error()
	case s.Spent <= 0:
		return "nothing was spent"
	case s.Held != 0:
		return "$" + s.Held.String() + " still held after every request ended"
	case s.Charged() != s.Spent:
		return fmt.Sprintf("the usage records charged $%s and the ledger spent $%s: not every request paid with credits", s.Charged(), s.Spent)
	case s.Records > c.sent || s.Records < c.sent-int64(failed):
		return fmt.Sprintf("%d usage records for %d requests", s.Records, c.sent)
	}
	return ""
}

// ledgerProblems lists the credits paths whose ledger does not account for
// their requests, "" when every one does.
func (r *report) ledgerProblems() []string {
	failed, _ := r.failures()
	var ps []string
	for _, c := range r.ledgers {
		if p := c.problem(failed); p != "" {
			ps = append(ps, fmt.Sprintf("%s (%s): %s", r.label(c.path), c.scenario, p))
		}
	}
	return ps
}

// creditsPaths returns the credits paths of the run, in table order.
func (r *report) creditsPaths() []string {
	var ps []string
	for _, p := range r.paths {
		if isCredits(p) {
			ps = append(ps, p)
		}
	}
	return ps
}

// renderCredits writes the section of the credits paths: their CPU per
// request ÷ the ReverseProxy's (against creditsCPUTarget), ÷ llmgate's and
// ÷ llmgate+keys', and what their ledgers charged.
func (r *report) renderCredits(w io.Writer) {
	cps := r.creditsPaths()
	if len(cps) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\n### Keys and credits ÷ httputil.ReverseProxy (target: CPU ≤ %.2f×)\n\n", creditsCPUTarget)
	p("%s is %s with `gateway.WithMetering(ledger, gateway.MeteringOptions{Credits: true})` (default options otherwise) over an in-process "+
		"`credits.NewMemory`; %s is the same over `store/sqlite` on a file in the run's temporary directory (the standalone server's "+
		"embedded default store: WAL, synchronous=NORMAL). The key store is the same `keys.MemoryStore` as on %s. The key's account "+
		"holds $%s (%d purchases of `credits.MaxPurchase`), so no request is refused: each holds its worst case (the prompt's "+
		"`tokens.UpperBound` and its `max_tokens` at gpt-4o-mini's catalog prices) before going upstream, then settles what the "+
		"upstream's usage says it cost, with its usage record. No token limits are set.\n",
		r.label(pathCredits), r.label(pathKeys), r.label(creditsPath(ledgerSQLite)), r.label(pathKeys),
		commas(float64(benchledger.Purchases)*1e6), benchledger.Purchases)
	p("\nProxy CPU per request (medians over rounds):\n\n")
	t := &table{head: []string{"Proxy CPU / request", "JSON", "JSON, 1 client", "Streaming"}}
	for _, path := range append([]string{pathPlain, pathLLMGate, pathKeys}, cps...) {
		t.add(r.label(path), r.cpuCell(path, r.json[path]), r.cpuCell(path, r.single[path]), r.cpuCell(path, r.stream[path]))
	}
	t.write(w)
	p("\nRatios of CPU per request, taken per round, then their median, range in parentheses; the target is on the ÷ ReverseProxy "+
		"ratios of the JSON and streaming scenarios (%d clients):\n\n", r.cfg.concurrency)
	t = &table{head: []string{"Path", "÷", "JSON", "JSON, 1 client", "Streaming", "Target"}, left: 2}
	ratio := func(m map[string][]*window, a, b string) []float64 { return perRound(m[a], m[b], cpuPerRq) }
	for _, path := range append([]string{pathKeys}, cps...) {
		for _, by := range []string{pathPlain, pathLLMGate, pathKeys} {
			if by == path {
				continue
			}
			json, single, stream := ratio(r.json, path, by), ratio(r.single, path, by), ratio(r.stream, path, by)
			verdict := ""
			if by == pathPlain && isCredits(path) {
				verdict = targetVerdict(creditsCPUTarget, json, stream)
			}
			t.add(r.label(path), r.label(by), fmtRatios(json), fmtRatios(single), fmtRatios(stream), verdict)
		}
	}
	t.write(w)
	p("\nThe 1-client column is for reference: at 1 client, CPU per request includes idle wake-ups. ")
	p("The credits paths sit out the held-streams and scale scenarios (a request holds and settles once, so CPU per request " +
		"and the time to the first byte are where credits show).\n")

	if len(r.ledgers) == 0 {
		return
	}
	failed, _ := r.failures()
	p("\n#### What the ledgers charged\n\n")
	p("At the end of the run, each credits proxy's ledger (read through its `%s` debug endpoint) must hold one usage record per "+
		"request the load generator sent it (warm-ups and checks included), paid with credits (the records' cost and fee add up to "+
		"what the account spent), and no open hold.\n\n", benchledger.Path)
	t = &table{head: []string{"Path", "Scenarios", "Requests sent", "Usage records", "Spent", "Charged by the records", "Held at the end", "Check"}, left: 2}
	for _, c := range r.ledgers {
		check := "ok"
		if pr := c.problem(failed); pr != "" {
			check = "**" + pr + "**"
		}
		s := c.snap
		t.add(r.label(c.path), c.scenario, commas(float64(c.sent)), commas(float64(s.Records)), "$"+s.Spent.String(),
			"$"+s.Charged().String(), "$"+s.Held.String(), check)
	}
	t.write(w)
}

// renderCreditsFirstByte writes the time the credits paths add to the
// first byte of the same-format large requests ÷ the time the
// ReverseProxy adds (against creditsFirstTarget), llmgate's for
// reference.
func (r *report) renderCreditsFirstByte(w io.Writer) {
	cps := r.creditsPaths()
	json, stream := r.large["same JSON"], r.large["same stream"]
	if len(cps) == 0 || len(json[pathDirect]) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\n#### Time added to the first byte with credits ÷ the ReverseProxy's (target: ≤ %.0f×)\n\n", creditsFirstTarget)
	p("The same ~%sk-token requests, without any input token limit (no `WithTokenLimits`): a credits path sizes its hold "+
		"from the body's `tokens.UpperBound` and counts the prompt only when the account could not pay that bound. "+
		"Added = first byte p50 − the direct path's; the ratio is the path's added time ÷ the ReverseProxy's, per round "+
		"(rounds where the ReverseProxy added nothing are skipped), then its median, range in parentheses.\n\n",
		commas(float64(r.cfg.largeBytes)/4000))
	t := &table{head: []string{"Path", "Added, JSON", "÷ ReverseProxy's, JSON", "Added, stream", "÷ ReverseProxy's, stream", "Target"}}
	for _, path := range append([]string{pathPlain, pathLLMGate}, cps...) {
		if len(json[path]) == 0 {
			continue
		}
		rj, rs := addedRatio(json, path), addedRatio(stream, path)
		ratioJ, ratioS, verdict := fmtRatios(rj), fmtRatios(rs), ""
		switch {
		case path == pathPlain:
			ratioJ, ratioS = "—", "—"
		case isCredits(path):
			verdict = targetVerdict(creditsFirstTarget, rj, rs)
		}
		t.add(r.label(path), fmtAdded(r.added(json, path, first50)), ratioJ, fmtAdded(r.added(stream, path, first50)), ratioS, verdict)
	}
	t.write(w)
}

// addedRatio returns, per round, the time path adds to the first byte p50
// over the direct path ÷ the time the ReverseProxy adds, skipping rounds
// where the ReverseProxy added nothing.
func addedRatio(m map[string][]*window, path string) []float64 {
	ws, ps, ds := m[path], m[pathPlain], m[pathDirect]
	var rs []float64
	for i := range min(len(ws), len(ps), len(ds)) {
		d := first50(ds[i])
		if plain := first50(ps[i]) - d; plain > 0 {
			rs = append(rs, (first50(ws[i])-d)/plain)
		}
	}
	return rs
}

// targetVerdict says whether the medians of a and b are both at most
// target.
func targetVerdict(target float64, a, b []float64) string {
	switch {
	case len(a) == 0 || len(b) == 0:
		return "— (no measurements)"
	case median(a) <= target && median(b) <= target:
		return "met"
	}
	return "**not met**"
}
