package credits

// Tick runs one timed flush of l now (tests drive the flusher by hand with
// a long FlushInterval).
func (l *Leasing) Tick() { l.tick(true) }

// Abandon stops l's flusher without writing anything back: a crash.
func (l *Leasing) Abandon() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
}
