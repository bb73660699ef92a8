package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"benchling-webhook/internal/testkit/sandbox"
)

func Example() {
	s, err := sandbox.Start(sandbox.Options{ClientID: "id", ClientSecret: "secret", AppDefinitionID: "appdef_demo"})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	s.AddEntry("etr_demo0001", sandbox.EntryOptions{Name: "PCR Optimization", DisplayID: "EXP25000001"})

	// Client credentials, as a Benchling app gets its token.
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/api/v2/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("id", "secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	fmt.Println("token expires in", tok.ExpiresIn, "s")

	req, _ = http.NewRequest(http.MethodGet, s.URL()+"/api/v2/entries/etr_demo0001", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var got struct {
		Entry struct{ DisplayID, Name string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, got.Entry.DisplayID, got.Entry.Name)
	// Output:
	// token expires in 900 s
	// 200 EXP25000001 PCR Optimization
}
