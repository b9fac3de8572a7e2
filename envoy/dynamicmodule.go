package envoy

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	dmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/dynamic_modules/v3"
	dmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_modules/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// DynamicModule names a dynamic module's library and the filter in it.
type DynamicModule struct {
	// Path is the library's file on the Envoy host (module.local.filename:
	// a missing file fails the filter's configuration, so the listener is
	// refused, never served without it; a remote module that fails to
	// fetch would be skipped, fail-open, and is not offered here).
	Path string
	// Filter is the filter_name the module's config hooks receive.
	Filter string
}

// config is the DynamicModuleConfig of m. do_not_close: a library holding
// a runtime (Go's) cannot be unloaded safely, and Envoy would dlclose it
// once no configuration uses it.
func (m DynamicModule) config() *dmv3.DynamicModuleConfig {
	return &dmv3.DynamicModuleConfig{
		DoNotClose: true,
		Module: &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{
			Local: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: m.Path}},
		}},
	}
}

// DynamicModuleFilter is the HTTP filter named name running m's filter with
// config (a string the module parses, passed as a StringValue).
func DynamicModuleFilter(name string, m DynamicModule, config string) (*hcmv3.HttpFilter, error) {
	f, err := DynamicModuleFilterConfig(m, config)
	if err != nil {
		return nil, fmt.Errorf("dynamic module filter %s: %w", name, err)
	}
	a, err := Any(f)
	if err != nil {
		return nil, fmt.Errorf("dynamic module filter %s: %w", name, err)
	}
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// DynamicModuleFilterConfig is the configuration of m's filter with config
// (a string the module parses, passed as a StringValue): a
// DynamicModuleFilter's typed config, or its ECDS resource's.
func DynamicModuleFilterConfig(m DynamicModule, config string) (*dmfilterv3.DynamicModuleFilter, error) {
	c, err := Any(wrapperspb.String(config))
	if err != nil {
		return nil, err
	}
	return &dmfilterv3.DynamicModuleFilter{DynamicModuleConfig: m.config(), FilterName: m.Filter, FilterConfig: c}, nil
}

// DynamicModulePerRoute is a route's configuration of m's filter: config
// (a StringValue) reaches the module's per-route config hook.
func DynamicModulePerRoute(m DynamicModule, config string) (*dmfilterv3.DynamicModuleFilterPerRoute, error) {
	c, err := Any(wrapperspb.String(config))
	if err != nil {
		return nil, err
	}
	return &dmfilterv3.DynamicModuleFilterPerRoute{DynamicModuleConfig: m.config(), FilterName: m.Filter, FilterConfig: c}, nil
}
