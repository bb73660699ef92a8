package workflowcheck

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"benchling-webhook/internal/testkit/testenv"
)

// The workflows every repository checkout must have.
var requiredWorkflows = []string{"test.yml", "release.yml"}

// repoRoot returns the repository root (the directory of the go.mod that
// declares module benchling-webhook).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatalf("locate repository root: %v", err)
	}
	return root
}

// actionlintBin returns <root>/bin/actionlint, skipping the test with a hint
// when it is missing unless the environment requires it ([testenv.Need]).
func actionlintBin(t *testing.T, root string) string {
	t.Helper()
	bin, err := testenv.Executable(filepath.Join(root, "bin", "actionlint"))
	testenv.Need(t, testenv.EnvRequireS3, err)
	return bin
}

// workflowFiles returns the workflow files, relative to root, and checks
// that the required ones are among them.
func workflowFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(root, ".github", "workflows", pat))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, rel)
		}
	}
	for _, name := range requiredWorkflows {
		if _, err := os.Stat(filepath.Join(root, ".github", "workflows", name)); err != nil {
			t.Errorf("missing workflow .github/workflows/%s: %v", name, err)
		}
	}
	if len(files) == 0 {
		t.Fatal("no workflows in .github/workflows")
	}
	return files
}

// runActionlint runs actionlint in dir on files and returns its combined
// output and exit code (0: clean, 1: findings, anything else: it failed).
func runActionlint(t *testing.T, bin, dir string, files ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-no-color"}, files...)...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	default:
		t.Fatalf("run %s: %v\n%s", bin, err, out.String())
		return "", -1
	}
}

func TestActionlint(t *testing.T) {
	root := repoRoot(t)
	bin := actionlintBin(t, root)
	files := workflowFiles(t, root)
	out, code := runActionlint(t, bin, root, files...)
	if code != 0 || strings.TrimSpace(out) != "" {
		t.Fatalf("actionlint %s: exit %d:\n%s", strings.Join(files, " "), code, out)
	}
}

// TestActionlintCatchesBrokenWorkflow proves the lint above can fail: every
// deliberate mistake in testdata/broken.yml must be reported.
func TestActionlintCatchesBrokenWorkflow(t *testing.T) {
	root := repoRoot(t)
	bin := actionlintBin(t, root)
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	out, code := runActionlint(t, bin, dir, "broken.yml")
	if code != 1 {
		t.Fatalf("actionlint on testdata/broken.yml: exit %d, want 1 (findings):\n%s", code, out)
	}
	for _, want := range []string{
		`unexpected key "timeout-minuts"`,
		`property "nope" is not defined`,
		`unexpected key "uses" for step to run shell command`,
		`"tset"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("actionlint output lacks %q:\n%s", want, out)
		}
	}
}

// ciTestCommand returns the make command .ci/run runs: its only
// uncommented line that invokes make.
func ciTestCommand(t *testing.T, root string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(stripComment(line))
		if strings.HasPrefix(line, "make ") {
			cmds = append(cmds, line)
		}
	}
	if len(cmds) != 1 {
		t.Fatalf(".ci/run: want exactly one make command, found %q", cmds)
	}
	if cmds[0] != "make test" {
		t.Fatalf(".ci/run runs %q, want %q (README and workflows assume it)", cmds[0], "make test")
	}
	return cmds[0]
}

// commentRE matches a YAML or shell comment: # at the start or after a blank.
var commentRE = regexp.MustCompile(`(^|\s)#.*$`)

func stripComment(line string) string { return commentRE.ReplaceAllString(line, "") }

// runRE matches a step's run key, optionally as the first key of a list
// item, and captures its indentation and value.
var runRE = regexp.MustCompile(`^(\s*(?:-\s+)?)run:\s*(.*)$`)

// runCommands returns the command lines of every run: step in a workflow,
// from one-line values and from block scalars (| or >).
func runCommands(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cmds []string
	blockIndent := -1 // indentation of the run: key whose block is being read
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if blockIndent >= 0 {
			if strings.TrimSpace(line) == "" {
				continue
			}
			if indent(line) > blockIndent {
				cmds = append(cmds, strings.TrimSpace(line))
				continue
			}
			blockIndent = -1
		}
		m := runRE.FindStringSubmatch(stripComment(line))
		if m == nil {
			continue
		}
		v := strings.TrimSpace(m[2])
		if strings.HasPrefix(v, "|") || strings.HasPrefix(v, ">") {
			blockIndent = len(m[1]) // keys line up with the text after "- "
			continue
		}
		cmds = append(cmds, strings.Trim(v, `"'`))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cmds
}

func indent(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

// makeRE matches a line that invokes make.
var makeRE = regexp.MustCompile(`(^|[;&|(]\s*)make(\s|$)`)

// TestWorkflowsRunMakeTest checks that each workflow runs the same make
// command as .ci/run, exactly once, and no other make command.
func TestWorkflowsRunMakeTest(t *testing.T) {
	root := repoRoot(t)
	want := ciTestCommand(t, root)
	for _, rel := range workflowFiles(t, root) {
		n := 0
		for _, c := range runCommands(t, filepath.Join(root, rel)) {
			switch {
			case c == want:
				n++
			case makeRE.MatchString(c):
				t.Errorf("%s: runs %q; the workflows run only %q, as .ci/run does", rel, c, want)
			}
		}
		if n != 1 {
			t.Errorf("%s: runs %q %d times, want once (as .ci/run does)", rel, want, n)
		}
	}
}

// latestRE matches the floating tag in any form (":latest", "latest=auto",
// "type=raw,value=latest"), but not a runner label such as ubuntu-latest.
var latestRE = regexp.MustCompile(`(?i)(^|[^\w-])latest\b`)

// TestReleaseNeverPushesLatest checks that release.yml never names a latest
// tag (comments aside) and that its one image tag is the git tag.
func TestReleaseNeverPushesLatest(t *testing.T) {
	root := repoRoot(t)
	path := filepath.Join(root, ".github", "workflows", "release.yml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for i, line := range strings.Split(string(data), "\n") {
		code := stripComment(line)
		if latestRE.MatchString(code) {
			t.Errorf("release.yml:%d: mentions latest: %s", i+1, strings.TrimSpace(line))
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(code), "tags:"); ok {
			tags = append(tags, strings.TrimSpace(v))
		}
	}
	// tags: appears as the trigger (tags: ["v*"]) and as the image tags.
	var image []string
	for _, v := range tags {
		if strings.Contains(v, "env.IMAGE") {
			image = append(image, v)
		}
	}
	const wantTag = "${{ env.IMAGE }}:${{ steps.meta.outputs.version }}"
	if len(image) != 1 || image[0] != wantTag {
		t.Errorf("release.yml: image tags %q, want exactly [%q]", image, wantTag)
	}
	if !strings.Contains(string(data), `echo "version=${REF_NAME}"`) ||
		!strings.Contains(string(data), "REF_NAME: ${{ github.ref_name }}") {
		t.Errorf("release.yml: the image version must be the git tag (github.ref_name)")
	}
}
