// Package listen runs the HTTP servers of the load benchmark's child
// processes (the fake upstream and the proxies) the way the driver expects:
// it prints "LISTEN http://host:port" on stdout once the socket listens,
// which is how the driver learns the address, and serves until SIGINT or
// SIGTERM.
package listen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Serve listens on addr, writes "LISTEN http://<address>\n" to out and
// serves h until ctx ends, or SIGINT or SIGTERM arrives; then it closes the
// server and returns nil. Other serving errors are returned.
func Serve(ctx context.Context, addr string, h http.Handler, out io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if _, err := fmt.Fprintf(out, "LISTEN http://%s\n", ln.Addr()); err != nil {
		_ = ln.Close()
		return err
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
