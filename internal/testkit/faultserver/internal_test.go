package faultserver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPaceDelay(t *testing.T) {
	tests := map[string]struct {
		sent, rate int64
		elapsed    time.Duration
		want       time.Duration
	}{
		"nothing sent":      {sent: 0, rate: 1000, want: 0},
		"unpaced":           {sent: 1 << 20, rate: 0, want: 0},
		"on schedule":       {sent: 1000, rate: 1000, elapsed: time.Second, want: 0},
		"ahead":             {sent: 1000, rate: 1000, elapsed: 250 * time.Millisecond, want: 750 * time.Millisecond},
		"behind":            {sent: 1000, rate: 1000, elapsed: 3 * time.Second, want: 0},
		"large no overflow": {sent: 1 << 40, rate: 1 << 30, elapsed: 0, want: 1024 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, paceDelay(tc.sent, tc.rate, tc.elapsed))
		})
	}
}

func TestPaceChunk(t *testing.T) {
	tests := map[int64]int{0: 32 << 10, 1: 1, 49: 1, 50: 1, 5000: 100, 1 << 30: 32 << 10}
	for rate, want := range tests {
		assert.Equal(t, want, paceChunk(rate), "rate %d", rate)
	}
}

func TestS3Code(t *testing.T) {
	tests := map[int][2]string{
		403: {"AccessDenied", "Request has expired"},
		404: {"NoSuchKey", "The specified key does not exist."},
		503: {"SlowDown", "Please reduce your request rate."},
		429: {"TooManyRequests", "Too Many Requests."},
		599: {"Status599", "Injected fault."},
	}
	for status, want := range tests {
		code, msg := S3Code(status)
		assert.Equal(t, want, [2]string{code, msg}, "status %d", status)
	}
}
