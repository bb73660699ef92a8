// Package cfncheck validates CloudFormation templates (Copilot addons)
// offline against the current resource specification (@aws-cdk/aws-service-spec).
// Design: docs/testkit.md#deployment-checks-internaldeploytest.
package cfncheck
