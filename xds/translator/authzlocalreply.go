package translator

import (
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate/tollgate/envoy"
)

// detailsAuthzError is the response code details of ext_authz's own answer
// when the authorization call fails: the service is unreachable, or did
// not answer within the timeout on any try (failure_mode_allow is false).
const detailsAuthzError = "ext_authz_error"

// authzErrorReply is the local reply mapper that gives ext_authz's failure
// answer (status_on_error, with an empty body in Envoy) the body the
// ext_authz service gives its own outages (extauthz/response.go): JSON
// {"error":"unavailable","reason":"authz_unavailable"} and cache-control
// no-store, with the gateway's status on error (503 unless the policy
// says 403, then "forbidden").
func authzErrorReply(status int) envoy.LocalReplyRewrite {
	if status == 0 {
		status = envoy.DefaultExtAuthzStatusOnError
	}
	word := "unavailable"
	if status != 503 {
		word = "forbidden"
	}
	return envoy.LocalReplyRewrite{
		DetailsPrefix: detailsAuthzError, Status: uint32(status),
		Body:        `{"error":"` + word + `","reason":"authz_unavailable"}`,
		ContentType: "application/json",
		Headers:     map[string]string{"cache-control": "no-store"},
	}
}

// decorate returns next followed, when ext_authz is enabled, by appending
// authzErrorReply to the connection manager's local reply mappers (after
// any that next set: they match other details).
func (a *authz) decorate(next func(*hcmv3.HttpConnectionManager)) (func(*hcmv3.HttpConnectionManager), error) {
	if !a.enabled {
		return next, nil
	}
	lr, err := envoy.LocalReplyConfig([]envoy.LocalReplyRewrite{authzErrorReply(a.filter.StatusOnError)})
	if err != nil {
		return nil, err
	}
	return func(m *hcmv3.HttpConnectionManager) {
		next(m)
		appendLocalReplies(m, lr.Mappers) // ratelimit_quota_reply.go
	}, nil
}
