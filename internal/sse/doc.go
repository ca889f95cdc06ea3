// Package sse reads and writes server-sent events (the text/event-stream
// format of the WHATWG HTML standard) on the gateway's streaming hot path.
//
// A [Reader] splits an upstream body into event blocks. It accepts LF, CR and
// CRLF line endings in any mix, returns every complete block as soon as its
// bytes have been read, caps the size of a single event rather than of a line
// (so a 300 KiB tool-call event is fine and a hostile upstream still cannot
// make it allocate without bound), and does not allocate per event in the
// steady state: an [Event]'s slices alias the Reader's buffer. Each event
// carries its exact bytes in Event.Raw so a proxy can forward a block
// unchanged when the client speaks the upstream's dialect.
//
// A [Writer] formats events (or forwards Raw blocks) to an
// [http.ResponseWriter] and flushes through [http.ResponseController], so a
// host's middleware that implements Unwrap does not hide the flusher.
//
// A typical pass-through loop reads an event, writes its Raw bytes and flushes
// once the reader holds nothing more:
//
//	r := sse.NewReader(upstream.Body, 0)
//	sse.SetHeaders(w.Header())
//	sw := sse.NewWriter(w)
//	for {
//		ev, err := r.Next()
//		if err != nil {
//			break // io.EOF at the end of the stream
//		}
//		if err := sw.Write(ev.Raw); err != nil {
//			break
//		}
//		if r.Buffered() == 0 {
//			_ = sw.Flush()
//		}
//	}
//
// Neither type is safe for concurrent use; each belongs to one stream.
package sse
