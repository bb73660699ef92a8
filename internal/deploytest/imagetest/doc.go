// Package imagetest holds only the image test: it builds the real
// Dockerfile with buildah, offline, and runs the image. See
// docs/testkit.md#deployment-checks-internaldeploytest and docs/image.md.
package imagetest
