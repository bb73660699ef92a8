// Package workflowcheck holds only tests: they lint the GitHub Actions
// workflows in .github/workflows with the pinned actionlint (bin/actionlint,
// built by `make tools`) and check that the workflows run the same `make
// test` as .ci/run and that the release never pushes a floating image tag.
package workflowcheck
