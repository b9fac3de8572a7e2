package envoy

import (
	"fmt"
	"strconv"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	celv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	grpcalsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	celformatv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/formatter/cel/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Access-log extension names (labels; Envoy selects by type URL).
const (
	StdoutAccessLogName = "envoy.access_loggers.stdout"
	FileAccessLogName   = "envoy.access_loggers.file"
	celFilterName       = "envoy.access_loggers.extension_filters.cel"
	celFormatterName    = "envoy.formatter.cel"
)

// JSONAccessLog returns an access log that writes one JSON object per
// request with the given fields (JSON key → Envoy command operator) to
// Envoy's stdout when path is empty, else appended to the file path. Empty
// values are omitted from the line. filter may be nil (log everything).
func JSONAccessLog(path string, fields map[string]string, filter *accesslogv3.AccessLogFilter) (*accesslogv3.AccessLog, error) {
	fmtFields := make(map[string]any, len(fields))
	for k, v := range fields {
		fmtFields[k] = v
	}
	st, err := structpb.NewStruct(fmtFields)
	if err != nil {
		return nil, fmt.Errorf("access log format: %w", err)
	}
	cel, err := Any(&celformatv3.Cel{})
	if err != nil {
		return nil, fmt.Errorf("access log CEL formatter: %w", err)
	}
	// The CEL formatter makes %CEL(expression)% available to fields.
	format := &corev3.SubstitutionFormatString{
		Format:          &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: st},
		OmitEmptyValues: true,
		Formatters:      []*corev3.TypedExtensionConfig{{Name: celFormatterName, TypedConfig: cel}},
	}
	var name string
	var cfg proto.Message
	if path == "" {
		name = StdoutAccessLogName
		cfg = &streamv3.StdoutAccessLog{AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{LogFormat: format}}
	} else {
		name = FileAccessLogName
		cfg = &filev3.FileAccessLog{Path: path, AccessLogFormat: &filev3.FileAccessLog_LogFormat{LogFormat: format}}
	}
	a, err := Any(cfg)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	return &accesslogv3.AccessLog{Name: name, Filter: filter, ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: a}}, nil
}

// AccessLogCELFilter keeps the requests for which the CEL expression
// (over Envoy's attributes, e.g. `xds.route_name in ['a']`) is true.
func AccessLogCELFilter(expression string) (*accesslogv3.AccessLogFilter, error) {
	a, err := Any(&celv3.ExpressionFilter{Expression: expression})
	if err != nil {
		return nil, fmt.Errorf("access log CEL filter: %w", err)
	}
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ExtensionFilter{
		ExtensionFilter: &accesslogv3.ExtensionFilter{Name: celFilterName, ConfigType: &accesslogv3.ExtensionFilter_TypedConfig{TypedConfig: a}},
	}}, nil
}

// AccessLogSampleFilter keeps percent (0-100, to a millionth) of the
// requests, decided from the request ID (so retries and the trace sample
// agree); the runtime key runtimeKey overrides it.
func AccessLogSampleFilter(runtimeKey string, percent float64) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_RuntimeFilter{
		RuntimeFilter: &accesslogv3.RuntimeFilter{
			RuntimeKey:     runtimeKey,
			PercentSampled: FractionalPercent(percent),
		},
	}}
}

// AccessLogAnd keeps a request when every filter keeps it; one filter is
// returned as is.
func AccessLogAnd(filters ...*accesslogv3.AccessLogFilter) *accesslogv3.AccessLogFilter {
	if len(filters) == 1 {
		return filters[0]
	}
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{
		AndFilter: &accesslogv3.AndFilter{Filters: filters},
	}}
}

// AccessLogOr keeps a request when any filter keeps it; one filter is
// returned as is.
func AccessLogOr(filters ...*accesslogv3.AccessLogFilter) *accesslogv3.AccessLogFilter {
	if len(filters) == 1 {
		return filters[0]
	}
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_OrFilter{
		OrFilter: &accesslogv3.OrFilter{Filters: filters},
	}}
}

// CELStringList renders names as a CEL list literal of single-quoted
// strings; names must not contain quotes or backslashes.
func CELStringList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// GRPCAccessLogName is the label of Envoy's HTTP gRPC access logger.
const GRPCAccessLogName = "envoy.access_loggers.http_grpc"

// GRPCAccessLog returns an access log that streams every request (kept by
// filter, nil for all) as an HTTPAccessLogEntry, with the request's
// dynamic metadata, to the gRPC AccessLogService on the cluster named
// cluster, under logName. Envoy buffers entries for up to a second.
func GRPCAccessLog(logName, cluster string, filter *accesslogv3.AccessLogFilter) (*accesslogv3.AccessLog, error) {
	a, err := Any(&grpcalsv3.HttpGrpcAccessLogConfig{CommonConfig: &grpcalsv3.CommonGrpcAccessLogConfig{
		LogName:             logName,
		GrpcService:         GRPCService(cluster, 0),
		TransportApiVersion: corev3.ApiVersion_V3,
	}})
	if err != nil {
		return nil, fmt.Errorf("gRPC access log: %w", err)
	}
	return &accesslogv3.AccessLog{Name: GRPCAccessLogName, Filter: filter, ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: a}}, nil
}
