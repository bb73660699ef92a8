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

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/sfn"
	"benchling-webhook/internal/webhook"
)

// verifyVars holds the raw flag values of "job verify".
type verifyVars struct {
	executionARN    string
	request         string
	appDefinitionID string
	jwksURL         string
	allowedIPs      string
	maxBody         byteSize
	tolerance       time.Duration
	logFormat       string
	logLevel        string
}

// verifyOpts is verifyVars plus what "job verify" depends on.
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

func newVerifyFlags(v *verifyVars) *pflag.FlagSet {
	fs := pflag.NewFlagSet("verify", pflag.ContinueOnError)
	fs.SortFlags = false
	v.maxBody = webhook.DefaultMaxBody
	fs.StringVar(&v.executionARN, flagExecutionARN, "", "The ARN of the Step Functions execution whose input is the webhook request (an API Gateway proxy request, plus the body parsed as \"payload\"); it is read with DescribeExecution, because the request is too big for ECS container overrides. Give this or --request.")
	fs.StringVar(&v.request, flagRequest, "", `Read the same execution input (JSON) from this file instead; "-" reads standard input. Give this or --execution-arn.`)
	fs.StringVar(&v.appDefinitionID, flagAppDefinitionID, "", "The Benchling app definition id (appdef_…) whose keys sign the webhooks. Required. It is configuration, never taken from the request: a body naming another app is rejected.")
	fs.StringVar(&v.jwksURL, flagJWKSURL, webhook.DefaultJWKSURL, `Where the app definition's JSON Web Key Set is; "{appDefinitionId}" is replaced by --app-definition-id. The set is fetched once per run, after the cheap checks pass.`)
	fs.StringVar(&v.allowedIPs, flagAllowedIPs, "", "Comma-separated source IPs or CIDR prefixes allowed to send webhooks, e.g. 1.2.3.4,10.0.0.0/8. Empty allows every source.")
	fs.Var(&v.maxBody, flagMaxBody, "Reject a webhook whose decoded body is larger than this. Step Functions caps an execution's input at 256KiB, so a larger body cannot arrive that way.")
	fs.DurationVar(&v.tolerance, flagTolerance, webhook.DefaultTolerance, "Reject a webhook whose webhook-timestamp is further than this, in the past or the future, from when API Gateway received it (requestContext.requestTimeEpoch), or from now if the request does not say.")
	fs.StringVar(&v.logFormat, flagLogFormat, "auto", "Log format on stderr: json (for CloudWatch), text, or auto (text on a terminal, else json).")
	fs.StringVar(&v.logLevel, flagLogLevel, "info", "Log level: debug, info, warn or error.")
	return fs
}

// validate checks the whole configuration before any I/O and returns the
// parsed allow list.
func (v *verifyVars) validate() ([]netip.Prefix, error) {
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
	return allowed, errors.Join(errs...)
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

func runVerify(ctx context.Context, args []string, env Env) int {
	o, log, code := parseVerify(args, env)
	if log == nil {
		return code
	}
	return o.run(ctx, env, log)
}

// parseVerify reads flags and environment. A nil logger means parsing
// ended the command with code (help or a usage error).
func parseVerify(args []string, env Env) (*verifyOpts, *slog.Logger, int) {
	var v verifyVars
	fs := newVerifyFlags(&v)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: job verify (--execution-arn ARN | --request FILE) --app-definition-id ID [flags]\n\n"+
			"Verifies a Benchling webhook: body, source IP, headers, timestamp, signature versions,\n"+
			"app definition, that \"payload\" is the body, then the ECDSA signature against the app's\n"+
			"JSON Web Key Set.\n"+
			"Exit codes: 0 verified, 3 rejected (a retry cannot help), 4 transient (retry),\n"+
			"2 usage or configuration (wrong app definition id, unknown execution).\n"+
			"Every flag can also come from the environment: --app-definition-id from APP_DEFINITION_ID, and so on.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, nil, exitcode.OK
		}
		fmt.Fprintf(env.Stderr, "job verify: %v\n", err)
		return nil, nil, exitcode.Usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "job verify: unexpected arguments %q\n", fs.Args())
		return nil, nil, exitcode.Usage
	}
	if err := applyEnv(fs, env.Lookup); err != nil {
		fmt.Fprintf(env.Stderr, "job verify: %v\n", err)
		return nil, nil, exitcode.Usage
	}
	log, err := newLogger(env.Stderr, v.logFormat, v.logLevel)
	if err != nil {
		fmt.Fprintf(env.Stderr, "job verify: %v\n", err)
		return nil, nil, exitcode.Usage
	}
	o := &verifyOpts{
		verifyVars: v,
		stdin:      env.Stdin,
		newDescriber: func(ctx context.Context) (sfn.API, error) {
			return newSFNClient(ctx, env)
		},
	}
	return o, log, exitcode.OK
}

// run verifies one webhook and prints the result; it returns the exit code.
func (o *verifyOpts) run(ctx context.Context, env Env, log *slog.Logger) int {
	allowed, err := o.validate()
	if err != nil {
		log.Error("invalid configuration", "error", err.Error())
		o.printResult(env, nil, exitcode.Usage, exitcode.Wrap(err, exitcode.Usage))
		return exitcode.Usage
	}
	o.allowed = allowed
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
	case exitcode.BadInput:
		log.Error("webhook rejected", "error", err.Error(), "webhookId", id, "sourceIp", ip, "exitCode", code, "kind", exitcode.Name(code))
	default:
		log.Error("webhook verification failed", "error", err.Error(), "webhookId", id, "sourceIp", ip, "exitCode", code, "kind", exitcode.Name(code))
	}
	o.printResult(env, res, code, err)
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
	cfg, err := loadAWSConfig(ctx, env, 5)
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
