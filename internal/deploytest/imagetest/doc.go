// Package imagetest holds the container image test: it builds the
// repository's real Dockerfile with buildah, offline, on two base images it
// assembles from this machine (a Go toolchain builder in place of
// golang:1.26-bookworm, a certificates-and-passwd runtime in place of
// distroless/static:nonroot), runs the linux/amd64 image, cross-builds
// linux/arm64, and reports the image size. See docs/image.md.
//
// The package has no code of its own; everything is in the tests.
package imagetest
