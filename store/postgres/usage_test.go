package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
)

// usageRecord returns a record numbered n of account and key, started at
// start.
func usageRecord(n int, account, key string, start time.Time) *credits.UsageRecord {
	return &credits.UsageRecord{
		ID: fmt.Sprint("r", n), RequestID: fmt.Sprint("req", n), KeyID: key, Account: account,
		Provider: "openai", Model: "gpt-4o", KeySource: credits.SourceConfigured,
		Reported: credits.Tokens{Input: 100, Output: 10, CacheRead: 50}, ReportedKnown: true,
		Estimated: credits.Tokens{Input: 90, Output: 12},
		Cost:      credits.Amount(1000 + n), Fee: 10, Status: 200, Stream: n%2 == 0,
		Start: start, End: start.Add(1500 * time.Millisecond),
		Attempts: []credits.AttemptRecord{
			{Provider: "anthropic", Model: "claude", KeyID: "k1", KeySource: credits.SourceConfigured, Status: 529,
				Error: "overloaded", Start: start, Duration: 20 * time.Millisecond},
			{Provider: "openai", Model: "gpt-4o", KeySource: credits.SourceConfigured, Served: true, Status: 200,
				Start: start.Add(20 * time.Millisecond), Duration: time.Second},
		},
		AttemptsDropped: 1,
	}
}

func TestRecord(t *testing.T) {
	ctx := context.Background()
	s, c := newLedger(t)
	start := c.Now().Add(123456789 * time.Nanosecond) // stored to the microsecond
	r := usageRecord(1, "acme", "key1", start)
	require.NoError(t, s.Record(ctx, r))
	require.NoError(t, s.Record(ctx, r), "the same record again: a no-op")

	p, err := s.Usage(ctx, credits.UsageQuery{})
	require.NoError(t, err)
	want := *r
	want.Start, want.End = start.Truncate(time.Microsecond), want.End.Truncate(time.Microsecond)
	want.Attempts = []credits.AttemptRecord{r.Attempts[0], r.Attempts[1]}
	want.Attempts[0].Start = want.Attempts[0].Start.Truncate(time.Microsecond)
	want.Attempts[1].Start = want.Attempts[1].Start.Truncate(time.Microsecond)
	require.Equal(t, []credits.UsageRecord{want}, p.Records)

	t.Run("not paid", func(t *testing.T) {
		paid := *r
		paid.Paid, paid.Uncollected = true, 5
		require.NoError(t, s.Record(ctx, &paid), "kept with Paid false and Uncollected 0: the same")
		require.True(t, paid.Paid, "the caller's record is not changed")
	})
	t.Run("same time in another zone", func(t *testing.T) {
		again := *r
		again.Start = r.Start.In(time.FixedZone("CET", 3600))
		require.NoError(t, s.Record(ctx, &again))
	})
	t.Run("other content", func(t *testing.T) {
		other := *r
		other.Cost++
		require.ErrorIs(t, s.Record(ctx, &other), credits.ErrConflict)
	})
	t.Run("invalid", func(t *testing.T) {
		bad := *r
		bad.ID = ""
		require.ErrorIs(t, s.Record(ctx, &bad), credits.ErrInvalid)
		require.ErrorIs(t, s.Record(ctx, nil), credits.ErrInvalid)
	})
	t.Run("minimal", func(t *testing.T) {
		m := &credits.UsageRecord{ID: "bare", Start: start.Add(time.Hour)}
		require.NoError(t, s.Record(ctx, m))
		p, err := s.Usage(ctx, credits.UsageQuery{ListOptions: credits.ListOptions{Limit: 1}})
		require.NoError(t, err)
		require.Equal(t, credits.UsageRecord{ID: "bare", Start: start.Add(time.Hour).Truncate(time.Microsecond)}, p.Records[0],
			"no End, no attempts")
	})
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	s, c := newLedger(t)
	t0 := c.Now()
	var all []*credits.UsageRecord
	for i := range 12 {
		account, key := []string{"acme", "zeta"}[i%2], []string{"k1", "k2", "k3"}[i%3]
		r := usageRecord(i, account, key, t0.Add(time.Duration(i/2)*time.Hour)) // pairs share a Start
		require.NoError(t, s.Record(ctx, r))
		all = append(all, r)
	}
	ids := func(rs []credits.UsageRecord) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    credits.UsageQuery
		want []string
	}{
		{"all", credits.UsageQuery{}, []string{"r11", "r10", "r9", "r8", "r7", "r6", "r5", "r4", "r3", "r2", "r1", "r0"}},
		{"account", credits.UsageQuery{Account: "zeta"}, []string{"r11", "r9", "r7", "r5", "r3", "r1"}},
		{"key", credits.UsageQuery{KeyID: "k1"}, []string{"r9", "r6", "r3", "r0"}},
		{"account and key", credits.UsageQuery{Account: "acme", KeyID: "k1"}, []string{"r6", "r0"}},
		{"from inclusive, to exclusive", credits.UsageQuery{From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)},
			[]string{"r5", "r4", "r3", "r2"}},
		{"to before from", credits.UsageQuery{From: t0.Add(time.Hour), To: t0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s.Usage(ctx, tc.q)
			require.NoError(t, err)
			require.Equal(t, tc.want, ids(p.Records))
			require.Empty(t, p.NextCursor)
			for _, limit := range []int{1, 2, 5} {
				q := tc.q
				q.Limit = limit
				var got []string
				for {
					p, err := s.Usage(ctx, q)
					require.NoError(t, err)
					require.LessOrEqual(t, len(p.Records), limit)
					got = append(got, ids(p.Records)...)
					if q.Cursor = p.NextCursor; q.Cursor == "" {
						break
					}
				}
				require.Equal(t, tc.want, got, "limit %d", limit)
			}
		})
	}
	t.Run("invalid", func(t *testing.T) {
		_, err := s.Usage(ctx, credits.UsageQuery{ListOptions: credits.ListOptions{Cursor: "%%"}})
		require.ErrorIs(t, err, credits.ErrInvalid)
		_, err = s.Usage(ctx, credits.UsageQuery{ListOptions: credits.ListOptions{Limit: credits.MaxListLimit + 1}})
		require.ErrorIs(t, err, credits.ErrInvalid)
	})
}

func TestSummary(t *testing.T) {
	ctx := context.Background()
	s, _ := newLedger(t)
	day1 := time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC)
	// 01:30 on March 2nd in UTC, the 1st in New York: days are UTC's.
	day2 := time.Date(2026, 3, 1, 20, 30, 0, 0, time.FixedZone("EST", -5*3600))
	rs := []*credits.UsageRecord{
		usageRecord(1, "acme", "k1", day1),
		usageRecord(2, "acme", "k2", day2),
		usageRecord(3, "zeta", "k1", day2),
		usageRecord(4, "", "k3", day1), // BYOK: no account
	}
	rs[1].ReportedKnown = false // billed: the estimate
	rs[2].Provider, rs[2].Model = "anthropic", "claude"
	for _, r := range rs {
		require.NoError(t, s.Record(ctx, r))
	}
	reported, estimated := rs[0].Reported, rs[1].Estimated
	sum := func(ts ...credits.Tokens) credits.Tokens {
		var out credits.Tokens
		for _, t := range ts {
			out.Input += t.Input
			out.Output += t.Output
			out.CacheRead += t.CacheRead
			out.CacheWrite += t.CacheWrite
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    credits.SummaryQuery
		want []credits.SummaryRow
	}{
		{"everything", credits.SummaryQuery{}, []credits.SummaryRow{
			{Requests: 4, Tokens: sum(reported, estimated, reported, reported), Cost: 1001 + 1002 + 1003 + 1004, Fee: 40},
		}},
		{"day", credits.SummaryQuery{GroupBy: []credits.Group{credits.GroupDay}}, []credits.SummaryRow{
			{Day: "2026-03-01", Requests: 2, Tokens: sum(reported, reported), Cost: 1001 + 1004, Fee: 20},
			{Day: "2026-03-02", Requests: 2, Tokens: sum(estimated, reported), Cost: 1002 + 1003, Fee: 20},
		}},
		{"provider, model", credits.SummaryQuery{GroupBy: []credits.Group{credits.GroupProvider, credits.GroupModel}}, []credits.SummaryRow{
			{Provider: "anthropic", Model: "claude", Requests: 1, Tokens: reported, Cost: 1003, Fee: 10},
			{Provider: "openai", Model: "gpt-4o", Requests: 3, Tokens: sum(reported, estimated, reported), Cost: 1001 + 1002 + 1004, Fee: 30},
		}},
		{"account, key", credits.SummaryQuery{GroupBy: []credits.Group{credits.GroupAccount, credits.GroupKey}}, []credits.SummaryRow{
			{Account: "", KeyID: "k3", Requests: 1, Tokens: reported, Cost: 1004, Fee: 10},
			{Account: "acme", KeyID: "k1", Requests: 1, Tokens: reported, Cost: 1001, Fee: 10},
			{Account: "acme", KeyID: "k2", Requests: 1, Tokens: estimated, Cost: 1002, Fee: 10},
			{Account: "zeta", KeyID: "k1", Requests: 1, Tokens: reported, Cost: 1003, Fee: 10},
		}},
		{"key, then day, filtered", credits.SummaryQuery{KeyID: "k1", From: day1.Add(time.Hour),
			GroupBy: []credits.Group{credits.GroupKey, credits.GroupDay}}, []credits.SummaryRow{
			{KeyID: "k1", Day: "2026-03-02", Requests: 1, Tokens: reported, Cost: 1003, Fee: 10},
		}},
		{"account filter", credits.SummaryQuery{Account: "acme", To: day2}, []credits.SummaryRow{
			{Requests: 1, Tokens: reported, Cost: 1001, Fee: 10},
		}},
		{"nothing", credits.SummaryQuery{Account: "nobody"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Summary(ctx, tc.q)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	t.Run("uncollected", func(t *testing.T) {
		buy(t, s, "p1", "payer", 5*dollar)
		reserve(t, s, "h1", "payer", dollar, dollar)
		r := usageRecord(9, "", "k9", day1)
		r.Cost, r.Fee = 6*dollar, dollar
		st, err := s.Settle(ctx, "h1", r.Charge(), r)
		require.NoError(t, err)
		require.Equal(t, credits.Settlement{Spent: 5 * dollar, Uncollected: 2 * dollar}, st)
		got, err := s.Summary(ctx, credits.SummaryQuery{KeyID: "k9", GroupBy: []credits.Group{credits.GroupAccount}})
		require.NoError(t, err)
		require.Equal(t, []credits.SummaryRow{{Account: "payer", Requests: 1, Tokens: reported, Cost: 6 * dollar, Fee: dollar,
			Uncollected: 2 * dollar}}, got)
	})
	t.Run("invalid", func(t *testing.T) {
		_, err := s.Summary(ctx, credits.SummaryQuery{GroupBy: []credits.Group{"color"}})
		require.ErrorIs(t, err, credits.ErrInvalid)
	})
}
