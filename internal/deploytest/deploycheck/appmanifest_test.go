package deploycheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// appManifestPath is the Benchling app manifest users import (docs/deploy.md,
// "The Benchling app").
const appManifestPath = "benchling/app-manifest.yaml"

// The webhook machine's choice that routes messages, and where it sends
// what it does not handle.
const (
	routeState    = "Route"
	noActionState = "NoActionNeeded"
)

// entryEvents are the entry events that change what an entry's package
// holds: the webhook machine routes every entry event by its channel
// ("events") and resourceId, not by type, so the types to subscribe are
// named here (contracts.md, Benchling: entry events).
var entryEvents = []string{"v2.entry.created", "v2.entry.updated.fields", "v2.entry.updated.reviewRecord"}

// deprecatedAliases are message types the Route still handles for apps
// whose manifest predates their replacement, but which a manifest must not
// subscribe: alias -> the type to subscribe instead.
var deprecatedAliases = map[string]string{"v2-beta.canvas.created": "v2.canvas.created"}

// appManifest is the part of Benchling's manifest format the check reads.
type appManifest struct {
	ManifestVersion int `yaml:"manifestVersion"`
	Info            struct {
		Name    string `yaml:"name"`
		Version string `yaml:"version"`
	} `yaml:"info"`
	Features      []manifestFeature `yaml:"features"`
	Subscriptions struct {
		DeliveryMethod string            `yaml:"deliveryMethod"`
		Messages       []manifestMessage `yaml:"messages"`
	} `yaml:"subscriptions"`
}

type manifestFeature struct {
	Name string `yaml:"name"`
	ID   string `yaml:"id"`
	Type string `yaml:"type"`
}

type manifestMessage struct {
	Type string `yaml:"type"`
}

func loadAppManifest(t testing.TB) appManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), appManifestPath))
	require.NoError(t, err)
	var m appManifest
	require.NoError(t, yaml.Unmarshal(b, &m), appManifestPath)
	return m
}

// loadRoute returns the webhook machine's Route state.
func loadRoute(t testing.TB) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "statemachine", "webhook.asl.json"))
	require.NoError(t, err)
	var def struct {
		States map[string]map[string]any
	}
	require.NoError(t, json.Unmarshal(b, &def))
	route, ok := def.States[routeState]
	require.True(t, ok, "webhook.asl.json has no %s state", routeState)
	return route
}

// routeChoice is what the check reads of one of Route's choices: the
// message types and channels it names (StringEquals outside a Not), and
// where it goes.
type routeChoice struct {
	types, channels []string
	next            string
}

// routeChoices returns Route's choices.
func routeChoices(route map[string]any) []routeChoice {
	var out []routeChoice
	for _, c := range asList(route["Choices"]) {
		m := asMap(c)
		var rc routeChoice
		rc.next, _ = m["Next"].(string)
		collectEquals(m, &rc)
		out = append(out, rc)
	}
	return out
}

// collectEquals adds the StringEquals values on $.webhook.message.type and
// $.webhook.channel in rule (and its And/Or, not its Not) to rc.
func collectEquals(rule map[string]any, rc *routeChoice) {
	if v, ok := rule["StringEquals"].(string); ok {
		switch rule["Variable"] {
		case "$.webhook.message.type":
			rc.types = append(rc.types, v)
		case "$.webhook.channel":
			rc.channels = append(rc.channels, v)
		}
	}
	for _, k := range []string{"And", "Or"} {
		for _, r := range asList(rule[k]) {
			collectEquals(asMap(r), rc)
		}
	}
}

// checkAppManifest compares the manifest's subscriptions with the Route
// state's choices and returns the disagreements:
//   - every subscribed entry event reaches a state other than NoActionNeeded
//     through the choice on channel "events", and the entry events the
//     packages depend on are all subscribed;
//   - every subscribed canvas type is named by a choice that acts; every
//     type a choice names is subscribed, but for a deprecated alias, which
//     must not be;
//   - every subscribed app lifecycle type is named by no choice and falls
//     to the Default, NoActionNeeded;
//   - nothing else is subscribed; the manifest has a CANVAS feature and
//     WEBHOOK delivery.
func checkAppManifest(m appManifest, route map[string]any) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if m.ManifestVersion != 1 {
		bad("%s: manifestVersion is %d, want 1", appManifestPath, m.ManifestVersion)
	}
	if m.Info.Name == "" || m.Info.Version == "" {
		bad("%s: info needs a name and a version", appManifestPath)
	}
	if !slices.ContainsFunc(m.Features, func(f manifestFeature) bool {
		return f.Type == "CANVAS" && f.ID != "" && f.Name != ""
	}) {
		bad("%s: no CANVAS feature with a name and an id", appManifestPath)
	}
	if m.Subscriptions.DeliveryMethod != "WEBHOOK" {
		bad("%s: subscriptions.deliveryMethod is %q, want WEBHOOK", appManifestPath, m.Subscriptions.DeliveryMethod)
	}
	subscribed := map[string]bool{}
	for _, msg := range m.Subscriptions.Messages {
		if subscribed[msg.Type] {
			bad("%s: %s is subscribed twice", appManifestPath, msg.Type)
		}
		subscribed[msg.Type] = true
	}

	if d, _ := route["Default"].(string); d != noActionState {
		bad("Route's Default is %q, want %s (unknown and lifecycle types need no action)", d, noActionState)
	}
	routed := map[string]string{} // message type -> Next
	eventsNext := ""
	for _, c := range routeChoices(route) {
		for _, typ := range c.types {
			if _, seen := routed[typ]; !seen { // the first matching choice wins
				routed[typ] = c.next
			}
		}
		if slices.Contains(c.channels, "events") && len(c.types) == 0 {
			eventsNext = c.next
		}
	}

	for _, typ := range sortedKeys(subscribed) {
		if alt, ok := deprecatedAliases[typ]; ok {
			bad("%s subscribes %s, which is deprecated: subscribe %s", appManifestPath, typ, alt)
			continue
		}
		switch {
		case strings.HasPrefix(typ, "v2.entry."):
			if eventsNext == "" || eventsNext == noActionState {
				bad("%s is subscribed, but no Route choice on channel \"events\" packages entry events", typ)
			}
			if next, ok := routed[typ]; ok && next == noActionState {
				bad("%s is subscribed, but Route sends it to %s", typ, noActionState)
			}
		case strings.HasPrefix(typ, "v2.canvas."):
			next, ok := routed[typ]
			switch {
			case !ok:
				bad("%s is subscribed, but no Route choice names it (it would need no action)", typ)
			case next == noActionState:
				bad("%s is subscribed, but Route sends it to %s", typ, noActionState)
			}
		case strings.HasPrefix(typ, "v2.app.") || strings.HasPrefix(typ, "v2-beta.app."):
			if next, ok := routed[typ]; ok {
				bad("app lifecycle type %s is routed to %s; lifecycle webhooks need no action", typ, next)
			}
		default:
			bad("%s subscribes %s, which is neither an entry, a canvas nor an app lifecycle type the Route handles", appManifestPath, typ)
		}
	}
	for _, typ := range entryEvents {
		if !subscribed[typ] {
			bad("%s does not subscribe %s, which the Route packages", appManifestPath, typ)
		}
	}
	routedTypes := make([]string, 0, len(routed))
	for typ := range routed {
		routedTypes = append(routedTypes, typ)
	}
	sort.Strings(routedTypes)
	for _, typ := range routedTypes {
		if routed[typ] == noActionState {
			continue
		}
		if alt, ok := deprecatedAliases[typ]; ok {
			if !subscribed[alt] {
				bad("Route handles the deprecated %s, but %s does not subscribe its replacement %s", typ, appManifestPath, alt)
			}
			continue
		}
		if !subscribed[typ] {
			bad("Route sends %s to %s, but %s does not subscribe it", typ, routed[typ], appManifestPath)
		}
	}
	return problems
}

// TestAppManifestMatchesRoute: the manifest users import subscribes what
// the webhook machine routes, and the machine routes what it subscribes.
func TestAppManifestMatchesRoute(t *testing.T) {
	m := loadAppManifest(t)
	require.Empty(t, checkAppManifest(m, loadRoute(t)))
	// The Route handles the deprecated canvas spelling for old apps.
	var types []string
	for _, c := range routeChoices(loadRoute(t)) {
		types = append(types, c.types...)
	}
	require.Contains(t, types, "v2-beta.canvas.created")
}

func TestAppManifestMatchesRouteCatches(t *testing.T) {
	// choiceNaming returns the Route choice that names typ.
	choiceNaming := func(t *testing.T, route map[string]any, typ string) map[string]any {
		for _, c := range asList(route["Choices"]) {
			rc := routeChoice{}
			collectEquals(asMap(c), &rc)
			if slices.Contains(rc.types, typ) {
				return asMap(c)
			}
		}
		t.Fatalf("no choice names %s", typ)
		return nil
	}
	without := func(m *appManifest, typ string) {
		msgs := m.Subscriptions.Messages
		m.Subscriptions.Messages = msgs[:0]
		for _, msg := range msgs {
			if msg.Type != typ {
				m.Subscriptions.Messages = append(m.Subscriptions.Messages, msg)
			}
		}
	}
	with := func(m *appManifest, typ string) {
		m.Subscriptions.Messages = append(m.Subscriptions.Messages, manifestMessage{typ})
	}
	for name, c := range map[string]struct {
		manifest func(*appManifest)
		route    func(*testing.T, map[string]any)
		want     string
	}{
		"reviewRecord not subscribed": {manifest: func(m *appManifest) { without(m, "v2.entry.updated.reviewRecord") },
			want: "does not subscribe v2.entry.updated.reviewRecord"},
		"canvas type not subscribed": {manifest: func(m *appManifest) { without(m, "v2.canvas.userInteracted") },
			want: "Route sends v2.canvas.userInteracted to CheckButtonIds, but"},
		"deprecated alias subscribed": {manifest: func(m *appManifest) { with(m, "v2-beta.canvas.created") },
			want: "subscribes v2-beta.canvas.created, which is deprecated"},
		"alias without replacement": {manifest: func(m *appManifest) { without(m, "v2.canvas.created") },
			want: "does not subscribe its replacement v2.canvas.created"},
		"unhandled type subscribed": {manifest: func(m *appManifest) { with(m, "v2.request.created") },
			want: "subscribes v2.request.created, which is neither"},
		"subscribed twice": {manifest: func(m *appManifest) { with(m, "v2.entry.created") },
			want: "v2.entry.created is subscribed twice"},
		"no canvas feature": {manifest: func(m *appManifest) { m.Features = nil }, want: "no CANVAS feature"},
		"not webhooks":      {manifest: func(m *appManifest) { m.Subscriptions.DeliveryMethod = "EVENTBRIDGE" }, want: "want WEBHOOK"},
		"canvas type no longer routed": {route: func(t *testing.T, r map[string]any) {
			ch := choiceNaming(t, r, "v2.canvas.userInteracted")
			for _, rule := range asList(ch["And"]) {
				if asMap(rule)["Variable"] == "$.webhook.message.type" {
					asMap(rule)["StringEquals"] = "v2.canvas.somethingElse"
				}
			}
		}, want: "v2.canvas.userInteracted is subscribed, but no Route choice names it"},
		"canvas type routed to no action": {route: func(t *testing.T, r map[string]any) {
			choiceNaming(t, r, "v2.canvas.initialized")["Next"] = noActionState
		}, want: "Route sends it to NoActionNeeded"},
		"entry events no longer routed": {route: func(t *testing.T, r map[string]any) {
			for _, c := range asList(r["Choices"]) {
				rc := routeChoice{}
				collectEquals(asMap(c), &rc)
				if slices.Contains(rc.channels, "events") {
					asMap(c)["Next"] = noActionState
				}
			}
		}, want: "no Route choice on channel \"events\" packages entry events"},
		"lifecycle type routed": {route: func(t *testing.T, r map[string]any) {
			ch := choiceNaming(t, r, "v2.canvas.userInteracted")
			for _, rule := range asList(ch["And"]) {
				if asMap(rule)["Variable"] == "$.webhook.message.type" {
					asMap(rule)["StringEquals"] = "v2.app.installed"
				}
			}
		}, want: "app lifecycle type v2.app.installed is routed"},
		"new routed type": {route: func(t *testing.T, r map[string]any) {
			or := asMap(asList(choiceNaming(t, r, "v2.canvas.created")["And"])[0])
			or["Or"] = append(asList(or["Or"]), map[string]any{"Variable": "$.webhook.message.type", "StringEquals": "v2.canvas.archived"})
		}, want: "Route sends v2.canvas.archived to CheckCanvasId, but"},
		"default acts": {route: func(t *testing.T, r map[string]any) { r["Default"] = "CheckCanvasId" },
			want: "Route's Default is \"CheckCanvasId\""},
	} {
		t.Run(name, func(t *testing.T) {
			m, route := loadAppManifest(t), loadRoute(t)
			if c.manifest != nil {
				c.manifest(&m)
			}
			if c.route != nil {
				c.route(t, route)
			}
			problems := checkAppManifest(m, route)
			require.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, c.want) }),
				"want a problem with %q, got %q", c.want, problems)
		})
	}
}
