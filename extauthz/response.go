package extauthz

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate/tollgate/extauthz/envoymod"
)

// allowed builds the OK response: identity headers set (overwriting, never
// appending), every identity header without a value removed, credentials
// removed unless the route forwards them, and the identity published as
// dynamic metadata for rate limiting and access logs.
func allowed(t *Table, v verdict) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{}
	id := v.id
	set := func(name, value string) {
		if name == "" {
			return
		}
		if value == "" {
			ok.HeadersToRemove = append(ok.HeadersToRemove, name)
			return
		}
		ok.Headers = append(ok.Headers, header(name, value))
	}
	set(t.identity.UserID, id.userID)
	roles := strings.Join(id.roles, ",")
	set(t.identity.Roles, roles)
	set(t.identity.Tenant, id.tenant)
	set(t.identity.Tier, id.tier)
	if !v.req.forwardCreds {
		ok.HeadersToRemove = append(ok.HeadersToRemove, "authorization")
		if t.keyHeader != "" {
			ok.HeadersToRemove = append(ok.HeadersToRemove, t.keyHeader)
		}
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(code.Code_OK)},
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: metadata(v, roles),
	}
}

func header(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// metadata is the identity as the ext_authz filter's dynamic metadata: every
// value an identity header carries has a key here (user_id, roles, tenant,
// tier), so that the gateway's identity guard can rebuild the headers after
// a Lua script ran. roles is the roles header's value.
func metadata(v verdict, roles string) *structpb.Struct {
	f := map[string]*structpb.Value{"route": structpb.NewStringValue(v.req.route)}
	if id := v.id; id != nil && id.method != "" {
		f["method"] = structpb.NewStringValue(id.method)
		f["consumer"] = structpb.NewStringValue(id.consumer)
		f["user_id"] = structpb.NewStringValue(id.userID)
		f["tenant"] = structpb.NewStringValue(id.tenant)
		f["tier"] = structpb.NewStringValue(id.tier)
		// roles exactly as the roles header: the gateway's identity guard
		// rebuilds that header from it.
		f["roles"] = structpb.NewStringValue(roles)
		if id.keyRecord != "" {
			f[envoymod.MetadataKeyRecord] = structpb.NewStringValue(id.keyRecord)
		}
	}
	return &structpb.Struct{Fields: f}
}

// denied builds a denial: 401 with a WWW-Authenticate challenge, 403, or
// 503, each with a small JSON body naming a short reason code, never why a
// signature failed in detail.
func denied(v verdict) *authv3.CheckResponse {
	grpcCode, word := code.Code_PERMISSION_DENIED, "forbidden"
	headers := []*corev3.HeaderValueOption{header("content-type", "application/json"), header("cache-control", "no-store")}
	switch v.status {
	case 401:
		grpcCode, word = code.Code_UNAUTHENTICATED, "unauthorized"
		headers = append(headers, header("www-authenticate", challenge(v)))
	case 503:
		grpcCode, word = code.Code_UNAVAILABLE, "unavailable"
	}
	body := `{"error":"` + word + `","reason":"` + v.reason + `"}`
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode), Message: v.reason},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(v.status)},
			Headers: headers,
			Body:    body,
		}},
	}
}

// challenge is the WWW-Authenticate value (RFC 6750 for bearer tokens).
func challenge(v verdict) string {
	var parts []string
	if v.req.allows("jwt") || v.req.allows("oauth2") || len(v.req.methods) == 0 {
		c := `Bearer realm="tollgate"`
		if v.token {
			c += `, error="invalid_token"`
		}
		parts = append(parts, c)
	}
	if v.req.allows("apiKey") {
		parts = append(parts, `ApiKey realm="tollgate"`)
	}
	return strings.Join(parts, ", ")
}
