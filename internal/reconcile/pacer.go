package reconcile

import (
	"context"
	"sync"
	"time"
)

// Pacer spaces calls: [Pacer.Wait] returns at most once per Interval, so
// that the packaging executions a run starts, each of which makes several
// Benchling calls, do not all reach the tenant's rate limit (60 requests
// per 30 s) at once. Its exported fields must be set before the first
// Wait; it is safe for concurrent use.
type Pacer struct {
	// Interval is the least time between two calls; zero or less: none.
	Interval time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// After is time.After (when nil); tests replace it.
	After func(time.Duration) <-chan time.Time

	mu   sync.Mutex
	next time.Time // when the next call may go
}

// Wait blocks until the caller's turn: Interval after the previous
// caller's. It returns ctx.Err() if ctx ends first; that turn is then
// lost, not given to the next caller.
func (p *Pacer) Wait(ctx context.Context) error {
	if p.Interval <= 0 {
		return ctx.Err()
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	after := time.After
	if p.After != nil {
		after = p.After
	}
	p.mu.Lock()
	t := now()
	var at time.Time
	at, p.next = turn(p.next, t, p.Interval)
	p.mu.Unlock()
	if !at.After(t) {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-after(at.Sub(t)):
		return nil
	}
}

// turn is the pacing rule: a caller that arrives at now, when the next
// free turn is next, goes at the later of the two, and the turn after
// its is interval later.
func turn(next, now time.Time, interval time.Duration) (at, following time.Time) {
	at = next
	if now.After(at) {
		at = now
	}
	return at, at.Add(interval)
}
