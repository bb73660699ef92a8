package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// maxCanvasData is the limit on AppCanvas.data ("less than 5kb").
const maxCanvasData = 5000

// canvas is an AppCanvas as Benchling returns it. Responses name the app as
// "app": {"id": ...}; "appId" exists only in AppCanvasCreate.
type canvas struct {
	App           appSummary        `json:"app"`
	ArchiveRecord *archiveRecord    `json:"archiveRecord"`
	Blocks        []json.RawMessage `json:"blocks"`
	Data          *string           `json:"data"`
	Enabled       bool              `json:"enabled"`
	FeatureID     string            `json:"featureId"`
	ID            string            `json:"id"`
	ResourceID    string            `json:"resourceId"`
	SessionID     *string           `json:"sessionId"`
}

type appSummary struct {
	ID string `json:"id"`
}

type archiveRecord struct {
	Reason string `json:"reason"`
}

// AddCanvas adds, or replaces, an app canvas with id attached to the
// resource (entry) resourceID: no blocks yet, enabled, feature
// Options.FeatureID, owned by Options.AppID.
func (s *Server) AddCanvas(id, resourceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.canvases[id] = &canvas{
		App:        appSummary{ID: s.opts.AppID},
		Blocks:     []json.RawMessage{},
		Enabled:    true,
		FeatureID:  s.opts.FeatureID,
		ID:         id,
		ResourceID: resourceID,
	}
}

// Canvas returns the current state of canvas id as the AppCanvas JSON that
// GET /api/v2/app-canvases/{id} would return.
func (s *Server) Canvas(id string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.canvases[id]
	if !ok {
		return nil, false
	}
	return mustMarshal(c), true
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sandbox: marshal: %v", err)) // own types: cannot happen
	}
	return b
}

// handleGetCanvas implements GET /api/v2/app-canvases/{canvas_id}
// (operation getAppCanvas: 200 AppCanvas, 404 NotFoundError).
func (s *Server) handleGetCanvas(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("canvas_id")
	b, ok := s.Canvas(id)
	if !ok {
		writeNotFound(w, "App canvas", id)
		return
	}
	writeRawJSON(w, http.StatusOK, b)
}

// handleCreateCanvas implements POST /api/v2/app-canvases (operation
// createAppCanvas: AppCanvasCreate -> 201 AppCanvas, 400 BadRequestError,
// 403 ForbiddenError).
func (s *Server) handleCreateCanvas(w http.ResponseWriter, r *http.Request) {
	cw, err := parseCanvasWrite(r.Body, true)
	if err != nil {
		writeBadRequest(w, "%v", err)
		return
	}
	if *cw.appID != s.opts.AppID {
		writeError(w, http.StatusForbidden, apiError{
			InvalidID: *cw.appID,
			Message:   "You do not have permission to create canvases for app " + *cw.appID + ".",
			Type:      typeInvalidRequest,
		})
		return
	}
	s.mu.Lock()
	if err := s.checkCanvasRefs(cw); err != nil {
		s.mu.Unlock()
		writeBadRequest(w, "%v", err)
		return
	}
	s.canvasSeq++
	c := &canvas{App: appSummary{ID: s.opts.AppID}, Enabled: true, ID: fmt.Sprintf("cnvs_sbx%05d", s.canvasSeq)}
	cw.apply(c)
	s.canvases[c.ID] = c
	b := mustMarshal(c)
	s.mu.Unlock()
	writeRawJSON(w, http.StatusCreated, b)
}

// handleUpdateCanvas implements PATCH /api/v2/app-canvases/{canvas_id}
// (operation updateAppCanvas: AppCanvasUpdate -> 200 AppCanvas, 404
// NotFoundError).
func (s *Server) handleUpdateCanvas(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("canvas_id")
	cw, err := parseCanvasWrite(r.Body, false)
	s.mu.Lock()
	c, ok := s.canvases[id]
	if ok && err == nil {
		err = s.checkCanvasRefs(cw)
	}
	var b []byte
	if ok && err == nil {
		cw.apply(c)
		b = mustMarshal(c)
	}
	s.mu.Unlock()
	switch {
	case !ok:
		writeNotFound(w, "App canvas", id)
	case err != nil:
		writeBadRequest(w, "%v", err)
	default:
		writeRawJSON(w, http.StatusOK, b)
	}
}

// checkCanvasRefs checks the feature and resource a canvas write names.
// s.mu must be held.
func (s *Server) checkCanvasRefs(cw canvasWrite) error {
	if cw.featureID != nil && *cw.featureID != s.opts.FeatureID {
		return fmt.Errorf("featureId %q is not a feature of the app manifest", *cw.featureID)
	}
	if cw.resourceID != nil {
		if _, ok := s.entries[*cw.resourceID]; !ok {
			return fmt.Errorf("resourceId %q does not name an existing resource", *cw.resourceID)
		}
	}
	return nil
}

// canvasWrite is a parsed AppCanvasCreate or AppCanvasUpdate; nil fields
// were absent. A present JSON null sets data or sessionId to null.
type canvasWrite struct {
	blocks     []json.RawMessage
	data       **string
	enabled    *bool
	featureID  *string
	resourceID *string
	sessionID  **string
	appID      *string
}

func (cw canvasWrite) apply(c *canvas) {
	if cw.blocks != nil {
		c.Blocks = cw.blocks
	}
	if c.Blocks == nil {
		c.Blocks = []json.RawMessage{}
	}
	if cw.data != nil {
		c.Data = *cw.data
	}
	if cw.enabled != nil {
		c.Enabled = *cw.enabled
	}
	if cw.featureID != nil {
		c.FeatureID = *cw.featureID
	}
	if cw.resourceID != nil {
		c.ResourceID = *cw.resourceID
	}
	if cw.sessionID != nil {
		c.SessionID = *cw.sessionID
	}
}

// parseCanvasWrite parses and checks a canvas request body the way
// Benchling does: no unknown properties (additionalProperties: false),
// the required ones for a create, the right JSON types, known block types
// with their required properties, and data as a JSON string under 5 kB.
func parseCanvasWrite(body io.Reader, create bool) (canvasWrite, error) {
	var cw canvasWrite
	var m map[string]json.RawMessage
	if err := json.NewDecoder(body).Decode(&m); err != nil || m == nil {
		return cw, fmt.Errorf("request body must be a JSON object")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := m[k]
		var err error
		switch k {
		case "blocks":
			cw.blocks, err = parseBlocks(v, false)
		case "data":
			cw.data, err = parseData(v)
		case "enabled":
			cw.enabled = new(bool)
			err = decodeStrict(v, cw.enabled)
		case "featureId":
			cw.featureID, err = parseNonEmpty(v)
		case "resourceId":
			cw.resourceID, err = parseNonEmpty(v)
		case "sessionId":
			var p *string
			err = decodeStrict(v, &p)
			cw.sessionID = &p
		case "appId":
			if !create {
				err = fmt.Errorf("unknown property")
				break
			}
			cw.appID, err = parseNonEmpty(v)
		default:
			err = fmt.Errorf("unknown property")
		}
		if err != nil {
			return cw, fmt.Errorf("%s: %w", k, err)
		}
	}
	if create {
		for _, k := range []string{"blocks", "featureId", "resourceId", "appId"} {
			if _, ok := m[k]; !ok {
				return cw, fmt.Errorf("%s is required", k)
			}
		}
	}
	return cw, nil
}

// decodeStrict decodes v into dst, rejecting a null unless dst can hold it.
func decodeStrict(v json.RawMessage, dst any) error {
	if string(v) == "null" {
		if _, ok := dst.(**string); ok {
			return json.Unmarshal(v, dst)
		}
		return fmt.Errorf("must not be null")
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("wrong type: %w", err)
	}
	return nil
}

func parseNonEmpty(v json.RawMessage) (*string, error) {
	p := new(string)
	if err := decodeStrict(v, p); err != nil {
		return nil, err
	}
	if *p == "" {
		return nil, fmt.Errorf("must not be empty")
	}
	return p, nil
}

func parseData(v json.RawMessage) (**string, error) {
	var p *string
	if err := decodeStrict(v, &p); err != nil {
		return nil, err
	}
	if p != nil {
		if len(*p) >= maxCanvasData {
			return nil, fmt.Errorf("must be less than 5kb, got %d bytes", len(*p))
		}
		if !json.Valid([]byte(*p)) {
			return nil, fmt.Errorf("must be valid JSON in string format")
		}
	}
	return &p, nil
}

// blockRules lists, per block type, the properties a block must have
// (from the *UiBlock schemas) and, for MARKDOWN, the only ones it may have.
var blockRules = map[string]struct {
	required []string
	only     []string
}{
	"BUTTON":                    {required: []string{"id", "text"}},
	"CHIP":                      {required: []string{"value"}},
	"DROPDOWN":                  {required: []string{"id", "value", "dropdownId"}},
	"DROPDOWN_MULTIVALUE":       {required: []string{"id", "value", "dropdownId"}},
	"MARKDOWN":                  {required: []string{"value"}, only: []string{"id", "type", "value"}},
	"SEARCH_INPUT":              {required: []string{"id", "value", "itemType", "schemaId"}},
	"SEARCH_INPUT_MULTIVALUE":   {required: []string{"id", "value", "itemType", "schemaId"}},
	"SECTION":                   {required: []string{"children"}},
	"SELECTOR_INPUT":            {required: []string{"id", "value", "options"}},
	"SELECTOR_INPUT_MULTIVALUE": {required: []string{"id", "value", "options"}},
	"TABLE":                     {required: []string{"id", "name", "source"}},
	"TEXT_INPUT":                {required: []string{"id", "value"}},
}

// stringProps are block properties that must be strings when present.
var stringProps = []string{"id", "text", "dropdownId", "name"}

// parseBlocks checks a blocks (or, inSection, a SECTION's children) array.
func parseBlocks(v json.RawMessage, inSection bool) ([]json.RawMessage, error) {
	var blocks []json.RawMessage
	if err := decodeStrict(v, &blocks); err != nil {
		return nil, err
	}
	if blocks == nil {
		return nil, fmt.Errorf("must be an array")
	}
	for i, raw := range blocks {
		if err := checkBlock(raw, inSection); err != nil {
			return nil, fmt.Errorf("block %d: %w", i, err)
		}
	}
	return blocks, nil
}

func checkBlock(raw json.RawMessage, inSection bool) error {
	var b map[string]json.RawMessage
	if err := json.Unmarshal(raw, &b); err != nil || b == nil {
		return fmt.Errorf("must be an object")
	}
	var typ string
	if err := json.Unmarshal(b["type"], &typ); err != nil || typ == "" {
		return fmt.Errorf("type is required")
	}
	rule, ok := blockRules[typ]
	if !ok || inSection && (typ == "SECTION" || typ == "TABLE") {
		return fmt.Errorf("unknown block type %q", typ)
	}
	for _, k := range rule.required {
		if _, ok := b[k]; !ok {
			return fmt.Errorf("%s block requires %s", typ, k)
		}
	}
	if rule.only != nil {
		for k := range b {
			if !slices.Contains(rule.only, k) {
				return fmt.Errorf("%s block has unknown property %s", typ, k)
			}
		}
	}
	for _, k := range stringProps {
		if v, ok := b[k]; ok && !strings.HasPrefix(string(v), `"`) {
			return fmt.Errorf("%s must be a string", k)
		}
	}
	if typ == "MARKDOWN" && !strings.HasPrefix(string(b["value"]), `"`) {
		return fmt.Errorf("value must be a string")
	}
	if typ == "SECTION" {
		if _, err := parseBlocks(b["children"], true); err != nil {
			return fmt.Errorf("children: %w", err)
		}
	}
	return nil
}
