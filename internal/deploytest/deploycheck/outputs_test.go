package deploycheck

import (
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/deploytest/cfncheck"
	"benchling-webhook/internal/testkit/emulate"
)

// Copilot turns each addon output that is not a managed policy, a secret
// or a security group into an environment variable of the workload, named
// by template.ToSnakeCaseFunc: AppDefinitionId → APP_DEFINITION_ID.
var (
	snakeLowerUpper = regexp.MustCompile(`([a-z0-9])([A-Z])`)
	snakeAcronym    = regexp.MustCompile(`([A-Z]+)([A-Z][a-z])`)
)

func toSnakeCase(s string) string {
	s = snakeAcronym.ReplaceAllString(s, "${1}_${2}")
	s = snakeLowerUpper.ReplaceAllString(s, "${1}_${2}")
	return strings.ToUpper(s)
}

func TestToSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"AppDefinitionId": "APP_DEFINITION_ID", "WebhookApiUrl": "WEBHOOK_API_URL",
		"Registry": "REGISTRY", "S3Bucket": "S3_BUCKET", "DBName": "DB_NAME",
	} {
		require.Equal(t, want, toSnakeCase(in), in)
	}
}

// outputEnv returns the environment variables the template's outputs become.
func outputEnv(t *testing.T, tmpl *cfncheck.Template) []string {
	t.Helper()
	var names []string
	for name, out := range tmpl.Outputs {
		if ref, ok := asMap(out["Value"])["Ref"].(string); ok && tmpl.Resources[ref] != nil {
			switch tmpl.Resources[ref].Type {
			case "AWS::IAM::ManagedPolicy", "AWS::SecretsManager::Secret", "AWS::EC2::SecurityGroup":
				continue // attached to the task role / injected as a secret / attached
			}
		}
		names = append(names, toSnakeCase(name))
	}
	sort.Strings(names)
	return names
}

// TestAddonOutputsMatchTheLocalStack checks that the variables the
// addon's outputs give a deployed task are exactly those the local stack
// gives its tasks (emulate.AddonOutputEnv), so the e2e suite runs the job
// with what it gets in AWS, and that the variables job reconcile and job
// verify read from the addon are among them.
func TestAddonOutputsMatchTheLocalStack(t *testing.T) {
	tmpl, err := cfncheck.Load(filepath.Join(repoRoot(t), "addons", "workflows.yml"))
	require.NoError(t, err)
	got := outputEnv(t, tmpl)
	want := slices.Clone(emulate.AddonOutputEnv)
	sort.Strings(want)
	require.Equal(t, want, got, "addon outputs (as Copilot names their variables) vs. emulate.AddonOutputEnv")
	for _, v := range []string{"APP_DEFINITION_ID", "ALLOWED_IPS", "CATALOG_HOST", "REGISTRY", "PACKAGE_PREFIX",
		"BENCHLING_BASE_URL", "BENCHLING_CLIENT_ID", "PACKAGING_STATE_MACHINE_ARN", "JWKS_URL"} {
		require.Contains(t, got, v, "the job reads %s from the addon's outputs", v)
	}
}
