package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"benchling-webhook/internal/exitcode"
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
