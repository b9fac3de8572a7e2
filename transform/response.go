package transform

import (
	"encoding/json"
	"fmt"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// Error codes of the service's answers (the "error" member of the JSON
// body).
const (
	codeInvalidBody      = "invalid_body"       // 400: the client's body could not be converted
	codeBodyTooLarge     = "body_too_large"     // 413: the client's body, or its conversion, is over a bound
	codeBadUpstreamBody  = "bad_upstream_body"  // 502: the upstream's body could not be converted
	codeUpstreamTooLarge = "upstream_too_large" // 502: the upstream's body, or its conversion, is over a bound
)

// convertedBody replaces the body, its content-type and its content-length;
// on a response it also removes the upstream's etag, which names the
// unconverted representation.
func convertedBody(body []byte, ctype string, response bool) *extprocv3.BodyResponse {
	mutation := &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
		setHeader("content-type", ctype),
		setHeader("content-length", strconv.Itoa(len(body))),
	}}
	if response {
		mutation.RemoveHeaders = []string{"etag"}
	}
	return &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
		HeaderMutation: mutation,
		BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}},
	}}
}

// malformed answers a body that could not be converted: 400 for a request
// body (the client's fault), 502 for a response body (the upstream's).
func malformed(dir, conversion string, err error) *extprocv3.ProcessingResponse {
	if dir == dirRequest {
		return errorResponse(400, codeInvalidBody, fmt.Sprintf("the request body could not be converted (%s): %v", conversion, err))
	}
	return errorResponse(502, codeBadUpstreamBody, fmt.Sprintf("the upstream response body could not be converted (%s): %v", conversion, err))
}

// tooLarge answers a body over the route's bound: 413 for a request body,
// 502 for a response body.
func tooLarge(dir string, size, limit int) *extprocv3.ProcessingResponse {
	if dir == dirRequest {
		return errorResponse(413, codeBodyTooLarge, fmt.Sprintf("the request body has %d bytes, more than the %d this route converts", size, limit))
	}
	return errorResponse(502, codeUpstreamTooLarge, fmt.Sprintf("the upstream response body has %d bytes, more than the %d this route converts", size, limit))
}

// overLimit answers a body whose conversion crossed one of its Limits
// (output size, element count, name length): 413 for a request body, 502
// for a response body, with the codes of a body over the input bound.
func overLimit(dir, conversion string, err error) *extprocv3.ProcessingResponse {
	if dir == dirRequest {
		return errorResponse(413, codeBodyTooLarge, fmt.Sprintf("the request body is too large to convert (%s): %v", conversion, err))
	}
	return errorResponse(502, codeUpstreamTooLarge, fmt.Sprintf("the upstream response body is too large to convert (%s): %v", conversion, err))
}

// errorResponse is an immediate answer with a JSON error body.
func errorResponse(code int, errCode, msg string) *extprocv3.ProcessingResponse {
	body, _ := json.Marshal(map[string]string{"error": errCode, "message": msg}) // strings only: cannot fail
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode(code)},
		Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
			setHeader("content-type", JSONContentType),
		}},
		Body:    body,
		Details: "tollgate_transform_" + errCode,
	}}}
}

func setHeader(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, RawValue: []byte(value)},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}
