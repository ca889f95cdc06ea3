package sqlite

import (
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmgate/gateway/credits"
)

// usageChunks are the numbers of usage records one statement of
// insertRecords inserts, largest first, ending with 1: a flush of 100
// records takes three statements of 32, one of 4 and 0 of 1.
var usageChunks = [...]int{32, 4, 1}

// usageFields is the number of usageColumns.
const usageFields = 27

// insertUsageRowsSQL is the INSERT of n usage records (see insertUsageSQL).
func insertUsageRowsSQL(n int) string {
	row := "(" + strings.Repeat("?, ", usageFields-1) + "?)"
	rows := make([]string, n)
	for i := range rows {
		rows[i] = row
	}
	return `INSERT INTO usage_records (` + usageColumns + `)
VALUES ` + strings.Join(rows, ",\n") + `
ON CONFLICT (id) DO NOTHING`
}

// usageWriter turns records into the arguments of the usage INSERTs,
// reusing its buffers from one record to the next.
type usageWriter struct {
	args []any
	json []byte
}

// add appends the values of usageColumns for rec, as normalizeRecord
// would keep it, with Account and Paid as given, to w.args.
func (w *usageWriter) add(rec *credits.UsageRecord, account string, paid bool) error {
	var attempts any
	if len(rec.Attempts) > 0 {
		var err error
		if w.json, err = appendAttempts(w.json[:0], rec.Attempts); err != nil {
			return err
		}
		attempts = string(w.json)
	}
	w.args = append(w.args, rec.ID, rec.RequestID, rec.KeyID, account, rec.Provider, rec.Model, string(rec.KeySource),
		rec.ReportedKnown, rec.Reported.Input, rec.Reported.Output, rec.Reported.CacheRead, rec.Reported.CacheWrite,
		rec.Estimated.Input, rec.Estimated.Output, rec.Estimated.CacheRead, rec.Estimated.CacheWrite,
		int64(rec.Cost), int64(rec.Fee), paid, int64(rec.Uncollected), int64(rec.Status), rec.Error, rec.Stream,
		micros(rec.Start), micros(rec.End), attempts, int64(rec.AttemptsDropped))
	return nil
}

// insertRecords stores the records of a flush (as normalizeRecord would
// keep them, with Paid true and Account account) in their order, unless
// their ID is kept already, and returns the IDs of those kept before with
// other content (a record repeated with other content in recs too). It
// inserts up to usageChunks[0] records a statement; a statement that inserted fewer
// rows than it had records has its records read back and compared.
func insertRecords(t *wtx, recs []*credits.UsageRecord, account string) (conflicts []string, err error) {
	w := usageWriter{args: make([]any, 0, usageChunks[0]*usageFields)}
	for len(recs) > 0 {
		n := 1
		for _, c := range usageChunks {
			if c <= len(recs) {
				n = c
				break
			}
		}
		chunk := recs[:n]
		recs = recs[n:]
		w.args = w.args[:0]
		for _, r := range chunk {
			if err := w.add(r, account, true); err != nil {
				return nil, err
			}
		}
		st := t.s.insertUsage[n]
		res, err := t.tx.StmtContext(t.ctx, st).ExecContext(t.ctx, w.args...)
		if err != nil {
			return nil, err
		}
		inserted, err := res.RowsAffected()
		if err != nil {
			return nil, err
		}
		if inserted == int64(n) {
			if len(recs) > 0 {
				// Let the requests being served run between statements:
				// on a proxy with one CPU, a flush of hundreds of records
				// would otherwise hold it for milliseconds.
				runtime.Gosched()
			}
			continue
		}
		// Some were kept before (or repeat an ID of the chunk): an
		// inserted record reads back as itself.
		for _, r := range chunk {
			nr := normalizeRecord(r)
			nr.Paid, nr.Account = true, account
			same, err := sameAsKept(t, nr)
			if err != nil {
				return nil, err
			}
			if !same {
				conflicts = append(conflicts, r.ID)
			}
		}
	}
	return conflicts, nil
}

// sameAsKept reports whether the normalized record r is the one kept with
// its ID.
func sameAsKept(t *wtx, r *credits.UsageRecord) (bool, error) {
	kept, err := scanUsage(t.queryRow(`SELECT `+usageColumns+` FROM usage_records WHERE id = ?`, r.ID))
	if err != nil {
		return false, err
	}
	return sameRecord(&kept, r), nil
}

// appendAttempts appends the JSON array of as, each Start in UTC to the
// microsecond (as normalizeRecord keeps it), to b: what json.Marshal
// writes, byte for byte. A Start that JSON cannot hold (a year outside
// 0-9999) fails as with json.Marshal.
func appendAttempts(b []byte, as []credits.AttemptRecord) ([]byte, error) {
	b = append(b, '[')
	for i := range as {
		a := &as[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"provider":`...)
		b = appendJSONString(b, a.Provider)
		b = append(b, `,"model":`...)
		b = appendJSONString(b, a.Model)
		if a.KeyID != "" {
			b = append(b, `,"key_id":`...)
			b = appendJSONString(b, a.KeyID)
		}
		if a.KeySource != "" {
			b = append(b, `,"key_source":`...)
			b = appendJSONString(b, string(a.KeySource))
		}
		if a.Skipped {
			b = append(b, `,"skipped":true`...)
		}
		if a.Status != 0 {
			b = append(b, `,"status":`...)
			b = strconv.AppendInt(b, int64(a.Status), 10)
		}
		if a.Error != "" {
			b = append(b, `,"error":`...)
			b = appendJSONString(b, a.Error)
		}
		if a.Served {
			b = append(b, `,"served":true`...)
		}
		b = append(b, `,"start":`...)
		start := utcMicro(a.Start)
		if y := start.Year(); y < 0 || y > 9999 {
			if _, err := json.Marshal(start); err != nil {
				return b, err
			}
		}
		b = append(b, '"')
		b = start.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","duration_ns":`...)
		b = strconv.AppendInt(b, int64(a.Duration), 10)
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// appendJSONString appends s as a JSON string to b as encoding/json writes
// it: <, > and & escaped for HTML, invalid UTF-8 replaced by U+FFFD, U+2028
// and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
