package emulate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// oauthClient plays the EventBridge connection behind http:invoke: OAuth
// client credentials against the tenant's token endpoint, the token kept
// until it expires and fetched again when a call answers 401.
type oauthClient struct {
	tokenURL, id, secret string
	http                 *http.Client

	mu      sync.Mutex
	token   string
	expires time.Time
}

func newOAuthClient(tokenURL, id, secret string) *oauthClient {
	return &oauthClient{tokenURL: tokenURL, id: id, secret: secret, http: &http.Client{Timeout: 60 * time.Second}}
}

func (c *oauthClient) get(ctx context.Context, refresh bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !refresh && c.token != "" && time.Now().Before(c.expires) {
		return c.token, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.id, c.secret)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", &taskError{"Events.ConnectionResource.ConnectionFailure", err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", &taskError{"Events.ConnectionResource.AuthorizationFailure",
			fmt.Sprintf("token endpoint answered %d: %s", resp.StatusCode, truncate(string(body), 200))}
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return "", &taskError{"Events.ConnectionResource.AuthorizationFailure", "token endpoint answered no access_token"}
	}
	c.token = tok.AccessToken
	// Refresh a little early, as EventBridge does.
	c.expires = time.Now().Add(time.Duration(tok.ExpiresIn)*time.Second - 10*time.Second)
	return c.token, nil
}

type httpParams struct {
	ApiEndpoint     string
	Method          string
	Authentication  struct{ ConnectionArn string }
	Headers         map[string]string
	QueryParameters map[string]string
	RequestBody     json.RawMessage
}

// runHTTP answers an http:invoke task: {StatusCode, StatusText, Headers,
// ResponseBody} on 2xx (a JSON body parsed), States.Http.StatusCode.NNN
// otherwise, States.Http.Socket when the call did not complete.
func (s *Stack) runHTTP(ctx context.Context, req taskRequest) (any, error) {
	var p httpParams
	if err := strictDecode(req.Input, &p); err != nil {
		return nil, &taskError{"States.Runtime", err.Error()}
	}
	if p.Authentication.ConnectionArn != connectionArn {
		return nil, &taskError{"Events.ConnectionResource.InvalidConnectionState", "unknown connection " + p.Authentication.ConnectionArn}
	}
	// The deployed role may call only the tenant's URL (states:HTTPEndpoint).
	base := s.Benchling.URL() + "/"
	if !strings.HasPrefix(p.ApiEndpoint, base) {
		return nil, &taskError{"States.Runtime", "AccessDenied: states:InvokeHTTPEndpoint is not allowed for " + p.ApiEndpoint}
	}
	u, err := url.Parse(p.ApiEndpoint)
	if err != nil {
		return nil, &taskError{"States.Runtime", err.Error()}
	}
	if len(p.QueryParameters) > 0 {
		q := u.Query()
		for k, v := range p.QueryParameters {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}
	var resp *http.Response
	var body []byte
	for attempt := 0; attempt < 2; attempt++ {
		token, err := s.client.get(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		var rd io.Reader
		if len(p.RequestBody) > 0 && p.Method != http.MethodGet {
			rd = bytes.NewReader(p.RequestBody)
		}
		hreq, err := http.NewRequestWithContext(ctx, p.Method, u.String(), rd)
		if err != nil {
			return nil, &taskError{"States.Runtime", err.Error()}
		}
		for k, v := range p.Headers {
			hreq.Header.Set(k, v)
		}
		if rd != nil {
			hreq.Header.Set("Content-Type", "application/json; charset=UTF-8")
		}
		hreq.Header.Set("Authorization", "Bearer "+token)
		resp, err = s.client.http.Do(hreq)
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, &taskError{"States.Timeout", err.Error()}
			}
			return nil, &taskError{"States.Http.Socket", err.Error()}
		}
		body, err = io.ReadAll(io.LimitReader(resp.Body, 256<<10+1))
		resp.Body.Close()
		if err != nil {
			return nil, &taskError{"States.Http.Socket", err.Error()}
		}
		if resp.StatusCode != http.StatusUnauthorized {
			break
		}
	}
	if len(body) > 256<<10 {
		return nil, &taskError{"States.DataLimitExceeded", "the response is larger than 256 KiB"}
	}
	headers := map[string][]string{}
	for k, v := range resp.Header {
		headers[k] = v
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		cause, _ := json.Marshal(map[string]any{"StatusCode": resp.StatusCode, "StatusText": http.StatusText(resp.StatusCode),
			"ResponseBody": string(body)})
		return nil, &taskError{fmt.Sprintf("States.Http.StatusCode.%d", resp.StatusCode), string(cause)}
	}
	out := map[string]any{"StatusCode": resp.StatusCode, "StatusText": http.StatusText(resp.StatusCode), "Headers": headers}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/json" && len(body) > 0 {
		out["ResponseBody"] = json.RawMessage(body)
	} else {
		out["ResponseBody"] = string(body)
	}
	return out, nil
}
