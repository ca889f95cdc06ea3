package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llmgate/gateway/config"
	"github.com/llmgate/gateway/credits"
)

// creditsUsage is the usage of the credits and usage subcommands.
const creditsUsage = `Usage:
  llmgate credits buy          -config FILE -account A -amount 10.00 [-id ID] [-note N]
  llmgate credits balance      -config FILE [-account A]
  llmgate credits transactions -config FILE -account A [-limit N]
  llmgate usage                -config FILE [-account A] [-key K] [-from T] [-to T]
                               [-group-by day,provider,model,key,account]

Buy credits and read balances, transactions and usage in the store the
configuration file names (store:). Only store: matters: the file's other
fields (provider keys, key-encryption keys, the admin token) need not be
set in the environment.

buy adds a lot of at least $5.00 to the account, lasting 365 days, and
prints it. -id makes the purchase idempotent (an order or payment ID):
buying again with the same ID buys nothing and prints the first lot; the
default is a new ID. balance prints one account's balance, or every
account's. transactions prints an account's purchases, spends and
expiries, newest first. usage totals the usage records, grouped by the
dimensions of -group-by (default: one total); -from (inclusive) and -to
(exclusive) are RFC 3339 times or dates (2026-03-01, UTC midnight).
Amounts are US dollars.
`

// creditsCommand runs "llmgate credits SUBCOMMAND [flags]".
func creditsCommand(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer, open opener) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprint(stderr, creditsUsage)
		if len(args) == 0 {
			return errors.New("credits: name a subcommand: buy, balance or transactions")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	fs, configPath := newCreditsFlags("credits "+sub, stderr)
	var run func(context.Context, *config.File, credits.Store) error
	switch sub {
	case "buy":
		c := &buyCmd{stdout: stdout, stderr: stderr}
		fs.StringVar(&c.account, "account", "", "`account` to buy credits for (required)")
		fs.StringVar(&c.amount, "amount", "", "US `dollars` to buy, at least 5.00 (required)")
		fs.StringVar(&c.id, "id", "", "purchase `ID` (an order or payment ID) making the purchase idempotent; default a new one")
		fs.StringVar(&c.note, "note", "", "free-form `text` kept with the lot (at most 255 bytes)")
		run = c.run
	case "balance":
		c := &balanceCmd{stdout: stdout, stderr: stderr}
		fs.StringVar(&c.account, "account", "", "the `account` to show; default every account")
		run = c.run
	case "transactions":
		c := &transactionsCmd{stdout: stdout, stderr: stderr}
		fs.StringVar(&c.account, "account", "", "the `account` whose transactions to list (required)")
		fs.IntVar(&c.limit, "limit", 100, "list at most `N` transactions, newest first")
		run = c.run
	default:
		fmt.Fprint(stderr, creditsUsage)
		return fmt.Errorf("credits: unknown subcommand %q: want buy, balance or transactions", sub)
	}
	return runCreditsCommand(ctx, "credits "+sub, fs, configPath, args, env, stderr, open, run)
}

// usageCommand runs "llmgate usage [flags]".
func usageCommand(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer, open opener) error {
	fs, configPath := newCreditsFlags("usage", stderr)
	c := &usageCmd{stdout: stdout, stderr: stderr}
	fs.StringVar(&c.account, "account", "", "only this `account`'s requests")
	fs.StringVar(&c.key, "key", "", "only the requests of this gateway key `ID`")
	fs.StringVar(&c.from, "from", "", "only requests that started at or after this `time` (RFC 3339, or a date: 2026-03-01)")
	fs.StringVar(&c.to, "to", "", "only requests that started before this `time` (RFC 3339, or a date)")
	fs.StringVar(&c.groupBy, "group-by", "", "comma-separated `dimensions`: day, provider, model, key, account; default one total")
	return runCreditsCommand(ctx, "usage", fs, configPath, args, env, stderr, open, c.run)
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// newCreditsFlags returns the flag set of a credits or usage subcommand,
// with its -config flag.
func newCreditsFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("llmgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), creditsUsage+"\nFlags of "+name+":\n")
		fs.PrintDefaults()
	}
	return fs, fs.String("config", "", "YAML configuration `file` naming the store")
}

// runCreditsCommand parses the flags, reads the file's store field, opens
// the store and runs run on it, if it keeps credits.
func runCreditsCommand(ctx context.Context, name string, fs *flag.FlagSet, configPath *string, args []string,
	env func(string) string, stderr io.Writer, open opener, run func(context.Context, *config.File, credits.Store) error) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("%s: unexpected arguments %q (see -h)", name, fs.Args())
	case *configPath == "":
		return fmt.Errorf("%s: -config is required: the file names the store (see -h)", name)
	}
	f, err := readStoreFile(*configPath, env, []string{"store"})
	if err != nil {
		return err
	}
	st, err := open(ctx, f, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer st.Close()
	cs, ok := st.(credits.Store)
	if !ok {
		return fmt.Errorf("%s: the store %s does not keep credits in this build of llmgate", name, f.StoreName())
	}
	return run(ctx, f, cs)
}

// buyCmd is "llmgate credits buy".
type buyCmd struct {
	stdout, stderr            io.Writer
	account, amount, id, note string
}

func (c *buyCmd) run(ctx context.Context, f *config.File, st credits.Store) error {
	if c.account == "" {
		return errors.New("credits buy: -account is required")
	}
	if c.amount == "" {
		return errors.New("credits buy: -amount is required (US dollars, such as 10.00)")
	}
	amount, err := credits.ParseAmount(c.amount)
	if err != nil {
		return fmt.Errorf("credits buy: -amount %q is not a number of dollars with at most six decimals, such as 10.00", c.amount)
	}
	if amount < credits.MinPurchase {
		return fmt.Errorf("credits buy: $%s is below the minimum purchase of $%s", amount, credits.MinPurchase)
	}
	p := credits.Purchase{ID: c.id, Account: c.account, Amount: amount, Note: c.note}
	if p.ID == "" {
		p.ID = newPurchaseID()
	}
	if err := credits.ValidatePurchase(p); err != nil {
		return fmt.Errorf("credits buy: %w", err)
	}
	replay, err := hasLot(ctx, st, p.Account, p.ID)
	if err != nil {
		return fmt.Errorf("credits buy: %w", err)
	}
	lot, err := st.Purchase(ctx, p)
	if errors.Is(err, credits.ErrConflict) {
		return fmt.Errorf("credits buy: purchase %q was made before for another account or amount; nothing was bought", p.ID)
	}
	if err != nil {
		return fmt.Errorf("credits buy: %w", err)
	}
	if replay {
		fmt.Fprintf(c.stderr, "Purchase %q was made before: nothing was bought. Its lot:\n", lot.ID)
	} else {
		fmt.Fprintf(c.stderr, "Bought $%s of credits for account %q.\n", lot.Amount, lot.Account)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LOT\tACCOUNT\tAMOUNT\tREMAINING\tPURCHASED\tEXPIRES\tNOTE")
	fmt.Fprintf(tw, "%s\t%s\t$%s\t$%s\t%s\t%s\t%s\n", lot.ID, lot.Account, lot.Amount, lot.Remaining,
		stamp(lot.PurchasedAt, "-"), stamp(lot.ExpiresAt, "-"), cell(lot.Note, 40))
	return tw.Flush()
}

// newPurchaseID returns "pur_" and 26 base32 characters (128 random bits),
// as the admin API makes them.
func newPurchaseID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return "pur_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// maxReplayScan bounds the lots buy reads to tell a replayed purchase from
// a new one.
const maxReplayScan = 10 * credits.MaxListLimit

// hasLot reports whether account holds a lot with id (a lot's ID is its
// purchase's), reading at most maxReplayScan lots, newest first.
func hasLot(ctx context.Context, st credits.Store, account, id string) (bool, error) {
	o := credits.ListOptions{Limit: credits.MaxListLimit}
	for read := 0; read < maxReplayScan; {
		lots, next, err := st.Lots(ctx, account, o)
		if err != nil {
			return false, err
		}
		for i := range lots {
			if lots[i].ID == id {
				return true, nil
			}
		}
		read += len(lots)
		if next == "" || len(lots) == 0 {
			break
		}
		o.Cursor = next
	}
	return false, nil
}

// balanceCmd is "llmgate credits balance".
type balanceCmd struct {
	stdout, stderr io.Writer
	account        string
}

func (c *balanceCmd) run(ctx context.Context, f *config.File, st credits.Store) error {
	var bs []credits.Balance
	if c.account != "" {
		if err := credits.ValidateID("account", c.account); err != nil {
			return fmt.Errorf("credits balance: -account: %w", err)
		}
		b, err := st.Balance(ctx, c.account)
		if err != nil {
			return fmt.Errorf("credits balance: %w", err)
		}
		if !b.Known {
			fmt.Fprintf(c.stderr, "Account %q has never bought credits.\n", c.account)
		}
		bs = append(bs, b)
	} else {
		o := credits.ListOptions{Limit: credits.MaxListLimit}
		for {
			page, err := st.Accounts(ctx, o)
			if err != nil {
				return fmt.Errorf("credits balance: %w", err)
			}
			bs = append(bs, page.Accounts...)
			if page.NextCursor == "" {
				break
			}
			o.Cursor = page.NextCursor
		}
		if len(bs) == 0 {
			fmt.Fprintf(c.stderr, "No account has bought credits in %s.\n", f.StoreName())
			return nil
		}
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tAVAILABLE\tHELD\tSPENT\tEXPIRED\tPURCHASED\tNEXT EXPIRY")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t$%s\t$%s\t$%s\t$%s\t$%s\t%s\n", b.Account, b.Available, b.Held, b.Spent, b.Expired, b.Purchased,
			stamp(b.NextExpiry, "-"))
	}
	return tw.Flush()
}

// transactionsCmd is "llmgate credits transactions".
type transactionsCmd struct {
	stdout, stderr io.Writer
	account        string
	limit          int
}

func (c *transactionsCmd) run(ctx context.Context, f *config.File, st credits.Store) error {
	switch {
	case c.account == "":
		return errors.New("credits transactions: -account is required")
	case c.limit < 1:
		return fmt.Errorf("credits transactions: -limit must be at least 1, got %d", c.limit)
	}
	var txs []credits.Transaction
	o := credits.ListOptions{}
	for len(txs) < c.limit {
		o.Limit = min(c.limit-len(txs), credits.MaxListLimit)
		page, err := st.Transactions(ctx, c.account, o)
		if err != nil {
			return fmt.Errorf("credits transactions: %w", err)
		}
		txs = append(txs, page.Transactions...)
		if page.NextCursor == "" {
			break
		}
		o.Cursor = page.NextCursor
	}
	if len(txs) == 0 {
		fmt.Fprintf(c.stderr, "No transactions of account %q in %s.\n", c.account, f.StoreName())
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tKIND\tAMOUNT\tLOT\tHOLD\tNOTE")
	for _, t := range txs {
		sign := "+"
		if t.Kind != credits.TxPurchase {
			sign = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s$%s\t%s\t%s\t%s\n", t.At.UTC().Format("2006-01-02 15:04:05Z"), t.Kind, sign, t.Amount,
			orDash(t.LotID), orDash(t.HoldID), cell(t.Note, 40))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// usageCmd is "llmgate usage".
type usageCmd struct {
	stdout, stderr    io.Writer
	account, key      string
	from, to, groupBy string
}

func (c *usageCmd) run(ctx context.Context, f *config.File, st credits.Store) error {
	q := credits.SummaryQuery{Account: c.account, KeyID: c.key}
	var err error
	if q.From, err = parseTime("-from", c.from); err != nil {
		return err
	}
	if q.To, err = parseTime("-to", c.to); err != nil {
		return err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		return errors.New("usage: -to must be after -from (-from is inclusive, -to exclusive)")
	}
	for _, g := range splitList(c.groupBy) {
		q.GroupBy = append(q.GroupBy, credits.Group(g))
	}
	if err := credits.ValidateGroupBy(q.GroupBy); err != nil {
		return fmt.Errorf("usage: -group-by: %w", err)
	}
	for _, id := range []struct{ flag, v string }{{"-account", c.account}, {"-key", c.key}} {
		if id.v != "" {
			if err := credits.ValidateID(id.flag, id.v); err != nil {
				return fmt.Errorf("usage: %w", err)
			}
		}
	}
	rows, err := st.Summary(ctx, q)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	if len(rows) == 0 || len(rows) == 1 && rows[0].Requests == 0 {
		fmt.Fprintf(c.stderr, "No usage records match in %s.\n", f.StoreName())
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	var head []string
	for _, g := range q.GroupBy {
		head = append(head, strings.ToUpper(string(g)))
	}
	head = append(head, "REQUESTS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "COST", "FEE", "UNCOLLECTED")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	var total credits.SummaryRow
	for _, r := range rows {
		var line []string
		for _, g := range q.GroupBy {
			line = append(line, cell(dimension(&r, g), 48))
		}
		fmt.Fprintln(tw, strings.Join(append(line, totals(&r)...), "\t"))
		total.Requests += r.Requests
		total.Tokens.Input += r.Tokens.Input
		total.Tokens.Output += r.Tokens.Output
		total.Tokens.CacheRead += r.Tokens.CacheRead
		total.Tokens.CacheWrite += r.Tokens.CacheWrite
		total.Cost += r.Cost
		total.Fee += r.Fee
		total.Uncollected += r.Uncollected
	}
	if len(rows) > 1 && len(q.GroupBy) > 0 {
		line := make([]string, len(q.GroupBy))
		line[0] = "TOTAL"
		fmt.Fprintln(tw, strings.Join(append(line, totals(&total)...), "\t"))
	}
	return tw.Flush()
}

// dimension returns a summary row's value of g ("-" when empty).
func dimension(r *credits.SummaryRow, g credits.Group) string {
	var v string
	switch g {
	case credits.GroupDay:
		v = r.Day
	case credits.GroupProvider:
		v = r.Provider
	case credits.GroupModel:
		v = r.Model
	case credits.GroupKey:
		v = r.KeyID
	case credits.GroupAccount:
		v = r.Account
	}
	return v
}

// totals returns the count and money columns of a summary row.
func totals(r *credits.SummaryRow) []string {
	return []string{
		fmt.Sprint(r.Requests), fmt.Sprint(r.Tokens.Input), fmt.Sprint(r.Tokens.Output),
		fmt.Sprint(r.Tokens.CacheRead), fmt.Sprint(r.Tokens.CacheWrite),
		"$" + r.Cost.String(), "$" + r.Fee.String(), "$" + r.Uncollected.String(),
	}
}

// parseTime parses a -from or -to flag: RFC 3339, or a date (UTC
// midnight); zero when empty.
func parseTime(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("usage: %s %q is not an RFC 3339 time (2026-03-01T00:00:00Z) or a date (2026-03-01)", flagName, s)
}
