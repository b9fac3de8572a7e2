package envoy

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
)

// DiscoveredHTTPFilter returns an HTTP filter named name whose config is
// delivered by extension config discovery (ECDS) over ADS: the control
// plane serves a TypedExtensionConfig of the same name (ExtensionConfig),
// which Envoy swaps in without touching the listener. def is the config
// the filter runs with until the first ECDS response arrives
// (apply_default_config_without_warming: the listener does not wait for
// it); its type is the only one Envoy accepts from ECDS for this filter.
func DiscoveredHTTPFilter(name string, def proto.Message) (*hcmv3.HttpFilter, error) {
	a, err := Any(def)
	if err != nil {
		return nil, fmt.Errorf("discovered filter %s: %w", name, err)
	}
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{
		ConfigSource:                     ConfigSourceADS(),
		DefaultConfig:                    a,
		ApplyDefaultConfigWithoutWarming: true,
		TypeUrls:                         []string{a.GetTypeUrl()},
	}}}, nil
}

// ExtensionConfig returns the ECDS resource named name holding cfg (the
// resource a DiscoveredHTTPFilter of that name receives).
func ExtensionConfig(name string, cfg proto.Message) (*corev3.TypedExtensionConfig, error) {
	a, err := Any(cfg)
	if err != nil {
		return nil, fmt.Errorf("extension config %s: %w", name, err)
	}
	return &corev3.TypedExtensionConfig{Name: name, TypedConfig: a}, nil
}
