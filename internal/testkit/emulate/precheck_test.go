package emulate

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWebhookPrecheck runs the webhook machine's first states on inputs
// the gateway lets through: a request whose body is not JSON or whose
// webhook-timestamp is no number of seconds within 5 minutes of its
// receipt ends as WebhookJunk before any Task (so no verify task starts);
// a plausible one reaches Verify.
func TestWebhookPrecheck(t *testing.T) {
	b := startBareEngine(t, func(state string, _ json.RawMessage) (any, string) { return nil, "Test.Stop" })
	def := substituted(t, Webhook)
	now := time.Now()
	received := now.UnixMilli()
	input := func(ts any, epoch any, payload bool) map[string]any {
		in := map[string]any{"headers": map[string]any{}, "requestContext": map[string]any{"requestTimeEpoch": epoch}}
		if ts != nil {
			in["headers"].(map[string]any)["webhook-timestamp"] = ts
		}
		if payload {
			in["payload"] = map[string]any{"channel": "events"}
		}
		return in
	}
	secs := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	for name, ts := range map[string]string{
		"now": secs(0), "4m59s early": secs(-299 * time.Second), "4m59s late": secs(299 * time.Second),
	} {
		// The receipt time is now in milliseconds; the timestamp is whole
		// seconds, so allow for the truncation.
		d, tasks := b.run(def, input(ts, received-received%1000, true))
		require.NotEqual(t, "WebhookJunk", d.Error, "%s: %s", name, d.Cause)
		require.Equal(t, []string{"Verify"}, tasks, name)
	}
	for name, in := range map[string]map[string]any{
		"not JSON (no payload)":  input(secs(0), received, false),
		"no timestamp":           input(nil, received, true),
		"a number, not a string": input(now.Unix(), received, true),
		"6 minutes early":        input(secs(-6*time.Minute), received, true),
		"6 minutes late":         input(secs(6*time.Minute), received, true),
		"in milliseconds":        input(strconv.FormatInt(received, 10), received, true),
		"negative":               input("-"+secs(0), received, true),
		"zero":                   input("0", received, true),
		"empty":                  input("", received, true),
		"a word":                 input("soon", received, true),
		"a JSON string":          input(`"`+secs(0)+`"`, received, true),
		"a JSON array":           input("["+secs(0)+"]", received, true),
		"two numbers":            input(secs(0)+" 1", received, true),
		"null":                   input("null", received, true),
		"a leading zero":         input("0"+secs(0), received, true),
		"a fraction":             input(secs(0)+".5", received, true),
		"an exponent":            input("1.7e9", received, true),
		"past 32 bits":           input("99999999999999999999", received, true),
	} {
		d, tasks := b.run(def, in)
		require.Equal(t, "WebhookJunk", d.Error, "%s: %s", name, d.Cause)
		require.Empty(t, tasks, name)
	}
}
