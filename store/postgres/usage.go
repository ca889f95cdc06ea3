package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/llmgate/gateway/credits"
)

// usageRow is a usage record as stored: times in UTC truncated to the
// microsecond, no attempts as nil, its attempts as JSON and the SHA-256
// of the whole (see seal).
type usageRow struct {
	r        credits.UsageRecord
	attempts []byte
	hash     []byte
}

// newUsageRow returns rec as stored; rec is not changed.
func newUsageRow(rec *credits.UsageRecord) *usageRow {
	r := *rec
	r.Start, r.End = dbTime(r.Start), dbTime(r.End)
	if len(r.Attempts) == 0 {
		r.Attempts = nil
	} else {
		r.Attempts = slices.Clone(r.Attempts)
		for i := range r.Attempts {
			r.Attempts[i].Start = dbTime(r.Attempts[i].Start)
		}
	}
	u := &usageRow{r: r}
	u.seal()
	return u
}

// paid marks the record paid with credits, uncollected of it not.
func (u *usageRow) paid(uncollected credits.Amount) {
	u.r.Paid, u.r.Uncollected = true, uncollected
	u.seal()
}

// seal computes the attempts' JSON and the record's hash. Encoding a
// UsageRecord cannot fail: it holds no maps, channels, functions or
// custom marshalers.
func (u *usageRow) seal() {
	attempts := u.r.Attempts
	if attempts == nil {
		attempts = []credits.AttemptRecord{}
	}
	u.attempts, _ = json.Marshal(attempts)
	whole, _ := json.Marshal(u.r)
	sum := sha256.Sum256(whole)
	u.hash = sum[:]
}

// args are insertUsage's arguments.
func (u *usageRow) args() []any {
	r := &u.r
	return []any{r.ID, r.RequestID, r.KeyID, r.Account, r.Provider, r.Model, string(r.KeySource),
		r.ReportedKnown, r.Reported.Input, r.Reported.Output, r.Reported.CacheRead, r.Reported.CacheWrite,
		r.Estimated.Input, r.Estimated.Output, r.Estimated.CacheRead, r.Estimated.CacheWrite,
		int64(r.Cost), int64(r.Fee), r.Paid, int64(r.Uncollected), r.Status, r.Error, r.Stream,
		r.Start, nullTime(r.End), string(u.attempts), r.AttemptsDropped, u.hash}
}

// usageScan receives usageColumns.
type usageScan struct {
	r         credits.UsageRecord
	keySource string
	end       *time.Time
	attempts  []byte
}

func (s *usageScan) dest() []any {
	r := &s.r
	return []any{&r.ID, &r.RequestID, &r.KeyID, &r.Account, &r.Provider, &r.Model, &s.keySource,
		&r.ReportedKnown, &r.Reported.Input, &r.Reported.Output, &r.Reported.CacheRead, &r.Reported.CacheWrite,
		&r.Estimated.Input, &r.Estimated.Output, &r.Estimated.CacheRead, &r.Estimated.CacheWrite,
		&r.Cost, &r.Fee, &r.Paid, &r.Uncollected, &r.Status, &r.Error, &r.Stream,
		&r.Start, &s.end, &s.attempts, &r.AttemptsDropped}
}

// record returns the scanned record.
func (s *usageScan) record() (credits.UsageRecord, error) {
	r := s.r
	r.KeySource = credits.KeySource(s.keySource)
	r.Start = r.Start.UTC()
	if s.end != nil {
		r.End = s.end.UTC()
	}
	if err := json.Unmarshal(s.attempts, &r.Attempts); err != nil {
		return credits.UsageRecord{}, fmt.Errorf("postgres: usage record %q: attempts: %w", r.ID, err)
	}
	if len(r.Attempts) == 0 {
		r.Attempts = nil
	}
	return r, nil
}

// recordConflict is the error of a usage record ID stored with other
// content.
func recordConflict(id string) error {
	return fmt.Errorf("postgres: usage record %q: %w: recorded with other content", id, credits.ErrConflict)
}

// Record stores the usage record of a request that credits did not pay
// for: a copy with Paid false and Uncollected 0, times in UTC truncated
// to the microsecond (*rec is not changed). Recording the
// same ID again with the same content is a no-op, with other content
// credits.ErrConflict. credits.ErrInvalid as credits.ValidateUsageRecord
// says.
func (s *Store) Record(ctx context.Context, rec *credits.UsageRecord) error {
	if rec == nil {
		return credits.ValidateUsageRecord(nil)
	}
	r := *rec
	r.Paid, r.Uncollected = false, 0 // credits did not pay
	if err := credits.ValidateUsageRecord(&r); err != nil {
		return err
	}
	u := newUsageRow(&r)
	route := r.Account
	if route == "" {
		route = r.ID
	}
	var kept []byte // the hash of the record stored under the ID, this one or not
	err := s.grouped(ctx, "record", target{route: route}, func(t *pipeTx) error {
		b := t.batch()
		b.Queue(s.cq.insertUsage, u.args()...)
		b.Queue(s.cq.usageHash, u.r.ID).QueryRow(func(row pgx.Row) error {
			return row.Scan(&kept)
		})
		// Nothing to undo when another record holds the ID: the insert
		// did nothing.
		return t.commit(b)
	})
	if err != nil {
		return err
	}
	if !slices.Equal(kept, u.hash) {
		return recordConflict(u.r.ID)
	}
	return nil
}

// usageFilter adds the WHERE conditions of a usage query to b, numbering
// the arguments after those in args, and returns args with them.
func usageFilter(b *strings.Builder, args []any, account, keyID string, from, to time.Time) []any {
	b.WriteString(` WHERE true`)
	add := func(cond string, v any) {
		args = append(args, v)
		b.WriteString(` AND ` + strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if account != "" {
		add(`account = $?`, account)
	}
	if keyID != "" {
		add(`key_id = $?`, keyID)
	}
	if !from.IsZero() {
		add(`start_at >= $?`, from)
	}
	if !to.IsZero() {
		add(`start_at < $?`, to)
	}
	return args
}

// Usage lists the usage records q selects, newest first (by Start, then
// ID).
func (s *Store) Usage(ctx context.Context, q credits.UsageQuery) (credits.UsagePage, error) {
	limit, err := credits.ListLimit(q.ListOptions)
	if err != nil {
		return credits.UsagePage{}, err
	}
	var b strings.Builder
	b.WriteString(`SELECT ` + usageColumns + ` FROM ` + s.table("usage_records"))
	args := usageFilter(&b, nil, q.Account, q.KeyID, q.From, q.To)
	if q.Cursor != "" {
		at, id, err := credits.DecodeCursor(q.Cursor)
		if err != nil {
			return credits.UsagePage{}, err
		}
		args = append(args, at, id)
		fmt.Fprintf(&b, ` AND (start_at, id) < ($%d::timestamptz, $%d::text)`, len(args)-1, len(args))
	}
	args = append(args, limit+1)
	fmt.Fprintf(&b, ` ORDER BY start_at DESC, id DESC LIMIT $%d`, len(args))
	rows, err := s.pool.Query(ctx, b.String(), args...)
	if err != nil {
		return credits.UsagePage{}, failCredits(ctx, "usage", err)
	}
	defer rows.Close()
	var p credits.UsagePage
	for rows.Next() {
		var us usageScan
		if err := rows.Scan(us.dest()...); err != nil {
			return credits.UsagePage{}, failCredits(ctx, "usage", err)
		}
		r, err := us.record()
		if err != nil {
			return credits.UsagePage{}, err
		}
		p.Records = append(p.Records, r)
	}
	if err := rows.Err(); err != nil {
		return credits.UsagePage{}, failCredits(ctx, "usage", err)
	}
	if len(p.Records) > limit {
		p.Records = p.Records[:limit]
		last := p.Records[limit-1]
		p.NextCursor = credits.EncodeCursor(last.Start, last.ID)
	}
	return p, nil
}

// summaryColumn maps a summary dimension to its SQL expression.
func summaryColumn(g credits.Group) string {
	switch g {
	case credits.GroupDay:
		return `to_char(start_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`
	case credits.GroupProvider:
		return `provider`
	case credits.GroupModel:
		return `model`
	case credits.GroupKey:
		return `key_id`
	default: // credits.GroupAccount; ValidateGroupBy refused the rest
		return `account`
	}
}

// billed is the SQL of a billed token count: the reported one when the
// provider reported, else the estimate.
func billed(field string) string {
	return `coalesce(sum(CASE WHEN reported_known THEN reported_` + field + ` ELSE estimated_` + field + ` END), 0)::bigint`
}

// Summary totals the usage records q selects by q.GroupBy, in one GROUP BY
// query, ordered by the group values in the order of q.GroupBy (bytewise;
// days ascending). Billed tokens are the reported ones when the provider
// reported, else the estimates. Without records there are no rows.
func (s *Store) Summary(ctx context.Context, q credits.SummaryQuery) ([]credits.SummaryRow, error) {
	if err := credits.ValidateGroupBy(q.GroupBy); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(`SELECT `)
	for _, g := range q.GroupBy {
		b.WriteString(summaryColumn(g) + `, `)
	}
	b.WriteString(`count(*), ` + billed("input") + `, ` + billed("output") + `, ` + billed("cache_read") + `, ` +
		billed("cache_write") + `, coalesce(sum(cost), 0)::bigint, coalesce(sum(fee), 0)::bigint,
	coalesce(sum(uncollected), 0)::bigint FROM ` + s.table("usage_records"))
	args := usageFilter(&b, nil, q.Account, q.KeyID, q.From, q.To)
	if len(q.GroupBy) > 0 {
		var cols []string
		for i := range q.GroupBy {
			cols = append(cols, strconv.Itoa(i+1))
		}
		b.WriteString(` GROUP BY ` + strings.Join(cols, ", ") + ` ORDER BY ` + strings.Join(cols, ", "))
	} else {
		b.WriteString(` HAVING count(*) > 0`)
	}
	rows, err := s.pool.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, failCredits(ctx, "summary", err)
	}
	defer rows.Close()
	var out []credits.SummaryRow
	for rows.Next() {
		var row credits.SummaryRow
		var dest []any
		for _, g := range q.GroupBy {
			switch g {
			case credits.GroupDay:
				dest = append(dest, &row.Day)
			case credits.GroupProvider:
				dest = append(dest, &row.Provider)
			case credits.GroupModel:
				dest = append(dest, &row.Model)
			case credits.GroupKey:
				dest = append(dest, &row.KeyID)
			case credits.GroupAccount:
				dest = append(dest, &row.Account)
			}
		}
		dest = append(dest, &row.Requests, &row.Tokens.Input, &row.Tokens.Output, &row.Tokens.CacheRead,
			&row.Tokens.CacheWrite, &row.Cost, &row.Fee, &row.Uncollected)
		if err := rows.Scan(dest...); err != nil {
			return nil, failCredits(ctx, "summary", err)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, failCredits(ctx, "summary", err)
	}
	return out, nil
}

// table returns the schema-qualified name of a table.
func (s *Store) table(name string) string {
	return pgx.Identifier{s.schema, name}.Sanitize()
}
