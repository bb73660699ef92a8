// Command job is the benchling-webhook container's entry point: Step
// Functions runs it as an ECS Fargate task with a subcommand (export, …).
// See internal/cli for the commands and internal/exitcode for exit codes.
package main

import (
	"context"
	"os"

	"benchling-webhook/internal/cli"
)

func main() {
	ctx, stop := cli.WithSignals(context.Background())
	code := cli.Run(ctx, os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}
