package tokenspy

import (
	"io"
	"net/http"
	"strings"
)

// EntraRefusal is an azcore transport (azcore.ClientOptions.Transport) that
// answers azidentity's requests without a network: the tenant's OpenID
// metadata, and a refusal (Status, JSON Body) for every token request.
type EntraRefusal struct {
	Status int    // the HTTP status of every token request's answer
	Body   string // its JSON body, for example {"error":"invalid_client",...}
}

// Do answers req.
func (f EntraRefusal) Do(req *http.Request) (*http.Response, error) {
	status, body := f.Status, f.Body
	if strings.Contains(req.URL.Path, "openid-configuration") {
		status, body = http.StatusOK, `{"token_endpoint":"https://login.microsoftonline.com/tenant/oauth2/v2.0/token",`+
			`"authorization_endpoint":"https://login.microsoftonline.com/tenant/oauth2/v2.0/authorize",`+
			`"issuer":"https://login.microsoftonline.com/tenant/v2.0"}`
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Request: req,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}, nil
}
