package transform

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tollgate/tollgate/transform/contract"
)

// DefaultMaxBodyBytes bounds a converted body when the route sets no bound:
// 1 MiB, Envoy's default buffer limit.
const DefaultMaxBodyBytes = 1 << 20

// Directions of a body.
const (
	dirRequest  = "request"
	dirResponse = "response"
)

// Options configure a Service.
type Options struct {
	Logger  *slog.Logger // nil: slog.Default()
	Metrics *Metrics     // nil: no metrics
}

// Service is the body transformation external processor. Each stream is one
// HTTP request of a route with a transform; the route's settings arrive as
// the stream's gRPC metadata (contract.MetadataKey). It keeps no state
// between streams.
type Service struct {
	extprocv3.UnimplementedExternalProcessorServer
	log     *slog.Logger
	metrics *Metrics
}

// New returns a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{log: o.Logger, metrics: o.Metrics}
}

// Register adds the service to g.
func (s *Service) Register(g *grpc.Server) { extprocv3.RegisterExternalProcessorServer(g, s) }

// exchange is the state of one stream: the route's settings and the content
// types of the request and the response.
type exchange struct {
	settings                  contract.Settings
	requestType, responseType string
}

// Process answers one stream's messages in order until Envoy closes it.
func (s *Service) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	s.metrics.stream()
	settings, err := settingsOf(stream.Context())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "transform settings: %v", err)
	}
	x := &exchange{settings: settings}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(s.answer(x, req)); err != nil {
			return err
		}
	}
}

// skipBody returns, when the body announced by headers of content type
// ctype will not be converted, the processing mode that stops Envoy from
// buffering and sending it (the route's mode with that body NONE); nil
// otherwise. Envoy replaces its whole mode with an override, so the other
// direction keeps the route's settings.
func (x *exchange) skipBody(conversion, ctype string, request bool) *procmodev3.ProcessingMode {
	if conversion != "" && sourceType(conversion, ctype) {
		return nil
	}
	m := RouteMode(x.settings)
	if request {
		m.RequestBodyMode = procmodev3.ProcessingMode_NONE
	} else {
		m.ResponseBodyMode = procmodev3.ProcessingMode_NONE
	}
	return m
}

// RouteMode is the processing mode Tollgate's translator gives a route
// with settings s: headers and the buffered body of each converted
// direction, nothing else (the translator's tests check they agree).
func RouteMode(s contract.Settings) *procmodev3.ProcessingMode {
	m := &procmodev3.ProcessingMode{
		RequestHeaderMode: procmodev3.ProcessingMode_SKIP, ResponseHeaderMode: procmodev3.ProcessingMode_SKIP,
		RequestTrailerMode: procmodev3.ProcessingMode_SKIP, ResponseTrailerMode: procmodev3.ProcessingMode_SKIP,
	}
	if s.Request != "" {
		m.RequestHeaderMode, m.RequestBodyMode = procmodev3.ProcessingMode_SEND, procmodev3.ProcessingMode_BUFFERED
	}
	if s.Response != "" {
		m.ResponseHeaderMode, m.ResponseBodyMode = procmodev3.ProcessingMode_SEND, procmodev3.ProcessingMode_BUFFERED
	}
	return m
}

// settingsOf reads the route's settings from the stream metadata.
func settingsOf(ctx context.Context) (contract.Settings, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(contract.MetadataKey)
	if len(vals) == 0 {
		return contract.Settings{}, errors.New("no " + contract.MetadataKey + " metadata: is the route configured by Tollgate?")
	}
	return contract.Decode(vals[0])
}

// answer returns the response to one message.
func (s *Service) answer(x *exchange, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	switch r := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		x.requestType = convertibleType(r.RequestHeaders.GetHeaders())
		return &extprocv3.ProcessingResponse{
			Response:     &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}},
			ModeOverride: x.skipBody(x.settings.Request, x.requestType, true),
		}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		x.responseType = convertibleType(r.ResponseHeaders.GetHeaders())
		if header(r.ResponseHeaders.GetHeaders(), ":status") == "206" {
			x.responseType = "" // a byte range is not a document
		}
		return &extprocv3.ProcessingResponse{
			Response:     &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}},
			ModeOverride: x.skipBody(x.settings.Response, x.responseType, false),
		}
	case *extprocv3.ProcessingRequest_RequestBody:
		res, body := s.body(dirRequest, x.settings.Request, x.requestType, r.RequestBody.GetBody(), x.settings)
		if res != nil {
			return res
		}
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: body}}
	case *extprocv3.ProcessingRequest_ResponseBody:
		res, body := s.body(dirResponse, x.settings.Response, x.responseType, r.ResponseBody.GetBody(), x.settings)
		if res != nil {
			return res
		}
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: body}}
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
	}
	// Anything else (a message kind newer than this service) is left alone.
	return &extprocv3.ProcessingResponse{}
}

// body converts one buffered body. It returns either an immediate response
// (an error answer to the client) or the body response: unchanged when the
// body is empty or not of the conversion's source type, else the converted
// body with its content-type and content-length.
func (s *Service) body(dir, conversion, ctype string, in []byte, st contract.Settings) (*extprocv3.ProcessingResponse, *extprocv3.BodyResponse) {
	if conversion == "" || len(in) == 0 || !sourceType(conversion, ctype) {
		s.metrics.body(dir, conversion, outcomePassthrough, 0)
		return nil, &extprocv3.BodyResponse{}
	}
	limit := routeLimit(st.MaxBodyBytes)
	if len(in) > limit {
		s.metrics.body(dir, conversion, outcomeTooLarge, 0)
		return tooLarge(dir, len(in), limit), nil
	}
	start := time.Now()
	out, outType, err := convert(conversion, in, st.Root, LimitsFor(limit))
	switch {
	case IsLimitError(err):
		s.metrics.body(dir, conversion, outcomeTooLarge, 0)
		s.log.Debug("transform: body over a conversion limit", "direction", dir, "conversion", conversion, "err", err)
		return overLimit(dir, conversion, err), nil
	case err != nil:
		s.metrics.body(dir, conversion, outcomeMalformed, 0)
		s.log.Debug("transform: body not converted", "direction", dir, "conversion", conversion, "err", err)
		return malformed(dir, conversion, err), nil
	}
	s.metrics.body(dir, conversion, outcomeConverted, time.Since(start))
	return nil, convertedBody(out, outType, dir == dirResponse)
}

// routeLimit is the bound of a route's bodies: its maxBodyBytes, never more
// than DefaultMaxBodyBytes (the policy's ceiling, enforced here too so that
// the output bound, OutputFactor times this, stays fixed), and
// DefaultMaxBodyBytes when the route sets none.
func routeLimit(maxBodyBytes int) int {
	if maxBodyBytes <= 0 || maxBodyBytes > DefaultMaxBodyBytes {
		return DefaultMaxBodyBytes
	}
	return maxBodyBytes
}

// convert runs a conversion within l and returns the body and its content
// type.
func convert(conversion string, in []byte, root string, l Limits) ([]byte, string, error) {
	if conversion == contract.JSONToXML {
		out, err := l.JSONToXML(in, root)
		return out, XMLContentType, err
	}
	out, err := l.XMLToJSON(in)
	return out, JSONContentType, err
}

// Content types of converted bodies.
const (
	XMLContentType  = "application/xml; charset=utf-8"
	JSONContentType = "application/json"
)

// sourceType reports whether a body of content type ctype is the source of
// conversion: application/json or application/*+json for json-to-xml;
// application/xml, text/xml or application/*+xml for xml-to-json.
func sourceType(conversion, ctype string) bool {
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		return false
	}
	if conversion == contract.JSONToXML {
		return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
	}
	return mt == "application/xml" || mt == "text/xml" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+xml")
}

// convertibleType returns the content-type of the message with headers h,
// or "" when its body is encoded (a content-encoding other than identity:
// compressed bytes are passed on untouched).
func convertibleType(h *corev3.HeaderMap) string {
	if enc := header(h, "content-encoding"); enc != "" && !strings.EqualFold(strings.TrimSpace(enc), "identity") {
		return ""
	}
	return header(h, "content-type")
}

// header returns the value of the header name in h, or "".
func header(h *corev3.HeaderMap, name string) string {
	for _, hv := range h.GetHeaders() {
		if strings.EqualFold(hv.GetKey(), name) {
			if len(hv.GetRawValue()) > 0 {
				return string(hv.GetRawValue())
			}
			return hv.GetValue()
		}
	}
	return ""
}
