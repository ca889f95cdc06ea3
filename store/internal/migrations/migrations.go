// Package migrations reads the embedded schema migrations of the stores
// (store/sqlite, store/postgres): files "NNNN_name.sql" numbered from 0001
// without gaps. Applying them is each store's business (its dialect, its
// locking); this package only lists them, in order.
package migrations

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one schema change, migrations/NNNN_name.sql.
type Migration struct {
	// Version is NNNN, from 1.
	Version int
	// Name is the file name without ".sql" ("0001_keys").
	Name string
	// SQL is the file's content.
	SQL string
}

// Load reads the migrations in fsys under dir (files other than "*.sql"
// are ignored) and returns them in version order. A name that is not
// "NNNN_name.sql" with NNNN ≥ 1, a duplicate version or a gap is an error.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || len(num) != 4 {
			return nil, fmt.Errorf("migration %q: name must be NNNN_name.sql", name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %q: expected version %d", m.Name, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no migrations in %s", dir)
	}
	return ms, nil
}
