package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// buildBaseline builds the llmgate proxy as it is at git revision rev of
// the repository at root, into dir/proxy-baseline, and returns the binary
// and the revision's short hash. It checks rev out in a temporary detached
// git worktree (removed before it returns), copies the current
// bench/cmd/proxy/main.go and the benchmark's own packages (bench/internal)
// over the old ones, so that the proxy takes the current flags and only the
// library is the old one, and builds there with the nostrategies build tag
// (the baseline never runs with -strategies or -keys, and that leaves out
// the options an old revision may lack, WithModelSelection and
// WithKeyStore with package keys). It fails, saying why, when the
// revision is unknown or the current proxy does not compile against it.
func buildBaseline(ctx context.Context, root, dir, rev string) (bin, short string, err error) {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--short", "--verify", rev+"^{commit}").Output()
	if err != nil {
		return "", "", fmt.Errorf("git revision %q not found", rev)
	}
	short = strings.TrimSpace(string(out))
	src := filepath.Join(dir, "baseline-src")
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "worktree", "add", "--detach", "--quiet", src, short).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("git worktree add %s: %v: %s", short, err, strings.TrimSpace(string(out)))
	}
	defer func() {
		// A context that is done must not keep the worktree registered.
		rm := exec.Command("git", "-C", root, "worktree", "remove", "--force", src)
		if out, rerr := rm.CombinedOutput(); rerr != nil {
			progress("git worktree remove %s: %v: %s", src, rerr, strings.TrimSpace(string(out)))
		}
	}()
	for _, rel := range []string{filepath.Join("bench", "cmd", "proxy"), filepath.Join("bench", "internal")} {
		if err := os.RemoveAll(filepath.Join(src, rel)); err != nil {
			return "", "", err
		}
		if err := copyGoFiles(filepath.Join(root, rel), filepath.Join(src, rel)); err != nil {
			return "", "", err
		}
	}
	bin = filepath.Join(dir, "proxy-baseline")
	build := exec.CommandContext(ctx, goTool(), "build", "-tags", "nostrategies", "-o", bin, "./bench/cmd/proxy")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("the current bench/cmd/proxy does not compile against llmgate at %s, so the run has no baseline "+
			"(%v):\n%s", short, err, firstLines(string(out), 8))
	}
	return bin, short, nil
}

// copyGoFiles copies the non-test Go files below from into to, keeping
// the folder layout.
func copyGoFiles(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}
