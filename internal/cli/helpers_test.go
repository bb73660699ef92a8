package cli

import (
	"github.com/spf13/pflag"
)

// The commands' flags, bound as command.parse binds them (without the
// logging flags, which the pipeline adds).

func newExportFlags(v *exportVars) *pflag.FlagSet {
	fs := newFlagSet("export")
	v.bind(fs)
	return fs
}

func newVerifyFlags(v *verifyVars) *pflag.FlagSet {
	fs := newFlagSet("verify")
	v.bind(fs)
	return fs
}

func newReconcileFlags(v *reconcileVars) *pflag.FlagSet {
	fs := newFlagSet("reconcile")
	v.bind(fs)
	return fs
}

// validateExport validates v as job export does.
func validateExport(v exportVars) error {
	o := exportOpts{exportVars: v}
	return o.validate(nil, nil)
}

// parseVerify parses and validates "job verify args…" as the command
// does; a nil opts means it ended with code.
func parseVerify(args []string, env Env) (*verifyOpts, *session, int) {
	o, s, code := verifyCommand.parse(args, env)
	if o == nil {
		return nil, nil, code
	}
	return o.(*verifyOpts), s, code
}
