package deploycheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// names are what the docs' copilot commands may name.
type names struct {
	app          string
	environments []string
	jobs         []string
	services     []string
}

// docCommand is one copilot command in a document.
type docCommand struct {
	file string
	line int
	text string
}

var (
	fence      = regexp.MustCompile("^\\s*(```|~~~)")
	inlineCode = regexp.MustCompile("`+([^`]+)`+")
	// shellComment is a shell comment in a code block.
	shellComment = regexp.MustCompile(`(^|\s)#.*$`)
	// copilotCmd finds a copilot command: "copilot" as a word (not part of
	// a path or a flag) followed by a subcommand.
	copilotCmd = regexp.MustCompile(`(?:^|[\s(=;&|"'])(copilot\s+[a-z][^\x60|;&#)"']*)`)
)

// copilotCommands returns the copilot commands in the code of a Markdown
// document: fenced blocks (lines joined at a trailing backslash, comments
// dropped) and inline code.
func copilotCommands(file, text string) []docCommand {
	var out []docCommand
	lines := strings.Split(text, "\n")
	inFence := false
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		var code []string
		start := i + 1
		if inFence {
			for strings.HasSuffix(strings.TrimRight(line, " \t"), "\\") && i+1 < len(lines) {
				line = strings.TrimSuffix(strings.TrimRight(line, " \t"), "\\") + " " + lines[i+1]
				i++
			}
			code = []string{shellComment.ReplaceAllString(line, "")}
		} else {
			for _, m := range inlineCode.FindAllStringSubmatch(line, -1) {
				code = append(code, m[1])
			}
		}
		for _, c := range code {
			for _, m := range copilotCmd.FindAllStringSubmatch(c, -1) {
				out = append(out, docCommand{file: file, line: start, text: strings.TrimSpace(m[1])})
			}
		}
	}
	return out
}

// isPlaceholder reports whether a flag value stands for a name the reader
// chooses: <env>, $ENV, ${ENV}, {env}, [env].
func isPlaceholder(v string) bool {
	return v == "" || strings.ContainsAny(v[:1], "<${[") || strings.Contains(v, "…")
}

// checkCommand checks the names a copilot command uses.
func checkCommand(c docCommand, n names) []string {
	fields := strings.Fields(c.text)
	if len(fields) < 2 {
		return nil
	}
	group := fields[1]
	sub := ""
	if len(fields) > 2 {
		sub = fields[2]
	}
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: `%s`: %s", c.file, c.line, c.text, fmt.Sprintf(format, args...)))
	}
	want := func(kind, v string, valid []string) {
		if !isPlaceholder(v) && !slices.Contains(valid, v) {
			bad("%s %q does not exist (have %s)", kind, v, strings.Join(valid, ", "))
		}
	}
	// What -n/--name names depends on the command.
	nameKind, nameValid := "", []string(nil)
	switch group {
	case "app":
		nameKind, nameValid = "application", []string{n.app}
		if sub == "init" && len(fields) > 3 && !strings.HasPrefix(fields[3], "-") {
			want("application", strings.Trim(fields[3], `"'`), []string{n.app})
		}
	case "env":
		nameKind, nameValid = "environment", n.environments
	case "job":
		nameKind, nameValid = "job", n.jobs
	case "svc":
		nameKind, nameValid = "service", n.services
	case "deploy", "init":
		nameKind, nameValid = "workload", append(slices.Clone(n.jobs), n.services...)
	}
	for i := 2; i < len(fields); i++ {
		flag, value, hasValue := strings.Cut(fields[i], "=")
		if !hasValue && i+1 < len(fields) {
			value = fields[i+1]
		}
		value = strings.Trim(value, `"'`)
		switch flag {
		case "-a", "--app":
			want("application", value, []string{n.app})
		case "-e", "--env":
			want("environment", value, n.environments)
		case "-n", "--name":
			if nameKind != "" {
				want(nameKind, value, nameValid)
			}
		}
	}
	return problems
}

// checkDocs checks every copilot command in the given Markdown files.
func checkDocs(t testing.TB, files []string, n names) (int, []string) {
	t.Helper()
	count := 0
	var problems []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, c := range copilotCommands(rel(t, f), string(data)) {
			count++
			problems = append(problems, checkCommand(c, n)...)
		}
	}
	return count, problems
}

// deployedNames reads the names from the workspace.
func deployedNames(t testing.TB) names {
	ws := readWorkspace(t, repoRoot(t))
	n := names{app: ws.app, environments: ws.environments}
	for _, w := range sortedKeys(ws.workloads) {
		typ, _ := readYAML(t, ws.workloads[w])["type"].(string)
		if strings.HasSuffix(typ, "Job") {
			n.jobs = append(n.jobs, w)
		} else {
			n.services = append(n.services, w)
		}
	}
	return n
}

// TestDocsCommands: the copilot commands in docs/*.md and README.md name
// the application, environments and job that exist. (With no such
// commands yet the test passes.)
func TestDocsCommands(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	files = append(files, filepath.Join(root, "README.md"))
	n := deployedNames(t)
	require.Equal(t, appName, n.app)
	require.Contains(t, n.jobs, jobName)
	require.NotEmpty(t, n.environments)
	count, problems := checkDocs(t, files, n)
	require.Empty(t, problems)
	t.Logf("%d copilot commands in %d files", count, len(files))
}

func TestDocsCommandsCatch(t *testing.T) {
	n := names{app: appName, environments: []string{"dev", "prod"}, jobs: []string{jobName}}
	count, problems := checkDocs(t, []string{filepath.Join("testdata", "docs-good.md")}, n)
	require.Empty(t, problems)
	require.Equal(t, 12, count)

	count, problems = checkDocs(t, []string{filepath.Join("testdata", "docs-broken.md")}, n)
	require.Equal(t, 8, count)
	for _, want := range []string{
		`:5: ` + "`copilot app init benchling`" + `: application "benchling" does not exist`,
		`:6: ` + "`copilot env init --name staging --profile default`" + `: environment "staging" does not exist`,
		`:7: ` + "`copilot job deploy -n job -e dev`" + `: job "job" does not exist`,
		`:8: ` + "`copilot job run --app=quilt -n worker -e prod`" + `: application "quilt" does not exist`,
		`:9: ` + "`copilot job logs --name worker --env production`" + `: environment "production" does not exist`,
		`:10: ` + "`copilot svc deploy --name worker --env dev`" + `: service "worker" does not exist`,
		`:11: ` + "`copilot deploy --name webhook --env dev`" + `: workload "webhook" does not exist`,
		`:16: ` + "`copilot env deploy --name qa`" + `: environment "qa" does not exist`,
	} {
		require.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }),
			"want %q among\n%s", want, strings.Join(problems, "\n"))
	}
	require.Len(t, problems, 8)
}
