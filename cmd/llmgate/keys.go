package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/llmgate/gateway/config"
	"github.com/llmgate/gateway/keys"
)

// keysUsage is the usage of the keys subcommands.
const keysUsage = `Usage:
  llmgate keys create -config FILE [-description D] [-account A] [-expires 720h]
                      [-allow-providers a,b] [-allow-models x,y]
  llmgate keys list   -config FILE [-limit N]
  llmgate keys revoke -config FILE ID
  llmgate keys rewrap -config FILE

Manage the gateway API keys of the key store the configuration file names
(store:), for its endpoint (endpoint:, default "default").

create prints the new key's ID on stderr and its token, shown once, alone
on the last line of stdout:
  TOKEN=$(llmgate keys create -config llmgate.yaml -description ci | tail -1)
list prints the keys, newest first, without their tokens. revoke deletes a
key; a running llmgate stops accepting it within its cache TTL (30s), at
once when revoked through the admin API or with a PostgreSQL store.
rewrap re-seals the provider keys attached to gateway keys under the first
of key_encryption_keys (after a rotation: put the new KEK first, keep the
old ones listed until rewrap has run, then remove them).
`

// keysCommand runs "llmgate keys SUBCOMMAND [flags]". Problems go to the
// caller as errors (main prints them on stderr and exits with status 1);
// -h prints the usage and returns nil.
func keysCommand(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, keysUsage)
		if len(args) == 0 {
			return errors.New("keys: name a subcommand: create, list or revoke")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("llmgate keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), keysUsage+"\nFlags of "+sub+":\n")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "YAML configuration `file` naming the key store")
	var run func(context.Context, *config.File, keys.KeyStore) error
	switch sub {
	case "create":
		c := &createCmd{stdout: stdout, stderr: stderr, now: time.Now}
		fs.StringVar(&c.description, "description", "", "free-form `text` shown in lists (at most 255 bytes)")
		fs.StringVar(&c.account, "account", "", "`account` whose credits the key spends")
		fs.DurationVar(&c.expires, "expires", 0, "the key stops working after this `duration` (e.g. 720h); default never")
		fs.StringVar(&c.providers, "allow-providers", "", "comma-separated provider `IDs` the key may use; default all")
		fs.StringVar(&c.models, "allow-models", "", "comma-separated `models` the key may use; default all")
		run = c.run
	case "list":
		c := &listCmd{stdout: stdout, stderr: stderr, now: time.Now}
		fs.IntVar(&c.limit, "limit", 100, "list at most `N` keys, newest first")
		run = c.run
	case "revoke":
		// Its ID is known once the flags are parsed.
	case "rewrap":
		run = (&rewrapCmd{stderr: stderr}).run
	default:
		fmt.Fprint(stderr, keysUsage)
		return fmt.Errorf("keys: unknown subcommand %q: want create, list, revoke or rewrap", sub)
	}
	// Flags may come before or after the ID of revoke.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case sub == "revoke" && len(positional) != 1:
		return errors.New("keys revoke: name one key ID (see -h)")
	case sub != "revoke" && len(positional) > 0:
		return fmt.Errorf("keys %s: unexpected arguments %q (see -h)", sub, positional)
	case *configPath == "":
		return fmt.Errorf("keys %s: -config is required: the file names the key store (see -h)", sub)
	}
	if sub == "revoke" {
		run = (&revokeCmd{stderr: stderr, id: positional[0]}).run
	}
	f, err := readStoreFile(*configPath, env, keyFields)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, f, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer st.Close()
	return run(ctx, f, st)
}

// keyFields are the fields of the file the keys subcommands use; problems
// elsewhere in the file (an unset provider key, say) do not stop them.
var keyFields = []string{"store", "endpoint", "gateway_keys", "key_encryption_keys", "admin"}

// readStoreFile reads the configuration file for a subcommand: it must
// name a store, and the fields the subcommand uses (those of fields, and
// what is under them) must be valid; problems elsewhere are ignored.
func readStoreFile(path string, env func(string) string, fields []string) (*config.File, error) {
	f, err := config.ReadFile(path, env)
	if f == nil {
		return nil, err
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		var ours []*config.Problem
		for _, p := range ce.Problems {
			if p.Path == "" || isField(p.Path, fields) {
				ours = append(ours, p)
			}
		}
		if len(ours) > 0 {
			return nil, &config.Error{File: ce.File, Problems: ours}
		}
	}
	if kind, _ := f.StoreDSN(); kind == "" {
		return nil, fmt.Errorf("%s names no key store: add store: sqlite:./llmgate.db (or a postgres:// URL)", path)
	}
	return f, nil
}

// isField reports whether path is one of fields or under one.
func isField(path string, fields []string) bool {
	for _, k := range fields {
		if path == k || strings.HasPrefix(path, k+".") || strings.HasPrefix(path, k+"[") {
			return true
		}
	}
	return false
}

// createCmd is "llmgate keys create".
type createCmd struct {
	stdout, stderr       io.Writer
	now                  func() time.Time
	description, account string
	providers, models    string
	expires              time.Duration
}

func (c *createCmd) run(ctx context.Context, f *config.File, st keys.KeyStore) error {
	if c.expires < 0 {
		return fmt.Errorf("keys create: -expires must be positive, got %v", c.expires)
	}
	k, token, err := keys.NewKey(f.EndpointName())
	if err != nil {
		return err
	}
	k.Description, k.Account = c.description, c.account
	k.AllowedProviders, k.AllowedModels = splitList(c.providers), splitList(c.models)
	if c.expires > 0 {
		k.ExpiresAt = c.now().Add(c.expires)
	}
	k, err = st.Create(ctx, k)
	if err != nil {
		return fmt.Errorf("keys create: %w", err)
	}
	fmt.Fprintf(c.stderr, "Created gateway API key %s (%s) for endpoint %q", k.ID, k.Redacted, k.Endpoint)
	if !k.ExpiresAt.IsZero() {
		fmt.Fprintf(c.stderr, ", expiring %s", k.ExpiresAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(c.stderr, ".\nIts token follows on stdout; it is shown once and cannot be read again.\n")
	_, err = fmt.Fprintln(c.stdout, token)
	return err
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// listCmd is "llmgate keys list".
type listCmd struct {
	stdout, stderr io.Writer
	now            func() time.Time
	limit          int
}

func (c *listCmd) run(ctx context.Context, f *config.File, st keys.KeyStore) error {
	if c.limit < 1 {
		return fmt.Errorf("keys list: -limit must be at least 1, got %d", c.limit)
	}
	var ks []keys.Key
	o := keys.ListOptions{Endpoint: f.EndpointName()}
	for len(ks) < c.limit {
		o.Limit = min(c.limit-len(ks), keys.MaxListLimit)
		page, err := st.List(ctx, o)
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		ks = append(ks, page.Keys...)
		if page.NextCursor == "" {
			break
		}
		o.Cursor = page.NextCursor
	}
	if len(ks) == 0 {
		fmt.Fprintf(c.stderr, "No gateway API keys for endpoint %q in %s.\n", f.EndpointName(), f.StoreName())
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tREDACTED\tDESCRIPTION\tCREATED\tLAST USED\tEXPIRES")
	now := c.now()
	for _, k := range ks {
		expires := stamp(k.ExpiresAt, "never")
		if k.Expired(now) {
			expires += " (expired)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Redacted, cell(k.Description, 40),
			stamp(k.CreatedAt, "-"), stamp(k.LastUsed, "never"), expires)
	}
	return tw.Flush()
}

// stamp formats t for a table, or none when it is zero.
func stamp(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// cell makes free-form text fit a table cell: control characters become
// spaces, and text beyond max runes is cut with "…"; "-" when empty.
func cell(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	if s == "" {
		return "-"
	}
	return s
}

// revokeCmd is "llmgate keys revoke".
type revokeCmd struct {
	stderr io.Writer
	id     string
}

func (c *revokeCmd) run(ctx context.Context, f *config.File, st keys.KeyStore) error {
	k, err := st.Get(ctx, c.id)
	if errors.Is(err, keys.ErrNotFound) {
		return fmt.Errorf("keys revoke: no key %q in %s", c.id, f.StoreName())
	}
	if err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	if err := st.Delete(ctx, k.ID); err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	fmt.Fprintf(c.stderr, "Revoked gateway API key %s (%s) of endpoint %q.\n"+
		"A running llmgate stops accepting it within its cache TTL (30s).\n", k.ID, k.Redacted, k.Endpoint)
	return nil
}

// rewrapCmd is "llmgate keys rewrap".
type rewrapCmd struct {
	stderr io.Writer
}

func (c *rewrapCmd) run(ctx context.Context, f *config.File, st keys.KeyStore) error {
	sealer, err := f.Sealer()
	if err != nil {
		return fmt.Errorf("keys rewrap: %w", err)
	}
	if sealer == nil {
		return errors.New("keys rewrap: the file lists no key_encryption_keys")
	}
	total := 0
	for _, old := range sealer.Old() {
		n, err := st.Rewrap(ctx, old, sealer.RewrapAttached)
		total += n
		if err != nil {
			return fmt.Errorf("keys rewrap: entries under %q: %w (%d rewrapped so far)", old, err, total)
		}
		fmt.Fprintf(c.stderr, "Rewrapped %d provider keys from %q to %q.\n", n, old, sealer.Current())
	}
	if len(sealer.Old()) == 0 {
		fmt.Fprintf(c.stderr, "Nothing to rewrap: only the current key-encryption key %q is listed.\n", sealer.Current())
	}
	return nil
}
