package emulate

import (
	"context"
	"fmt"
	"path/filepath"

	"benchling-webhook/internal/testkit/quiltstub"
)

// The Quilt side of the local stack: the packaging engine stand-in
// (internal/testkit/quiltstub) reading the PackagerQueue, and the local
// default event bus its package-revision events go to (eventbus.go).
// Design: docs/testkit.md#the-quilt-side-of-the-local-stack.

// Local values of the addon's Copilot parameters, for the rules' !Sub.
const (
	localApp      = "benchling-webhook"
	localEnv      = "local"
	localWorkload = "worker"
)

// startQuilt loads the event bus's rules from the addon (or
// Options.EventRules), loads each target machine the stack does not run
// yet from the rule's state machine resource, and starts the packager.
// It runs in Start, before the engine, while s.machines is still private.
func (s *Stack) startQuilt(ctx context.Context) error {
	tmpl := s.opts.EventRules
	if tmpl == "" {
		tmpl = filepath.Join(s.opts.RepoRoot, "addons", "workflows.yml")
	}
	params := map[string]string{"App": localApp, "Env": localEnv, "Name": localWorkload}
	for k, v := range s.settings {
		params[k] = v
	}
	rules, machines, err := LoadRules(tmpl, params)
	if err != nil {
		return err
	}
	for name, loc := range machines {
		if _, ok := s.machines[name]; ok {
			continue
		}
		m, err := loadMachine(filepath.Join(s.opts.RepoRoot, loc), name, s.settings)
		if err != nil {
			return fmt.Errorf("emulate: event bus target: %w", err)
		}
		s.machines[name] = m
	}
	s.rules = rules
	client, err := s.S3.Client(ctx)
	if err != nil {
		return fmt.Errorf("emulate: packager: %w", err)
	}
	s.packager, err = quiltstub.New(quiltstub.Options{
		Client: client, Region: Region, Account: AccountID,
		Publish: s.PutEvent,
	})
	return err
}

// Packager returns the Quilt packaging engine stand-in, which gets every
// message sent to the packager queue ([Stack.Messages]); wait for it with
// its WaitProcessed.
func (s *Stack) Packager() *quiltstub.Packager { return s.packager }

// toPackager hands a message the hub accepted to the packager (SQS
// delivers it to Quilt's consumer asynchronously).
func (s *Stack) toPackager(body string) {
	if s.packager == nil {
		return
	}
	if err := s.packager.Submit(s.ctx, body); err != nil {
		s.logf("packager: %v", err)
	}
}

func (s *Stack) stopQuilt() {
	if s.packager != nil {
		s.packager.Close()
	}
}
