package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"benchling-webhook/internal/exitcode"
)

// The SDK's attempts per call when AWS_MAX_ATTEMPTS is unset.
const (
	// s3MaxAttempts is job export's: a long export outlasts more throttling.
	s3MaxAttempts = 8
	// apiMaxAttempts is verify's, reconcile's and package's (S3 and Step
	// Functions).
	apiMaxAttempts = 5
)

// loadAWSConfig loads the standard SDK configuration, once per command:
// AWS_REGION, the credential chain, AWS_ENDPOINT_URL_<SERVICE> /
// AWS_ENDPOINT_URL, AWS_CA_BUNDLE and AWS_MAX_ATTEMPTS. Throttling and 5xx
// answers are retried by the SDK's standard retryer, with up to
// maxAttempts attempts when AWS_MAX_ATTEMPTS is unset (the variable wins,
// as the SDK's LoadOptions would otherwise override it). opts are applied
// after that default. A configuration that does not load, or has no
// region, is a usage error (exit 2).
func loadAWSConfig(ctx context.Context, env Env, maxAttempts int, opts ...func(*config.LoadOptions) error) (aws.Config, error) {
	var all []func(*config.LoadOptions) error
	if _, ok := env.Lookup("AWS_MAX_ATTEMPTS"); !ok {
		all = append(all, config.WithRetryMaxAttempts(maxAttempts))
	}
	all = append(all, opts...)
	cfg, err := config.LoadDefaultConfig(ctx, all...)
	if err != nil {
		return aws.Config{}, exitcode.Wrap(fmt.Errorf("load AWS configuration: %w", err), exitcode.Usage)
	}
	if cfg.Region == "" {
		return aws.Config{}, exitcode.Wrap(errors.New("no AWS region: set AWS_REGION"), exitcode.Usage)
	}
	return cfg, nil
}

// s3ClientFromConfig builds the S3 client of every command: path-style
// addressing when an endpoint is set (AWS_ENDPOINT_URL_S3 or
// AWS_ENDPOINT_URL: a local S3 server has no per-bucket host names).
func s3ClientFromConfig(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if o.BaseEndpoint != nil || cfg.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
	})
}
