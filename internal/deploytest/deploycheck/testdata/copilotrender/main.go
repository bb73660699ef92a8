// Command copilotrender renders this repository's Copilot manifests and
// addons with AWS Copilot's own packages (github.com/aws/copilot-cli, whose
// packages are internal: deploycheck builds this file into that module with
// `go build -overlay`, see copilot_test.go). It runs offline and writes one
// JSON object to stdout: per environment, the worker job's stack template and
// the environment's stack template and parameters as Copilot would deploy
// them, and the addon template and parameters as Copilot merges them.
//
// Usage (from the repository root): copilotrender APP WORKLOAD ENV...
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/copilot-cli/internal/pkg/addon"
	"github.com/aws/copilot-cli/internal/pkg/config"
	"github.com/aws/copilot-cli/internal/pkg/deploy"
	"github.com/aws/copilot-cli/internal/pkg/deploy/cloudformation/stack"
	"github.com/aws/copilot-cli/internal/pkg/manifest"
	"github.com/aws/copilot-cli/internal/pkg/workspace"
	"github.com/spf13/afero"
)

// The account, region and versions the templates are rendered for; none of
// them changes what deploycheck looks at.
const (
	account    = "123456789012"
	region     = "us-east-1"
	envVersion = "v1.34.1"
	zeros64    = "0000000000000000000000000000000000000000000000000000000000000000"
)

type rendered struct {
	Job         map[string]string `json:"job"`         // env → worker stack template
	Env         map[string]string `json:"env"`         // env → environment stack template
	EnvParams   map[string]string `json:"envParams"`   // env → environment stack parameters (JSON)
	Addon       string            `json:"addon"`       // the merged addon template
	AddonParams string            `json:"addonParams"` // the addon parameters Copilot passes
}

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: copilotrender APP WORKLOAD ENV...")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3:]); err != nil {
		fmt.Fprintln(os.Stderr, "copilotrender:", err)
		os.Exit(1)
	}
}

func run(app, wkld string, envs []string) error {
	ws, err := workspace.Use(afero.NewOsFs())
	if err != nil {
		return fmt.Errorf("use workspace: %w", err)
	}
	out := rendered{Job: map[string]string{}, Env: map[string]string{}, EnvParams: map[string]string{}}
	addons, err := addon.ParseFromWorkload(wkld, ws)
	if err != nil {
		return fmt.Errorf("parse addons of %s: %w", wkld, err)
	}
	if out.Addon, err = addons.Template(); err != nil {
		return fmt.Errorf("addon template: %w", err)
	}
	if out.AddonParams, err = addons.Parameters(); err != nil {
		return fmt.Errorf("addon parameters: %w", err)
	}
	sess, err := session.NewSession()
	if err != nil {
		return err
	}
	for _, env := range envs {
		if out.Env[env], out.EnvParams[env], err = renderEnv(ws, app, env); err != nil {
			return fmt.Errorf("environment %s: %w", env, err)
		}
		if out.Job[env], err = renderJob(ws, sess, app, wkld, env); err != nil {
			return fmt.Errorf("%s in %s: %w", wkld, env, err)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// renderJob is what `copilot job package` does with the manifest:
// interpolate, unmarshal, apply the environment's overrides, validate, load,
// and render the Scheduled Job stack.
func renderJob(ws *workspace.Workspace, sess *session.Session, app, wkld, env string) (string, error) {
	raw, err := ws.ReadWorkloadManifest(wkld)
	if err != nil {
		return "", err
	}
	interpolated, err := manifest.NewInterpolator(app, env).Interpolate(string(raw))
	if err != nil {
		return "", fmt.Errorf("interpolate manifest: %w", err)
	}
	mft, err := manifest.UnmarshalWorkload([]byte(interpolated))
	if err != nil {
		return "", fmt.Errorf("unmarshal manifest: %w", err)
	}
	envMft, err := mft.ApplyEnv(env)
	if err != nil {
		return "", fmt.Errorf("apply environment overrides: %w", err)
	}
	if err := envMft.Validate(); err != nil {
		return "", fmt.Errorf("validate manifest: %w", err)
	}
	if err := envMft.Load(sess); err != nil {
		return "", fmt.Errorf("load manifest: %w", err)
	}
	job, ok := envMft.Manifest().(*manifest.ScheduledJob)
	if !ok {
		return "", fmt.Errorf("manifest is a %T, not a Scheduled Job", envMft.Manifest())
	}
	s, err := stack.NewScheduledJob(stack.ScheduledJobConfig{
		App:                &config.Application{Name: app},
		Env:                env,
		Manifest:           job,
		RawManifest:        interpolated,
		ArtifactBucketName: "artifacts",
		ArtifactKey:        "arn:aws:kms:" + region + ":" + account + ":key/00000000-0000-0000-0000-000000000000",
		RuntimeConfig: stack.RuntimeConfig{
			PushedImages: map[string]stack.ECRImage{wkld: {
				RepoURL:  account + ".dkr.ecr." + region + ".amazonaws.com/" + app + "/" + wkld,
				ImageTag: "latest", Digest: "sha256:" + zeros64, ContainerName: wkld, MainContainerName: wkld,
			}},
			AddonsTemplateURL: "https://artifacts.s3." + region + ".amazonaws.com/addons.yml",
			AccountID:         account,
			Region:            region,
			EnvVersion:        envVersion,
			Version:           envVersion,
		},
	})
	if err != nil {
		return "", err
	}
	return s.Template()
}

// renderEnv is what `copilot env package` does with an environment manifest.
func renderEnv(ws *workspace.Workspace, app, env string) (tpl, params string, err error) {
	raw, err := ws.ReadEnvironmentManifest(env)
	if err != nil {
		return "", "", err
	}
	interpolated, err := manifest.NewInterpolator(app, env).Interpolate(string(raw))
	if err != nil {
		return "", "", fmt.Errorf("interpolate manifest: %w", err)
	}
	mft, err := manifest.UnmarshalEnvironment([]byte(interpolated))
	if err != nil {
		return "", "", fmt.Errorf("unmarshal manifest: %w", err)
	}
	if err := mft.Validate(); err != nil {
		return "", "", fmt.Errorf("validate manifest: %w", err)
	}
	s, err := stack.NewEnvStackConfig(&stack.EnvConfig{
		Name:                 env,
		Version:              envVersion,
		App:                  deploy.AppInformation{Name: app, AccountPrincipalARN: "arn:aws:iam::" + account + ":root"},
		ArtifactBucketARN:    "arn:aws:s3:::artifacts",
		ArtifactBucketKeyARN: "arn:aws:kms:" + region + ":" + account + ":key/00000000-0000-0000-0000-000000000000",
		Mft:                  mft,
		RawMft:               interpolated,
	})
	if err != nil {
		return "", "", err
	}
	if tpl, err = s.Template(); err != nil {
		return "", "", err
	}
	params, err = s.SerializedParameters()
	return tpl, params, err
}
