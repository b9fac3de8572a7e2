package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	luav3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// LuaName is the name of the Lua HTTP filter.
const LuaName = "envoy.filters.http.lua"

// LuaFilter returns the Lua HTTP filter without code of its own: routes
// bring their script as per-route config (LuaPerRouteSource) and every
// other route turns it off (LuaPerRouteDisabled).
func LuaFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: LuaName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: MustAny(&luav3.Lua{})}}
}

// LuaPerRouteSource runs the inline script source on a route.
func LuaPerRouteSource(source string) *luav3.LuaPerRoute {
	return &luav3.LuaPerRoute{Override: &luav3.LuaPerRoute_SourceCode{SourceCode: &corev3.DataSource{
		Specifier: &corev3.DataSource_InlineString{InlineString: source},
	}}}
}

// LuaPerRouteDisabled turns the Lua filter off on a route.
func LuaPerRouteDisabled() *luav3.LuaPerRoute {
	return &luav3.LuaPerRoute{Override: &luav3.LuaPerRoute_Disabled{Disabled: true}}
}

// LuaNamedSourcesFilter returns a Lua HTTP filter named name that runs
// nothing by default and holds the named scripts sources (name → code):
// routes pick one with LuaPerRouteName, others turn it off with
// LuaPerRouteDisabled. One Lua state per worker serves every route that
// picks a script, instead of one per route with inline code.
func LuaNamedSourcesFilter(name string, sources map[string]string) (*hcmv3.HttpFilter, error) {
	a, err := Any(LuaNamedSources(sources))
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// LuaNamedSources is the Lua filter config holding the named scripts
// sources (name → code) and no default script.
func LuaNamedSources(sources map[string]string) *luav3.Lua {
	codes := make(map[string]*corev3.DataSource, len(sources))
	for k, src := range sources {
		codes[k] = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: src}}
	}
	return &luav3.Lua{SourceCodes: codes}
}

// LuaPerRouteName runs the filter's script named name on a route.
func LuaPerRouteName(name string) *luav3.LuaPerRoute {
	return &luav3.LuaPerRoute{Override: &luav3.LuaPerRoute_Name{Name: name}}
}
