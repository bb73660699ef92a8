package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/pflag"

	"benchling-webhook/internal/emf"
	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/sfn"
	"benchling-webhook/internal/webhook"
)

var verifyCommand = command{
	name:     "verify",
	synopsis: "job verify (--execution-arn ARN | --request FILE) --app-definition-id ID [flags]",
	about: "Verifies a Benchling webhook: body, source IP, headers, timestamp, signature versions,\n" +
		"app definition, that \"payload\" is the body, then the ECDSA signature against the app's\n" +
		"JSON Web Key Set. Which check gives which exit code: docs/verify.md, \"Exit codes and output\".\n",
	envFlag: flagAppDefinitionID,
	newOpts: func(fs *pflag.FlagSet, env Env) opts {
		o := &verifyOpts{stdin: env.Stdin, newDescriber: func(ctx context.Context) (sfn.API, error) {
			return newSFNClient(ctx, env)
		}}
		o.verifyVars.bind(fs)
		return o
	},
}

// verifyVars holds the raw flag values of "job verify".
type verifyVars struct {
	executionARN    string
	request         string
	appDefinitionID string
	jwksURL         string
	allowedIPs      string
	maxBody         byteSize
	tolerance       time.Duration
	metrics         bool
}

// verifyOpts is verifyVars checked, plus what "job verify" depends on.
type verifyOpts struct {
	verifyVars
	allowed []netip.Prefix
	// stdin is read for --request - (Env.Stdin).
	stdin io.Reader
	// newDescriber builds the Step Functions client for --execution-arn.
	newDescriber func(ctx context.Context) (sfn.API, error)
	// httpClient fetches the key set; nil means the webhook package's default.
	httpClient *http.Client
	// jwksAttempts is how often the key set GET is tried; 0 means the default.
	jwksAttempts int
}

// maxRequestOverhead is what an API Gateway request may hold besides its
// body: headers, the request context, base64 expansion aside.
const maxRequestOverhead = 1 << 20

func (v *verifyVars) bind(fs *pflag.FlagSet) {
	v.maxBody = webhook.DefaultMaxBody
	fs.StringVar(&v.executionARN, flagExecutionARN, "", "The Step Functions execution whose input is the webhook request, read with DescribeExecution. Give this or --request.")
	fs.StringVar(&v.request, flagRequest, "", `Read the same execution input (JSON) from this file instead; "-" reads standard input.`)
	fs.StringVar(&v.appDefinitionID, flagAppDefinitionID, "", "The Benchling app definition id (appdef_…) whose keys sign the webhooks; never taken from the request. Required.")
	fs.StringVar(&v.jwksURL, flagJWKSURL, webhook.DefaultJWKSURL, `The app definition's JSON Web Key Set; "{appDefinitionId}" is replaced by --app-definition-id.`)
	fs.StringVar(&v.allowedIPs, flagAllowedIPs, "", "Comma-separated source IPs or CIDR prefixes allowed to send webhooks, e.g. 1.2.3.4,10.0.0.0/8; empty allows all.")
	fs.Var(&v.maxBody, flagMaxBody, "Reject a webhook whose decoded body is larger than this (Step Functions caps an execution's input at 256KiB).")
	fs.DurationVar(&v.tolerance, flagTolerance, webhook.DefaultTolerance, "Reject a webhook whose webhook-timestamp is further than this from when API Gateway received it.")
	fs.BoolVar(&v.metrics, flagMetrics, true, "For a verified webhook that Benchling marks \"deprecated\": true, write one CloudWatch embedded metric format line (DeprecatedWebhooks) to stderr, with JSON logs only (docs/operations.md, \"Metrics\").")
}

// validate checks the whole configuration before any I/O and parses the
// allow list.
func (o *verifyOpts) validate(*session, []string) error {
	v := &o.verifyVars
	var errs []error
	switch {
	case v.executionARN == "" && v.request == "":
		errs = append(errs, fmt.Errorf("--%s (or %s) or --%s (or %s) is required", flagExecutionARN, envName(flagExecutionARN), flagRequest, envName(flagRequest)))
	case v.executionARN != "" && v.request != "":
		errs = append(errs, fmt.Errorf("give --%s or --%s, not both", flagExecutionARN, flagRequest))
	}
	if v.appDefinitionID == "" {
		errs = append(errs, fmt.Errorf("--%s (or %s) is required", flagAppDefinitionID, envName(flagAppDefinitionID)))
	}
	allowed, err := webhook.ParseAllowList(v.allowedIPs)
	if err != nil {
		errs = append(errs, fmt.Errorf("--%s: %w", flagAllowedIPs, err))
	}
	if v.maxBody < 1 || v.maxBody > 10<<20 {
		errs = append(errs, fmt.Errorf("--%s must be between 1 byte and 10MiB (API Gateway's payload limit)", flagMaxBody))
	}
	if v.tolerance <= 0 {
		errs = append(errs, fmt.Errorf("--%s must be positive", flagTolerance))
	}
	o.allowed = allowed
	return errors.Join(errs...)
}

// verifyResult is the last stdout line of "job verify".
type verifyResult struct {
	Verified        bool   `json:"verified"`
	WebhookID       string `json:"webhookId"`
	Type            string `json:"type"`
	Channel         string `json:"channel"`
	SourceIP        string `json:"sourceIp"`
	AppDefinitionID string `json:"appDefinitionId,omitempty"`
	Timestamp       int64  `json:"timestamp,omitempty"`
	KeyID           string `json:"keyId,omitempty"`
	BodyBytes       int    `json:"bodyBytes,omitempty"`
	ExecutionARN    string `json:"executionArn,omitempty"`
	Error           string `json:"error,omitempty"`
	ErrorKind       string `json:"errorKind,omitempty"`
	ExitCode        int    `json:"exitCode"`
}

func (o *verifyOpts) invalid(s *session, err error) {
	o.printResult(s.Env, nil, exitcode.Resolve(err), err)
}

// run verifies one webhook and prints the result; it returns the exit code.
func (o *verifyOpts) run(ctx context.Context, s *session) int {
	log := s.log
	res, err := o.verify(ctx, log)
	code, err := resolve(ctx, err)
	var id, ip string
	if res != nil {
		id, ip = res.WebhookID, res.SourceIP
	}
	switch code {
	case exitcode.OK:
		log.Info("webhook verified", "webhookId", id, "type", res.MessageType, "channel", res.Channel,
			"sourceIp", ip, "keyId", res.KeyID, "bodyBytes", res.BodyBytes, "receivedAt", receivedAt(res))
		if res.Deprecated {
			o.reportDeprecated(s, res)
		}
	case exitcode.BadInput:
		log.Error("webhook rejected", "error", err.Error(), "webhookId", id, "sourceIp", ip, "exitCode", code, "kind", exitcode.Name(code))
	default:
		log.Error("webhook verification failed", "error", err.Error(), "webhookId", id, "sourceIp", ip, "exitCode", code, "kind", exitcode.Name(code))
	}
	o.printResult(s.Env, res, code, err)
	return code
}

func (o *verifyOpts) verify(ctx context.Context, log *slog.Logger) (*webhook.Result, error) {
	v, err := webhook.NewVerifier(webhook.Config{
		AppDefinitionID: o.appDefinitionID,
		JWKSURL:         o.jwksURL,
		Tolerance:       o.tolerance,
		AllowedIPs:      o.allowed,
		MaxBody:         int64(o.maxBody),
		HTTPClient:      o.httpClient,
		JWKSAttempts:    o.jwksAttempts,
		Logger:          log,
	})
	if err != nil {
		return nil, err
	}
	data, err := o.readRequest(ctx)
	if err != nil {
		return nil, err
	}
	env, err := webhook.DecodeEnvelope(data)
	if err != nil {
		return nil, err
	}
	log.Debug("request read", "path", env.Path, "requestId", env.RequestContext.RequestID,
		"requestTimeEpoch", env.RequestContext.RequestTimeEpoch, "bodyChars", len(env.Body), "payloadBytes", len(env.Payload))
	return v.VerifyEnvelope(ctx, env)
}

// metricDeprecated counts verified webhooks whose message Benchling marks
// "deprecated": true; the addon's DeprecatedWebhooksAlarm watches it.
const metricDeprecated = "DeprecatedWebhooks"

// reportDeprecated logs a verified webhook marked deprecated, and counts it
// in one EMF line: Benchling marks a message type it will stop sending, so
// the app's manifest needs the type's replacement before then. Only a
// verified webhook is counted: anyone can post an unsigned one.
func (o *verifyOpts) reportDeprecated(s *session, res *webhook.Result) {
	s.log.Warn("deprecated webhook: Benchling will stop sending this message type; subscribe its replacement (docs/deploy.md, \"Deprecated webhooks\")",
		"webhookId", res.WebhookID, "type", res.MessageType, "channel", res.Channel)
	if !o.metrics || !s.jsonLogs {
		return
	}
	metrics := []emf.Metric{{Name: metricDeprecated, Unit: emf.UnitCount, Value: 1}}
	props := map[string]any{"messageType": res.MessageType, "webhookId": res.WebhookID}
	if err := emf.Write(s.Stderr, emf.Namespace(s.Lookup), "verify", time.Now(), metrics, props); err != nil {
		s.log.Warn("metrics not written", "error", err.Error())
	}
}

// receivedAt is when API Gateway received the request, for the log: RFC
// 3339 with milliseconds, or "" if the request does not say.
func receivedAt(res *webhook.Result) string {
	if res.ReceivedAt.IsZero() {
		return ""
	}
	return res.ReceivedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// maxRequest caps the execution input read: the body in base64, the
// payload (the body re-encoded as JSON, which escaping can grow; twice the
// cap) and room for the rest.
func (o *verifyOpts) maxRequest() int64 {
	return int64(o.maxBody)/3*4 + 4 + 2*int64(o.maxBody) + maxRequestOverhead
}

// readRequest returns the request JSON from --request or from the
// execution's input.
func (o *verifyOpts) readRequest(ctx context.Context) ([]byte, error) {
	if o.executionARN != "" {
		return o.describeExecution(ctx)
	}
	r := o.stdin
	if o.request == "-" && r == nil {
		return nil, exitcode.Wrap(errors.New("read request: no standard input"), exitcode.Usage)
	}
	if o.request != "-" {
		f, err := os.Open(o.request)
		if err != nil {
			return nil, exitcode.Wrap(fmt.Errorf("read request: %w", err), exitcode.Usage)
		}
		defer f.Close()
		r = f
	}
	limit := o.maxRequest()
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, exitcode.Wrap(fmt.Errorf("read request %s: %w", o.request, err), exitcode.Usage)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: the request is larger than %d bytes", webhook.ErrBodyTooLarge, limit)
	}
	return b, nil
}

// describeExecution reads the execution's input. The task gets the ARN of
// the execution that started it, so an unknown execution or a malformed
// ARN is a wiring or configuration fault (exit 2), not a bad webhook: exit
// 3 would be taken for "WebhookRejected" and hide it.
func (o *verifyOpts) describeExecution(ctx context.Context) ([]byte, error) {
	client, err := o.newDescriber(ctx)
	if err != nil {
		return nil, err
	}
	out, err := sfn.New(client).Describe(ctx, o.executionARN)
	if err != nil {
		return nil, err
	}
	if out.Input == nil {
		return nil, exitcode.Wrap(fmt.Errorf("describe execution %s: the answer has no input (does the task role have kms:Decrypt for the state machine's key?)", o.executionARN), exitcode.Usage)
	}
	if int64(len(*out.Input)) > o.maxRequest() {
		return nil, fmt.Errorf("%w: the execution input is larger than %d bytes", webhook.ErrBodyTooLarge, o.maxRequest())
	}
	return []byte(*out.Input), nil
}

// newSFNClient loads the standard SDK configuration (AWS_REGION, the
// credential chain, AWS_ENDPOINT_URL_SFN / AWS_ENDPOINT_URL,
// AWS_MAX_ATTEMPTS) and builds the Step Functions client ([sfn.NewAPI]).
// Throttling and 5xx answers are retried by the SDK's standard retryer;
// without AWS_MAX_ATTEMPTS it makes up to 5 attempts.
func newSFNClient(ctx context.Context, env Env) (sfn.API, error) {
	cfg, err := loadAWSConfig(ctx, env, apiMaxAttempts)
	if err != nil {
		return nil, err
	}
	return sfn.NewAPI(cfg), nil
}

func (o *verifyOpts) printResult(env Env, res *webhook.Result, code int, err error) {
	out := verifyResult{Verified: err == nil, ExecutionARN: o.executionARN, ExitCode: code}
	if res != nil {
		out.WebhookID, out.Type, out.Channel, out.SourceIP = res.WebhookID, res.MessageType, res.Channel, res.SourceIP
		out.AppDefinitionID, out.KeyID, out.BodyBytes = res.AppDefinitionID, res.KeyID, res.BodyBytes
		if !res.Timestamp.IsZero() {
			out.Timestamp = res.Timestamp.Unix()
		}
	}
	if err != nil {
		out.Error = err.Error()
		out.ErrorKind = exitcode.Name(code)
	}
	b, _ := json.Marshal(out)
	fmt.Fprintln(env.Stdout, string(b))
}
