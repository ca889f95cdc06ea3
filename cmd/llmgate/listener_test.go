package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLimitListener(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := newLimitListener(tcp, 2)
	accepted := make(chan net.Conn)
	acceptDone := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptDone <- err
				return
			}
			accepted <- c
		}
	}()

	for range 3 {
		c, err := net.Dial("tcp", tcp.Addr().String()) // the kernel completes the handshake
		require.NoError(t, err)
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	notAccepted := func(msg string) {
		require.Never(t, func() bool {
			select {
			case c := <-accepted:
				_ = c.Close()
				return true
			default:
				return false
			}
		}, 100*time.Millisecond, 10*time.Millisecond, msg)
	}
	notAccepted("a third connection is not accepted while two are open")

	require.NoError(t, first.Close())
	_ = first.Close() // a second Close gives no second slot back
	third := <-accepted
	defer third.Close()
	defer second.Close()
	c, err := net.Dial("tcp", tcp.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	notAccepted("two are open again")

	// The slots are full; Close wakes the Accept waiting for one.
	require.NoError(t, ln.Close())
	require.ErrorIs(t, <-acceptDone, net.ErrClosed)
}

// TestMaxConnections checks max_connections end to end: a client beyond
// the limit waits until a connection closes, then is served.
func TestMaxConnections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "llmgate.yaml")
	require.NoError(t, os.WriteFile(path, []byte("max_connections: 1\nproviders: [{id: openai}]\n"), 0o600))
	r := startServer(t, []string{"-config", path}, nil)
	addr := strings.TrimPrefix(r.base, "http://")

	// A keep-alive connection that holds the only slot.
	held, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer held.Close()
	_, err = fmt.Fprintf(held, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(held), nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	done := make(chan error, 1)
	go func() {
		resp, err := r.client.Get(r.base + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		done <- err
	}()
	require.Never(t, func() bool { return len(done) > 0 }, 150*time.Millisecond, 10*time.Millisecond,
		"the second connection waits for the first to close")
	require.NoError(t, held.Close())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		require.Fail(t, "the waiting connection was not served")
	}
}
