// Package workflowcheck holds only tests: actionlint on .github/workflows,
// and that they run what .ci/run runs. See
// docs/testkit.md#deployment-checks-internaldeploytest.
package workflowcheck
