package sandbox

import (
	"crypto/rand"
	"crypto/subtle"
	"math"
	"mime"
	"net/http"
	"strings"
	"time"
)

const tokenPath = "/api/v2/token"

// randomText returns 26 random base32 characters (128 bits).
func randomText() string { return rand.Text() }

// handleToken implements POST /api/v2/token, the OAuth 2 client-credentials
// grant (operation generateToken: TokenCreate -> TokenResponse, 400
// OAuthBadRequestError, 401 OAuthUnauthorizedError).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		writeError(w, http.StatusBadRequest, apiError{Message: "Content-Type must be application/x-www-form-urlencoded.", Type: typeOAuthRequest})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, apiError{Message: "Malformed form body.", Type: typeOAuthRequest})
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if !s.validClient(id, secret) {
		w.Header().Set("WWW-Authenticate", `Basic realm="benchling"`)
		writeError(w, http.StatusUnauthorized, apiError{Message: "Invalid client credentials.", Type: typeInvalidClient})
		return
	}
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "client_credentials":
	case "":
		writeError(w, http.StatusBadRequest, apiError{Message: "grant_type is required.", Type: typeOAuthRequest})
		return
	default:
		writeError(w, http.StatusBadRequest, apiError{Message: "Unsupported grant_type " + grant + ".", Type: typeGrantType})
		return
	}

	tok := "sbx_" + randomText() + randomText()
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(s.opts.TokenTTL)
	s.issued++
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}{tok, "Bearer", int(math.Ceil(s.opts.TokenTTL.Seconds()))})
}

func (s *Server) validClient(id, secret string) bool {
	okID := subtle.ConstantTimeCompare([]byte(id), []byte(s.opts.ClientID))
	okSecret := subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret))
	return okID&okSecret == 1
}

// authed wraps h so that it answers 401 unless the request carries a valid,
// unexpired bearer token.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !s.validToken(tok, time.Now()) {
			writeUnauthorized(w)
			return
		}
		h(w, r)
	}
}

func (s *Server) validToken(tok string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	if ok && !now.Before(exp) {
		delete(s.tokens, tok)
		return false
	}
	return ok
}

// ExpireTokens invalidates every token issued so far: the next API call with
// one of them gets 401, and the client must fetch a new token.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Tokens returns the number of access tokens issued so far.
func (s *Server) Tokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}
