package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/credits/creditstest"
)

// TestAppendAttempts checks that appendAttempts writes what json.Marshal
// writes for the normalized attempts, byte for byte, and that scanUsage's
// json.Unmarshal reads them back as they were.
func TestAppendAttempts(t *testing.T) {
	loc := time.FixedZone("x", -7*3600)
	tricky := []string{"", `"quoted"`, `back\slash`, "<html>&amp;</html>", "ünïcödé 日本語 🎉",
		"ctl \x00\x01\b\f\n\r\t\x1f\x7f end", "bad utf8 \xff\xfe x \xc3", "sep \u2028 \u2029", "\ufffd"}
	var as []credits.AttemptRecord
	for i, s := range tricky {
		as = append(as, credits.AttemptRecord{Provider: s, Model: s, KeyID: s, KeySource: credits.KeySource(s),
			Skipped: i%2 == 0, Status: i * 100, Error: s, Served: i%3 == 0,
			Start:    time.Date(2025, 3, 1, 12, 0, i, 123456789, loc).Add(time.Duration(i) * time.Hour),
			Duration: time.Duration(i-3) * time.Millisecond})
	}
	as = append(as, credits.AttemptRecord{}, credits.AttemptRecord{Start: time.Now()},
		credits.AttemptRecord{Start: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)})
	for i := range as {
		got, err := appendAttempts([]byte("prefix"), as[i:i+1])
		require.NoError(t, err)
		want, err := json.Marshal(normalizeRecord(&credits.UsageRecord{Attempts: as[i : i+1]}).Attempts)
		require.NoError(t, err)
		require.Equal(t, "prefix"+string(want), string(got), "attempt %d", i)
	}
	b, err := appendAttempts(nil, as)
	require.NoError(t, err)
	var back []credits.AttemptRecord
	require.NoError(t, json.Unmarshal(b, &back))
	want := normalizeRecord(&credits.UsageRecord{Attempts: as}).Attempts
	require.Len(t, back, len(want))
	for i := range want {
		require.True(t, want[i].Start.Equal(back[i].Start), "attempt %d", i)
		back[i].Start = want[i].Start
	}
	wantJSON, err := json.Marshal(want)
	require.NoError(t, err)
	backJSON, err := json.Marshal(back)
	require.NoError(t, err)
	require.JSONEq(t, string(wantJSON), string(backJSON))

	_, err = appendAttempts(nil, []credits.AttemptRecord{{Start: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}})
	require.Error(t, err, "as json.Marshal")
}

// TestFlushChunks flushes more records than a statement inserts, some kept
// before with the same content or other, some repeated in the flush: the
// conflicts are those of inserting them one by one, in order, and every
// record reads back as kept.
func TestFlushChunks(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		ctx := context.Background()
		buy(t, s, "p", "acct", 100*dollar)
		reserve(t, s, "lease", "acct", dollar, dollar)
		n := 2*usageChunks[0] + usageChunks[1] + 3
		var (
			recs      []*credits.UsageRecord
			conflicts []string
			want      = map[string]credits.UsageRecord{}
		)
		keep := func(r *credits.UsageRecord) {
			nr := normalizeRecord(r)
			nr.Paid, nr.Account = true, "acct"
			want[r.ID] = *nr
		}
		// Kept before: every 7th with the same content, every 11th with other.
		var before []*credits.UsageRecord
		for i := range n {
			r := testRecord(fmt.Sprintf("r%03d", i), clock.Now().Add(time.Duration(i)*time.Second))
			r.Account = ""
			r.Attempts[0].Error = fmt.Sprintf("\"x\" <%d>\n\u00e9\t", i)
			switch {
			case i%7 == 3:
				before = append(before, r)
				keep(r)
			case i%11 == 5:
				old := testRecordLike(r)
				old.Cost++
				before = append(before, old)
				keep(old)
				conflicts = append(conflicts, r.ID)
			default:
				keep(r)
			}
			recs = append(recs, r)
			if i%13 == 1 { // repeated at once, with other content
				other := testRecordLike(r)
				other.Status = 500
				recs = append(recs, other)
				conflicts = append(conflicts, r.ID)
			}
			if i%17 == 2 { // repeated at once, the same
				recs = append(recs, testRecordLike(r))
			}
		}
		r := flush(t, s, credits.LeaseFlush{HoldID: "lease", Seq: 1, Records: before})
		require.Empty(t, r.Conflicts)
		r = flush(t, s, credits.LeaseFlush{HoldID: "lease", Seq: 2, Records: recs})
		page, err := s.Usage(ctx, credits.UsageQuery{ListOptions: credits.ListOptions{Limit: credits.MaxListLimit}})
		require.NoError(t, err)
		require.Len(t, page.Records, n)
		for _, got := range page.Records {
			require.Equal(t, want[got.ID], got, got.ID)
		}
		require.Equal(t, conflicts, r.Conflicts)
		// Flushed again: nothing new, the same conflicts.
		r = flush(t, s, credits.LeaseFlush{HoldID: "lease", Seq: 3, Records: recs})
		require.Equal(t, conflicts, r.Conflicts)
	})
}
