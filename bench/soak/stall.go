package main

import (
	"sync"
	"time"
)

// stallMonitor notices when the whole process was not scheduled for a
// while (a loaded machine): a goroutine that ticks every few milliseconds
// records every gap well beyond its period. Timing verdicts about requests
// that overlapped a stall cannot be trusted.
type stallMonitor struct {
	period, threshold time.Duration

	mu      sync.Mutex
	stalls  []stall
	longest time.Duration

	stop chan struct{}
	done chan struct{}
}

// stall is a time the monitor's ticks came late: they stopped at start and
// resumed late by late.
type stall struct {
	start time.Time
	late  time.Duration
}

func startStallMonitor(period, threshold time.Duration) *stallMonitor {
	m := &stallMonitor{period: period, threshold: threshold, stop: make(chan struct{}), done: make(chan struct{})}
	go m.run()
	return m
}

func (m *stallMonitor) run() {
	defer close(m.done)
	t := time.NewTicker(m.period)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			now := time.Now()
			if late := now.Sub(last) - m.period; late >= m.threshold {
				m.mu.Lock()
				m.stalls = append(m.stalls, stall{start: last, late: late})
				m.longest = max(m.longest, late)
				m.mu.Unlock()
			}
			last = now
		}
	}
}

// close stops the monitor and waits for its goroutine.
func (m *stallMonitor) close() {
	close(m.stop)
	<-m.done
}

// during returns the longest stall that overlapped [from, to].
func (m *stallMonitor) during(from, to time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var longest time.Duration
	for i := len(m.stalls) - 1; i >= 0; i-- {
		s := m.stalls[i]
		if s.start.Add(s.late + m.period).Before(from) {
			break // stalls are in time order
		}
		if s.start.Before(to) {
			longest = max(longest, s.late)
		}
	}
	return longest
}

// summary returns the number of stalls and the longest.
func (m *stallMonitor) summary() (int, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.stalls), m.longest
}
